import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBaseline, compareWithBaseline, formatGate } from "../../bench/gate.ts";
import type { RunResult } from "../../bench/harness.ts";

const root = new URL("../..", import.meta.url).pathname;

/** A result whose cases have the given ratios, each with an interval of +/- `spread` (fraction). */
function result(ratios: Record<string, number>, spread = 0): RunResult {
  return {
    node: "v20",
    date: "2026-11-22T00:00:00.000Z",
    maxTime: 0.1,
    suites: [
      {
        name: "s",
        reference: "ref",
        goal: 2,
        goalMet: null,
        cases: [
          { name: "ref", hz: 100, rme: 1, samples: 5, ratio: 1, reference: true, goalMet: null },
          ...Object.entries(ratios).map(([name, ratio]) => ({ name, hz: 100 * ratio, rme: 1, samples: 5, ratio, ratioLow: ratio * (1 - spread), ratioHigh: ratio * (1 + spread), noise: spread * 100, reference: false, goalMet: ratio >= 2 })),
        ],
      },
    ],
  };
}

describe("regression gate", () => {
  it("flags a case only when its whole interval is below baseline x (1 - tolerance)", () => {
    // a: 7 +/- 10% = [6.3, 7.7] is below 10 x 0.9 = 9; b: 3.9 +/- 10% reaches 4.29 >= 3.6.
    const g = compareWithBaseline(result({ a: 7, b: 3.9 }, 0.1), result({ a: 10, b: 4 }), 10);
    expect(g.compared).toBe(2);
    expect(g.regressions.map((r) => [r.case, Math.round(r.percent)])).toEqual([["a", 30]]);
    expect(g.cases.map((c) => [c.case, c.verdict])).toEqual([["a", "regression"], ["b", "ok"]]);
  });

  it("a noisy interval that still reaches the floor is not a regression; the noise is printed", () => {
    // 8 +/- 20%: its upper end 9.6 reaches the floor 9.
    const run = result({ a: 8 }, 0.2);
    const g = compareWithBaseline(run, result({ a: 10 }), 10);
    expect(g.regressions).toEqual([]);
    expect(run.suites[0]!.cases.find((c) => c.name === "a")!.gate).toEqual({ verdict: "ok", baseline: 10, floor: 9 });
    expect(formatGate(g)).toBe("ok s / a: ratio 8.000 [6.400, 9.600] ±20.0% vs baseline 10.000 (floor 9.000)\n");
  });

  it("does not flag an improvement (it says so), and lists cases missing from the baseline", () => {
    const g = compareWithBaseline(result({ a: 20, c: 1 }), result({ a: 10 }), 5);
    expect(g.regressions).toEqual([]);
    expect(g.missing).toEqual(["s / c: not in the baseline"]);
    expect(g.cases.map((c) => c.verdict)).toEqual(["improved", "new"]);
  });

  it("reads an older baseline (no format, no intervals) by its ratios", () => {
    const old = result({ a: 10 });
    expect(checkBaseline(old)).toBeUndefined();
    expect(compareWithBaseline(result({ a: 5 }), old, 10).regressions.map((r) => r.case)).toEqual(["a"]);
  });

  it("checkBaseline names what is malformed", () => {
    expect(checkBaseline([])).toMatch(/not a JSON object/);
    expect(checkBaseline({ format: 9, suites: [] })).toMatch(/unknown baseline format 9/);
    expect(checkBaseline({ suites: 3 })).toMatch(/no suites list/);
    expect(checkBaseline({ suites: [{ name: "s" }] })).toMatch(/suites\[0\] is not a suite/);
    expect(checkBaseline({ suites: [{ name: "s", cases: [{ name: "a", ratio: "1" }] }] })).toMatch(/cases\[0\] has no name or numeric ratio/);
  });
});

describe("hvsim bench", () => {
  const hvsim = (args: string[]) => spawnSync(process.execPath, [join(root, "sim/cli/bin.mjs"), "bench", ...args], { cwd: root, encoding: "utf8", env: { ...process.env, CI: "1" } });

  it("refuses an unknown suite, a missing baseline and a malformed one (exit 2, one line, before running anything)", () => {
    expect(hvsim(["no-such-suite"]).status).toBe(2);
    const r = hvsim(["scheduler", "--compare", "/nonexistent/baseline.json"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no baseline at/);
    const dir = mkdtempSync(join(tmpdir(), "hvsim-bench-"));
    for (const [body, msg] of [["{not json", /cannot read baseline/], [JSON.stringify({ suites: [{ name: "s", cases: [{ name: "a" }] }] }), /malformed: suites\[0\]\.cases\[0\]/]] as const) {
      const f = join(dir, "bad.json");
      writeFileSync(f, body);
      const b = hvsim(["scheduler", "--compare", f]);
      expect(b.status).toBe(2);
      expect(b.stderr).toMatch(msg);
      expect(b.stderr).not.toMatch(/\n\s+at /);
      expect(b.stdout).toBe("");
    }
  });

  it("runs a suite, writes JSON, and the gate fails against an inflated baseline naming the suite", () => {
    const dir = mkdtempSync(join(tmpdir(), "hvsim-bench-"));
    const out = join(dir, "bench.json");
    const r = hvsim(["scheduler 10 ", "--max-time", "0.05", "--json", out]);
    expect(r.status).toBe(0);
    const run = JSON.parse(readFileSync(out, "utf8")) as RunResult;
    const suite = run.suites.find((s) => s.name.includes("scheduler"))!;
    expect(suite.cases.length).toBeGreaterThan(1);
    // A baseline claiming each ratio was 100x better: every case has regressed.
    const inflated = { ...run, suites: run.suites.map((s) => ({ ...s, cases: s.cases.map((c) => (c.reference ? c : { ...c, ratio: c.ratio * 100, ratioLow: c.ratioLow! * 100, ratioHigh: c.ratioHigh! * 100 })) })) };
    const base = join(dir, "base.json");
    writeFileSync(base, JSON.stringify(inflated));
    const g = hvsim(["scheduler 10 ", "--max-time", "0.05", "--compare", base, "--json", out]);
    expect(g.status).toBe(1);
    expect(g.stdout).toMatch(new RegExp(`REGRESSION ${suite.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} / \\S+: ratio [\\d.]+ \\[[\\d.]+, [\\d.]+\\] ±[\\d.]+%`));
    // The JSON carries each case's interval, noise and gate verdict, and the gate's summary.
    const gated = JSON.parse(readFileSync(out, "utf8")) as RunResult;
    expect(gated.format).toBe(2);
    expect(gated.gate).toMatchObject({ baseline: base, tolerancePct: 10, regressions: suite.cases.length - 1 });
    for (const c of gated.suites[0]!.cases.filter((x) => !x.reference)) {
      expect(c.gate?.verdict).toBe("regression");
      expect(typeof c.ratioLow).toBe("number");
      expect(typeof c.noise).toBe("number");
    }
  }, 120_000);
});
