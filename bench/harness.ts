// The benchmark harness: discovers `bench/**/*.bench.ts` suites, samples every case in rounds
// interleaved with the suite's in-run reference (see "sampling" below) and compares them. `npm run bench` (bench/run.ts) is a thin
// command over this module; `hvsim bench` and a regression gate can call `loadSuites` and
// `runSuites` directly.
//
// A suite file exports
//   suite: { name, reference, goal?, goalNote?, cases: { [name]: () => void }, setup?, available? }
// `reference` names one of `cases`; every case's ratio is its hz / the reference's hz. `goal` is
// the ratio the other cases aim for: it is reported (met / not met), never turned into a failure,
// because benchmarks are not timed tests. `available()` returning a string skips the suite with
// that reason (a missing optional dependency, say); `setup()` runs once before the cases.
import { readdirSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { pathToFileURL, fileURLToPath } from "node:url";

export interface BenchSuite {
  readonly name: string;
  /** The case every other case is compared with (a key of `cases`). */
  readonly reference: string;
  /** Target ratio (case hz / reference hz) for the non-reference cases; reported, never enforced. */
  readonly goal?: number;
  readonly goalNote?: string;
  /**
   * Further parts of the goal, each against another case (`of`): every part must hold. The cases
   * named here are then targets, not judged themselves.
   */
  readonly goals?: readonly { readonly of: string; readonly ratio: number }[];
  readonly cases: Record<string, () => void>;
  readonly setup?: () => void | Promise<void>;
  /** true when the suite can run; a string is the reason it is skipped. */
  readonly available?: () => true | string;
}

export interface LoadedSuite {
  readonly suite: BenchSuite;
  /** The file it came from, relative to the directory searched (undefined when built in code). */
  readonly file?: string;
}

export interface CaseResult {
  readonly name: string;
  /** Operations (calls of the case function) per second. */
  readonly hz: number;
  /** Relative margin of error, in percent. */
  readonly rme: number;
  readonly samples: number;
  /** hz / the reference's hz (1 for the reference itself). */
  readonly ratio: number;
  readonly reference: boolean;
  /** ratio >= goal, for a non-reference case of a suite with a goal; null otherwise. */
  readonly goalMet: boolean | null;
  /** The case threw: its message (hz, rme, samples and ratio are then 0). */
  readonly error?: string;
  /** 95% interval of the ratio (median of per-round ratios; see "sampling"). */
  readonly ratioLow?: number;
  readonly ratioHigh?: number;
  /** Half width of that interval, in percent of the ratio: the noise shown next to a verdict. */
  readonly noise?: number;
  /** Calls per timed batch (one sample). */
  readonly batch?: number;
  /** Every part of the goal, evaluated (the suite's `goal` against its reference first). */
  readonly goalParts?: readonly GoalPart[];
  /** Set by the gate (`hvsim bench --compare`): this case's verdict. */
  gate?: CaseVerdict;
}

export interface GoalPart {
  readonly of: string;
  readonly target: number;
  readonly ratio: number;
  readonly met: boolean;
}

export interface CaseVerdict {
  readonly verdict: "ok" | "regression" | "improved" | "new";
  /** The baseline's ratio, and the floor the interval's upper end must reach. */
  readonly baseline?: number;
  readonly floor?: number;
}

export interface SuiteResult {
  readonly name: string;
  readonly reference: string;
  readonly goal: number | null;
  readonly goals?: readonly { readonly of: string; readonly ratio: number }[];
  readonly goalNote?: string;
  readonly file?: string;
  /** Why the suite did not run; cases is then empty. */
  readonly skipped?: string;
  /** Every non-reference case met the goal; null when there is no goal or the suite did not run. */
  readonly goalMet: boolean | null;
  readonly cases: CaseResult[];
}

export interface RunResult {
  /** 2: cases carry ratio intervals (interleaved sampling). Absent in older results. */
  readonly format?: number;
  readonly suites: SuiteResult[];
  readonly node: string;
  readonly date: string;
  readonly maxTime: number;
  /** Set by `hvsim bench --compare`: what the gate compared and found. */
  readonly gate?: { readonly baseline: string; readonly tolerancePct: number; readonly compared: number; readonly regressions: number; readonly baselineFormat: number };
}

export type ProgressEvent =
  | { readonly type: "suite-start"; readonly suite: string; readonly cases: number }
  | { readonly type: "suite-skip"; readonly suite: string; readonly reason: string }
  | { readonly type: "case-start"; readonly suite: string; readonly case: string }
  | { readonly type: "case-cycle"; readonly suite: string; readonly case: string; readonly samples: number }
  | { readonly type: "case-done"; readonly suite: string; readonly case: string; readonly hz: number; readonly rme: number; readonly samples: number; readonly error?: string };

export interface RunOptions {
  /** Seconds of sampling per case (default 0.5): a suite samples for maxTime x its case count. */
  readonly maxTime?: number;
  /** Minimum interleaved rounds (samples per case; default 10). */
  readonly minSamples?: number;
  /** Minimum seconds per sample: the batch size is calibrated to it (default 0.005). */
  readonly minTime?: number;
  readonly onProgress?: (ev: ProgressEvent) => void;
}

export const DEFAULT_MAX_TIME = 0.5;
/** The `format` of a result (and baseline) with ratio intervals. */
export const RESULT_FORMAT = 2;

/** The repository's bench/ directory (where this file lives). */
export const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));

/** Returns what is wrong with a suite export, or undefined when it follows the convention. */
export function checkSuite(s: unknown): string | undefined {
  if (s === null || typeof s !== "object") return "`suite` is not an object";
  const o = s as Record<string, unknown>;
  if (typeof o.name !== "string" || o.name === "") return "`suite.name` is not a non-empty string";
  if (o.cases === null || typeof o.cases !== "object") return "`suite.cases` is not an object";
  const cases = o.cases as Record<string, unknown>;
  const names = Object.keys(cases);
  if (names.length === 0) return "`suite.cases` is empty";
  for (const n of names) if (typeof cases[n] !== "function") return `case "${n}" is not a function`;
  if (typeof o.reference !== "string" || !names.includes(o.reference)) return `\`suite.reference\` (${String(o.reference)}) is not one of the cases`;
  if (o.goal !== undefined && (typeof o.goal !== "number" || !(o.goal > 0))) return "`suite.goal` is not a positive number";
  if (o.goalNote !== undefined && typeof o.goalNote !== "string") return "`suite.goalNote` is not a string";
  if (o.setup !== undefined && typeof o.setup !== "function") return "`suite.setup` is not a function";
  if (o.available !== undefined && typeof o.available !== "function") return "`suite.available` is not a function";
  if (o.goals !== undefined) {
    if (!Array.isArray(o.goals)) return "`suite.goals` is not a list";
    for (const g of o.goals as unknown[]) {
      const e = g as { of?: unknown; ratio?: unknown } | null;
      if (e === null || typeof e !== "object" || typeof e.of !== "string" || !names.includes(e.of) || typeof e.ratio !== "number" || !(e.ratio > 0)) return "`suite.goals` has an entry that is not { of: <a case>, ratio: <positive number> }";
    }
  }
  return undefined;
}

function findBenchFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      if (name === "node_modules" || name.startsWith(".")) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".bench.ts")) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * Imports every `*.bench.ts` under `dir` (default bench/) and returns the suites whose name or
 * file contains one of `filter` (all when `filter` is empty), in file order. A file that fails to
 * import or has no well-formed `suite` export throws, naming the file -- unless a filter is given
 * and the file's path does not match it (a broken suite elsewhere does not block the one asked for).
 */
export async function loadSuites(filter: readonly string[] = [], dir: string = BENCH_DIR): Promise<LoadedSuite[]> {
  const root = resolve(dir);
  const out: LoadedSuite[] = [];
  for (const path of findBenchFiles(root)) {
    const file = relative(root, path).split(sep).join("/");
    const fileMatches = filter.length === 0 || filter.some((f) => file.includes(f));
    let suite: BenchSuite;
    try {
      const mod = (await import(pathToFileURL(path).href)) as { suite?: unknown };
      const problem = checkSuite(mod.suite);
      if (problem) throw new Error(problem);
      suite = mod.suite as BenchSuite;
    } catch (e) {
      if (!fileMatches) continue;
      throw new Error(`${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (filter.length && !fileMatches && !filter.some((f) => suite.name.includes(f))) continue;
    out.push({ suite, file });
  }
  return out;
}

// ---- sampling ----
//
// Every case of a suite is calibrated to a batch of calls lasting about `minTime`, then the cases
// are sampled in interleaved rounds (round r runs every case once, starting at case r mod k), so
// that a burst of machine load hits a case and its reference alike. A sample is one timed batch;
// a case's ratio to another case is computed per round (the two batches ran back to back) and
// summarised by the median of those per-round ratios with a distribution-free 95% interval (the
// order statistics that bracket the median, from the binomial distribution), not a fixed
// percentage. hz and rme are the median batch rate and its interval's half width.

/** 95% distribution-free interval of the median of `sorted` (ascending): [low, high]. */
export function medianInterval(sorted: readonly number[]): { median: number; low: number; high: number } {
  const n = sorted.length;
  if (n === 0) return { median: 0, low: 0, high: 0 };
  const median = n % 2 ? sorted[(n - 1) >> 1]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  // Largest k with P(Binomial(n, 1/2) <= k - 1) <= 0.025: [x(k), x(n+1-k)] (1-based) covers the
  // median with probability >= 95%. With fewer than 6 samples no such k exists: the full range.
  let cdf = 0;
  let pk = Math.pow(0.5, n);
  let k = 0;
  for (let j = 0; j < n; j++) {
    cdf += pk;
    if (cdf > 0.025) break;
    k = j + 1;
    pk = (pk * (n - j)) / (j + 1);
  }
  if (k === 0) return { median, low: sorted[0]!, high: sorted[n - 1]! };
  return { median, low: sorted[k - 1]!, high: sorted[n - k]! };
}

/**
 * Test hook, not shipped behaviour: `HVSIM_BENCH_INJECT_SLOWDOWN=<case>:<factor>` makes every
 * timed batch of the matching case (`<case>` is a case name, or `<suite name>/<case name>`) take
 * `factor` times as long, by spinning after it. Used to show that the gate catches a slowdown.
 */
export function injectedSlowdown(suite: string, name: string, env: string | undefined = process.env.HVSIM_BENCH_INJECT_SLOWDOWN): number {
  if (env === undefined || env === "") return 1;
  const i = env.lastIndexOf(":");
  if (i <= 0) return 1;
  const target = env.slice(0, i);
  const factor = Number(env.slice(i + 1));
  if (!(Number.isFinite(factor) && factor >= 1)) return 1;
  return target === name || target === `${suite}/${name}` ? factor : 1;
}

function clockNs(): bigint {
  return process.hrtime.bigint();
}

/** Seconds taken by `n` calls of fn (stretched by `slow` when a slowdown is injected). */
function timeBatch(fn: () => void, n: number, slow: number): number {
  const t0 = clockNs();
  for (let i = 0; i < n; i++) fn();
  const t1 = clockNs();
  if (slow > 1) {
    const until = t0 + BigInt(Math.round(Number(t1 - t0) * slow));
    while (clockNs() < until) { /* spin: the injected slowdown */ }
    return Number(until - t0) / 1e9;
  }
  return Number(t1 - t0) / 1e9;
}

interface Sampled {
  /** Calls per batch; 0 when the case threw. */
  batch: number;
  /** Per-round hz, in round order (NaN for rounds the case did not run). */
  hz: number[];
  error?: string;
  slow: number;
}

export const DEFAULT_MIN_SAMPLES = 10;
export const DEFAULT_MIN_TIME = 0.005;
const MAX_ROUNDS = 400;

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Per-round ratios a/b over the rounds both ran. */
function roundRatios(a: Sampled, b: Sampled): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.hz.length && i < b.hz.length; i++) {
    const x = a.hz[i]!, y = b.hz[i]!;
    if (x > 0 && y > 0) out.push(x / y);
  }
  return out.sort((p, q) => p - q);
}

function sampleCases(suite: BenchSuite, order: readonly string[], opts: RunOptions, progress: (ev: ProgressEvent) => void): Map<string, Sampled> {
  const minTime = opts.minTime ?? DEFAULT_MIN_TIME;
  const minSamples = opts.minSamples ?? DEFAULT_MIN_SAMPLES;
  const budget = (opts.maxTime ?? DEFAULT_MAX_TIME) * order.length;
  const out = new Map<string, Sampled>();
  // Calibrate: double the batch until one takes minTime (two warm-up batches at that size).
  for (const name of order) {
    progress({ type: "case-start", suite: suite.name, case: name });
    const fn = suite.cases[name]!;
    const s: Sampled = { batch: 0, hz: [], slow: injectedSlowdown(suite.name, name) };
    try {
      let n = 1;
      while (timeBatch(fn, n, 1) < minTime && n < 2 ** 30) n *= 2;
      timeBatch(fn, n, 1);
      s.batch = n;
    } catch (e) {
      s.error = errorMessage(e);
    }
    out.set(name, s);
  }
  const live = order.filter((n) => out.get(n)!.error === undefined);
  // Warm-up rounds, discarded: at least 3 and a fifth of the budget, so that the JIT has tiered up
  // every case before a sample counts (tier-up mid-run skews the early rounds of one case).
  const w0 = clockNs();
  for (let r = 0; r < MAX_ROUNDS && (r < 3 || Number(clockNs() - w0) / 1e9 < budget / 5); r++) {
    for (const name of live) {
      const s = out.get(name)!;
      if (s.error !== undefined) continue;
      try {
        timeBatch(suite.cases[name]!, s.batch, 1);
      } catch (e) {
        s.error = errorMessage(e);
      }
    }
  }
  const t0 = clockNs();
  for (let r = 0; r < MAX_ROUNDS; r++) {
    if (r >= minSamples && Number(clockNs() - t0) / 1e9 >= budget) break;
    for (let j = 0; j < live.length; j++) {
      const name = live[(r + j) % live.length]!;
      const s = out.get(name)!;
      if (s.error !== undefined) continue;
      try {
        s.hz[r] = s.batch / timeBatch(suite.cases[name]!, s.batch, s.slow);
      } catch (e) {
        s.error = errorMessage(e);
        s.hz = [];
      }
    }
    for (const name of live) progress({ type: "case-cycle", suite: suite.name, case: name, samples: r + 1 });
  }
  return out;
}

/** Runs one suite (its `available` and `setup` first). */
export async function runSuite(loaded: LoadedSuite | BenchSuite, opts: RunOptions = {}): Promise<SuiteResult> {
  const suite = "suite" in loaded ? loaded.suite : loaded;
  const file = "suite" in loaded ? loaded.file : undefined;
  const problem = checkSuite(suite);
  if (problem) throw new Error(`suite ${String((suite as { name?: unknown }).name)}: ${problem}`);
  const progress = opts.onProgress ?? (() => {});
  const base = {
    name: suite.name,
    reference: suite.reference,
    goal: suite.goal ?? null,
    ...(suite.goals !== undefined ? { goals: suite.goals } : {}),
    ...(suite.goalNote !== undefined ? { goalNote: suite.goalNote } : {}),
    ...(file !== undefined ? { file } : {}),
  };
  let avail: true | string;
  try {
    avail = suite.available ? suite.available() : true;
  } catch (e) {
    avail = `available() threw: ${errorMessage(e)}`;
  }
  if (avail !== true) {
    const reason = typeof avail === "string" && avail !== "" ? avail : "not available";
    progress({ type: "suite-skip", suite: suite.name, reason });
    return { ...base, skipped: reason, goalMet: null, cases: [] };
  }
  if (suite.setup) await suite.setup();
  const names = Object.keys(suite.cases);
  const order = [suite.reference, ...names.filter((n) => n !== suite.reference)];
  progress({ type: "suite-start", suite: suite.name, cases: order.length });
  const sampled = sampleCases(suite, order, opts, progress);
  const summary = new Map<string, { hz: number; rme: number; samples: number; error?: string }>();
  for (const name of order) {
    const s = sampled.get(name)!;
    const hzs = s.hz.filter((h) => h > 0).sort((a, b) => a - b);
    const iv = medianInterval(hzs);
    const r = s.error !== undefined || hzs.length === 0
      ? { hz: 0, rme: 0, samples: 0, error: s.error ?? "no samples" }
      : { hz: iv.median, rme: iv.median > 0 ? ((iv.high - iv.low) / 2 / iv.median) * 100 : 0, samples: hzs.length };
    summary.set(name, r);
    progress({ type: "case-done", suite: suite.name, case: name, ...r });
  }
  const ref = sampled.get(suite.reference)!;
  const goalTargets = new Set((suite.goals ?? []).map((g) => g.of));
  const cases: CaseResult[] = names.map((name) => {
    const r = summary.get(name)!;
    const s = sampled.get(name)!;
    const reference = name === suite.reference;
    let ratio = 0, ratioLow = 0, ratioHigh = 0;
    if (reference) {
      ratio = ratioLow = ratioHigh = r.error ? 0 : 1;
    } else if (!r.error && summary.get(suite.reference)!.error === undefined) {
      const iv = medianInterval(roundRatios(s, ref));
      ratio = iv.median;
      ratioLow = iv.low;
      ratioHigh = iv.high;
    }
    const noise = ratio > 0 ? ((ratioHigh - ratioLow) / 2 / ratio) * 100 : 0;
    const judged = !reference && !goalTargets.has(name);
    const parts: GoalPart[] = [];
    if (judged && suite.goal !== undefined) parts.push({ of: suite.reference, target: suite.goal, ratio, met: !r.error && ratio >= suite.goal });
    if (judged) {
      for (const g of suite.goals ?? []) {
        const other = sampled.get(g.of)!;
        const gr = r.error || other.error ? 0 : medianInterval(roundRatios(s, other)).median;
        parts.push({ of: g.of, target: g.ratio, ratio: gr, met: gr >= g.ratio });
      }
    }
    const goalMet = parts.length ? parts.every((p) => p.met) : null;
    return {
      name, hz: r.hz, rme: r.rme, samples: r.samples, ratio, reference, goalMet,
      ratioLow, ratioHigh, noise, batch: s.batch,
      ...(parts.length ? { goalParts: parts } : {}),
      ...(r.error !== undefined ? { error: r.error } : {}),
    };
  });
  const judged = cases.filter((c) => c.goalMet !== null);
  const goalMet = judged.length ? judged.every((c) => c.goalMet) : null;
  return { ...base, goalMet, cases };
}

/** Runs the suites one after the other. */
export async function runSuites(suites: readonly (LoadedSuite | BenchSuite)[], opts: RunOptions = {}): Promise<RunResult> {
  const results: SuiteResult[] = [];
  for (const s of suites) results.push(await runSuite(s, opts));
  return { format: RESULT_FORMAT, suites: results, node: process.version, date: new Date().toISOString(), maxTime: opts.maxTime ?? DEFAULT_MAX_TIME };
}

// ---- text report ----

/** `1234567.8` -> `1,234,568`; small rates keep two decimals. */
export function formatHz(hz: number): string {
  if (hz >= 100) return Math.round(hz).toLocaleString("en-US");
  return hz.toFixed(2);
}

export function formatRatio(r: number): string {
  return `${r.toFixed(2)}x`;
}

/** A few lines per suite: every case with ops/s, ±rme, ratio to the reference, and the goal. */
export function formatSuite(s: SuiteResult): string {
  const lines: string[] = [];
  const head = `${s.name}${s.file ? ` (${s.file})` : ""}`;
  if (s.skipped !== undefined) return `${head}\n  skipped: ${s.skipped}\n`;
  lines.push(head);
  const w = Math.max(...s.cases.map((c) => c.name.length), 4);
  for (const c of s.cases) {
    const tag = c.reference ? "reference" : `${formatRatio(c.ratio)} of ${s.reference}`;
    if (c.error !== undefined) {
      lines.push(`  ${c.name.padEnd(w)}  error: ${c.error}`);
      continue;
    }
    const iv = c.reference || c.ratioLow === undefined ? "" : ` [${c.ratioLow.toFixed(2)}, ${c.ratioHigh!.toFixed(2)}]`;
    const parts = c.goalParts ?? (c.goalMet === null ? [] : [{ of: s.reference, target: s.goal!, ratio: c.ratio, met: c.goalMet }]);
    const goal = parts
      .map((p) => `  ${p.of === s.reference ? "" : `${formatRatio(p.ratio)} of ${p.of}: `}goal >= ${formatRatio(p.target)} ${p.met ? "met" : "NOT met"}`)
      .join("");
    lines.push(`  ${c.name.padEnd(w)}  ${formatHz(c.hz).padStart(13)} ops/s  ±${c.rme.toFixed(2).padStart(5)}%  ${String(c.samples).padStart(3)} samples  ${tag}${iv}${goal}`);
  }
  if (s.goal !== null || s.goals?.length) {
    const verdict = s.goalMet === null ? "not judged" : s.goalMet ? "met" : "NOT met";
    const parts = [...(s.goal !== null ? [`>= ${formatRatio(s.goal)} ${s.reference}`] : []), ...(s.goals ?? []).map((g) => `>= ${formatRatio(g.ratio)} ${g.of}`)];
    lines.push(`  goal: ${parts.join(" and ")}: ${verdict}${s.goalNote ? ` (${s.goalNote})` : ""}`);
  }
  return lines.join("\n") + "\n";
}

export function formatRun(r: RunResult): string {
  return r.suites.map(formatSuite).join("\n");
}

/** The machine-readable result, as written by `--json`. */
export function toJSON(r: RunResult): string {
  return JSON.stringify(r, null, 2) + "\n";
}
