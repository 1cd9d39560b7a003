// Runs AFL++ (Debian's afl++ package: afl-fuzz, afl-clang-fast, afl-showmap) on a program hvsim
// prepared: seeds and a dictionary written from the wire declarations (sim/fuzz/seeds.ts), one
// afl-fuzz per job (-M main, -S sec1..; AFL++'s own parallel mode, one per core), progress read
// from each instance's plot_data, the final numbers from fuzzer_stats, and the crash and hang
// files left in <out>/<instance>/{crashes,hangs}/ listed for hvsim to replay and shrink.
//
// afl-fuzz checks the machine before it fuzzes (CPU frequency scaling, core_pattern piping crashes
// away, a free core to bind to); those checks are about the speed and completeness of a long
// campaign on a dedicated machine and stop a run on a shared CI host, so they are switched off
// (AFL_SKIP_CPUFREQ, AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES, AFL_NO_AFFINITY). Its screen UI is off
// (AFL_NO_UI): hvsim prints its own progress line on stderr, and afl-fuzz's own output goes to
// <out>/<instance>.log.
//
// This adapter runs real processes and so may use wall-clock timers (see eslint.config.js).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { isExecutable } from "../program.ts";
import type { NamedBytes } from "../../fuzz/seeds.ts";
import { formatAflDictionary } from "../../fuzz/seeds.ts";

/** A program on PATH (or the Debian places), or undefined. */
function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of [...(env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/local/bin"]) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export interface AflTools {
  readonly fuzz: string;
  readonly showmap: string | undefined;
  readonly clangFast: string | undefined;
  /** `afl-fuzz` version line, e.g. "afl-fuzz++4.04c". */
  readonly version: string;
}

/** AFL++ on this machine, or why not (install hint). */
export function findAfl(env: NodeJS.ProcessEnv = process.env): AflTools | { reason: string } {
  const fuzz = env.HVSIM_AFL_FUZZ || which("afl-fuzz", env);
  if (!fuzz || !isExecutable(fuzz)) return { reason: "afl-fuzz not found (install Debian's afl++: apt-get install afl++ clang llvm)" };
  const r = spawnSync(fuzz, ["-h"], { encoding: "utf8", timeout: 10_000, env: { ...process.env, AFL_NO_UI: "1" } });
  const version = /afl-fuzz\+\+[\w.]+/.exec(`${r.stdout}${r.stderr}`)?.[0] ?? "afl-fuzz";
  return { fuzz, showmap: which("afl-showmap", env), clangFast: which("afl-clang-fast", env), version };
}

export interface AflStats {
  readonly instance: string;
  readonly execs: number;
  readonly execsPerSecond: number;
  /** Edges (map entries) the queue reached. */
  readonly edgesFound: number;
  /** Edges the program has (its coverage map's size as AFL++ measured it). */
  readonly totalEdges: number;
  readonly corpusCount: number;
  readonly crashes: number;
  readonly hangs: number;
  readonly seconds: number;
}

/** key : value lines of fuzzer_stats. */
export function parseFuzzerStats(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

const num = (s: string | undefined) => (s === undefined ? 0 : Number.parseFloat(s.replace("%", "")) || 0);

/**
 * What an instance's log says while it runs: afl-fuzz without its screen (not on a terminal, or
 * AFL_NO_UI) writes fuzzer_stats and plot_data only at the start and the end, but logs a line per
 * queue entry it fuzzes: "Fuzzing test case #6 (31 total, 2 crashes saved, ...)".
 */
export function logProgress(text: string): { corpus: number; crashes: number } | undefined {
  const all = [...text.matchAll(/\((\d+) total, (\d+) crashes saved/g)];
  const m = all.at(-1);
  return m ? { corpus: Number(m[1]), crashes: Number(m[2]) } : undefined;
}

/** An instance's numbers: fuzzer_stats when written, else the last line of plot_data. */
export function instanceStats(outDir: string, instance: string): AflStats | undefined {
  const dir = join(outDir, instance);
  const stats = join(dir, "fuzzer_stats");
  let s: Map<string, string> | undefined;
  if (existsSync(stats)) s = parseFuzzerStats(readFileSync(stats, "utf8"));
  const plot = join(dir, "plot_data");
  let p: string[] | undefined;
  if (existsSync(plot)) {
    // # relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size,
    //   saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found
    const lines = readFileSync(plot, "utf8").trim().split("\n").filter((l) => l && !l.startsWith("#"));
    p = lines.at(-1)?.split(",").map((x) => x.trim());
  }
  if (!s && !p) return undefined;
  const fromPlot = (i: number) => num(p?.[i]);
  // fuzzer_stats is rewritten about once a minute and at exit; plot_data every few seconds.
  const plotTime = fromPlot(0);
  const statsTime = s ? num(s.get("run_time")) : -1;
  const usePlot = p !== undefined && plotTime > statsTime;
  const total = s ? num(s.get("total_edges")) : 0;
  return {
    instance,
    execs: usePlot ? fromPlot(11) : num(s!.get("execs_done")),
    execsPerSecond: usePlot ? fromPlot(10) : num(s!.get("execs_per_sec")),
    edgesFound: usePlot ? fromPlot(12) : num(s!.get("edges_found")),
    totalEdges: total,
    corpusCount: usePlot ? fromPlot(3) : num(s!.get("corpus_count")),
    crashes: usePlot ? fromPlot(7) : num(s!.get("saved_crashes")),
    hangs: usePlot ? fromPlot(8) : num(s!.get("saved_hangs")),
    seconds: usePlot ? plotTime : statsTime,
  };
}

/** Writes the seed directory and the dictionary file. */
export function writeSeeds(dir: string, seeds: readonly NamedBytes[], dictFile: string, dictionary: readonly NamedBytes[]): void {
  mkdirSync(dir, { recursive: true });
  for (const s of seeds) writeFileSync(join(dir, s.name.replace(/[^A-Za-z0-9_.-]+/g, "_")), s.bytes);
  writeFileSync(dictFile, formatAflDictionary(dictionary));
}

export interface AflRunOptions {
  readonly tools: AflTools;
  readonly seedsDir: string;
  readonly outDir: string;
  readonly dictFile?: string;
  /** The target's command line ("@@" = the input file's path; without it the input is on stdin). */
  readonly argv: readonly string[];
  /** The target's environment (afl-fuzz passes its own environment on). */
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** -V: seconds of fuzzing per instance. */
  readonly seconds?: number;
  /** -E: executions per instance. */
  readonly execs?: number;
  readonly jobs: number;
  /** Campaign seed (-s): AFL++'s own random choices. */
  readonly seed: number;
  /** Run afl-fuzz as this user (root only): the sandbox user, who must reach the coverage memory. */
  readonly asUser?: { uid: number; gid: number };
  /** The target is not an instrumented binary itself (a launcher that execs it). */
  readonly launcher?: boolean;
  /** AFL_DEFER_FORKSRV: the target starts the fork server itself (__afl_manual_init). */
  readonly deferred?: boolean;
  readonly onProgress?: (progress: AflProgress[]) => void;
  readonly shouldStop?: () => boolean;
}

/** One instance while it runs (from its log: see logProgress). */
export interface AflProgress {
  readonly instance: string;
  readonly corpus: number;
  readonly crashes: number;
}

export interface AflRunResult {
  readonly stats: AflStats[];
  /** Exit status per instance (0 = done). */
  readonly exits: { instance: string; code: number | null; signal: NodeJS.Signals | null; logTail: string[] }[];
}

/** The instance names of a run with `jobs` jobs. */
export function instanceNames(jobs: number): string[] {
  return jobs <= 1 ? ["default"] : ["main", ...Array.from({ length: jobs - 1 }, (_, i) => `sec${i + 1}`)];
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const f of readdirSync(path)) chownTree(join(path, f), uid, gid);
}

/** Runs the afl-fuzz instances to their end (-V / -E) or until shouldStop(). */
export async function runAfl(o: AflRunOptions): Promise<AflRunResult> {
  mkdirSync(o.outDir, { recursive: true });
  if (o.asUser) {
    chownTree(o.seedsDir, o.asUser.uid, o.asUser.gid);
    chownTree(o.outDir, o.asUser.uid, o.asUser.gid);
    if (o.dictFile) chownSync(o.dictFile, o.asUser.uid, o.asUser.gid);
  }
  const names = instanceNames(o.jobs);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    ...o.env,
    ...(process.env.HVSIM_AFL_UI ? {} : { AFL_NO_UI: "1" }),
    AFL_SKIP_CPUFREQ: "1",
    AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES: "1",
    AFL_NO_AFFINITY: "1",
    ...(o.launcher ? { AFL_SKIP_BIN_CHECK: "1" } : {}),
    ...(o.deferred ? { AFL_DEFER_FORKSRV: "1" } : {}),
  };
  const children: { name: string; child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; log: string }[] = [];
  for (const [i, name] of names.entries()) {
    const args = ["-i", o.seedsDir, "-o", o.outDir, "-t", String(o.timeoutMs), "-m", "none", "-s", String((o.seed + i) >>> 0)];
    if (o.dictFile) args.push("-x", o.dictFile);
    if (o.seconds !== undefined) args.push("-V", String(o.seconds));
    if (o.execs !== undefined) args.push("-E", String(o.execs));
    if (o.jobs > 1) args.push(i === 0 ? "-M" : "-S", name);
    args.push("--", ...o.argv);
    const [cmd, argv] = o.asUser
      ? ["setpriv", [`--reuid=${o.asUser.uid}`, `--regid=${o.asUser.gid}`, "--clear-groups", "--", o.tools.fuzz, ...args]]
      : [o.tools.fuzz, args];
    const log = join(o.outDir, `${name}.log`);
    const fd = openSync(log, "w");
    const child = spawn(cmd, argv as string[], { env, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on("error", () => resolve({ code: null, signal: null }));
      child.on("exit", (code, signal) => resolve({ code, signal }));
    });
    children.push({ name, child, done, log });
  }
  const kill = () => {
    for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGINT");
  };
  process.once("exit", kill);
  try {
    let finished = false;
    void Promise.all(children.map((c) => c.done)).then(() => (finished = true));
    let stopping = false;
    while (!finished) {
      await new Promise((r) => setTimeout(r, 500));
      if (!stopping && o.shouldStop?.()) {
        stopping = true;
        kill(); // afl-fuzz ends cleanly on SIGINT and writes its final stats
      }
      if (o.onProgress) {
        o.onProgress(
          children.map((c) => {
            const p = existsSync(c.log) ? logProgress(readFileSync(c.log, "utf8")) : undefined;
            return { instance: c.name, corpus: p?.corpus ?? 0, crashes: p?.crashes ?? 0 };
          }),
        );
      }
    }
    const exits = [];
    for (const c of children) {
      const r = await c.done;
      const text = existsSync(c.log) ? readFileSync(c.log, "utf8") : "";
      // eslint-disable-next-line no-control-regex
      const logTail = text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").split("\n").filter((l) => l.trim()).slice(-8);
      exits.push({ instance: c.name, code: r.code, signal: r.signal, logTail });
    }
    return { stats: names.map((n) => instanceStats(o.outDir, n)).filter((s): s is AflStats => s !== undefined), exits };
  } finally {
    process.removeListener("exit", kill);
    kill();
  }
}

export interface AflFindingFile {
  readonly instance: string;
  readonly kind: "crash" | "hang";
  readonly file: string;
}

/** Every crash and hang file the instances saved (AFL++'s README.txt beside them skipped). */
export function aflFindingFiles(outDir: string): AflFindingFile[] {
  const out: AflFindingFile[] = [];
  if (!existsSync(outDir)) return out;
  for (const instance of readdirSync(outDir).sort()) {
    for (const [sub, kind] of [["crashes", "crash"], ["hangs", "hang"]] as const) {
      const d = join(outDir, instance, sub);
      if (!existsSync(d) || !statSync(d).isDirectory()) continue;
      for (const f of readdirSync(d).sort()) if (f.startsWith("id:")) out.push({ instance, kind, file: join(d, f) });
    }
  }
  return out;
}

/** The queue entries of every instance (the corpus AFL++ grew). */
export function aflQueueFiles(outDir: string): string[] {
  const out: string[] = [];
  if (!existsSync(outDir)) return out;
  for (const instance of readdirSync(outDir).sort()) {
    const d = join(outDir, instance, "queue");
    if (!existsSync(d) || !statSync(d).isDirectory()) continue;
    for (const f of readdirSync(d).sort()) if (f.startsWith("id:")) out.push(join(d, f));
  }
  return out;
}

/**
 * Edges a set of inputs reaches, with afl-showmap over a directory (-C: the union of every
 * input's map): how the blind engine's inputs and AFL++'s queue compare on the same binary.
 */
export function showmapEdges(tools: AflTools, inputDir: string, argv: readonly string[], env: Readonly<Record<string, string>>, o: { timeoutMs: number; asUser?: { uid: number; gid: number }; launcher?: boolean; deferred?: boolean; mapFile: string }): number | { reason: string } {
  if (!tools.showmap) return { reason: "afl-showmap not found" };
  const args = ["-C", "-i", inputDir, "-o", o.mapFile, "-t", String(o.timeoutMs), "-m", "none", "-q", "--", ...argv];
  const [cmd, argvAll] = o.asUser ? ["setpriv", [`--reuid=${o.asUser.uid}`, `--regid=${o.asUser.gid}`, "--clear-groups", "--", tools.showmap, ...args]] : [tools.showmap, args];
  const r = spawnSync(cmd, argvAll as string[], {
    encoding: "utf8",
    timeout: 600_000,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env, ...(o.launcher ? { AFL_SKIP_BIN_CHECK: "1" } : {}), ...(o.deferred ? { AFL_DEFER_FORKSRV: "1" } : {}) },
  });
  if (!existsSync(o.mapFile)) return { reason: `afl-showmap wrote no map (exit ${r.status}): ${`${r.stdout}${r.stderr}`.trim().split("\n").slice(-3).join(" | ")}` };
  return readFileSync(o.mapFile, "utf8").split("\n").filter((l) => /^\d+:\d+$/.test(l.trim())).length;
}
