// The benchmark chart: every case's ratio to its suite's in-run reference on one logarithmic axis
// (so 0.04x and 1634x are both readable), grouped by suite (one reference per group), with the
// goal, the committed baseline and the ±rme interval drawn per case, coloured by verdict.
//
// Fields read from `hvsim bench --json` (extra fields are ignored):
//   suite: name, reference, goal (number | null), skipped?, cases[]
//   case:  name, ratio, rme (percent), reference (true for the reference itself), error?
//   optional, from the regression gate when present:
//     case.verdict   string; one naming a regression ("regression", "regressed", ...) colours the
//                    case red, one naming noise ("noise", "within-noise", "inconclusive") or a pass
//                    ("ok", "pass", "met") does not; shown as written.
//     case.gate.verdict  the same, as `hvsim bench --compare --json` writes it (ok, regression,
//                    improved, new).
//     case.interval  [low, high] or { low, high } / { lo, hi }: the ratio's interval, drawn instead
//                    of ratio·(1 ± rme/100); case.ratioLow / case.ratioHigh (the bench's 95%
//                    interval) are read first.
// Without case.verdict, a case regressed when its ratio is more than DEFAULT_MAX_REGRESSION_PCT
// below its baseline ratio: the rule and default of `hvsim bench --compare` (bench/gate.ts).
import { esc, n1 } from "./text.ts";

export const DEFAULT_MAX_REGRESSION_PCT = 10;

export interface BenchCase {
  readonly name: string;
  readonly hz?: number;
  readonly rme: number;
  readonly ratio: number;
  readonly reference: boolean;
  readonly error?: string;
  readonly verdict?: unknown;
  readonly interval?: unknown;
  readonly ratioLow?: unknown;
  readonly ratioHigh?: unknown;
  readonly gate?: unknown;
}

export interface BenchSuiteResult {
  readonly name: string;
  readonly reference: string;
  readonly goal: number | null;
  readonly skipped?: string;
  readonly cases: readonly BenchCase[];
}

export type BenchVerdict = "regression" | "below-goal" | "met" | "no-goal";

export const VERDICT_COLOR: Record<BenchVerdict, string> = { regression: "#c23b3b", "below-goal": "#d9822b", met: "#1f9d55", "no-goal": "#2f6fde" };
const VERDICT_TEXT: Record<BenchVerdict, string> = {
  regression: "regression against the baseline",
  "below-goal": "below its goal",
  met: "goal met",
  "no-goal": "no goal set",
};

export interface BenchRow {
  readonly suite: string;
  readonly reference: string;
  readonly name: string;
  readonly ratio: number;
  readonly low: number;
  readonly high: number;
  readonly rme: number;
  readonly goal: number | null;
  readonly baseline?: number;
  /** Percent below the baseline (negative: above it). */
  readonly drop?: number;
  readonly verdict: BenchVerdict;
  /** What the gate said, as written, or how the report decided. */
  readonly gate: string;
  readonly error?: string;
}

function interval(c: BenchCase): [number, number] | undefined {
  const i = c.interval as unknown;
  const ok = (a: unknown, b: unknown): [number, number] | undefined =>
    typeof a === "number" && typeof b === "number" && a > 0 && b >= a ? [a, b] : undefined;
  const fromGate = ok(c.ratioLow, c.ratioHigh);
  if (fromGate) return fromGate;
  if (Array.isArray(i)) return ok(i[0], i[1]);
  if (i && typeof i === "object") {
    const o = i as Record<string, unknown>;
    return ok(o.low ?? o.lo, o.high ?? o.hi);
  }
  return undefined;
}

/** `hvsim bench --compare --json` puts the gate's word on each case as `gate: { verdict }`. */
function gateVerdict(g: unknown): string | undefined {
  const v = g && typeof g === "object" ? (g as Record<string, unknown>).verdict : undefined;
  return typeof v === "string" ? v : undefined;
}

/** Flattens results into chart rows (reference cases and skipped suites left out). */
export function benchRows(bench: { readonly suites: readonly BenchSuiteResult[] }, baseline?: { readonly suites: readonly BenchSuiteResult[] }): BenchRow[] {
  const base = new Map<string, number>();
  for (const s of baseline?.suites ?? []) for (const c of s.cases) if (!c.reference && !c.error && c.ratio > 0) base.set(`${s.name}\u0000${c.name}`, c.ratio);
  const rows: BenchRow[] = [];
  for (const s of bench.suites) {
    if (s.skipped || !Array.isArray(s.cases)) continue;
    for (const c of s.cases) {
      if (c.reference || typeof c.ratio !== "number") continue;
      const b = base.get(`${s.name}\u0000${c.name}`);
      const rme = typeof c.rme === "number" && Number.isFinite(c.rme) ? c.rme : 0;
      const iv = interval(c) ?? [c.ratio * (1 - Math.min(rme, 99) / 100), c.ratio * (1 + rme / 100)];
      const drop = b !== undefined ? ((b - c.ratio) / b) * 100 : undefined;
      let regressed: boolean;
      let gate: string;
      const said = typeof c.verdict === "string" ? c.verdict : gateVerdict(c.gate);
      if (said !== undefined) {
        regressed = /regress|fail/i.test(said) && !/no[ -]?regress/i.test(said);
        gate = `gate: ${said}`;
      } else {
        regressed = c.error !== undefined || (drop !== undefined && drop > DEFAULT_MAX_REGRESSION_PCT);
        gate = drop === undefined ? "no baseline" : `${drop > 0 ? "−" : "+"}${Math.abs(drop).toFixed(Math.abs(drop) < 100 ? 1 : 0)}% vs baseline`;
      }
      const verdict: BenchVerdict = regressed ? "regression" : s.goal === null ? "no-goal" : c.ratio >= s.goal ? "met" : "below-goal";
      rows.push({ suite: s.name, reference: s.reference, name: c.name, ratio: c.ratio, low: iv[0], high: iv[1], rme, goal: s.goal, ...(b !== undefined ? { baseline: b, drop } : {}), verdict, gate, ...(c.error ? { error: c.error } : {}) });
    }
  }
  return rows;
}

const fmtRatio = (r: number) => (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)) + "x";

export function benchSection(bench: { readonly suites: readonly BenchSuiteResult[] } | undefined, baseline: { readonly suites: readonly BenchSuiteResult[] } | undefined): string {
  if (!bench) return `<p class="none">No benchmark results (run <span class="mono">hvsim bench --json reports/bench.json</span>).</p>`;
  const rows = benchRows(bench, baseline);
  if (!rows.length) return `<p class="none">No benchmark cases ran.</p>`;
  const W = 1100, left = 250, right = 350, rowH = 22, headH = 22;
  const vals = rows.flatMap((r) => [r.ratio, r.low, r.high, r.goal ?? r.ratio, r.baseline ?? r.ratio, 1]).filter((v) => v > 0 && Number.isFinite(v));
  const d0 = Math.floor(Math.log10(Math.min(...vals))), d1 = Math.max(Math.ceil(Math.log10(Math.max(...vals))), d0 + 1);
  const x = (v: number) => left + ((Math.log10(Math.max(v, 10 ** d0)) - d0) / (d1 - d0)) * (W - left - right);
  const parts: string[] = [];
  let y = 24;
  let suite = "";
  for (const r of rows) {
    if (r.suite !== suite) {
      suite = r.suite;
      parts.push(`<text class="suite" x="4" y="${y + 15}" font-weight="600">${esc(r.suite)}</text><text x="${W - right + 8}" y="${y + 15}" class="muted">vs ${esc(r.reference)}</text>`);
      y += headH;
    }
    const cy = y + rowH / 2, color = VERDICT_COLOR[r.verdict];
    const title = `${r.suite} — ${r.name}: ${fmtRatio(r.ratio)} of ${r.reference} (±${r.rme.toFixed(1)}%)${r.goal !== null ? `, goal ${fmtRatio(r.goal)}` : ""}${r.baseline !== undefined ? `, baseline ${fmtRatio(r.baseline)}` : ""}; ${VERDICT_TEXT[r.verdict]}; ${r.gate}`;
    const x1 = x(1), xr = x(r.ratio);
    parts.push(`<g class="case" data-verdict="${r.verdict}" data-ratio="${r.ratio}"><title>${esc(title)}</title><text x="16" y="${cy + 4}">${esc(r.name)}</text>`);
    parts.push(`<rect class="bar" x="${n1(Math.min(x1, xr))}" y="${y + 5}" width="${n1(Math.max(1.5, Math.abs(xr - x1)))}" height="${rowH - 10}" fill="${color}" fill-opacity="0.35"/>`);
    parts.push(`<line class="rme" x1="${n1(x(r.low))}" x2="${n1(x(r.high))}" y1="${cy}" y2="${cy}" stroke="#1d2330" stroke-width="1.2"/><line x1="${n1(x(r.low))}" x2="${n1(x(r.low))}" y1="${cy - 4}" y2="${cy + 4}" stroke="#1d2330"/><line x1="${n1(x(r.high))}" x2="${n1(x(r.high))}" y1="${cy - 4}" y2="${cy + 4}" stroke="#1d2330"/>`);
    parts.push(`<circle class="ratio" cx="${n1(xr)}" cy="${cy}" r="4.5" fill="${color}"/>`);
    if (r.goal !== null) {
      const gx = x(r.goal);
      parts.push(`<path class="goal" d="M${n1(gx)},${y + 1}l4,5l-4,5l-4,-5z" fill="#7a4fd1"/>`);
    }
    if (r.baseline !== undefined) parts.push(`<line class="baseline" x1="${n1(x(r.baseline))}" x2="${n1(x(r.baseline))}" y1="${y + 3}" y2="${y + rowH - 3}" stroke="#1d2330" stroke-width="2.5"/>`);
    const status = r.verdict === "regression" ? `REGRESSION ${r.gate}` : r.gate;
    parts.push(`<text x="${W - right + 8}" y="${cy + 4}"><tspan font-weight="600" fill="${color}">${fmtRatio(r.ratio)}</tspan> ±${r.rme.toFixed(1)}%${r.goal !== null ? ` · goal ${fmtRatio(r.goal)}` : ""} · <tspan class="verdict" fill="${r.verdict === "regression" ? color : "#5b6475"}">${esc(status)}</tspan></text></g>`);
    y += rowH;
  }
  const ticks: string[] = [], grid: string[] = [];
  for (let d = d0; d <= d1; d++) {
    const tx = x(10 ** d);
    grid.push(`<line x1="${n1(tx)}" x2="${n1(tx)}" y1="20" y2="${y}" stroke="${d === 0 ? "#5b6475" : "#d5dae3"}"${d === 0 ? ' stroke-dasharray="4,3" stroke-width="1.3"' : ""}/>`);
    ticks.push(`<text class="tick" data-value="${10 ** d}" x="${n1(tx)}" y="14" text-anchor="middle">${fmtRatio(10 ** d)}</text>`);
    if (d < d1) for (const m of [2, 5]) grid.push(`<line x1="${n1(x(m * 10 ** d))}" x2="${n1(x(m * 10 ** d))}" y1="20" y2="${y}" stroke="#eef0f4"/>`);
  }
  const h = y + 28;
  const axis = `<g class="grid">${grid.join("")}</g><g class="axis log" data-scale="log10">${ticks.join("")}<text x="${left}" y="${y + 18}" class="muted">ratio to the suite's in-run reference, log scale (right of the dashed 1x line: faster than the reference)</text></g>`;
  const legend = `<p class="legend" id="bench-legend">${(Object.keys(VERDICT_COLOR) as BenchVerdict[]).map((v) => `<span><i class="sw" style="background:${VERDICT_COLOR[v]}"></i>${VERDICT_TEXT[v]}</span>`).join("")}<span><i class="sw" style="background:#7a4fd1;transform:rotate(45deg)"></i>goal</span><span><i class="sw" style="background:#1d2330;width:3px"></i>baseline (reports/baseline-bench.json)</span><span>⊢⊣ ±rme</span></p>`;
  return `${legend}<svg id="bench-chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}">${axis}${parts.join("")}</svg>`;
}
