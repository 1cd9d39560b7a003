// The benchmark harness (bench/harness.ts) and command (bench/run.ts) on tiny synthetic suites
// (specs/bench/fixtures) with a tiny sampling time: ratios come from interleaved rounds, goals are reported but
// never fail the run, skipped suites carry their reason, the JSON result is well formed.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkSuite, formatSuite, injectedSlowdown, loadSuites, medianInterval, runSuite, runSuites, type BenchSuite, type RunResult } from "../../bench/harness.ts";
import { main, type Output } from "../../bench/run.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const FIXTURES = fileURLToPath(new URL("./fixtures", import.meta.url));
const BAD = fileURLToPath(new URL("./bad-fixtures", import.meta.url));
const FAST = { maxTime: 0.02, minSamples: 2, minTime: 0.002 };

function spin(n: number): void {
  let s = 0;
  for (let i = 0; i < n; i++) s = (s + i) | 0;
  if (s === 42) throw new Error("unreachable");
}

function capture(tty = false): Output & { stdout: string; stderr: string } {
  const o = {
    stdout: "",
    stderr: "",
    tty,
    out: (s: string) => void (o.stdout += s),
    err: (s: string) => void (o.stderr += s),
  };
  return o;
}

describe("runSuite", () => {
  it("measures every case, computes ratio (median of per-round ratios) with its interval, and judges the goal", async () => {
    const calls: string[] = [];
    const suite: BenchSuite = {
      name: "ratio",
      reference: "ref",
      goal: 0.000001,
      setup: () => void calls.push("setup"),
      cases: {
        heavy: () => spin(50_000),
        ref: () => spin(500),
      },
    };
    const r = await runSuite(suite, FAST);
    expect(calls).toEqual(["setup"]);
    expect(r.skipped).toBeUndefined();
    expect(r.cases.map((c) => c.name)).toEqual(["heavy", "ref"]);
    const ref = r.cases.find((c) => c.name === "ref")!;
    const heavy = r.cases.find((c) => c.name === "heavy")!;
    for (const c of r.cases) {
      expect(c.hz).toBeGreaterThan(0);
      expect(c.rme).toBeGreaterThanOrEqual(0);
      expect(c.samples).toBeGreaterThanOrEqual(2);
    }
    expect(ref.reference).toBe(true);
    expect(ref.ratio).toBe(1);
    expect(ref.goalMet).toBeNull();
    // The ratio is the median of per-round ratios (not hz / hz): it lies inside its interval.
    // 100 times the work: far slower than the reference however noisy the machine.
    expect(heavy.ratio).toBeLessThan(0.5);
    expect(heavy.goalMet).toBe(true);
    expect(r.goalMet).toBe(true);
    // The ratio's interval brackets it.
    expect(heavy.ratioLow!).toBeLessThanOrEqual(heavy.ratio);
    expect(heavy.ratioHigh!).toBeGreaterThanOrEqual(heavy.ratio);
    expect(heavy.noise!).toBeGreaterThanOrEqual(0);
    expect(formatSuite(r)).toMatch(/heavy .* ops\/s  ±.*% .* samples  0\.\d\dx of ref \[\d\.\d\d, \d\.\d\d\]  goal >= 0\.00x met/);
  });

  it("reports an unmet goal without failing, and a suite without a goal as not judged", async () => {
    const r = await runSuite({ name: "g", reference: "a", goal: 1e6, cases: { a: () => spin(100), b: () => spin(100) } }, FAST);
    expect(r.goalMet).toBe(false);
    expect(r.cases.find((c) => c.name === "b")!.goalMet).toBe(false);
    expect(formatSuite(r)).toMatch(/goal: >= 1000000\.00x a: NOT met/);
    const n = await runSuite({ name: "n", reference: "a", cases: { a: () => spin(100), b: () => spin(100) } }, FAST);
    expect(n.goal).toBeNull();
    expect(n.goalMet).toBeNull();
    expect(n.cases.every((c) => c.goalMet === null)).toBe(true);
  });

  it("skips an unavailable suite with its reason, without running setup or cases", async () => {
    let ran = false;
    const r = await runSuite({ name: "s", reference: "a", available: () => "no GPU", setup: () => void (ran = true), cases: { a: () => void (ran = true) } }, FAST);
    expect(r).toMatchObject({ name: "s", skipped: "no GPU", goalMet: null, cases: [] });
    expect(ran).toBe(false);
    expect(formatSuite(r)).toBe("s\n  skipped: no GPU\n");
  });

  it("records a throwing case as an error (ratio 0) and keeps going", async () => {
    const r = await runSuite({ name: "t", reference: "a", cases: { a: () => spin(10), b: () => { throw new Error("kaput"); } } }, FAST);
    const b = r.cases.find((c) => c.name === "b")!;
    expect(b.error).toBe("kaput");
    expect(b.ratio).toBe(0);
    expect(r.cases.find((c) => c.name === "a")!.hz).toBeGreaterThan(0);
    expect(formatSuite(r)).toMatch(/b +error: kaput/);
  });

  it("reports progress: suite start, case start and cycles, case done", async () => {
    const events: string[] = [];
    await runSuites([{ name: "p", reference: "a", cases: { a: () => spin(10) } }], { ...FAST, onProgress: (e) => void events.push(e.type) });
    expect(events[0]).toBe("suite-start");
    expect(events[1]).toBe("case-start");
    expect(events).toContain("case-cycle");
    expect(events.at(-1)).toBe("case-done");
  });

  it("evaluates every part of a multi-part goal, each against its own case", async () => {
    // "a" does a tenth of b's work and c the same: b is far above 1e-6x a, far below 10x c.
    const r = await runSuite({ name: "two", reference: "a", goal: 1e-6, goals: [{ of: "c", ratio: 10 }], cases: { a: () => spin(100), b: () => spin(1000), c: () => spin(1000) } }, FAST);
    const b = r.cases.find((c) => c.name === "b")!;
    expect(b.goalParts!.map((p) => [p.of, p.target, p.met])).toEqual([["a", 1e-6, true], ["c", 10, false]]);
    expect(b.goalMet).toBe(false);
    // The goal target is not judged itself.
    expect(r.cases.find((c) => c.name === "c")!.goalMet).toBeNull();
    expect(r.goalMet).toBe(false);
    const text = formatSuite(r);
    expect(text).toMatch(/b .*goal >= 0\.00x met  \d+\.\d\dx of c: goal >= 10\.00x NOT met/);
    expect(text).toMatch(/goal: >= 0\.00x a and >= 10\.00x c: NOT met/);
  });

  it("checkSuite names what is wrong with a suite export", () => {
    expect(checkSuite({ name: "x", reference: "a", cases: { a: () => {} } })).toBeUndefined();
    expect(checkSuite(null)).toMatch(/not an object/);
    expect(checkSuite({ name: "x", reference: "b", cases: { a: () => {} } })).toMatch(/reference.*is not one of the cases/);
    expect(checkSuite({ name: "x", reference: "a", cases: { a: 1 } })).toMatch(/case "a" is not a function/);
    expect(checkSuite({ name: "x", reference: "a", goal: -1, cases: { a: () => {} } })).toMatch(/goal/);
    expect(checkSuite({ name: "x", reference: "a", goals: [{ of: "zz", ratio: 1 }], cases: { a: () => {} } })).toMatch(/goals/);
  });
});

describe("loadSuites", () => {
  it("finds every *.bench.ts under a directory, filtered by name or file substrings", async () => {
    const all = await loadSuites([], FIXTURES);
    expect(all.map((s) => [s.suite.name, s.file])).toEqual([
      ["skip-synthetic", "skipped.bench.ts"],
      ["throws-synthetic", "throws.bench.ts"],
      ["tiny-synthetic", "tiny.bench.ts"],
    ]);
    expect((await loadSuites(["tiny"], FIXTURES)).map((s) => s.suite.name)).toEqual(["tiny-synthetic"]);
    expect((await loadSuites(["skipped.bench", "tiny"], FIXTURES)).map((s) => s.suite.name)).toEqual(["skip-synthetic", "tiny-synthetic"]);
    expect(await loadSuites(["nothing-like-this"], FIXTURES)).toEqual([]);
  });

  it("finds the real suites under bench/ (the scheduler among them)", async () => {
    const names = (await loadSuites(["scheduler"])).map((s) => s.suite.name);
    expect(names).toEqual(["clock/scheduler 10 pending", "clock/scheduler 1e3 pending", "clock/scheduler 1e5 pending"]);
  });

  it("refuses a malformed suite file, naming it", async () => {
    await expect(loadSuites([], BAD)).rejects.toThrow(/bad\.bench\.ts: `suite\.reference` \(missing\) is not one of the cases/);
  });
});

describe("bench/run.ts", () => {
  it("runs in a separate process: prints ratios and goals, exits 0 with an unmet goal, writes the JSON result", () => {
    const dir = mkdtempSync(join(tmpdir(), "hvsim-bench-"));
    try {
      const json = join(dir, "out.json");
      const r = spawnSync(process.execPath, ["--import", "tsx", "bench/run.ts", "tiny", "skip", "--dir", FIXTURES, "--max-time", "0.02", "--min-samples", "2", "--json", json], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 120_000,
        env: { ...process.env, CI: "true" },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/tiny-synthetic \(tiny\.bench\.ts\)/);
      expect(r.stdout).toMatch(/base +[\d,.]+ ops\/s +± *[\d.]+% +\d+ samples +reference/);
      expect(r.stdout).toMatch(/slow +[\d,.]+ ops\/s +± *[\d.]+% +\d+ samples +0\.\d\dx of base \[[\d.]+, [\d.]+\] +goal >= 1000\.00x NOT met/);
      expect(r.stdout).toMatch(/goal: >= 1000\.00x base: NOT met \(unreachable on purpose\)/);
      expect(r.stdout).toMatch(/skip-synthetic \(skipped\.bench\.ts\)\n +skipped: needs a flux capacitor/);
      // Not a terminal: plain progress lines, no carriage returns or escape codes.
      expect(r.stderr).toMatch(/^ {2}base: [\d,.]+ ops\/s ±[\d.]+% \(\d+ samples\)$/m);
      expect(r.stderr).not.toMatch(/[\r\x1b]/);

      expect(existsSync(json)).toBe(true);
      const result = JSON.parse(readFileSync(json, "utf8")) as RunResult;
      expect(result.node).toBe(process.version);
      expect(Number.isNaN(Date.parse(result.date))).toBe(false);
      expect(result.suites.map((s) => s.name)).toEqual(["skip-synthetic", "tiny-synthetic"]);
      const [skipped, tiny] = result.suites;
      expect(skipped).toMatchObject({ name: "skip-synthetic", reference: "a", goal: null, skipped: "needs a flux capacitor", cases: [] });
      expect(tiny).toMatchObject({ name: "tiny-synthetic", reference: "base", goal: 1000, goalMet: false });
      for (const c of tiny!.cases) {
        expect(Object.keys(c)).toEqual(expect.arrayContaining(["name", "hz", "rme", "samples", "ratio"]));
        expect(c.hz).toBeGreaterThan(0);
        expect(c.samples).toBeGreaterThanOrEqual(2);
      }
      const base = tiny!.cases.find((c) => c.name === "base")!;
      const slow = tiny!.cases.find((c) => c.name === "slow")!;
      expect(base.ratio).toBe(1);
      expect(slow.ratio).toBeGreaterThanOrEqual(slow.ratioLow!);
      expect(slow.ratio).toBeLessThanOrEqual(slow.ratioHigh!);
      expect(result.format).toBe(2);
      expect(slow.ratio).toBeLessThan(0.5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exits 1 when a case throws, naming the error", async () => {
    const o = capture();
    expect(await main(["throws", "--dir", FIXTURES, "--max-time", "0.02", "--min-samples", "2"], o)).toBe(1);
    expect(o.stdout).toMatch(/broken +error: case exploded/);
    expect(o.stderr).toMatch(/broken: error: case exploded/);
  });

  it("draws a spinner on a terminal and clears it before each result line", async () => {
    const o = capture(true);
    expect(await main(["tiny", "--dir", FIXTURES, "--max-time", "0.02", "--min-samples", "2"], o)).toBe(0);
    expect(o.stderr).toMatch(/\r\x1b\[K {2}[|/\\-] base/);
    expect(o.stderr).toMatch(/\r\x1b\[K {2}base: [\d,.]+ ops\/s/);
  });

  it("usage errors exit 2 with a message; --help prints the usage", async () => {
    for (const args of [["--max-time", "abc"], ["--max-time", "0"], ["--min-samples", "1.5"], ["--bogus"], ["no-such-suite", "--dir", FIXTURES]]) {
      const o = capture();
      expect(await main(args, o), args.join(" ")).toBe(2);
      expect(o.stderr).toMatch(/^bench: /);
    }
    const h = capture();
    expect(await main(["--help"], h)).toBe(0);
    expect(h.stdout).toMatch(/usage: npm run bench -- \[NAME\.\.\.\] \[--max-time S\]/);
  });

  it("a directory with a malformed suite exits 1 naming the file", async () => {
    const o = capture();
    expect(await main(["--dir", BAD], o)).toBe(1);
    expect(o.stderr).toMatch(/bad\.bench\.ts/);
  });
});

describe("loadSuites with a broken file elsewhere", () => {
  it("skips a broken file whose path does not match the filter, and names it when it does", async () => {
    // bad-fixtures/bad.bench.ts is broken; with a filter that does not match its path it is skipped.
    expect(await loadSuites(["tiny"], BAD)).toEqual([]);
    await expect(loadSuites(["bad"], BAD)).rejects.toThrow(/bad\.bench\.ts: /);
  });
});

describe("sampling statistics", () => {
  it("medianInterval: the median and the order statistics of a distribution-free 95% interval", () => {
    // n = 10: P(Binomial(10, 1/2) <= 1) = 11/1024 <= 0.025 < P(<= 2) = 56/1024, so k = 2: [x2, x9].
    const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(medianInterval(xs)).toEqual({ median: 5.5, low: 2, high: 9 });
    // n = 5: no rank qualifies (1/32 > 0.025): the whole range.
    expect(medianInterval([1, 2, 3, 4, 5])).toEqual({ median: 3, low: 1, high: 5 });
    // n = 6: P(<= 0) = 1/64 <= 0.025: [x1, x6].
    expect(medianInterval([1, 2, 3, 4, 5, 6])).toEqual({ median: 3.5, low: 1, high: 6 });
    expect(medianInterval([])).toEqual({ median: 0, low: 0, high: 0 });
  });

  it("injectedSlowdown (test hook) matches a case or suite/case, ignores anything malformed", () => {
    expect(injectedSlowdown("s 1", "c", "c:1.3")).toBe(1.3);
    expect(injectedSlowdown("s 1", "c", "s 1/c:2")).toBe(2);
    expect(injectedSlowdown("s 1", "d", "s 1/c:2")).toBe(1);
    for (const bad of [undefined, "", "c", "c:", "c:abc", "c:0.5", ":2"]) expect(injectedSlowdown("s", "c", bad)).toBe(1);
  });
});
