// `hvsim fuzz hv-daemon:kvp|vss --engine afl`: AFL++ drives the real daemon, built from Debian's
// linux-source-6.1 with afl-clang-fast + ASan + UBSan (CC=afl-clang-fast
// scripts/build-hv-daemons.sh), with edge coverage deciding which inputs are kept.
//
// The harness is the same sandbox and LD_PRELOAD shim as every other daemon run, in the shim's
// self-contained mode (shim.c, HVSIM_AFL_INPUT): the shim is the whole device. It answers the
// daemon's registration with hvsim's kernel registration reply (registrationReply(), written as a
// prelude file), starts AFL++'s deferred fork server once the daemon is registered and waits for
// its first message (so every input starts from a registered daemon with empty pool files,
// without a process start), and delivers one AFL++ input as that message. The input ends when the
// daemon waits again. Measured on this machine: about 700 inputs/s per core.
//
// afl-fuzz runs as the sandbox user when hvsim runs as root (setpriv): the daemon runs as that
// user and must be able to attach the coverage memory afl-fuzz creates (mode 0600).
//
// After the run every crash and hang AFL++ saved is replayed through the ordinary device bridge
// (DaemonFuzzer, the gcc ASan build when there is one, else the AFL build itself): its sanitizer
// report is symbolized, findings with the same report are one, each is shrunk, decoded and saved
// like hvsim's own findings, with a replay command.
//
// This adapter runs real processes and so may use wall-clock timers (see eslint.config.js).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { aflFindingFiles, findAfl, runAfl, writeSeeds, type AflProgress, type AflRunResult, type AflTools } from "../afl/afl.ts";
import { dictionaryFor, kernelMessageSeeds } from "../../fuzz/seeds.ts";
import { hintsFromCodec } from "../../fuzz/mutate.ts";
import { lookupWire } from "../../wire/registry.ts";
import type { Verdict } from "../../fuzz/engine.ts";
import { DaemonBridge } from "./bridge.ts";
import { DaemonFuzzer, findingKey, MSG_SIZE, registrationReply, STRUCT, type DaemonService } from "./fuzz.ts";
import { findAflDaemons, findSanitizedDaemons, reportExcerpt, sanitizerPreload } from "./sanitized.ts";
import { bridgeIdentity } from "./target.ts";
import { HV_IDENTITY } from "../../conform/hyperv-session.ts";

/**
 * Sanitizer settings under afl-fuzz: a report must abort (AFL++ counts a crash by the signal) and
 * must not be symbolized (slow, and afl-fuzz refuses to start otherwise). Replays through the
 * bridge use SANITIZER_ENV (symbolized, exit status) instead.
 */
export const AFL_SANITIZER_ENV: Readonly<Record<string, string>> = Object.freeze({
  ASAN_OPTIONS: "abort_on_error=1:symbolize=0:detect_leaks=0:halt_on_error=1:handle_abort=0",
  UBSAN_OPTIONS: "halt_on_error=1:abort_on_error=1:symbolize=0:print_stacktrace=0",
});

const BUILD_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../scripts/build-hv-daemons.sh");

/** The AFL-instrumented daemons, built with the script on first use (about 10-20 s). */
export function ensureAflDaemons(tools: AflTools, log: (line: string) => void): { kvp: string; vss: string } | { reason: string } {
  const found = findAflDaemons();
  if (!("reason" in found)) return found;
  if (process.env.HVSIM_HV_DAEMONS_AFL) return found;
  if (!tools.clangFast) return { reason: "afl-clang-fast not found (install Debian's afl++ and clang)" };
  if (!existsSync(BUILD_SCRIPT)) return { reason: `${found.reason} (${BUILD_SCRIPT} is not here)` };
  log(`building the AFL++-instrumented daemons (CC=afl-clang-fast ${BUILD_SCRIPT}; once, then cached)`);
  const r = spawnSync("bash", [BUILD_SCRIPT], { encoding: "utf8", env: { ...process.env, CC: tools.clangFast }, stdio: ["ignore", "pipe", "pipe"], timeout: 900_000 });
  if (r.status !== 0) return { reason: `building them failed: ${(r.stderr || r.stdout || "").trim().split("\n").slice(-4).join(" | ")}` };
  return findAflDaemons();
}

/** The registration prelude the shim replays: records of a u32 little-endian length and the bytes. */
export function registrationPrelude(service: DaemonService): Uint8Array {
  const reply = registrationReply(service);
  const out = new Uint8Array(4 + reply.length);
  new DataView(out.buffer).setUint32(0, reply.length, true);
  out.set(reply, 4);
  return out;
}

export interface DaemonAflOptions {
  readonly service: DaemonService;
  /** The campaign folder (seeds/, afl/, dictionary); kept. */
  readonly dir: string;
  readonly seed: number;
  readonly seconds?: number;
  readonly execs?: number;
  readonly jobs: number;
  /** Per-input limit for afl-fuzz (ms). */
  readonly timeoutMs: number;
  /** Per-input limit of the replays through the bridge (ms). */
  readonly replayTimeoutMs: number;
  /** A daemon binary built with afl-cc instead of the cached build (hv-daemon:kvp=<program>). */
  readonly program?: string;
  /** Crash/hang files replayed at most (AFL++ saves one per new path, many per bug). */
  readonly maxImports?: number;
  readonly log?: (line: string) => void;
  readonly onProgress?: (progress: AflProgress[]) => void;
  readonly shouldStop?: () => boolean;
}

export interface ImportedFinding {
  readonly verdict: Verdict;
  readonly input: Uint8Array;
  readonly minimized: Uint8Array;
  readonly report?: string[];
  /** The AFL++ files with this finding (first one shrunk). */
  readonly files: string[];
  readonly instance: string;
  /** The target that replays it (hv-daemon:kvp=asan, or the AFL build). */
  readonly replayTarget: string;
  /** `hvsim decode` of the shrunk input, as one line. */
  readonly decoded: string;
}

export interface DaemonAflResult extends AflRunResult {
  readonly tools: AflTools;
  readonly binary: string;
  readonly seeds: number;
  readonly dictionary: number;
  readonly outDir: string;
  /** Crash and hang files AFL++ saved. */
  readonly saved: { crashes: number; hangs: number };
  readonly findings: ImportedFinding[];
  /** Saved files that the replay did not reproduce (e.g. hangs that finish under the bridge's limit). */
  readonly notReproduced: string[];
}

export class AflUnavailable extends Error {
  override name = "AflUnavailable";
}

function decodeLine(struct: string, bytes: Uint8Array): string {
  const entry = lookupWire(struct);
  if (!entry) return "";
  const r = entry.codec.decode(bytes);
  if (!r.ok) return `does not decode: ${r.error.field} at ${r.error.offset}: ${r.error.reason}`;
  const text = JSON.stringify(r.value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v));
  return text.length > 400 ? `${text.slice(0, 400)}...` : text;
}

/** Runs the campaign and imports its findings. */
export async function runDaemonAfl(o: DaemonAflOptions): Promise<DaemonAflResult> {
  const log = o.log ?? (() => undefined);
  const tools = findAfl();
  if ("reason" in tools) throw new AflUnavailable(tools.reason);
  let binary = o.program;
  if (!binary) {
    const built = ensureAflDaemons(tools, log);
    if ("reason" in built) throw new AflUnavailable(built.reason);
    binary = built[o.service];
  }
  const avail = DaemonBridge.toolsAvailable();
  if (!avail.ok) throw new AflUnavailable(avail.reason);

  const struct = STRUCT[o.service];
  const seeds = kernelMessageSeeds(struct);
  const dictionary = dictionaryFor(struct, hintsFromCodec(lookupWire(struct)!.codec));
  mkdirSync(o.dir, { recursive: true });
  const seedsDir = join(o.dir, "seeds");
  const dictFile = join(o.dir, `${struct}.dict`);
  rmSync(seedsDir, { recursive: true, force: true });
  writeSeeds(seedsDir, seeds, dictFile, dictionary);
  const outDir = join(o.dir, "afl");
  rmSync(outDir, { recursive: true, force: true }); // a new campaign (afl-fuzz refuses a used folder)

  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const ids = root ? { uid: 65534, gid: 65534 } : undefined;
  const bridge = new DaemonBridge();
  let run: AflRunResult;
  try {
    const p = bridge.prepare(
      {
        service: o.service,
        identity: bridgeIdentity(HV_IDENTITY),
        mounts: [{ fsname: "/dev/sda1", dir: "/", type: "ext4", opts: "rw" }],
        program: { path: binary, args: ["-n"] },
        preload: sanitizerPreload(binary),
      },
      ids,
    );
    const prelude = join(p.runDir, "prelude.bin");
    writeFileSync(prelude, registrationPrelude(o.service), { mode: 0o644 });
    log(`afl-fuzz (${tools.version}) on ${binary}: ${seeds.length} seeds, ${dictionary.length} dictionary entries, ${o.jobs} ${o.jobs === 1 ? "instance" : "instances"}`);
    run = await runAfl({
      tools,
      seedsDir,
      outDir,
      dictFile,
      argv: p.argv,
      env: { ...p.env, ...AFL_SANITIZER_ENV, HVSIM_AFL_INPUT: "-", HVSIM_AFL_PRELUDE: prelude, HVSIM_AFL_SIZE: String(MSG_SIZE[o.service]) },
      timeoutMs: o.timeoutMs,
      jobs: o.jobs,
      seed: o.seed,
      launcher: true,
      deferred: true,
      ...(o.seconds !== undefined ? { seconds: o.seconds } : {}),
      ...(o.execs !== undefined ? { execs: o.execs } : {}),
      ...(ids ? { asUser: ids } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      ...(o.shouldStop ? { shouldStop: o.shouldStop } : {}),
    });
  } finally {
    await bridge.stop();
  }

  // ---- import: replay, dedupe, shrink, decode ----------------------------------------------
  const files = aflFindingFiles(outDir);
  const saved = { crashes: files.filter((f) => f.kind === "crash").length, hangs: files.filter((f) => f.kind === "hang").length };
  const asan = findSanitizedDaemons();
  const replayBinary = o.program ?? ("reason" in asan ? binary : asan[o.service]);
  const replayTarget = o.program ? `hv-daemon:${o.service}=${o.program}` : "reason" in asan ? `hv-daemon:${o.service}=${binary}` : `hv-daemon:${o.service}=asan`;
  const findings: ImportedFinding[] = [];
  const notReproduced: string[] = [];
  const byKey = new Map<string, ImportedFinding>();
  const todo = files.slice(0, o.maxImports ?? 64);
  if (todo.length) log(`replaying ${todo.length} of ${files.length} saved ${files.length === 1 ? "input" : "inputs"} through the device bridge (${replayTarget})`);
  const fz = new DaemonFuzzer(o.service, o.replayTimeoutMs, replayBinary);
  try {
    for (const f of todo) {
      const input = new Uint8Array(readFileSync(f.file));
      const v = await fz.execute(input);
      if (!v) {
        notReproduced.push(f.file);
        continue;
      }
      const key = findingKey(v);
      const had = byKey.get(key);
      if (had) {
        had.files.push(f.file);
        continue;
      }
      const report = fz.lastReport ? reportExcerpt(fz.lastReport) : undefined;
      const minimized = await fz.minimize(input, v.kind, 48, v);
      const found: ImportedFinding = {
        verdict: v,
        input: input.slice(0, MSG_SIZE[o.service]),
        minimized,
        ...(report ? { report } : {}),
        files: [f.file],
        instance: f.instance,
        replayTarget,
        decoded: decodeLine(struct, minimized),
      };
      byKey.set(key, found);
      findings.push(found);
    }
  } finally {
    await fz.close();
  }
  return { ...run, tools, binary, seeds: seeds.length, dictionary: dictionary.length, outDir, saved, findings, notReproduced };
}
