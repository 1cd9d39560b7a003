// `hvsim report`: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched)
// with the conformance matrix, a timeline of a scenario run, benchmark ratios against the
// baseline, and fuzz findings. Pure: data in, text out.
import type { TraceRecord } from "../clock/trace.ts";
import type { ConformReport } from "../conform/runner.ts";
import { counts } from "../conform/runner.ts";

export interface BenchCase {
  readonly name: string;
  readonly hz: number;
  readonly rme: number;
  readonly ratio: number;
  readonly reference: boolean;
}

export interface BenchSuiteResult {
  readonly name: string;
  readonly reference: string;
  readonly goal: number | null;
  readonly skipped?: string;
  readonly cases: readonly BenchCase[];
}

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
  readonly scenario?: { readonly name: string; readonly file: string; readonly records: readonly TraceRecord[]; readonly traceHash: string; readonly status: string };
  readonly bench?: { readonly suites: readonly BenchSuiteResult[] };
  readonly baseline?: { readonly suites: readonly BenchSuiteResult[] };
  readonly fuzz?: { readonly findings: readonly FuzzFinding[]; readonly source: string };
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 16px}table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #dde2ea;padding:4px 10px;text-align:left;vertical-align:top}th{background:#f3f5f9}
.pass{background:#e3f5e6}.fail{background:#fbe1e1}.skip{background:#f6f1df}.none{color:#98a1b3}
.muted{color:#5b6475}.mono{font-family:ui-monospace,Menlo,monospace;font-size:12px}
svg text{font:11px system-ui,sans-serif;fill:#1d2330}.axis line,.axis path{stroke:#9aa3b5}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
`;

function conformSection(r: ConformReport | undefined): string {
  if (!r) return `<p class="none">No conformance report (run <span class="mono">hvsim conform</span>).</p>`;
  const suites = [...new Set(r.targets.flatMap((t) => t.results.map((x) => x.suite)))].sort();
  const head = `<tr><th>target</th>${suites.map((s) => `<th>${esc(s)}</th>`).join("")}<th>total</th></tr>`;
  const rows = r.targets.map((t) => {
    const cells = suites.map((s) => {
      const xs = t.results.filter((x) => x.suite === s);
      const p = xs.filter((x) => x.outcome.status === "passed").length;
      const f = xs.filter((x) => x.outcome.status === "failed").length;
      const k = xs.filter((x) => x.outcome.status === "skipped").length;
      const cls = f ? "fail" : p ? "pass" : k ? "skip" : "none";
      const why = xs.filter((x) => x.outcome.status !== "passed").map((x) => `${x.id}: ${x.outcome.status} — ${"detail" in x.outcome ? x.outcome.detail ?? "" : ""}`).join("\n");
      return `<td class="${cls}" title="${esc(why)}">${p} passed${f ? `, ${f} failed` : ""}${k ? `, ${k} skipped` : ""}</td>`;
    });
    const c = counts(t);
    return `<tr><th>${esc(t.target)}${t.unavailable ? `<br><span class="muted">${esc(t.unavailable)}</span>` : ""}</th>${cells.join("")}<td>${c.passed}/${t.results.length}${c.deviations ? `<br>${c.deviations} deviations` : ""}</td></tr>`;
  });
  const devs = r.targets.flatMap((t) => t.results.flatMap((x) => (x.outcome.status !== "skipped" ? (x.outcome.deviations ?? []).map((d) => `<li><b>${esc(t.target)}</b> ${esc(x.id)}: ${esc(d)}</li>`) : [])));
  const fails = r.targets.flatMap((t) => t.results.filter((x) => x.outcome.status === "failed").map((x) => `<li><b>${esc(t.target)}</b> ${esc(x.id)}<pre class="mono">${esc("detail" in x.outcome ? x.outcome.detail ?? "" : "")}</pre></li>`));
  return `<table id="conform-matrix">${head}${rows.join("")}</table>${devs.length ? `<h3>Deviations</h3><ul>${devs.join("")}</ul>` : ""}${fails.length ? `<h3>Failures</h3><ul>${fails.join("")}</ul>` : ""}`;
}

interface Lane {
  readonly name: string;
  readonly points: { at: number; value: number }[];
  readonly marks: { at: number; label: string; color: string }[];
}

const COLORS = ["#2f6fde", "#d9822b", "#1f9d55", "#c23b3b", "#7a4fd1", "#138496"];

/** Splits a trace into plot lanes: 32-bit and 16-bit port reads as value series, events as marks. */
export function lanesFromTrace(records: readonly TraceRecord[]): Lane[] {
  const series = new Map<string, Lane>();
  const marks = new Map<string, Lane>();
  const mark = (lane: string, at: number, label: string, color: string) => {
    let l = marks.get(lane);
    if (!l) marks.set(lane, (l = { name: lane, points: [], marks: [] }));
    l.marks.push({ at, label, color });
  };
  for (const r of records) {
    const f = r.fields;
    if (r.type === "io" && f[0] === "in" && typeof f[1] === "number" && f[4] !== null && typeof f[3] === "number" && f[2] === 4) {
      const key = `${String(f[4])} port 0x${f[1].toString(16)} (read)`;
      let l = series.get(key);
      if (!l) series.set(key, (l = { name: key, points: [], marks: [] }));
      l.points.push({ at: r.at, value: f[3] });
    } else if (r.type === "irq") {
      mark("interrupts (SCI, TMR_STS)", r.at, `IRQ ${String(f[0])} ${String(f[1])}`, f[0] === "raise" ? "#c23b3b" : "#1f9d55");
    } else if (r.type.startsWith("vmgenid")) {
      mark("vmgenid", r.at, `${r.type.replace("vmgenid-", "")}`, r.type === "vmgenid-reseed" ? "#7a4fd1" : r.type === "vmgenid-write" ? "#d9822b" : "#2f6fde");
    } else if (/^(kvp|vss|hv|host|kernel|daemon)/.test(r.type)) {
      mark("Hyper-V (host / kernel / daemon)", r.at, `${r.type} ${f.slice(0, 3).map((x) => (typeof x === "object" ? "" : String(x))).join(" ")}`.trim(), "#138496");
    } else if (r.type === "snapshot" || r.type === "restore") {
      mark("snapshots", r.at, r.type, "#5b6475");
    }
  }
  return [...series.values(), ...marks.values()];
}

function fmtNs(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(ns % 1e9 ? 2 : 0)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(1)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${ns} ns`;
}

function timelineSvg(lanes: readonly Lane[]): string {
  const W = 1000, left = 190, right = 20, seriesH = 140, markH = 46;
  const all = lanes.flatMap((l) => [...l.points.map((p) => p.at), ...l.marks.map((m) => m.at)]);
  if (!all.length) return `<p class="none">The scenario produced nothing to plot.</p>`;
  const t0 = Math.min(...all), t1 = Math.max(...all, t0 + 1);
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (W - left - right);
  let y = 10;
  const parts: string[] = [];
  lanes.forEach((l, i) => {
    const color = COLORS[i % COLORS.length]!;
    if (l.points.length) {
      const vmax = Math.max(...l.points.map((p) => p.value), 1);
      const py = (v: number) => y + seriesH - 8 - (v / vmax) * (seriesH - 20);
      // A drop in value between consecutive reads is a wrap: draw it as a break, not a line down.
      let d = "";
      l.points.forEach((p, k) => {
        const prev = l.points[k - 1];
        d += `${!prev || p.value < prev.value ? "M" : "L"}${x(p.at).toFixed(1)},${py(p.value).toFixed(1)}`;
      });
      const wraps = l.points.filter((p, k) => k > 0 && p.value < l.points[k - 1]!.value);
      parts.push(`<g class="lane series" data-lane="${esc(l.name)}"><text x="4" y="${y + 14}">${esc(l.name)}</text><text x="4" y="${y + 28}" class="muted">max 0x${vmax.toString(16)}</text>`);
      parts.push(`<line x1="${left}" x2="${W - right}" y1="${y + seriesH - 8}" y2="${y + seriesH - 8}" stroke="#dde2ea"/>`);
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
      for (const p of l.points) parts.push(`<circle cx="${x(p.at).toFixed(1)}" cy="${py(p.value).toFixed(1)}" r="2.2" fill="${color}"><title>${fmtNs(p.at)}: 0x${p.value.toString(16)}</title></circle>`);
      for (const w of wraps) parts.push(`<line class="wrap" x1="${x(w.at).toFixed(1)}" x2="${x(w.at).toFixed(1)}" y1="${y + 4}" y2="${y + seriesH - 8}" stroke="#c23b3b" stroke-dasharray="3,3"><title>wrap before ${fmtNs(w.at)}</title></line>`);
      parts.push(`</g>`);
      y += seriesH;
    } else {
      parts.push(`<g class="lane marks" data-lane="${esc(l.name)}"><text x="4" y="${y + 22}">${esc(l.name)}</text><line x1="${left}" x2="${W - right}" y1="${y + 18}" y2="${y + 18}" stroke="#dde2ea"/>`);
      for (const m of l.marks) parts.push(`<rect class="mark" x="${(x(m.at) - 3).toFixed(1)}" y="${y + 10}" width="6" height="16" fill="${m.color}"><title>${fmtNs(m.at)}: ${esc(m.label)}</title></rect>`);
      parts.push(`</g>`);
      y += markH;
    }
  });
  const ticks = Array.from({ length: 6 }, (_, i) => t0 + ((t1 - t0) * i) / 5);
  parts.push(`<g class="axis"><line x1="${left}" x2="${W - right}" y1="${y + 4}" y2="${y + 4}"/>${ticks.map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="${y + 4}" y2="${y + 9}"/><text x="${x(t)}" y="${y + 22}" text-anchor="middle">${fmtNs(Math.round(t))}</text>`).join("")}<text x="${left}" y="${y + 38}">virtual time</text></g>`);
  return `<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 46}" viewBox="0 0 ${W} ${y + 46}" role="img" aria-label="scenario timeline">${parts.join("")}</svg>`;
}

function benchSection(bench: ReportData["bench"], baseline: ReportData["baseline"]): string {
  if (!bench) return `<p class="none">No benchmark results (run <span class="mono">hvsim bench --json reports/bench.json</span>).</p>`;
  const base = new Map<string, number>();
  for (const s of baseline?.suites ?? []) for (const c of s.cases) base.set(`${s.name}\u0000${c.name}`, c.ratio);
  const rows = bench.suites.flatMap((s) => (s.skipped ? [] : s.cases.filter((c) => !c.reference).map((c) => ({ suite: s, c, b: base.get(`${s.name}\u0000${c.name}`) }))));
  if (!rows.length) return `<p class="none">No benchmark cases ran.</p>`;
  const W = 1100, left = 440, barH = 18, gap = 8;
  const maxR = Math.max(...rows.map((r) => Math.max(r.c.ratio, r.b ?? 0, r.suite.goal ?? 0)), 1);
  const scale = (v: number) => ((Math.log10(v + 1) / Math.log10(maxR + 1)) * (W - left - 80));
  const parts = rows.map((r, i) => {
    const y = 10 + i * (barH + gap);
    const met = r.suite.goal === null || r.c.ratio >= r.suite.goal;
    return `<g class="bar"><text x="4" y="${y + 13}">${esc(r.suite.name)} — ${esc(r.c.name)}</text><rect x="${left}" y="${y}" width="${Math.max(1, scale(r.c.ratio)).toFixed(1)}" height="${barH}" fill="${met ? "#2f6fde" : "#d9822b"}"><title>${r.c.ratio.toFixed(3)}x ${esc(r.suite.reference)} (±${r.c.rme.toFixed(1)}%)</title></rect>${r.b !== undefined ? `<line x1="${(left + scale(r.b)).toFixed(1)}" x2="${(left + scale(r.b)).toFixed(1)}" y1="${y - 2}" y2="${y + barH + 2}" stroke="#1d2330" stroke-width="2"><title>baseline ${r.b.toFixed(3)}x</title></line>` : ""}${r.suite.goal !== null ? `<line x1="${(left + scale(r.suite.goal)).toFixed(1)}" x2="${(left + scale(r.suite.goal)).toFixed(1)}" y1="${y}" y2="${y + barH}" stroke="#c23b3b" stroke-dasharray="2,2"><title>goal ${r.suite.goal}x</title></line>` : ""}<text x="${(left + scale(r.c.ratio) + 6).toFixed(1)}" y="${y + 13}">${r.c.ratio.toFixed(2)}x</text></g>`;
  });
  const h = 20 + rows.length * (barH + gap);
  const legend = `<p class="legend"><span><i class="sw" style="background:#2f6fde"></i>ratio to the in-run reference (goal met)</span><span><i class="sw" style="background:#d9822b"></i>goal not met</span><span><i class="sw" style="background:#1d2330"></i>baseline</span><span><i class="sw" style="background:#c23b3b"></i>goal</span></p>`;
  return `${legend}<svg id="bench-chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}">${parts.join("")}</svg>`;
}

function fuzzSection(f: ReportData["fuzz"]): string {
  if (!f) return `<p class="none">No fuzz corpus given (hvsim report --fuzz DIR).</p>`;
  if (!f.findings.length) return `<p>No findings in <span class="mono">${esc(f.source)}</span>.</p>`;
  return `<table id="fuzz-findings"><tr><th>target</th><th>kind</th><th>message</th><th>seed / run</th><th>bytes</th><th>replay</th></tr>${f.findings
    .map((x) => `<tr><td>${esc(x.target)}</td><td>${esc(x.kind)}</td><td>${esc(x.message)}</td><td>${x.seed} / ${x.run}</td><td>${x.bytes}</td><td class="mono">hvsim fuzz --replay ${esc(x.file)}</td></tr>`)
    .join("")}</table>`;
}

export function renderReport(d: ReportData): string {
  const s = d.scenario;
  const lanes = s ? lanesFromTrace(s.records) : [];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.title)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(d.title)}</h1>
<p class="sub">${esc(d.generatedFor)}</p>
<h2>Conformance</h2>
${conformSection(d.conform)}
<h2>Scenario timeline</h2>
${s ? `<p>${esc(s.name)} (<span class="mono">${esc(s.file)}</span>): ${esc(s.status)}, ${s.records.length} trace records, trace hash <span class="mono">${esc(s.traceHash)}</span></p>${timelineSvg(lanes)}` : `<p class="none">No scenario run.</p>`}
<h2>Benchmarks</h2>
${benchSection(d.bench, d.baseline)}
<h2>Fuzz findings</h2>
${fuzzSection(d.fuzz)}
</body></html>
`;
}
