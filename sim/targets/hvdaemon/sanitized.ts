// Sanitized Hyper-V daemons behind the device bridge: hv_kvp_daemon / hv_vss_daemon built from
// Debian's linux-source-6.1 with -fsanitize=address,undefined by scripts/build-hv-daemons.sh, and
// any other daemon binary that links a sanitizer runtime (hv-daemon:kvp=<program>).
//
// - findSanitizedDaemons(): the cached build (like findQtestQemu for QEMU), without building.
// - sanitizerPreload(): ASan refuses to run unless its runtime comes first in the library list
//   ("ASan runtime does not come first in initial library list", exit 1 before main), and the
//   bridge LD_PRELOADs its shim. Measured here (gcc 12, libasan.so.8) with both ways out:
//   ASAN_OPTIONS=verify_asan_link_order=0 (shim first) and the ASan runtime preloaded ahead of the
//   shim both run the Debian daemons and give the same reports inside the daemon's own code. They
//   differ where the shim serves a call: a program reading a 7432-byte message from the device
//   into a 64-byte stack buffer is caught by the second at the read ("stack-buffer-overflow ...
//   WRITE of size 7432", through ASan's read/recvmsg interceptors), while with the shim first the
//   overflow goes unseen until the smashed stack crashes ("SEGV on unknown address 0x000000000000",
//   pc 0, no frame). So the runtime named in the program's DT_NEEDED is preloaded before the shim
//   (daemon -> ASan -> shim -> libc), by soname: ld.so finds it in the system library paths, which
//   the sandbox user can read.
// - The sandbox (sandbox.c) needs nothing else: it hides no /proc (no mount namespace; ASan reads
//   /proc/self/maps), sets no rlimits (ASan maps ~20 TB of shadow with MAP_NORESERVE, which an
//   RLIMIT_AS would refuse), and its seccomp filter only refuses FIFREEZE/FITHAW ioctls.
// - SANITIZER_ENV: a report stops the daemon (halt_on_error) with exit status SANITIZER_EXIT, on
//   stderr, which the bridge already captures line by line. LeakSanitizer is off: it only runs at
//   exit, the daemons run until they are killed, and their exit(EXIT_FAILURE) paths leak by design;
//   a leak report there is no memory-safety bug.
// - SanitizerWatch parses ASan/UBSan reports out of the daemon's stderr events; the session
//   (target.ts) fails the check that was running with the report's first lines, and the fuzzer
//   (fuzz.ts) makes it a "sanitizer" finding.
//
// This adapter talks to real processes and so may use wall-clock timers (see eslint.config.js).
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { KvpRequest } from "../../devices/hyperv/index.ts";
import type { DaemonBridge, OutputEvent } from "./bridge.ts";
import { isExecutable } from "../program.ts";

/** `hv-daemon:kvp=asan`: the daemons scripts/build-hv-daemons.sh built. */
export const SANITIZED_SHORTHAND = "asan";
/** Exit status of a daemon stopped by a sanitizer report (ASAN_OPTIONS/UBSAN_OPTIONS exitcode). */
export const SANITIZER_EXIT = 86;

export const SANITIZER_ENV: Readonly<Record<string, string>> = Object.freeze({
  ASAN_OPTIONS: `halt_on_error=1:exitcode=${SANITIZER_EXIT}:detect_leaks=0:abort_on_error=0:symbolize=1:print_summary=1`,
  UBSAN_OPTIONS: `halt_on_error=1:exitcode=${SANITIZER_EXIT}:print_stacktrace=1:print_summary=1`,
});

export const DAEMON_BINARIES = { kvp: "hv_kvp_daemon", vss: "hv_vss_daemon" } as const;

export type SanitizedLookup = { dir: string; kvp: string; vss: string } | { reason: string };

function complete(dir: string): boolean {
  return existsSync(join(dir, ".complete")) && isExecutable(join(dir, DAEMON_BINARIES.kvp)) && isExecutable(join(dir, DAEMON_BINARIES.vss));
}

/**
 * The sanitized daemons without building them: `HVSIM_HV_DAEMONS` (a directory holding
 * hv_kvp_daemon and hv_vss_daemon; an explicit setting that does not work is reported), else the
 * newest complete build under `${HVSIM_CACHE:-~/.cache/hvsim}/hv-daemons/<key>/`.
 */
export function findSanitizedDaemons(env: NodeJS.ProcessEnv = process.env): SanitizedLookup {
  return findDaemonBuild(env, "hv-daemons", "HVSIM_HV_DAEMONS", "scripts/build-hv-daemons.sh (needs linux-source-6.1 and gcc)");
}

/**
 * The AFL++-instrumented daemons (ASan+UBSan too) that `CC=afl-clang-fast
 * scripts/build-hv-daemons.sh` builds, under `hv-daemons-afl/<key>/` (or `HVSIM_HV_DAEMONS_AFL`).
 */
export function findAflDaemons(env: NodeJS.ProcessEnv = process.env): SanitizedLookup {
  return findDaemonBuild(env, "hv-daemons-afl", "HVSIM_HV_DAEMONS_AFL", "CC=afl-clang-fast scripts/build-hv-daemons.sh (needs linux-source-6.1 and afl++)");
}

function findDaemonBuild(env: NodeJS.ProcessEnv, folder: string, variable: string, how: string): SanitizedLookup {
  const explicit = env[variable];
  const paths = (dir: string) => ({ dir, kvp: join(dir, DAEMON_BINARIES.kvp), vss: join(dir, DAEMON_BINARIES.vss) });
  if (explicit) {
    for (const b of Object.values(DAEMON_BINARIES)) {
      if (!isExecutable(join(explicit, b))) return { reason: `${variable}=${explicit} has no executable ${b}` };
    }
    return paths(explicit);
  }
  const root = join(env.HVSIM_CACHE || join(env.HOME || homedir(), ".cache", "hvsim"), folder);
  let dirs: string[];
  try {
    dirs = readdirSync(root).filter((d) => !d.startsWith("."));
  } catch {
    dirs = [];
  }
  const best = dirs
    .map((d) => join(root, d))
    .filter(complete)
    .map((d) => ({ d, t: statSync(join(d, ".complete")).mtimeMs }))
    .sort((a, b) => b.t - a.t || (a.d < b.d ? -1 : 1))[0];
  if (!best) return { reason: `no ${folder === "hv-daemons" ? "sanitized" : "AFL++-instrumented"} Hyper-V daemons in ${root}: run ${how} or set ${variable}` };
  return paths(best.d);
}

// ---- ELF: which sanitizer runtime a program links -------------------------------------------

const MAX_ELF = 256 << 20;

/** DT_NEEDED entries of a 64-bit little-endian ELF file, or undefined when it is not one. */
export function elfNeeded(path: string): string[] | undefined {
  let fd: number;
  try {
    if (statSync(path).size > MAX_ELF) return undefined;
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    const read = (off: number, len: number): Buffer | undefined => {
      if (!Number.isSafeInteger(off) || off < 0 || len <= 0 || len > MAX_ELF) return undefined;
      const b = Buffer.alloc(len);
      return readSync(fd, b, 0, len, off) === len ? b : undefined;
    };
    const h = read(0, 64);
    if (!h || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return undefined;
    const phoff = Number(h.readBigUInt64LE(0x20));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    if (phentsize < 56 || phnum > 256) return undefined;
    const ph = read(phoff, phentsize * phnum);
    if (!ph) return undefined;
    const loads: { vaddr: number; off: number; size: number }[] = [];
    let dyn: { off: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const p = i * phentsize;
      const type = ph.readUInt32LE(p);
      const off = Number(ph.readBigUInt64LE(p + 8));
      const vaddr = Number(ph.readBigUInt64LE(p + 16));
      const size = Number(ph.readBigUInt64LE(p + 32));
      if (type === 1) loads.push({ vaddr, off, size });
      else if (type === 2) dyn = { off, size };
    }
    if (!dyn) return []; // static: links nothing
    const d = read(dyn.off, Math.min(dyn.size, 1 << 16));
    if (!d) return undefined;
    const needed: number[] = [];
    let strtab: number | undefined;
    let strsz = 0;
    for (let p = 0; p + 16 <= d.length; p += 16) {
      const tag = Number(d.readBigInt64LE(p));
      const val = Number(d.readBigUInt64LE(p + 8));
      if (tag === 0) break;
      if (tag === 1) needed.push(val);
      else if (tag === 5) strtab = val;
      else if (tag === 10) strsz = val;
    }
    if (strtab === undefined || strsz <= 0) return needed.length ? undefined : [];
    const seg = loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.size);
    if (!seg) return undefined;
    const strs = read(seg.off + (strtab - seg.vaddr), Math.min(strsz, 1 << 20));
    if (!strs) return undefined;
    return needed.map((o) => {
      const end = strs.indexOf(0, o);
      return strs.subarray(o, end < 0 ? strs.length : end).toString("utf8");
    });
  } finally {
    closeSync(fd);
  }
}

/** Libraries to preload ahead of the shim for `program`: the ASan runtime it links, if any. */
export function sanitizerPreload(program: string): string[] {
  return (elfNeeded(program) ?? []).filter((n) => /^libasan\.so(\.\d+)*$/.test(n));
}

// ---- reports -----------------------------------------------------------------------------

export interface SanitizerReport {
  /** "AddressSanitizer", "UndefinedBehaviorSanitizer", ... */
  readonly tool: string;
  /** The error without addresses, e.g. "SEGV on unknown address" or "index 5 out of bounds for type 'kvp_file_state [5]'". */
  readonly error: string;
  /** The first stack frame in the program's own sources: "kvp_pool_enumerate tools/hv/hv_kvp_daemon.c:411". */
  frame: string | undefined;
  /** The report's lines as printed (up to MAX_LINES). */
  readonly lines: string[];
  /** Daemon run of the bridge (1, 2, ...). */
  readonly run: number;
  /** The request the session had in flight when the report began (set by the session). */
  during: string | undefined;
  /** Set when the report is one a named daemon deviation explains (set by the session). */
  explainedBy: string | undefined;
  /** The report is over (SUMMARY/ABORTING seen, or the daemon exited). */
  complete: boolean;
}

const MAX_LINES = 40;
const ASAN_ERROR = /==\d+==ERROR: (AddressSanitizer|LeakSanitizer|MemorySanitizer|ThreadSanitizer|HWAddressSanitizer): (.*)$/;
const UBSAN_ERROR = /^(\S+?):(\d+):(\d+): runtime error: (.*)$/;
const FRAME = /^\s*#\d+ 0x[0-9a-f]+ in (\S+) (\S+?)(?::\d+)?$/;

/** Addresses, pcs and thread ids out of an error line, so equal errors read equal. */
function stripAddresses(s: string): string {
  return s
    .replace(/ \(pc 0x[0-9a-f]+ bp 0x[0-9a-f]+ sp 0x[0-9a-f]+ T\d+\)/, "")
    .replace(/ on (unknown )?address 0x[0-9a-f]+/, " on $1address")
    .replace(/ at pc 0x[0-9a-f]+ bp 0x[0-9a-f]+ sp 0x[0-9a-f]+/, "")
    .replace(/0x[0-9a-f]{6,}/g, "0x…")
    .trim();
}

/** One line: "AddressSanitizer: SEGV on unknown address in kvp_pool_enumerate tools/hv/hv_kvp_daemon.c:411". */
export function reportSummary(r: SanitizerReport): string {
  return `${r.tool}: ${r.error}${r.frame ? ` in ${r.frame}` : ""}`;
}

/** The report's first lines (addresses kept, as printed), for a failure's detail. */
export function reportExcerpt(r: SanitizerReport, n = 8): string[] {
  return r.lines.filter((l) => l.trim() && !/^=+$/.test(l.trim()) && !/DEADLYSIGNAL$/.test(l)).slice(0, n);
}

/** Collects the sanitizer reports a bridged daemon prints on stderr. */
export class SanitizerWatch {
  readonly reports: SanitizerReport[] = [];
  private current: SanitizerReport | undefined;
  /** Called when a report begins (the session records what it had in flight). */
  onReport: ((r: SanitizerReport) => void) | undefined;

  constructor(bridge: DaemonBridge) {
    bridge.on("output", (e) => this.line(e));
    bridge.on("exit", () => this.finish());
    bridge.on("child-exit", () => this.finish());
  }

  private finish(): void {
    if (this.current) this.current.complete = true;
    this.current = undefined;
  }

  private line(e: OutputEvent): void {
    if (e.stream !== "stderr" || e.source !== "daemon") return;
    const a = ASAN_ERROR.exec(e.line);
    const u = a ? null : UBSAN_ERROR.exec(e.line);
    if (a || u) {
      this.finish();
      const r: SanitizerReport = {
        tool: a ? a[1]! : "UndefinedBehaviorSanitizer",
        error: stripAddresses(a ? a[2]! : u![4]!),
        // UBSan names the source line first; the function comes from the stack trace below.
        frame: u ? `${u[1]}:${u[2]}` : undefined,
        lines: [e.line],
        run: e.run,
        during: undefined,
        explainedBy: undefined,
        complete: false,
      };
      this.current = r;
      this.reports.push(r);
      this.onReport?.(r);
      return;
    }
    const r = this.current;
    if (!r) return;
    if (r.lines.length < MAX_LINES) r.lines.push(e.line);
    const f = FRAME.exec(e.line);
    if (f && !/sanitizer|^\.\.\/|^\/usr\/|libc|(^|\/)shim\.c$/.test(f[2]!) && (r.frame === undefined || !r.frame.includes(" "))) {
      // The first frame in the program's own code (not the runtime's, libc's or hvsim's shim): "function file:line".
      const at = /\S+:\d+$/.exec(e.line.trim())?.[0] ?? f[2]!;
      r.frame = `${f[1]} ${at}`;
    }
    if (/^SUMMARY: /.test(e.line) || /==\d+==ABORTING/.test(e.line)) {
      if (/==\d+==ABORTING/.test(e.line) || r.tool === "UndefinedBehaviorSanitizer") this.finish();
    }
  }
}

// ---- reports named daemon deviations explain --------------------------------------------------

/**
 * Sanitizer reports of Debian's 6.1 daemon sources on ops the random differential draws under a
 * debian-6.1 daemon deviation (sim/conform/hyperv-differential.ts DAEMON_DEVIATIONS): the report
 * IS that deviation, seen by the sanitizer, so it is listed under the deviation's name (with the
 * report in the check's detail) instead of failing the check. Matched on the request in flight
 * AND the program line the report points at, which are the lines the deviation names. Observed
 * with the build of scripts/build-hv-daemons.sh (linux-source-6.1 6.1.192):
 *   pool 5..255: UBSan "index 5 out of bounds for type 'kvp_file_state [5]'" in
 *     kvp_update_mem_state tools/hv/hv_kvp_daemon.c:179 (ENUMERATE/GET/SET/DELETE all reach it
 *     first; :126 kvp_acquire_lock is the same array);
 *   ENUMERATE index >= 2^31: ASan "SEGV on unknown address" in kvp_pool_enumerate
 *     tools/hv/hv_kvp_daemon.c:411.
 * Any other report, or one of these on another request, fails the check.
 */
export const KNOWN_DAEMON_REPORTS: readonly { deviation: string; lines: readonly string[]; applies: (req: KvpRequest) => boolean }[] = [
  {
    deviation: "kvp-pool-out-of-range",
    lines: ["tools/hv/hv_kvp_daemon.c:126", "tools/hv/hv_kvp_daemon.c:179"],
    applies: (req) => "pool" in req && (req.pool < 0 || req.pool > 4),
  },
  {
    deviation: "kvp-negative-index",
    lines: ["tools/hv/hv_kvp_daemon.c:411"],
    applies: (req) => req.op === "enumerate" && req.index >= 0x80000000,
  },
];

/** The deviation that explains `r` raised while `req` was in flight, if any. */
export function explainReport(r: SanitizerReport, req: KvpRequest | undefined): string | undefined {
  if (!req) return undefined;
  const where = [r.frame ?? "", ...r.lines.slice(0, 1)].join(" ");
  for (const k of KNOWN_DAEMON_REPORTS) {
    if (k.applies(req) && k.lines.some((l) => new RegExp(`(^|[\\s/])${l.replace(/[.]/g, "\\.")}(\\D|$)`).test(where))) return k.deviation;
  }
  return undefined;
}
