// The regression gate: compares each case's ratio to its in-run reference (not absolute speed,
// which depends on the machine) with a committed baseline, and names the suites that regressed
// past the allowed percentage.
import type { RunResult } from "./harness.ts";

export interface Regression {
  readonly suite: string;
  readonly case: string;
  readonly baseline: number;
  readonly ratio: number;
  /** How much worse than the baseline, in percent (positive = slower relative to the reference). */
  readonly percent: number;
}

export interface GateResult {
  readonly regressions: Regression[];
  /** Cases compared, and cases only one side has. */
  readonly compared: number;
  readonly missing: string[];
}

export function compareWithBaseline(current: RunResult, baseline: RunResult, maxRegressionPct: number): GateResult {
  const base = new Map<string, number>();
  for (const s of baseline.suites) for (const c of s.cases) if (!c.reference && !c.error && c.ratio > 0) base.set(`${s.name}\u0000${c.name}`, c.ratio);
  const regressions: Regression[] = [];
  const missing: string[] = [];
  let compared = 0;
  for (const s of current.suites) {
    if (s.skipped) continue;
    for (const c of s.cases) {
      if (c.reference) continue;
      const key = `${s.name}\u0000${c.name}`;
      const b = base.get(key);
      if (b === undefined) {
        missing.push(`${s.name} / ${c.name}: not in the baseline`);
        continue;
      }
      compared += 1;
      const percent = ((b - c.ratio) / b) * 100;
      if (c.error || percent > maxRegressionPct) regressions.push({ suite: s.name, case: c.name, baseline: b, ratio: c.ratio, percent: c.error ? 100 : percent });
    }
  }
  return { regressions, compared, missing };
}
