// The benchmark harness: discovers `bench/**/*.bench.ts` suites, runs every case with benchmark.js
// and compares it with the suite's in-run reference. `npm run bench` (bench/run.ts) is a thin
// command over this module; `hvsim bench` and a regression gate can call `loadSuites` and
// `runSuites` directly.
//
// A suite file exports
//   suite: { name, reference, goal?, goalNote?, cases: { [name]: () => void }, setup?, available? }
// `reference` names one of `cases`; every case's ratio is its hz / the reference's hz. `goal` is
// the ratio the other cases aim for: it is reported (met / not met), never turned into a failure,
// because benchmarks are not timed tests. `available()` returning a string skips the suite with
// that reason (a missing optional dependency, say); `setup()` runs once before the cases.
import Benchmark from "benchmark";
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
}

export interface SuiteResult {
  readonly name: string;
  readonly reference: string;
  readonly goal: number | null;
  readonly goalNote?: string;
  readonly file?: string;
  /** Why the suite did not run; cases is then empty. */
  readonly skipped?: string;
  /** Every non-reference case met the goal; null when there is no goal or the suite did not run. */
  readonly goalMet: boolean | null;
  readonly cases: CaseResult[];
}

export interface RunResult {
  readonly suites: SuiteResult[];
  readonly node: string;
  readonly date: string;
  readonly maxTime: number;
}

export type ProgressEvent =
  | { readonly type: "suite-start"; readonly suite: string; readonly cases: number }
  | { readonly type: "suite-skip"; readonly suite: string; readonly reason: string }
  | { readonly type: "case-start"; readonly suite: string; readonly case: string }
  | { readonly type: "case-cycle"; readonly suite: string; readonly case: string; readonly samples: number }
  | { readonly type: "case-done"; readonly suite: string; readonly case: string; readonly hz: number; readonly rme: number; readonly samples: number; readonly error?: string };

export interface RunOptions {
  /** Seconds benchmark.js may spend sampling one case (default 0.5). */
  readonly maxTime?: number;
  /** Minimum samples per case (benchmark.js default 5). */
  readonly minSamples?: number;
  /** Minimum seconds per sample (benchmark.js picks one from the timer resolution by default). */
  readonly minTime?: number;
  readonly onProgress?: (ev: ProgressEvent) => void;
}

export const DEFAULT_MAX_TIME = 0.5;

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

function runCase(name: string, fn: () => void, opts: RunOptions, onCycle: (samples: number) => void): Promise<Benchmark> {
  return new Promise((resolvePromise) => {
    const options: Benchmark.Options = {
      maxTime: opts.maxTime ?? DEFAULT_MAX_TIME,
      onCycle: (event: Benchmark.Event) => onCycle((event.target as unknown as Benchmark).stats.sample.length),
      onComplete: (event: Benchmark.Event) => resolvePromise(event.target as unknown as Benchmark),
      // A throwing case sets `error` and aborts; resolve then too (resolving twice is a no-op).
      onError: (event: Benchmark.Event) => resolvePromise(event.target as unknown as Benchmark),
      onAbort: (event: Benchmark.Event) => resolvePromise(event.target as unknown as Benchmark),
    };
    if (opts.minSamples !== undefined) options.minSamples = opts.minSamples;
    if (opts.minTime !== undefined) options.minTime = opts.minTime;
    // Calling through a closure keeps benchmark.js from decompiling the function (which would
    // lose the variables it closes over).
    const b = new Benchmark(name, () => { fn(); }, options);
    b.run({ async: false });
  });
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
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
  // The reference first, so the others can be compared with it as they finish.
  const order = [suite.reference, ...names.filter((n) => n !== suite.reference)];
  progress({ type: "suite-start", suite: suite.name, cases: order.length });
  const raw = new Map<string, { hz: number; rme: number; samples: number; error?: string }>();
  for (const name of order) {
    progress({ type: "case-start", suite: suite.name, case: name });
    const b = await runCase(name, suite.cases[name]!, opts, (samples) => progress({ type: "case-cycle", suite: suite.name, case: name, samples }));
    const r = b.error
      ? { hz: 0, rme: 0, samples: 0, error: errorMessage(b.error) }
      : { hz: b.hz, rme: b.stats.rme, samples: b.stats.sample.length };
    raw.set(name, r);
    progress({ type: "case-done", suite: suite.name, case: name, ...r });
  }
  const refHz = raw.get(suite.reference)!.hz;
  const cases: CaseResult[] = names.map((name) => {
    const r = raw.get(name)!;
    const reference = name === suite.reference;
    const ratio = reference ? (r.error ? 0 : 1) : refHz > 0 ? r.hz / refHz : 0;
    const goalMet = reference || suite.goal === undefined ? null : !r.error && refHz > 0 && ratio >= suite.goal;
    return { name, hz: r.hz, rme: r.rme, samples: r.samples, ratio, reference, goalMet, ...(r.error !== undefined ? { error: r.error } : {}) };
  });
  const judged = cases.filter((c) => c.goalMet !== null);
  const goalMet = judged.length ? judged.every((c) => c.goalMet) : null;
  return { ...base, goalMet, cases };
}

/** Runs the suites one after the other. */
export async function runSuites(suites: readonly (LoadedSuite | BenchSuite)[], opts: RunOptions = {}): Promise<RunResult> {
  const results: SuiteResult[] = [];
  for (const s of suites) results.push(await runSuite(s, opts));
  return { suites: results, node: process.version, date: new Date().toISOString(), maxTime: opts.maxTime ?? DEFAULT_MAX_TIME };
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
    const goal = c.goalMet === null ? "" : c.goalMet ? `  goal >= ${formatRatio(s.goal!)} met` : `  goal >= ${formatRatio(s.goal!)} NOT met`;
    lines.push(`  ${c.name.padEnd(w)}  ${formatHz(c.hz).padStart(13)} ops/s  ±${c.rme.toFixed(2).padStart(5)}%  ${String(c.samples).padStart(3)} samples  ${tag}${goal}`);
  }
  if (s.goal !== null) {
    const verdict = s.goalMet === null ? "not judged" : s.goalMet ? "met" : "NOT met";
    lines.push(`  goal: >= ${formatRatio(s.goal)} ${s.reference}: ${verdict}${s.goalNote ? ` (${s.goalNote})` : ""}`);
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
