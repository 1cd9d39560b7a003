// `hvsim report`: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched)
// with the conformance matrix, a timeline of a scenario run, benchmark ratios against the
// baseline, and fuzz findings. Pure: data in, text out.
import type { TraceRecord } from "../clock/trace.ts";
import type { ConformReport } from "../conform/runner.ts";
import { conformSection } from "./conform-matrix.ts";
import { benchSection, type BenchSuiteResult } from "./bench-chart.ts";
import { lanesFromTrace, timelineSvg, type SnapshotMarker } from "./timeline.ts";
import { esc } from "./text.ts";

export type { BenchCase, BenchSuiteResult } from "./bench-chart.ts";
export type { SnapshotMarker } from "./timeline.ts";
export { lanesFromTrace } from "./timeline.ts";

export interface FuzzFinding {
  readonly target: string;
  readonly kind: string;
  readonly message: string;
  readonly seed: number;
  readonly run: number;
  readonly file: string;
  readonly bytes: number;
}

export interface ReportData {
  readonly title: string;
  readonly generatedFor: string;
  readonly conform?: ConformReport;
  readonly scenario?: {
    readonly name: string;
    readonly file: string;
    readonly records: readonly TraceRecord[];
    readonly traceHash: string;
    readonly status: string;
    /** Save and restore steps, in trace order. */
    readonly markers?: readonly SnapshotMarker[];
  };
  readonly bench?: { readonly suites: readonly BenchSuiteResult[] };
  readonly baseline?: { readonly suites: readonly BenchSuiteResult[] };
  readonly fuzz?: { readonly findings: readonly FuzzFinding[]; readonly source: string };
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1120px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 16px}table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #dde2ea;padding:4px 10px;text-align:left;vertical-align:top}th{background:#f3f5f9}
.pass{background:#e3f5e6}.fail{background:#fbe1e1}.skip{background:#f6f1df}.mixed{background:linear-gradient(90deg,#e3f5e6 60%,#f6f1df)}.na{background:#fff}
.why{font-size:11.5px;color:#5b6475;max-width:220px}.none{color:#98a1b3}
.muted{color:#5b6475;fill:#5b6475}.mono{font-family:ui-monospace,Menlo,monospace;font-size:12px}
svg text{font:11px system-ui,sans-serif;fill:#1d2330}svg text.muted{fill:#5b6475}.axis line,.axis path{stroke:#9aa3b5}
.legend{font-size:12.5px}.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle;border:1px solid #dde2ea}
`;

function fuzzSection(f: ReportData["fuzz"]): string {
  if (!f) return `<p class="none">No fuzz corpus given (hvsim report --fuzz DIR).</p>`;
  if (!f.findings.length) return `<p>No findings in <span class="mono">${esc(f.source)}</span>.</p>`;
  return `<table id="fuzz-findings"><tr><th>target</th><th>kind</th><th>message</th><th>seed / run</th><th>bytes</th><th>replay</th></tr>${f.findings
    .map((x) => `<tr><td>${esc(x.target)}</td><td>${esc(x.kind)}</td><td>${esc(x.message)}</td><td>${x.seed} / ${x.run}</td><td>${x.bytes}</td><td class="mono">hvsim fuzz --replay ${esc(x.file)}</td></tr>`)
    .join("")}</table>`;
}

export function renderReport(d: ReportData): string {
  const s = d.scenario;
  const markers = s?.markers ?? [];
  const lanes = s ? lanesFromTrace(s.records, markers) : [];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.title)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(d.title)}</h1>
<p class="sub">${esc(d.generatedFor)}</p>
<h2>Conformance</h2>
${conformSection(d.conform)}
<h2>Scenario timeline</h2>
${s ? `<p>${esc(s.name)} (<span class="mono">${esc(s.file)}</span>): ${esc(s.status)}, ${s.records.length} trace records, trace hash <span class="mono">${esc(s.traceHash)}</span></p>${timelineSvg(lanes, markers)}` : `<p class="none">No scenario run.</p>`}
<h2>Benchmarks</h2>
${benchSection(d.bench, d.baseline)}
<h2>Fuzz findings</h2>
${fuzzSection(d.fuzz)}
</body></html>
`;
}
