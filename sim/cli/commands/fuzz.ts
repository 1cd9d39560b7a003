// `hvsim fuzz`: structure-aware and byte-level fuzzing of message parsers, in process, against an
// external program, or (through the device bridge) a real daemon.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { basename, delimiter, isAbsolute, join, resolve } from "node:path";
import type { Command } from "commander";
import { Campaign, inputFor, parseShard, type Finding, type FuzzTarget } from "../../fuzz/engine.ts";
import { findInProcessTarget, inProcessTargets } from "../../fuzz/all.ts";
import { execTarget, splitCommand } from "../../targets/exec/fuzz-exec.ts";
import { Failure, UsageError } from "../errors.ts";
import { checkOutputDir, checkOutputFile, describeErrno, writeFileAtomic, writeOutput, type Output } from "../output.ts";
import { plural } from "../text.ts";
import { executeWatched, loadPlugins, pluginPaths, runWatched } from "./fuzz-watchdog.ts";
import { isExecutable } from "../../targets/program.ts";

interface FuzzOpts {
  runs?: string;
  time?: string;
  seed: string;
  corpus?: string;
  shard: string;
  replay?: string;
  like?: string;
  timeout: string;
  export: string;
  json?: string;
  list?: boolean;
}

function int(v: string | undefined, name: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be a whole number >= ${min}, got ${v}`);
  return n;
}

/** Quotes one argument so that splitCommand gives it back. */
function quoteArg(a: string): string {
  if (a !== "" && !/[\s'"]/.test(a)) return a;
  return a.includes("'") ? `"${a}"` : `'${a}'`;
}

/**
 * The exec: command with its program made absolute (found relative to the current directory, or
 * on PATH when it has no slash), so that a finding's sidecar replays from any directory. A missing
 * command or program is a usage error.
 */
export function resolveExecCommand(command: string, cwd = process.cwd()): string {
  let argv: string[];
  try {
    argv = splitCommand(command);
  } catch (e) {
    throw new UsageError(`exec: ${(e as Error).message}`);
  }
  if (!argv.length || !argv[0]) throw new UsageError("exec: needs a command, e.g. exec:./parser @@");
  const prog = argv[0];
  let found: string | undefined;
  if (prog.includes("/")) {
    const p = isAbsolute(prog) ? prog : resolve(cwd, prog);
    if (isExecutable(p)) found = p;
  } else {
    for (const dir of (process.env.PATH ?? "").split(delimiter)) {
      if (dir && isExecutable(join(dir, prog))) {
        found = prog; // on PATH: kept by name, found the same way on replay
        break;
      }
    }
  }
  if (!found) throw new UsageError(`exec: program not found or not executable: ${prog}${prog.includes("/") ? ` (relative to ${cwd})` : " (not on PATH)"}`);
  return [found, ...argv.slice(1)].map(quoteArg).join(" ");
}

function makeTarget(name: string, opts: FuzzOpts): FuzzTarget {
  if (name.startsWith("exec:")) {
    const like = opts.like ? findInProcessTarget(opts.like) : undefined;
    if (opts.like && !like) throw new UsageError(`--like: unknown target '${opts.like}'`);
    return execTarget(resolveExecCommand(name.slice(5)), { timeoutMs: int(opts.timeout, "--timeout", 1), ...(like ? { like } : {}) });
  }
  if (name.startsWith("hv-daemon:")) {
    throw new Failure(`${name}: fuzzing a real daemon through the device bridge is not available in this build (see the README's fuzzing section)`, 2);
  }
  const t = findInProcessTarget(name);
  if (!t) throw new UsageError(`unknown fuzz target '${name}' (see 'hvsim fuzz --list')`);
  return t;
}

/**
 * hv-daemon:kvp|vss[=<program>|=asan]: the service and the daemon binary (undefined: Debian's), or
 * a usage error / a Failure (exit 2) saying why the daemon cannot be bridged here.
 */
async function daemonTarget(name: string): Promise<{ service: "kvp" | "vss"; program: string | undefined }> {
  const { daemonAvailable, daemonProgram, parseDaemonSpec } = await import("../../targets/hvdaemon/target.ts");
  const d = parseDaemonSpec(name);
  if (!d) throw new UsageError(`unknown daemon target '${name}' (hv-daemon:kvp, hv-daemon:vss, hv-daemon:kvp=<program>, hv-daemon:kvp=asan)`);
  const p = daemonProgram(d);
  const avail = "reason" in p ? p.reason : daemonAvailable(p.path);
  if (avail !== true) throw new Failure(`${name}: the real daemon cannot be bridged here: ${avail}`, 2);
  return { service: d.service, program: "path" in p ? p.path : undefined };
}

/** hv-daemon:kvp|vss[=<program>]: an async campaign against the real daemon (sim/targets/hvdaemon/fuzz.ts). */
async function fuzzDaemon(name: string, opts: FuzzOpts, jsonOut: Output | undefined, c: { seed: number; shard: { index: number; count: number }; time: number | undefined; runs: number }): Promise<void> {
  const { service, program } = await daemonTarget(name);
  const { runDaemonCampaign } = await import("../../targets/hvdaemon/fuzz.ts");
  const start = performance.now();
  let stop = false;
  const onSig = () => (stop = true);
  process.once("SIGINT", onSig);
  say(jsonOut, `fuzz ${name}: seed ${c.seed}, shard ${c.shard.index}/${c.shard.count}, ${c.time !== undefined ? `${c.time} s` : plural(c.runs, "input")} (real daemon; malformed kernel-to-daemon messages)\n`);
  const saved: string[] = [];
  const r = await runDaemonCampaign(service, {
    seed: c.seed,
    runs: c.runs,
    deadline: c.time === undefined ? Infinity : start + c.time * 1000,
    shard: c.shard,
    timeoutMs: int(opts.timeout, "--timeout", 1)!,
    ...(program ? { program } : {}),
    shouldStop: () => stop,
    onFinding: (f) => {
      const where = opts.corpus
        ? saveFinding(opts.corpus, { target: name, seed: c.seed, run: f.run, shard: `${c.shard.index}/${c.shard.count}`, verdict: f.verdict, mode: f.mode, ops: [], input: f.input, minimized: f.minimized })
        : undefined;
      if (where) saved.push(where);
      say(jsonOut, `finding: ${f.verdict.kind}: ${f.verdict.message} (run ${f.run}; minimized to ${f.minimized.filter((x) => x !== 0).length} non-zero bytes)${where ? ` saved ${where}` : ""}\n`);
      if (f.report) say(jsonOut, f.report.map((l) => `    ${l}\n`).join(""));
    },
  }).finally(() => process.removeListener("SIGINT", onSig));
  const secs = (performance.now() - start) / 1000;
  const summary = {
    target: name,
    seed: c.seed,
    shard: `${c.shard.index}/${c.shard.count}`,
    execs: r.execs,
    restarts: r.restarts,
    seconds: Number(secs.toFixed(3)),
    findings: r.findings.map((f) => ({ kind: f.verdict.kind, message: f.verdict.message, run: f.run, nonZeroBytes: f.minimized.filter((x) => x !== 0).length, ...(f.report ? { report: f.report } : {}) })),
    saved,
    interrupted: stop,
  };
  process.exitCode = r.findings.length ? 1 : 0;
  say(jsonOut, `${stop ? "stopped: " : ""}${plural(r.execs, "exec")} in ${summary.seconds} s, ${plural(r.restarts, "daemon restart")}, ${plural(r.findings.length, "finding")}\n`);
  if (jsonOut) writeOutput(jsonOut, JSON.stringify(summary, null, 2) + "\n");
}

/** The readable lines: on stdout, or on stderr when the JSON summary goes to stdout. */
function say(jsonOut: Output | undefined, t: string): void {
  (jsonOut?.kind === "stdout" ? process.stderr : process.stdout).write(t);
}

/** Creates a folder inside the (checked) corpus directory. */
function corpusDir(d: string): void {
  try {
    mkdirSync(d, { recursive: true });
  } catch (e) {
    throw new Failure(`cannot create --corpus folder ${d}: ${describeErrno(e)}`);
  }
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 60);
const sha = (b: Uint8Array) => createHash("sha1").update(b).digest("hex");

/** Every parameter the input generator depends on, so that --replay can regenerate the input. */
interface GeneratorParams {
  readonly like?: string;
}

function saveFinding(dir: string, f: Finding, gen: GeneratorParams = {}): string {
  const d = join(dir, safe(f.target));
  corpusDir(d);
  const id = `${f.verdict.kind}-${sha(f.minimized).slice(0, 12)}`;
  writeFileAtomic(join(d, `${id}.bin`), f.minimized, "--corpus");
  writeFileAtomic(join(d, `${id}.orig.bin`), f.input, "--corpus");
  const meta = {
    target: f.target,
    seed: f.seed,
    run: f.run,
    shard: f.shard,
    kind: f.verdict.kind,
    message: f.verdict.message,
    mode: f.mode,
    mutations: f.ops,
    generator: { target: f.target, seed: f.seed, run: f.run, shard: f.shard, like: gen.like ?? null },
    originalSha1: sha(f.input),
    minimizedSha1: sha(f.minimized),
    replay: `hvsim fuzz --replay ${join(d, `${id}.bin`)}`,
  };
  writeFileAtomic(join(d, `${id}.json`), JSON.stringify(meta, null, 2) + "\n", "--corpus");
  return join(d, `${id}.bin`);
}

async function replayDaemon(name: string, input: Uint8Array, opts: FuzzOpts): Promise<void> {
  const { service, program } = await daemonTarget(name);
  const { DaemonFuzzer } = await import("../../targets/hvdaemon/fuzz.ts");
  const f = new DaemonFuzzer(service, int(opts.timeout, "--timeout", 1)!, program);
  try {
    const v = await f.execute(input);
    if (v) {
      process.stdout.write(`${name}: ${input.length}-byte input still fails: ${v.kind}: ${v.message}\n`);
      process.exitCode = 1;
    } else process.stdout.write(`${name}: ${input.length}-byte input is handled (no finding)\n`);
  } finally {
    await f.close();
  }
}

async function replay(file: string, opts: FuzzOpts, targetArg: string | undefined): Promise<void> {
  if (!existsSync(file)) throw new Failure(`no such file: ${file}`);
  if (!statSync(file).isFile()) throw new UsageError(`--replay ${file}: not a file`, false);
  const metaFile = file.replace(/(\.orig)?\.bin$/, ".json");
  let meta: { target: string; seed: number; run: number; originalSha1?: string; generator?: { like?: string | null } } | undefined;
  if (existsSync(metaFile)) {
    try {
      meta = JSON.parse(readFileSync(metaFile, "utf8")) as typeof meta;
    } catch (e) {
      throw new UsageError(`--replay: ${metaFile} is not a finding's JSON sidecar: ${describeErrno(e)}`, false);
    }
  }
  const name = targetArg ?? meta?.target;
  if (!name) throw new UsageError(`--replay: name the target (no ${basename(metaFile)} beside the input)`);
  const input = new Uint8Array(readFileSync(file));
  if (name.startsWith("hv-daemon:")) return replayDaemon(name, input, opts);
  // The generator parameters the campaign used (--like given again on the command line wins).
  const like = opts.like ?? meta?.generator?.like ?? undefined;
  const target = makeTarget(name, { ...opts, ...(like ? { like } : {}) });
  if (meta && meta.originalSha1) {
    const regenerated = inputFor(target, meta.seed, meta.run).bytes;
    const same = sha(regenerated) === meta.originalSha1;
    process.stdout.write(`seed ${meta.seed} run ${meta.run} regenerates the original input: ${same ? "yes" : "NO (the generator changed)"}\n`);
  }
  const limit = int(opts.timeout, "--timeout", 1)!;
  const v = name.startsWith("exec:") ? target.execute(input) : await executeWatched(target, input, limit);
  target.close?.();
  if (v) {
    process.stdout.write(`${name}: ${input.length}-byte input still fails: ${v.kind}: ${v.message}\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(`${name}: ${input.length}-byte input is handled (no finding)\n`);
  }
}

export function register(program: Command): void {
  program
    .command("fuzz")
    .argument("[target...]", "in-process decoder name (see --list), exec:<command> (the words after exec: are its arguments), or hv-daemon:kvp|vss[=<program>|=asan]")
    .description("Fuzz a message parser: structure-aware inputs from the wire declarations, then mutations (lying lengths, counts past limits, truncation, bit flips, boundary values, unterminated and broken UTF-16 strings) and plain random bytes. Failing inputs are shrunk, saved and replayable.")
    .option("--runs <n>", "number of inputs (default 100000 unless --time is given)")
    .option("--time <seconds>", "run for this long instead of a fixed number of inputs")
    .option("--seed <n>", "campaign seed: input k is a function of (seed, k) alone", "1")
    .option("--corpus <dir>", "save findings here (created if missing; its parent must exist), and export generated inputs one per file (libFuzzer/AFL++ seed corpus)")
    .option("--export <n>", "how many generated inputs --corpus exports", "256")
    .option("--shard <i/n>", "run only inputs k with k mod n = i (disjoint shards for a CI matrix)", "0/1")
    .option("--replay <file>", "run one saved input again (its .json sidecar names target, seed and run)")
    .option("--like <target>", "with exec:, draw structure-aware inputs like this in-process target")
    .option("--timeout <ms>", "per-input time limit; an input still running after it is a hang finding (in-process targets run in a watched worker thread)", "2000")
    .option("--json <file>", "write a machine-readable summary ('-': standard output)")
    .option("--list", "list the in-process targets")
    .addHelpText(
      "after",
      `
Exit status: 0 no findings, 1 findings (or a replayed input still fails), 2 usage error.
Findings and the summary go to stdout; progress goes to stderr (a live line on a TTY, else a
heartbeat line every 10 s).

Examples:
  $ npx hvsim fuzz --list
  $ npx hvsim fuzz hv_kvp_msg --time 60 --corpus fuzz-out
  $ npx hvsim fuzz 'exec:./my-parser @@' --like hv_vss_msg --runs 5000
  $ npx hvsim fuzz icmsg_negotiate --shard 3/8 --seed 42 --runs 1000000
  $ npx hvsim fuzz hv_kvp_msg --replay fuzz-out/hv_kvp_msg/inputs/seed1-run0.bin

An exec: command is everything after exec: ('@@' is where the input file goes; without it the
input is on stdin); quote it when the command has options of its own, e.g. 'exec:./p -x @@'. A finding saved in --corpus is replayed by
its file alone: hvsim fuzz --replay fuzz-out/<target>/<kind>-<sha1>.bin (the .json beside it
names target, seed and run).

hv-daemon:kvp|vss sends malformed kernel-to-daemon messages to Debian's daemon through the device
bridge (after a finding the daemon goes on as a fresh child of the shim's fork server, forked from
its registered state with empty pools); hv-daemon:kvp=<program> to any daemon binary speaking that protocol, and
hv-daemon:kvp=asan to the daemons scripts/build-hv-daemons.sh built with ASan+UBSan, where a
sanitizer report is a finding (printed with the report's first lines).`,
    )
    .action(async (targetWords: string[], opts: FuzzOpts) => {
      // `exec:./parser @@` unquoted arrives as two words: they are one command line.
      if (targetWords.length > 1 && !targetWords[0]!.startsWith("exec:")) {
        throw new UsageError(`one target only, got ${targetWords.map((w) => `'${w}'`).join(", ")} (words after the first belong to an exec: command)`);
      }
      const targetArg = targetWords.length ? targetWords.join(" ") : undefined;
      if (opts.list) {
        for (const t of inProcessTargets()) process.stdout.write(`${t.name.padEnd(24)} ${t.description}\n`);
        process.stdout.write("exec:<command>           an external program, input on stdin or as a file via @@\n");
        return;
      }
      await loadPlugins(pluginPaths());
      if (opts.replay) return await replay(opts.replay, opts, targetArg);
      if (!targetArg) throw new UsageError("name a target (see 'hvsim fuzz --list')");
      const jsonOut = opts.json !== undefined ? checkOutputFile(opts.json, "--json") : undefined;
      if (opts.corpus !== undefined) checkOutputDir(opts.corpus, "--corpus");
      const seed = int(opts.seed, "--seed")!;
      const shard = parseShard(opts.shard);
      if (!shard) throw new UsageError(`--shard must be I/N with 0 <= I < N, got ${opts.shard}`);
      const time = int(opts.time, "--time", 1);
      const runs = int(opts.runs, "--runs", 1) ?? (time === undefined ? 100_000 : Number.MAX_SAFE_INTEGER);
      const exportN = int(opts.export, "--export")!;
      if (targetArg.startsWith("hv-daemon:")) return fuzzDaemon(targetArg, opts, jsonOut, { seed, shard, time, runs: int(opts.runs, "--runs", 1) ?? (time === undefined ? 1000 : Number.MAX_SAFE_INTEGER) });
      const target = makeTarget(targetArg, opts);
      const limitMs = int(opts.timeout, "--timeout", 1)!;
      const gen: GeneratorParams = opts.like ? { like: opts.like } : {};
      const tty = process.stderr.isTTY && !process.env.CI;
      const heartbeatMs = Number(process.env.HVSIM_HEARTBEAT_MS) > 0 ? Number(process.env.HVSIM_HEARTBEAT_MS) : 10_000;
      let stop = false;
      const onSig = () => (stop = true);
      process.once("SIGINT", onSig);
      const start = performance.now();
      const deadline = time === undefined ? Infinity : start + time * 1000;
      let lastReport = start;
      const saved: string[] = [];
      if (opts.corpus && exportN > 0) {
        const d = join(opts.corpus, safe(target.name), "inputs");
        corpusDir(d);
        for (let i = 0; i < exportN; i++) {
          const g = inputFor(target, seed, shard.index + i * shard.count);
          writeFileAtomic(join(d, `seed${seed}-run${g.run}.bin`), g.bytes, "--corpus");
        }
      }
      say(jsonOut, `fuzz ${target.name}: seed ${seed}, shard ${shard.index}/${shard.count}, ${time !== undefined ? `${time} s` : plural(runs, "input")}\n`);
      const findings: Finding[] = [];
      const report = (f: Finding) => {
        findings.push(f);
        const where = opts.corpus ? saveFinding(opts.corpus, f, gen) : undefined;
        if (where) saved.push(where);
        if (tty) process.stderr.write("\r\x1b[K");
        const seedNote = f.verdict.kind === "hang" ? `, seed ${f.seed}` : "";
        say(jsonOut, `finding: ${f.verdict.kind}: ${f.verdict.message} (run ${f.run}${seedNote}, ${f.input.length} -> ${plural(f.minimized.length, "byte")})${where ? ` saved ${where}` : ""}\n`);
      };
      /** Progress on stderr only: a live line on a TTY, else a heartbeat every heartbeatMs. */
      const progress = (execs: number) => {
        const now = performance.now();
        const rate = Math.round(execs / Math.max((now - start) / 1000, 1e-9));
        if (tty) process.stderr.write(`\r\x1b[K${target.name}: ${plural(execs, "exec")}, ${rate} execs/s, ${plural(findings.length, "finding")}`);
        else if (now - lastReport >= heartbeatMs) {
          lastReport = now;
          process.stderr.write(`progress: ${plural(execs, "exec")}, ${rate} execs/s, ${plural(findings.length, "finding")}\n`);
        }
      };
      let execs = 0;
      let restarts = 0;
      try {
        if (targetArg.startsWith("exec:")) {
          // One process per input: exec targets have their own time limit (spawnSync's timeout).
          const campaign = new Campaign(target, seed, shard);
          while (!stop && campaign.execs < runs && performance.now() < deadline) {
            const sliceEnd = performance.now() + 50;
            while (campaign.execs < runs && performance.now() < sliceEnd) {
              const f = campaign.next();
              if (f) report(f);
            }
            await new Promise((r) => setImmediate(r));
            progress(campaign.execs);
          }
          execs = campaign.execs;
        } else {
          const r = await runWatched({ target, seed, shard, runs, limitMs, deadline, shouldStop: () => stop, onFinding: report, onProgress: progress });
          execs = r.execs;
          restarts = r.restarts;
        }
      } finally {
        process.removeListener("SIGINT", onSig);
        target.close?.();
      }
      const secs = (performance.now() - start) / 1000;
      if (tty) process.stderr.write("\r\x1b[K");
      const summary = {
        target: target.name,
        seed,
        shard: `${shard.index}/${shard.count}`,
        generator: { like: opts.like ?? null },
        execs,
        seconds: Number(secs.toFixed(3)),
        execsPerSecond: Math.round(execs / Math.max(secs, 1e-9)),
        timeoutMs: limitMs,
        workerRestarts: restarts,
        findings: findings.map((f) => ({ kind: f.verdict.kind, message: f.verdict.message, seed: f.seed, run: f.run, bytes: f.minimized.length })),
        saved,
        interrupted: stop,
      };
      process.exitCode = findings.length ? 1 : 0;
      say(jsonOut, `${stop ? "stopped: " : ""}${plural(summary.execs, "exec")} in ${summary.seconds} s (${summary.execsPerSecond} execs/s), ${plural(summary.findings.length, "finding")}\n`);
      if (jsonOut) writeOutput(jsonOut, JSON.stringify(summary, null, 2) + "\n");
    });
}
