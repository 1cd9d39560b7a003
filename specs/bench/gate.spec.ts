import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareWithBaseline } from "../../bench/gate.ts";
import type { RunResult } from "../../bench/harness.ts";

const root = new URL("../..", import.meta.url).pathname;

function result(ratios: Record<string, number>): RunResult {
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
          ...Object.entries(ratios).map(([name, ratio]) => ({ name, hz: 100 * ratio, rme: 1, samples: 5, ratio, reference: false, goalMet: ratio >= 2 })),
        ],
      },
    ],
  };
}

describe("regression gate", () => {
  it("flags a case whose ratio fell further below its baseline than allowed, and only that one", () => {
    const g = compareWithBaseline(result({ a: 7, b: 3.9 }), result({ a: 10, b: 4 }), 25);
    expect(g.compared).toBe(2);
    expect(g.regressions.map((r) => [r.case, Math.round(r.percent)])).toEqual([["a", 30]]);
  });

  it("does not flag an improvement, and lists cases missing from the baseline", () => {
    const g = compareWithBaseline(result({ a: 20, c: 1 }), result({ a: 10 }), 5);
    expect(g.regressions).toEqual([]);
    expect(g.missing).toEqual(["s / c: not in the baseline"]);
  });
});

describe("hvsim bench", () => {
  const hvsim = (args: string[]) => spawnSync(process.execPath, [join(root, "sim/cli/bin.mjs"), "bench", ...args], { cwd: root, encoding: "utf8", env: { ...process.env, CI: "1" } });

  it("refuses an unknown suite (exit 2) and a missing baseline (exit 1)", () => {
    expect(hvsim(["no-such-suite"]).status).toBe(2);
    const r = hvsim(["scheduler", "--compare", "/nonexistent/baseline.json"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no baseline at/);
  });

  it("runs a suite, writes JSON, and the gate fails against an inflated baseline naming the suite", () => {
    const dir = mkdtempSync(join(tmpdir(), "hvsim-bench-"));
    const out = join(dir, "bench.json");
    const r = hvsim(["scheduler", "--max-time", "0.05", "--json", out]);
    expect(r.status).toBe(0);
    const run = JSON.parse(readFileSync(out, "utf8")) as RunResult;
    const suite = run.suites.find((s) => s.name.includes("scheduler"))!;
    expect(suite.cases.length).toBeGreaterThan(1);
    // A baseline claiming each ratio was 100x better: every case has regressed.
    const inflated = { ...run, suites: run.suites.map((s) => ({ ...s, cases: s.cases.map((c) => ({ ...c, ratio: c.reference ? 1 : c.ratio * 100 })) })) };
    const base = join(dir, "base.json");
    writeFileSync(base, JSON.stringify(inflated));
    const g = hvsim(["scheduler", "--max-time", "0.05", "--compare", base]);
    expect(g.status).toBe(1);
    expect(g.stdout).toMatch(new RegExp(`REGRESSION ${suite.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  }, 120_000);
});
