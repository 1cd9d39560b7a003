// The regression gate: compares each case's ratio to its in-run reference (not absolute speed,
// which depends on the machine) with a committed baseline. A case regressed only when the whole
// 95% interval of its ratio (median of per-round ratios of interleaved samples; bench/harness.ts)
// lies below the lower end of the baseline's own interval x (1 - tolerance): the two intervals must
// be separated by more than the tolerance. Noise widens the intervals instead of failing the run,
// and the noise is reported next to every verdict.
//
// Why a 10% default tolerance: the interval already accounts for this run's noise, but the
// baseline is a single run's median with its own few-percent error, and machine load can shift a
// case and its reference slightly differently (caches, frequency); 10% absorbs that, while a 30%
// slowdown of one case (its ratio falls to 1/1.3 = 0.77 of baseline) is still flagged as long as
// the interval's upper end stays within about +/-15% of the ratio.
import { RESULT_FORMAT, type CaseResult, type CaseVerdict, type RunResult } from "./harness.ts";

export const DEFAULT_TOLERANCE_PCT = 10;

export interface Regression {
  readonly suite: string;
  readonly case: string;
  readonly baseline: number;
  readonly ratio: number;
  /** How much worse than the baseline, in percent (positive = slower relative to the reference). */
  readonly percent: number;
  /** The interval's upper end, and the floor it fell below. */
  readonly high: number;
  readonly floor: number;
}

export interface CaseComparison {
  readonly suite: string;
  readonly case: string;
  readonly ratio: number;
  readonly low: number;
  readonly high: number;
  /** ± half width of the interval, in percent of the ratio. */
  readonly noise: number;
  readonly baseline?: number;
  readonly floor?: number;
  readonly verdict: CaseVerdict["verdict"];
}

export interface GateResult {
  readonly regressions: Regression[];
  /** Cases compared, and cases only one side has. */
  readonly compared: number;
  readonly missing: string[];
  readonly cases: CaseComparison[];
}

/**
 * What is wrong with a baseline file's parsed contents, or undefined when the gate can use it.
 * An older result (no `format`: no intervals) is still usable: the gate needs only its ratios.
 */
export function checkBaseline(b: unknown): string | undefined {
  if (b === null || typeof b !== "object" || Array.isArray(b)) return "not a JSON object";
  const o = b as Record<string, unknown>;
  if (o.format !== undefined && o.format !== RESULT_FORMAT) return `unknown baseline format ${JSON.stringify(o.format)} (this hvsim reads format ${RESULT_FORMAT})`;
  if (!Array.isArray(o.suites)) return "not a benchmark result (no suites list)";
  for (const [i, s] of (o.suites as unknown[]).entries()) {
    const so = s as Record<string, unknown> | null;
    if (so === null || typeof so !== "object" || typeof so.name !== "string" || !Array.isArray(so.cases)) return `suites[${i}] is not a suite (name, cases)`;
    for (const [j, c] of (so.cases as unknown[]).entries()) {
      const co = c as Record<string, unknown> | null;
      if (co === null || typeof co !== "object" || typeof co.name !== "string" || typeof co.ratio !== "number" || !Number.isFinite(co.ratio)) {
        return `suites[${i}].cases[${j}] has no name or numeric ratio`;
      }
    }
  }
  return undefined;
}

function interval(c: CaseResult): { low: number; high: number } {
  return c.ratioLow !== undefined && c.ratioHigh !== undefined ? { low: c.ratioLow, high: c.ratioHigh } : { low: c.ratio, high: c.ratio };
}

/**
 * Compares `current` with `baseline`; `tolerancePct` is how far below the baseline's ratio the
 * whole interval must lie to count as a regression. Sets each compared case's `gate` verdict.
 */
export function compareWithBaseline(current: RunResult, baseline: RunResult, tolerancePct: number = DEFAULT_TOLERANCE_PCT): GateResult {
  const base = new Map<string, number>();
  const baseLow = new Map<string, number>();
  for (const s of baseline.suites) {
    for (const c of s.cases) {
      if (c.reference || c.error || !(c.ratio > 0)) continue;
      base.set(`${s.name}\u0000${c.name}`, c.ratio);
      // The baseline's own interval: its lower end (its ratio when it has none, an older file).
      baseLow.set(`${s.name}\u0000${c.name}`, typeof c.ratioLow === "number" && c.ratioLow > 0 && c.ratioLow <= c.ratio ? c.ratioLow : c.ratio);
    }
  }
  const regressions: Regression[] = [];
  const missing: string[] = [];
  const cases: CaseComparison[] = [];
  let compared = 0;
  for (const s of current.suites) {
    if (s.skipped) continue;
    for (const c of s.cases) {
      if (c.reference) continue;
      const key = `${s.name}\u0000${c.name}`;
      const b = base.get(key);
      const { low, high } = interval(c);
      const noise = c.noise ?? 0;
      if (b === undefined) {
        missing.push(`${s.name} / ${c.name}: not in the baseline`);
        c.gate = { verdict: "new" };
        cases.push({ suite: s.name, case: c.name, ratio: c.ratio, low, high, noise, verdict: "new" });
        continue;
      }
      compared += 1;
      const floor = baseLow.get(key)! * (1 - tolerancePct / 100);
      const percent = c.error ? 100 : ((b - c.ratio) / b) * 100;
      const regressed = c.error !== undefined || high < floor;
      const verdict: CaseVerdict["verdict"] = regressed ? "regression" : low > b * (1 + tolerancePct / 100) ? "improved" : "ok";
      c.gate = { verdict, baseline: b, floor };
      cases.push({ suite: s.name, case: c.name, ratio: c.ratio, low, high, noise, baseline: b, floor, verdict });
      if (regressed) regressions.push({ suite: s.name, case: c.name, baseline: b, ratio: c.ratio, percent, high, floor });
    }
  }
  return { regressions, compared, missing, cases };
}

/** One line per compared case: verdict, ratio with its interval and noise, baseline and floor. */
export function formatGate(g: GateResult): string {
  const lines: string[] = [];
  for (const c of g.cases) {
    const iv = `${c.ratio.toFixed(3)} [${c.low.toFixed(3)}, ${c.high.toFixed(3)}] ±${c.noise.toFixed(1)}%`;
    if (c.verdict === "new") {
      lines.push(`note: ${c.suite} / ${c.case}: not in the baseline (ratio ${iv})`);
      continue;
    }
    const tag = c.verdict === "regression" ? "REGRESSION" : c.verdict === "improved" ? "improved" : "ok";
    lines.push(`${tag} ${c.suite} / ${c.case}: ratio ${iv} vs baseline ${c.baseline!.toFixed(3)} (floor ${c.floor!.toFixed(3)})`);
  }
  return lines.map((l) => l + "\n").join("");
}
