// Device bridge for the real Linux Hyper-V daemons (Debian's hv_kvp_daemon / hv_vss_daemon):
// hvsim plays the kernel side of drivers/hv/hv_utils_transport.c, the /dev/vmbus/hv_kvp and
// /dev/vmbus/hv_vss character devices, and decides what the daemon sees at every syscall on them.
//
//   Node (this class) ──stdin/stdout frames── relay ──SOCK_SEQPACKET── shim.so in the daemon
//                                                                      (sandbox launcher → daemon)
//
// - shim.c (LD_PRELOAD) turns open("/dev/vmbus/hv_*") into a connection to the relay's socket
//   and read/write/poll/close/ioctl on that fd into packets; it also pins every other input of
//   the daemon (pool directory, mount table, os-release, uname, hostname, addresses, syslog).
// - relay.c forwards packets and frames, policy-free (framing documented there).
// - sandbox.c runs the daemon as nobody in a new user namespace with NO_NEW_PRIVS and a seccomp
//   filter, so it can never freeze a real filesystem (layers documented there).
// - This class owns the processes and a per-run directory, and turns frames into events:
//   open / write / ioctl need an answer (a handler's return value, or event.respond(...)); read,
//   poll, close, exit, syslog and output are notifications. deliver() queues one message for the
//   daemon's read(); hangup() is hvutil_transport_destroy; kill() simulates a crash.
// No kernel policy lives here: single opener, one-slot queue, message sizes, timeouts are the
// kernel model's business. Defaults only keep a bare bridge usable (opens are accepted).
//
// This adapter talks to real processes and so may use wall-clock timers (see eslint.config.js).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  accessSync,
  chmodSync,
  chownSync,
  constants as fsConstants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { constants as osConstants, tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Readable } from "node:stream";
import { buildHvDaemonTools, HvBuildError, type BuildOptions, type HvDaemonTools } from "./build.ts";

// ---------------------------------------------------------------------------------------------
// Wire constants (relay.c)

const FRAME_HDR = 12;
const T = {
  OPEN: 0x01,
  WRITE: 0x02,
  READ: 0x03,
  POLL: 0x04,
  IOCTL: 0x05,
  FS: 0x06,
  FORKED: 0x07,
  CHILD_EXIT: 0x08,
  CLOSE: 0x10,
  READY: 0x11,
  DROPPED: 0x12,
  LOG: 0x13,
  OPEN_RESULT: 0x41,
  WRITE_RESULT: 0x42,
  DATA: 0x43,
  HANGUP: 0x44,
  IOCTL_RESULT: 0x45,
  DATA_KILL: 0x46,
  RESPAWN: 0x47,
  SHUTDOWN: 0x50,
  HOLD: 0x51,
} as const;

/** include/uapi/linux/fs.h */
export const FIFREEZE = 0xc0045877;
export const FITHAW = 0xc0045878;
/** poll.h */
export const POLLIN = 0x001;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;

export type HvService = "kvp" | "vss";
export const DEVICE_NAMES: Readonly<Record<HvService, string>> = { kvp: "hv_kvp", vss: "hv_vss" };
export const DAEMON_PATHS: Readonly<Record<HvService, string>> = {
  kvp: "/usr/sbin/hv_kvp_daemon",
  vss: "/usr/sbin/hv_vss_daemon",
};

// ---------------------------------------------------------------------------------------------
// Errors, results, events

export type DaemonBridgeErrorKind =
  | "unavailable" // binaries, compiler or user namespaces missing (reason in the message)
  | "timeout" // an explicit wait ran out
  | "exited" // the daemon exited while something was awaited from it
  | "state" // the call does not fit the bridge's state (not started, no open connection...)
  | "argument" // a value the wire cannot carry
  | "relay" // the relay failed or broke the protocol
  | "stopped"; // stop() was called while waiting

export class DaemonBridgeError extends Error {
  override name = "DaemonBridgeError";
  constructor(
    readonly kind: DaemonBridgeErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export type ErrnoName = keyof typeof osConstants.errno;
/** An errno by name ("EINVAL") or number. */
export type Errno = ErrnoName | number;
export interface ErrnoResult {
  readonly errno: Errno;
}
/** open(): "accept", or fail with an errno (EBUSY for a second opener, ENOENT after destroy...). */
export type OpenResult = "accept" | ErrnoResult;
/** write(): the count write() returns, or fail with an errno (EINVAL...). */
export type WriteResult = number | ErrnoResult;
/** ioctl(FIFREEZE/FITHAW): the return value (0), or fail with an errno. */
export type IoctlResult = number | ErrnoResult;

interface EventBase {
  /** Position in the bridge's event history (1, 2, ...; forgetEvents() does not restart the count). */
  readonly seq: number;
  /** Daemon run: 1 for the first start, +1 per restart(). */
  readonly run: number;
}

interface ConnEventBase extends EventBase {
  /** Relay connection id: one per open() of the device. */
  readonly conn: number;
}

interface Answerable<R> {
  /** Answers the syscall (once). Ignored when the connection has closed meanwhile. */
  respond(result: R): void;
  /** Whether respond() was called (by a handler or by hand). */
  readonly answered: boolean;
}

export interface OpenEvent extends ConnEventBase, Answerable<OpenResult> {
  readonly kind: "open";
  /** Device name: "hv_kvp" / "hv_vss". */
  readonly device: string;
  /** open() flags (O_RDWR | O_CLOEXEC for the daemons). */
  readonly flags: number;
  readonly pid: number;
}

export interface WriteEvent extends ConnEventBase, Answerable<WriteResult> {
  readonly kind: "write";
  /** The bytes of one write(): one message. */
  readonly data: Buffer;
}

/**
 * FIFREEZE/FITHAW are filesystem ioctls, not device ones: they arrive on the shim's filesystem
 * channel (its own connection, `conn`), which outlives the daemon's closes and reopens of the
 * device, so hv_vss_daemon's thaw after closing the device (hv_vss_daemon.c:247-256) is answered.
 */
export interface IoctlEvent extends ConnEventBase, Answerable<IoctlResult> {
  readonly kind: "ioctl";
  readonly cmd: number;
  readonly request: "FIFREEZE" | "FITHAW";
  /** Mount directory from the fake mount table the fd was opened on. */
  readonly path: string;
}

export interface ReadEvent extends ConnEventBase {
  readonly kind: "read";
  /** The buffer size the daemon passed. */
  readonly count: number;
  /** Bytes returned, or -errno. */
  readonly result: number;
  /** errno name when the read failed (EINVAL for a short buffer, EBADF after a hang-up...). */
  readonly errno: string | undefined;
}

export interface PollEvent extends ConnEventBase {
  readonly kind: "poll";
  readonly events: number;
  readonly timeoutMs: number;
}

export interface CloseEvent extends ConnEventBase {
  readonly kind: "close";
  readonly device: string;
  /** false when the daemon went away while its open() was still unanswered. */
  readonly wasOpen: boolean;
  readonly hungUp: boolean;
}

export interface ExitEvent extends EventBase {
  readonly kind: "exit";
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The shim's fork server (start option forkServer) started a child: the daemon from here on. */
export interface ForkedEvent extends ConnEventBase {
  readonly kind: "forked";
  readonly pid: number;
}

/** That child ended (the fork server then waits for respawn()); the daemon run goes on. */
export interface ChildExitEvent extends ConnEventBase {
  readonly kind: "child-exit";
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SyslogEvent extends EventBase {
  readonly kind: "syslog";
  /** syslog priority (LOG_ERR 3, LOG_INFO 6...). */
  readonly level: number;
  readonly ident: string;
  readonly message: string;
}

export interface OutputEvent extends EventBase {
  readonly kind: "output";
  readonly stream: "stdout" | "stderr";
  /** "shim" (hvsim-shim: lines), "sandbox" (hvsim-sandbox: lines) or the daemon itself. */
  readonly source: "daemon" | "shim" | "sandbox";
  readonly line: string;
}

export interface DroppedEvent extends ConnEventBase {
  readonly kind: "dropped";
  /** The frame type that could not be delivered (0x43 DATA...). */
  readonly type: number;
  readonly errno: string;
}

export type BridgeEvent =
  | OpenEvent
  | WriteEvent
  | IoctlEvent
  | ReadEvent
  | PollEvent
  | CloseEvent
  | ExitEvent
  | ForkedEvent
  | ChildExitEvent
  | SyslogEvent
  | OutputEvent
  | DroppedEvent;
export type BridgeEventKind = BridgeEvent["kind"];
export type EventOf<K extends BridgeEventKind> = Extract<BridgeEvent, { kind: K }>;

type MaybePromise<T> = T | Promise<T>;
/** A decision handler; returning undefined leaves the syscall waiting for event.respond(). */
export type OpenHandler = (event: OpenEvent) => MaybePromise<OpenResult | undefined>;
export type WriteHandler = (event: WriteEvent) => MaybePromise<WriteResult | undefined>;
export type IoctlHandler = (event: IoctlEvent) => MaybePromise<IoctlResult | undefined>;

// ---------------------------------------------------------------------------------------------
// Options

export interface DaemonMount {
  /** e.g. "/dev/sda1"; only names under /dev/ are considered by hv_vss_daemon. */
  fsname: string;
  /** Mount directory, e.g. "/" or "/data"; it need not exist on this machine. */
  dir: string;
  type: string;
  /** e.g. "rw,relatime"; "ro" mounts are skipped by the daemon. */
  opts: string;
  /** Make the fake block device loop-backed (the daemon skips those). */
  loop?: boolean;
}

export interface DaemonInterface {
  name: string;
  /** "192.0.2.10/24" or "2001:db8::10/64". */
  address: string;
  /** /sys/class/net/NAME/address, e.g. "00:15:5d:00:00:01". */
  mac?: string;
  /** /sys/class/net/NAME/device/device_id (the VMBus instance GUID, SET_IP_INFO). */
  deviceId?: string;
}

/** Everything the daemon could learn about "its" machine. Defaults are fixed, never the host's. */
export interface DaemonIdentity {
  /** gethostname() and uname().nodename (default "hvsim-guest"). */
  hostname?: string;
  /** Canonical name getaddrinfo() gives for the hostname (default: the hostname). */
  fqdn?: string;
  uname?: { sysname?: string; release?: string; version?: string; machine?: string };
  /** Contents of /etc/os-release; null = the file does not exist. */
  osRelease?: string | null;
  /** getifaddrs() and /sys/class/net (default: none). */
  interfaces?: DaemonInterface[];
  /**
   * What getpid() returns inside the daemon (its "pid is:N" syslog line, lock records); default
   * 4242. The real pid is bridge.pid and OpenEvent.pid.
   */
  pid?: number;
}

export const DEFAULT_IDENTITY = {
  hostname: "hvsim-guest",
  pid: 4242,
  uname: { sysname: "Linux", release: "6.1.0-hvsim-amd64", version: "#1 SMP PREEMPT_DYNAMIC hvsim", machine: "x86_64" },
  osRelease: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
} as const;

export interface DaemonStartOptions {
  service: HvService;
  /**
   * The daemon's /var/lib/hyperv (KVP pool files). Default: a directory inside the run directory
   * (removed by stop()). A given directory is kept; when running as root it is chowned to the
   * sandbox uid, and must be reachable by that user (not under /root).
   */
  poolDir?: string;
  /** The mount table the daemon reads from /proc/mounts (VSS). Default: empty. */
  mounts?: DaemonMount[];
  identity?: DaemonIdentity;
  /**
   * Run this instead of the daemon (a probe program), still sandboxed and shimmed. The program
   * is copied into the run directory (so the sandbox user can execute it) and run from there.
   */
  program?: { path: string; args?: string[] };
  /**
   * Libraries LD_PRELOADed ahead of the shim (names as ld.so searches them, or absolute paths
   * the sandbox user can read): the sanitizer runtime a sanitized program links, which must come
   * first in the library list (sanitized.ts).
   */
  preload?: string[];
  /** Daemon binary (default DAEMON_PATHS[service]); run with -n. */
  daemonPath?: string;
  /** Default timeout of waits (waitFor, exited, start) in ms (default 10000). */
  timeoutMs?: number;
  /** Sandbox uid/gid when running as root (default 65534/65534). */
  uid?: number;
  gid?: number;
  /** Keep the run directory after stop() (debugging). */
  keepRunDir?: boolean;
  /** Extra environment for the daemon (e.g. HVSIM_* overrides). */
  env?: Record<string, string>;
  /**
   * Run the shim's fork server (shim.c): once the daemon has read its first message (the
   * registration reply), it forks; the child is the daemon, and when it dies (child-exit event)
   * respawn() forks another from the registered state. For fuzzing: no restart per crash.
   */
  forkServer?: boolean;
  build?: BuildOptions;
}

export interface DaemonExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface PoolRecord {
  readonly key: string;
  readonly value: string;
}

/** struct kvp_record in tools/hv/hv_kvp_daemon.c: char key[512]; char value[2048]. */
export const KVP_RECORD_SIZE = 512 + 2048;

export type Availability = { ok: true } | { ok: false; reason: string };

// ---------------------------------------------------------------------------------------------
// Helpers

function errnoNumber(e: Errno): number {
  if (typeof e === "number") {
    if (!Number.isInteger(e) || e <= 0 || e > 4095) throw new DaemonBridgeError("argument", `bad errno ${e}`);
    return e;
  }
  const n = (osConstants.errno as Record<string, number | undefined>)[e];
  if (n === undefined) throw new DaemonBridgeError("argument", `unknown errno name ${e}`);
  return n;
}

const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(osConstants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);
export function errnoName(n: number): string {
  return errnoNames.get(n) ?? `errno ${n}`;
}

function isErrnoResult(r: unknown): r is ErrnoResult {
  return typeof r === "object" && r !== null && "errno" in r;
}

function escapeMountField(s: string): string {
  return s.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

/** Splits a stream into lines. */
function lines(stream: Readable | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let rest = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    rest += chunk;
    let i: number;
    while ((i = rest.indexOf("\n")) >= 0) {
      onLine(rest.slice(0, i));
      rest = rest.slice(i + 1);
    }
  });
  stream.on("end", () => {
    if (rest) onLine(rest);
    rest = "";
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Conn {
  readonly id: number;
  readonly run: number;
  device: string;
  /** "fs": the shim's filesystem channel (FIFREEZE/FITHAW), not an open of the device. */
  state: "opening" | "open" | "refused" | "closed" | "fs";
  hungUp: boolean;
}

interface Waiter {
  readonly kind: BridgeEventKind;
  readonly match: (e: BridgeEvent) => boolean;
  readonly resolve: (e: BridgeEvent) => void;
  readonly reject: (e: Error) => void;
}

const live = new Set<DaemonBridge>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when the test process ends without stop(): no daemon or relay outlives it.
  process.on("exit", () => {
    for (const b of live) b.killNow();
  });
}

let availability: Availability | undefined;
let toolsAvailability: Availability | undefined;

// ---------------------------------------------------------------------------------------------
// The bridge

export class DaemonBridge {
  /**
   * Whether real daemons can be bridged here: Linux, the daemon binaries, a C compiler (the
   * native parts are built on first use) and a working sandbox (unprivileged user namespaces).
   * The result is cached for the process.
   */
  static available(): Availability {
    availability ??= DaemonBridge.probe();
    return availability;
  }

  /**
   * Whether the bridge itself works here (Linux, a C compiler for the native parts, a working
   * sandbox), whatever daemon binary it is to run: for hv-daemon:<service>=<program>. Cached.
   */
  static toolsAvailable(): Availability {
    toolsAvailability ??= DaemonBridge.probeTools();
    return toolsAvailability;
  }

  private static probe(): Availability {
    if (process.platform !== "linux") return { ok: false, reason: `not Linux (${process.platform})` };
    for (const path of Object.values(DAEMON_PATHS)) {
      try {
        accessSync(path, fsConstants.X_OK);
      } catch {
        return { ok: false, reason: `${path} not found: install Debian's hyperv-daemons` };
      }
    }
    return DaemonBridge.toolsAvailable();
  }

  private static probeTools(): Availability {
    if (process.platform !== "linux") return { ok: false, reason: `not Linux (${process.platform})` };
    let tools: HvDaemonTools;
    try {
      tools = buildHvDaemonTools();
    } catch (e) {
      return { ok: false, reason: e instanceof HvBuildError ? e.message : `build failed: ${(e as Error).message}` };
    }
    const r = spawnSync(tools.sandbox, ["--check"], { encoding: "utf8", timeout: 10_000 });
    if (r.status !== 0) {
      const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim();
      return { ok: false, reason: `the sandbox does not work here (user namespaces?): ${why}` };
    }
    return { ok: true };
  }

  /**
   * Runs a program in the sandbox (optionally with the shim preloaded) and waits for it: for
   * probes such as "does FIFREEZE fail in here". argv[0] is copied into a scratch directory
   * first, so that the sandbox user (65534 when running as root) can execute it wherever it was
   * built (e.g. a cache under /root).
   */
  static runSandboxed(
    argv: readonly string[],
    opts: { preload?: boolean; sandboxArgs?: readonly string[]; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
  ): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
    const [program, ...rest] = argv;
    if (!program) throw new DaemonBridgeError("argument", "runSandboxed: empty argv");
    const tools = buildHvDaemonTools();
    const scratch = mkdtempSync(join(tmpdir(), "hvsim-sbx-"));
    try {
      chmodSync(scratch, 0o755);
      const staged = join(scratch, basename(program));
      copyFileSync(program, staged);
      chmodSync(staged, 0o755);
      const args = [...(opts.sandboxArgs ?? [])];
      if (opts.preload) {
        copyFileSync(tools.shim, join(scratch, "shim.so"));
        chmodSync(join(scratch, "shim.so"), 0o644);
        args.push("--preload", join(scratch, "shim.so"));
      }
      const r = spawnSync(tools.sandbox, [...args, "--", staged, ...rest], {
        encoding: "utf8",
        env: opts.env ?? { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
        timeout: opts.timeoutMs ?? 10_000,
      });
      return { status: r.status, signal: r.signal, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }

  private opts: DaemonStartOptions | undefined;
  private tools: HvDaemonTools | undefined;
  private runDir: string | undefined;
  private ownRunDir = false;
  private pool: string | undefined;
  private socketPath: string | undefined;
  private relay: ChildProcess | undefined;
  private relayExited = false;
  private relayLog: string[] = [];
  private daemon: ChildProcess | undefined;
  private daemonExit: DaemonExit | undefined;
  private daemonPid: number | undefined;
  /** The fork server's current child (forked, not yet exited). */
  private childPid: number | undefined;
  /** The halves of a fork-server child's end seen so far (see childEnded). */
  private childEnd: { packet?: { conn: number; status: number }; line?: number } = {};
  private forkStart: { packet?: { conn: number; pid: number }; line?: boolean } = {};
  private runNo = 0;
  private stopped = false;
  private inbuf: Buffer = Buffer.alloc(0);
  private readonly conns = new Map<number, Conn>();
  private readonly history: BridgeEvent[] = [];
  private readonly consumed = new Set<number>();
  /** Per kind: every event of that kind before this history index has been consumed (waitFor's scan start). */
  private readonly scanFrom = new Map<BridgeEventKind, number>();
  /** The last event's seq (seqs keep counting when forgetEvents() empties the history). */
  private seqNo = 0;
  private waiters: Waiter[] = [];
  private readonly listeners = new Map<BridgeEventKind, Set<(e: BridgeEvent) => void>>();
  private openHandler: OpenHandler | undefined;
  private writeHandler: WriteHandler | undefined;
  private ioctlHandler: IoctlHandler | undefined;
  /** Answerable events not answered yet, by seq. */
  private readonly pending = new Map<number, { conn: number; event: OpenEvent | WriteEvent | IoctlEvent }>();
  private readyWaiter: ((ok: boolean) => void) | undefined;
  /** Errors thrown by handlers (the syscall was answered EIO). */
  readonly handlerErrors: Error[] = [];
  private readonly stderrBuf: string[] = [];

  // ---- decision handlers and listeners -----------------------------------------------------

  /**
   * Decides opens of the device. The default (also after onOpen(undefined)) accepts every open;
   * a handler returning undefined leaves the open waiting for event.respond().
   */
  onOpen(handler: OpenHandler | undefined): void {
    this.openHandler = handler;
    this.applyHandlerToPending("open");
  }

  /** Decides what each write() of the daemon returns. Without a handler writes wait for event.respond(). */
  onWrite(handler: WriteHandler | undefined): void {
    this.writeHandler = handler;
    this.applyHandlerToPending("write");
  }

  /** Decides FIFREEZE/FITHAW on mounts of the fake table (VSS). Without a handler they wait for event.respond(). */
  onIoctl(handler: IoctlHandler | undefined): void {
    this.ioctlHandler = handler;
    this.applyHandlerToPending("ioctl");
  }

  /** Subscribes to events of one kind; returns the unsubscribe function. */
  on<K extends BridgeEventKind>(kind: K, listener: (e: EventOf<K>) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    const l = listener as (e: BridgeEvent) => void;
    set.add(l);
    return () => set.delete(l);
  }

  onClose(listener: (e: CloseEvent) => void): () => void {
    return this.on("close", listener);
  }
  onRead(listener: (e: ReadEvent) => void): () => void {
    return this.on("read", listener);
  }
  onPoll(listener: (e: PollEvent) => void): () => void {
    return this.on("poll", listener);
  }
  onExit(listener: (e: ExitEvent) => void): () => void {
    return this.on("exit", listener);
  }
  onSyslog(listener: (e: SyslogEvent) => void): () => void {
    return this.on("syslog", listener);
  }

  // ---- state --------------------------------------------------------------------------------

  /** All events so far (since the last forgetEvents()), in order. */
  get events(): readonly BridgeEvent[] {
    return this.history;
  }

  /**
   * Empties the event history: waitFor then sees only later events. For long campaigns (the fuzz
   * harness calls it before every message) so that the history, which holds every write's bytes,
   * does not grow without bound. Unanswered events stay answerable; waits in progress go on.
   */
  forgetEvents(): void {
    this.history.length = 0;
    this.consumed.clear();
    this.scanFrom.clear();
  }

  /** The daemon's stderr lines (all runs; syslog lines included, in the shim's format). */
  get stderrLines(): readonly string[] {
    return this.stderrBuf;
  }

  get syslog(): readonly SyslogEvent[] {
    return this.history.filter((e): e is SyslogEvent => e.kind === "syslog");
  }

  /** The daemon's pool directory (its /var/lib/hyperv). */
  get poolDir(): string {
    if (!this.pool) throw new DaemonBridgeError("state", "not started");
    return this.pool;
  }

  /** The per-run directory (device socket, fake files); removed by stop(). */
  get runDirectory(): string | undefined {
    return this.runDir;
  }

  get pid(): number | undefined {
    return this.daemonExit ? undefined : this.daemonPid;
  }

  get running(): boolean {
    return this.daemon !== undefined && this.daemonExit === undefined;
  }

  get run(): number {
    return this.runNo;
  }

  /** The connection deliver()/hangup() use by default: the newest open one. */
  get connection(): number | undefined {
    let best: number | undefined;
    for (const c of this.conns.values()) if (c.state === "open" && !c.hungUp) best = c.id;
    return best;
  }

  poolFile(pool: number): string {
    if (!Number.isInteger(pool) || pool < 0 || pool > 4) throw new DaemonBridgeError("argument", `bad pool ${pool}`);
    return join(this.poolDir, `.kvp_pool_${pool}`);
  }

  /** Records of a pool file (strings end at their first NUL; bytes after it can be stale). */
  readPool(pool: number): PoolRecord[] {
    const path = this.poolFile(pool);
    if (!existsSync(path)) return [];
    const buf = readFileSync(path);
    const out: PoolRecord[] = [];
    for (let off = 0; off + KVP_RECORD_SIZE <= buf.length; off += KVP_RECORD_SIZE) {
      out.push({ key: cString(buf.subarray(off, off + 512)), value: cString(buf.subarray(off + 512, off + KVP_RECORD_SIZE)) });
    }
    return out;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Builds the tools if needed, starts the relay and the sandboxed daemon. */
  async start(opts: DaemonStartOptions): Promise<void> {
    if (this.opts) throw new DaemonBridgeError("state", "already started (use restart() or a new bridge)");
    const avail = opts.program || opts.daemonPath ? DaemonBridge.toolsAvailable() : DaemonBridge.available();
    if (!avail.ok) throw new DaemonBridgeError("unavailable", avail.reason);
    this.opts = opts;
    this.tools = buildHvDaemonTools(opts.build);
    live.add(this);
    installExitHook();
    try {
      this.layout(opts);
      await this.startRelay();
      this.spawnDaemon();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Stops the daemon (SIGTERM, then SIGKILL) and starts it again with the same options and pool. */
  async restart(opts: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<void> {
    if (!this.opts || this.stopped) throw new DaemonBridgeError("state", "not started");
    await this.stopDaemon(opts.signal ?? "SIGTERM", opts.timeoutMs ?? this.timeout());
    await this.waitConnsClosed(opts.timeoutMs ?? this.timeout());
    this.spawnDaemon();
  }

  /** Sends a signal to the daemon (SIGKILL: a crash). Returns false when it is not running. */
  kill(signal: NodeJS.Signals = "SIGKILL"): boolean {
    if (!this.running || !this.daemon) return false;
    return this.daemon.kill(signal);
  }

  /** Resolves with the daemon's exit (at once when it has exited). */
  exited(timeoutMs = this.timeout()): Promise<DaemonExit> {
    if (this.daemonExit) return Promise.resolve(this.daemonExit);
    if (!this.daemon) return Promise.reject(new DaemonBridgeError("state", "the daemon was not started"));
    const run = this.runNo;
    return this.waitFor("exit", { timeoutMs, match: (e) => e.run === run, what: "the daemon to exit" }).then((e) => ({
      code: e.code,
      signal: e.signal,
    }));
  }

  /**
   * Ends everything: the daemon (SIGTERM, SIGKILL after a grace), the relay, waiters (rejected
   * with "stopped") and the run directory. Never throws; safe to call more than once.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.stopDaemon("SIGTERM", 2000);
    } catch {
      // stopDaemon already escalated to SIGKILL
    }
    await this.stopRelay();
    const err = new DaemonBridgeError("stopped", "the bridge was stopped");
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
    this.readyWaiter?.(false);
    if (this.runDir && this.ownRunDir && !this.opts?.keepRunDir) rmSync(this.runDir, { recursive: true, force: true });
    live.delete(this);
  }

  /**
   * Synchronous last resort, used on process exit: SIGKILL to the daemon and the relay, and the
   * run directory removed. (After a SIGKILL of this process nothing here runs; the daemon still
   * dies of its parent-death signal and the relay of its stdin's EOF, the run directory stays.)
   */
  killNow(): void {
    try {
      if (this.running) this.daemon?.kill("SIGKILL");
      if (this.relay && !this.relayExited) this.relay.kill("SIGKILL");
      if (this.runDir && this.ownRunDir && !this.opts?.keepRunDir) rmSync(this.runDir, { recursive: true, force: true });
    } catch {
      // nothing left to do
    }
  }

  // ---- kernel side actions -----------------------------------------------------------------

  /**
   * Queues one message for the daemon's read() (hvutil_transport_send). With killAfterRead the
   * shim kills the daemon (SIGKILL) inside the read() that returns this message, after reporting
   * the read: the daemon has consumed it and done nothing with it (a crash at a defined point).
   */
  deliver(bytes: Uint8Array, conn = this.requireConn("deliver"), opts: { killAfterRead?: boolean } = {}): void {
    this.send(opts.killAfterRead ? T.DATA_KILL : T.DATA, conn, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  /**
   * The device goes away (hvutil_transport_destroy): from now on the daemon's poll reports
   * `pollRevents` (default POLLERR|POLLHUP), read and write fail with EBADF (defaults as in
   * hv_utils_transport.c). The connection closes when the daemon closes its fd (close event).
   */
  hangup(opts: { conn?: number; readErrno?: Errno; writeErrno?: Errno; pollRevents?: number } = {}): void {
    const conn = opts.conn ?? this.requireConn("hangup");
    const p = Buffer.alloc(12);
    p.writeInt32LE(errnoNumber(opts.readErrno ?? "EBADF"), 0);
    p.writeInt32LE(errnoNumber(opts.writeErrno ?? "EBADF"), 4);
    p.writeInt32LE(opts.pollRevents ?? POLLERR | POLLHUP, 8);
    this.send(T.HANGUP, conn, p);
    const c = this.conns.get(conn);
    if (c) c.hungUp = true;
  }

  /**
   * Test hook (relay.c HOLD): once the relay has forwarded the next frame to a connection (say
   * the result that unblocks the daemon's write), it sleeps `ms` before it next looks at the
   * daemon's connections, so that what the daemon does meanwhile (packets, a close, a new
   * connection) is all queued at once: reproduces delivery orderings deterministically.
   */
  holdRelay(ms: number): void {
    if (!Number.isInteger(ms) || ms < 0 || ms > 60_000) throw new DaemonBridgeError("argument", `holdRelay: ms must be 0..60000, got ${ms}`);
    const p = Buffer.alloc(4);
    p.writeUInt32LE(ms, 0);
    this.writeFrame(T.HOLD, 0, p);
  }

  /**
   * Fork server (start option forkServer): after a child-exit event, forks the next child from
   * the registered state; a forked event follows. Messages queued for the dead child are dropped.
   */
  respawn(conn = this.requireConn("respawn")): void {
    if (!this.opts?.forkServer) throw new DaemonBridgeError("state", "respawn: the bridge was not started with forkServer");
    this.send(T.RESPAWN, conn, Buffer.alloc(0));
  }

  // ---- waiting ------------------------------------------------------------------------------

  /**
   * Resolves with the first event of `kind` (matching `match`) that no earlier waitFor returned:
   * events that happened before the call count, and each is returned once. Rejects with a
   * DaemonBridgeError "timeout" after timeoutMs (default: the start option, 10 s), or "exited"
   * when the daemon exits while a daemon action (open/write/read/poll/ioctl) is awaited.
   */
  waitFor<K extends BridgeEventKind>(
    kind: K,
    opts: { timeoutMs?: number; match?: (e: EventOf<K>) => boolean; what?: string; exitGraceMs?: number } = {},
  ): Promise<EventOf<K>> {
    const match = (e: BridgeEvent): boolean =>
      e.kind === kind && !this.consumed.has(e.seq) && (!opts.match || opts.match(e as EventOf<K>));
    const found = this.scan(kind, match);
    if (found) {
      this.consumed.add(found.seq);
      return Promise.resolve(found as EventOf<K>);
    }
    if (this.stopped) return Promise.reject(new DaemonBridgeError("stopped", "the bridge was stopped"));
    const timeoutMs = opts.timeoutMs ?? this.timeout();
    const what = opts.what ?? `a ${kind} event`;
    return new Promise<EventOf<K>>((resolve, reject) => {
      let exitTimer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        clearTimeout(exitTimer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      const waiter: Waiter = {
        kind,
        match,
        resolve: (e) => {
          done();
          this.consumed.add(e.seq);
          resolve(e as EventOf<K>);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      const timer = setTimeout(
        () => waiter.reject(new DaemonBridgeError("timeout", `timed out after ${timeoutMs} ms waiting for ${what}. ${this.describe()}`)),
        timeoutMs,
      );
      if (DAEMON_ACTIONS.includes(kind)) {
        // A daemon that has exited does nothing more. Its last frames travel through the relay,
        // which forwards a connection's packets before its close: give up once every connection
        // of the run is closed and a grace period for not-yet-seen connections has passed.
        // exitGraceMs (default 500): how long to wait for connections not seen yet. A caller that
        // waits on a connection it knows (the fuzz harness waiting for an answer) passes 0.
        const grace = opts.exitGraceMs ?? 500;
        const repoll = Math.min(100, Math.max(2, grace));
        const checkExit = (): void => {
          if (!this.daemonExit || exitTimer) return;
          const run = this.runNo;
          const poll = (): void => {
            exitTimer = undefined;
            if (this.running || this.runNo !== run) return;
            const open = [...this.conns.values()].some((c) => c.run === run && (c.state === "open" || c.state === "opening"));
            if (open) exitTimer = setTimeout(poll, repoll);
            else waiter.reject(new DaemonBridgeError("exited", `the daemon exited while waiting for ${what}. ${this.describe()}`));
          };
          exitTimer = setTimeout(poll, grace);
        };
        (waiter as { onExit?: () => void }).onExit = checkExit;
        checkExit();
      }
      this.waiters.push(waiter);
    });
  }

  /** The first event in the history that `match`es; advances the kind's scan start past consumed events. */
  private scan(kind: BridgeEventKind, match: (e: BridgeEvent) => boolean): BridgeEvent | undefined {
    const hist = this.history;
    let start = this.scanFrom.get(kind) ?? 0;
    let advancing = true;
    let found: BridgeEvent | undefined;
    for (let i = start; i < hist.length; i++) {
      const e = hist[i]!;
      const done = e.kind !== kind || this.consumed.has(e.seq);
      if (!done && match(e)) {
        found = e;
        if (advancing) start = i + 1; // it is consumed by the caller
        break;
      }
      if (!done) advancing = false;
      else if (advancing) start = i + 1;
    }
    this.scanFrom.set(kind, start);
    return found;
  }

  /** One paragraph about the state, for error messages. */
  describe(): string {
    const service = this.opts ? (this.opts.program?.path ?? this.opts.daemonPath ?? DAEMON_PATHS[this.opts.service]) : "(not started)";
    const state = this.daemonExit
      ? `exited (code ${this.daemonExit.code}, signal ${this.daemonExit.signal})`
      : this.daemon
        ? `running (pid ${this.daemonPid})`
        : "not running";
    const pending = [...this.pending.values()].map((p) => `${p.event.kind}#${p.event.seq} on conn ${p.conn}`);
    const recent = this.history
      .filter((e) => e.kind !== "output" && e.kind !== "syslog")
      .slice(-6)
      .map(summarize);
    const tail = this.stderrBuf.slice(-8);
    return [
      `Daemon ${service}, run ${this.runNo}: ${state}.`,
      `Unanswered: ${pending.length ? pending.join(", ") : "none"}.`,
      `Last events: ${recent.length ? recent.join("; ") : "none"}.`,
      this.handlerErrors.length ? `Handler errors: ${this.handlerErrors.map((e) => e.message).join("; ")}.` : "",
      this.relayLog.length ? `Relay: ${this.relayLog.slice(-3).join("; ")}.` : "",
      `stderr tail: ${tail.length ? `\n  ${tail.join("\n  ")}` : "(empty)"}`,
    ]
      .filter(Boolean)
      .join(" ");
  }

  // ---- internals: setup ---------------------------------------------------------------------

  private timeout(): number {
    return this.opts?.timeoutMs ?? 10_000;
  }

  private sandboxIds(): { uid: number; gid: number } | undefined {
    if (typeof process.getuid !== "function" || process.getuid() !== 0) return undefined;
    return { uid: this.opts?.uid ?? 65534, gid: this.opts?.gid ?? 65534 };
  }

  private layout(opts: DaemonStartOptions): void {
    const tools = this.tools!;
    const dir = mkdtempSync(join(tmpdir(), "hvsim-hvd-"));
    this.runDir = dir;
    this.ownRunDir = true;
    chmodSync(dir, 0o755); // the sandbox user reads the files and connects to the socket
    const ids = this.sandboxIds();
    mkdirSync(join(dir, "dev"), { mode: 0o755 });
    this.socketPath = join(dir, "dev", DEVICE_NAMES[opts.service]);
    if (Buffer.byteLength(this.socketPath) > 107) throw new DaemonBridgeError("argument", `socket path too long: ${this.socketPath}`);
    copyFileSync(tools.shim, join(dir, "shim.so"));
    chmodSync(join(dir, "shim.so"), 0o644);
    if (opts.program) {
      copyFileSync(opts.program.path, join(dir, `program-${basename(opts.program.path)}`));
      chmodSync(join(dir, `program-${basename(opts.program.path)}`), 0o755);
    }

    this.pool = opts.poolDir ?? join(dir, "lib-hyperv");
    mkdirSync(this.pool, { recursive: true, mode: 0o755 });
    if (ids) {
      chownSync(this.pool, ids.uid, ids.gid);
      for (const f of readdirSync(this.pool)) chownSync(join(this.pool, f), ids.uid, ids.gid);
    }

    const id = opts.identity ?? {};
    const osRelease = id.osRelease === undefined ? DEFAULT_IDENTITY.osRelease : id.osRelease;
    if (osRelease !== null) writeFileSync(join(dir, "os-release"), osRelease, { mode: 0o644 });

    const mounts = opts.mounts ?? [];
    const table = mounts.map((m) => `${[m.fsname, m.dir, m.type, m.opts].map(escapeMountField).join(" ")} 0 0\n`).join("");
    writeFileSync(join(dir, "mounts"), table, { mode: 0o644 });

    const sys = join(dir, "sys");
    mkdirSync(join(sys, "class", "net"), { recursive: true, mode: 0o755 });
    mkdirSync(join(sys, "dev", "block"), { recursive: true, mode: 0o755 });
    mounts.forEach((m, i) => {
      // shim.c: stat(fsname) = block device 240:<line number>
      const blk = join(sys, "dev", "block", `240:${i + 1}`);
      mkdirSync(blk, { mode: 0o755 });
      if (m.loop) mkdirSync(join(blk, "loop"), { mode: 0o755 });
    });
    for (const nic of id.interfaces ?? []) {
      const d = join(sys, "class", "net", nic.name);
      mkdirSync(join(d, "device"), { recursive: true, mode: 0o755 });
      if (nic.mac !== undefined) writeFileSync(join(d, "address"), `${nic.mac}\n`, { mode: 0o644 });
      if (nic.deviceId !== undefined) writeFileSync(join(d, "device", "device_id"), `${nic.deviceId}\n`, { mode: 0o644 });
    }
  }

  private daemonEnv(): Record<string, string> {
    const opts = this.opts!;
    const dir = this.runDir!;
    const id = opts.identity ?? {};
    const uname = { ...DEFAULT_IDENTITY.uname, ...(id.uname ?? {}) };
    const hostname = id.hostname ?? DEFAULT_IDENTITY.hostname;
    const env: Record<string, string> = {
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      LC_ALL: "C",
      TZ: "UTC",
      HVSIM_DEVICE_DIR: join(dir, "dev"),
      HVSIM_KVP_DIR: this.pool!,
      HVSIM_MOUNTS: join(dir, "mounts"),
      HVSIM_SYS_DIR: join(dir, "sys"),
      HVSIM_HOSTNAME: hostname,
      HVSIM_PID: String(id.pid ?? DEFAULT_IDENTITY.pid),
      HVSIM_FQDN: id.fqdn ?? hostname,
      HVSIM_UNAME_SYSNAME: uname.sysname,
      HVSIM_UNAME_RELEASE: uname.release,
      HVSIM_UNAME_VERSION: uname.version,
      HVSIM_UNAME_MACHINE: uname.machine,
      HVSIM_IFADDRS: (id.interfaces ?? []).map((n) => `${n.name} ${n.address}`).join(";"),
      ...(opts.forkServer ? { HVSIM_FORKSERVER: "1" } : {}),
      ...(opts.env ?? {}),
    };
    if (existsSync(join(dir, "os-release"))) env.HVSIM_OS_RELEASE = join(dir, "os-release");
    return env;
  }

  private startRelay(): Promise<void> {
    const relay = spawn(this.tools!.relay, [this.socketPath!], { stdio: ["pipe", "pipe", "pipe"] });
    this.relay = relay;
    relay.stdout.on("data", (chunk: Buffer) => this.onRelayData(chunk));
    lines(relay.stderr, (line) => this.relayLog.push(line));
    relay.stdin.on("error", () => undefined); // EPIPE after the relay died is reported by "exit"
    const timeoutMs = this.timeout();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.readyWaiter = undefined;
        reject(new DaemonBridgeError("relay", `the relay did not become ready within ${timeoutMs} ms. ${this.relayLog.join("; ")}`));
      }, timeoutMs);
      this.readyWaiter = (ok) => {
        clearTimeout(timer);
        this.readyWaiter = undefined;
        if (ok) resolve();
        else reject(new DaemonBridgeError("relay", `the relay exited before it was ready: ${this.relayLog.join("; ") || "no output"}`));
      };
      relay.on("error", (e) => {
        this.relayLog.push(`spawn failed: ${e.message}`);
        this.relayExited = true;
        this.readyWaiter?.(false);
      });
      relay.on("exit", (code, signal) => {
        this.relayExited = true;
        if (!this.stopped) this.relayLog.push(`relay exited (code ${code}, signal ${signal})`);
        this.readyWaiter?.(false);
      });
    });
  }

  /** The sandbox launcher's command line for the daemon (shim preloaded). */
  private daemonCommand(ids: { uid: number; gid: number } | undefined): string[] {
    const opts = this.opts!;
    const sandboxArgs = ["--preload", [...(opts.preload ?? []), join(this.runDir!, "shim.so")].join(":")];
    if (ids) sandboxArgs.push("--uid", String(ids.uid), "--gid", String(ids.gid));
    const argv = opts.program
      ? [join(this.runDir!, `program-${basename(opts.program.path)}`), ...(opts.program.args ?? [])]
      : [opts.daemonPath ?? DAEMON_PATHS[opts.service], "-n"];
    return [this.tools!.sandbox, ...sandboxArgs, "--", ...argv];
  }

  /**
   * Lays out the run directory as start() does and gives the sandboxed daemon's command line and
   * environment WITHOUT starting the relay or the daemon: for a driver that runs the daemon
   * itself, e.g. afl-fuzz running the shim's self-contained mode (sim/targets/hvdaemon/afl.ts).
   * `ids`: the identity the whole command already runs as (then the sandbox does not switch).
   * stop() removes the run directory.
   */
  prepare(opts: DaemonStartOptions, ids?: { uid: number; gid: number }): { runDir: string; poolDir: string; argv: string[]; env: Record<string, string> } {
    if (this.opts) throw new DaemonBridgeError("state", "already started");
    const avail = DaemonBridge.toolsAvailable();
    if (!avail.ok) throw new DaemonBridgeError("unavailable", avail.reason);
    this.opts = { ...opts, ...(ids ? ids : {}) };
    this.tools = buildHvDaemonTools(opts.build);
    live.add(this);
    installExitHook();
    this.layout(this.opts);
    const [launcher, ...rest] = this.daemonCommand(ids ? undefined : this.sandboxIds());

    let prog = launcher!;
    if (ids) {
      // The launcher runs as that user, who may not reach the cache (under /root): a copy here.
      prog = join(this.runDir!, "sandbox");
      copyFileSync(launcher!, prog);
      chmodSync(prog, 0o755);
    }
    return { runDir: this.runDir!, poolDir: this.pool!, argv: [prog, ...rest], env: this.daemonEnv() };
  }

  private spawnDaemon(): void {
    const [launcher, ...args] = this.daemonCommand(this.sandboxIds());
    this.runNo += 1;
    const run = this.runNo;
    this.daemonExit = undefined;
    const child = spawn(launcher!, args, {
      env: this.daemonEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.daemon = child;
    this.daemonPid = child.pid;
    const onLine = (stream: "stdout" | "stderr") => (line: string) => this.onOutput(run, stream, line);
    lines(child.stdout, onLine("stdout"));
    lines(child.stderr, onLine("stderr"));
    let exited = false;
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (exited) return;
      exited = true;
      if (this.daemon === child) this.daemonExit = { code, signal };
      this.emit({ kind: "exit", seq: 0, run, pid: child.pid, code, signal });
      for (const w of this.waiters) (w as { onExit?: () => void }).onExit?.();
    };
    child.on("error", (e) => {
      this.onOutput(run, "stderr", `hvsim-sandbox: spawn failed: ${e.message}`);
      onExit(null, null);
    });
    // "close", not "exit": the exit event comes after the daemon's last output line, so what it
    // printed before dying (its last syslog line, a sanitizer report) is always seen first.
    child.on("close", onExit);
  }

  private async stopDaemon(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (!this.running || !this.daemon) return;
    const child = this.daemon;
    const gone = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    child.kill(signal);
    const graceful = await Promise.race([gone.then(() => true), delay(Math.min(timeoutMs, 2000)).then(() => false)]);
    if (!graceful) {
      child.kill("SIGKILL");
      await Promise.race([gone, delay(timeoutMs)]);
    }
  }

  private async waitConnsClosed(timeoutMs: number): Promise<void> {
    const deadline = timeoutMs;
    for (let waited = 0; waited < deadline; waited += 20) {
      if (![...this.conns.values()].some((c) => c.state === "open" || c.state === "opening")) return;
      await delay(20);
    }
  }

  private async stopRelay(): Promise<void> {
    const relay = this.relay;
    if (!relay || this.relayExited) return;
    const gone = new Promise<void>((resolve) => {
      if (relay.exitCode !== null || relay.signalCode !== null) resolve();
      else relay.once("exit", () => resolve());
    });
    try {
      this.writeFrame(T.SHUTDOWN, 0, Buffer.alloc(0));
      relay.stdin?.end();
    } catch {
      // the relay is already gone
    }
    if (!(await Promise.race([gone.then(() => true), delay(1000).then(() => false)]))) {
      relay.kill("SIGKILL");
      await Promise.race([gone, delay(2000)]);
    }
  }

  // ---- internals: frames ---------------------------------------------------------------------

  private requireConn(what: string): number {
    const c = this.connection;
    if (c === undefined) throw new DaemonBridgeError("state", `${what}: the daemon has no open connection to the device. ${this.describe()}`);
    return c;
  }

  private writeFrame(type: number, conn: number, payload: Buffer): void {
    if (!this.relay || this.relayExited || !this.relay.stdin || this.relay.stdin.destroyed) {
      throw new DaemonBridgeError("relay", `the relay is not running. ${this.relayLog.slice(-3).join("; ")}`);
    }
    const h = Buffer.alloc(FRAME_HDR);
    h.writeUInt32LE(payload.length, 0);
    h.writeUInt16LE(type, 4);
    h.writeUInt32LE(conn, 8);
    this.relay.stdin.write(Buffer.concat([h, payload]));
  }

  private send(type: number, conn: number, payload: Buffer): void {
    if (!Number.isInteger(conn) || conn <= 0) throw new DaemonBridgeError("argument", `bad connection ${conn}`);
    this.writeFrame(type, conn, payload);
  }

  private onRelayData(chunk: Buffer): void {
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : chunk;
    let off = 0;
    while (this.inbuf.length - off >= FRAME_HDR) {
      const len = this.inbuf.readUInt32LE(off);
      if (this.inbuf.length - off - FRAME_HDR < len) break;
      const type = this.inbuf.readUInt16LE(off + 4);
      const conn = this.inbuf.readUInt32LE(off + 8);
      const payload = Buffer.from(this.inbuf.subarray(off + FRAME_HDR, off + FRAME_HDR + len));
      off += FRAME_HDR + len;
      this.onFrame(type, conn, payload);
    }
    this.inbuf = this.inbuf.subarray(off);
  }

  private onFrame(type: number, connId: number, p: Buffer): void {
    const run = this.runNo;
    switch (type) {
      case T.READY:
        this.readyWaiter?.(true);
        return;
      case T.LOG:
        this.relayLog.push(p.toString("utf8"));
        return;
      case T.OPEN: {
        const device = p.subarray(8).toString("utf8");
        const conn: Conn = { id: connId, run, device, state: "opening", hungUp: false };
        this.conns.set(connId, conn);
        this.decision<OpenEvent, OpenResult>(
          connId,
          { kind: "open", seq: 0, run, conn: connId, device, flags: p.readInt32LE(0), pid: p.readInt32LE(4) },
          (r) => {
            const err = r === "accept" ? 0 : isErrnoResult(r) ? errnoNumber(r.errno) : -1;
            if (err < 0) throw new DaemonBridgeError("argument", `open result must be "accept" or {errno}, got ${JSON.stringify(r)}`);
            const b = Buffer.alloc(4);
            b.writeInt32LE(err, 0);
            if (conn.state === "opening") conn.state = err === 0 ? "open" : "refused";
            return [T.OPEN_RESULT, b];
          },
          this.openHandler ?? acceptAll,
        );
        return;
      }
      case T.FS:
        // The shim's filesystem channel: ioctls come on it; it is no open of the device.
        this.conns.set(connId, { id: connId, run, device: "(filesystem)", state: "fs", hungUp: false });
        return;
      case T.WRITE: {
        const data = p;
        this.decision<WriteEvent, WriteResult>(
          connId,
          { kind: "write", seq: 0, run, conn: connId, data },
          (r) => [T.WRITE_RESULT, resultI64(r, "write")],
          this.writeHandler,
        );
        return;
      }
      case T.IOCTL: {
        const cmd = p.readUInt32LE(0);
        this.decision<IoctlEvent, IoctlResult>(
          connId,
          {
            kind: "ioctl",
            seq: 0,
            run,
            conn: connId,
            cmd,
            request: cmd === FITHAW ? "FITHAW" : "FIFREEZE",
            path: p.subarray(4).toString("utf8"),
          },
          (r) => [T.IOCTL_RESULT, resultI64(r, "ioctl")],
          this.ioctlHandler,
        );
        return;
      }
      case T.READ: {
        const result = p.readInt32LE(4);
        this.emit({
          kind: "read",
          seq: 0,
          run,
          conn: connId,
          count: p.readUInt32LE(0),
          result,
          errno: result < 0 ? errnoName(-result) : undefined,
        });
        return;
      }
      case T.FORKED:
        this.forkStart.packet = { conn: connId, pid: p.readInt32LE(0) };
        this.childStarted(run);
        return;
      case T.CHILD_EXIT:
        this.childEnd.packet = { conn: connId, status: p.readInt32LE(0) };
        this.childEnded(run);
        return;
      case T.POLL:
        this.emit({ kind: "poll", seq: 0, run, conn: connId, events: p.readUInt32LE(0), timeoutMs: p.readInt32LE(4) });
        return;
      case T.CLOSE: {
        const c = this.conns.get(connId);
        for (const [seq, pend] of this.pending) if (pend.conn === connId) this.pending.delete(seq);
        if (!c) return; // connected and left without opening
        if (c.state === "fs") {
          c.state = "closed"; // the filesystem channel ends with the daemon: no device close
          return;
        }
        const wasOpen = c.state === "open";
        const refused = c.state === "refused";
        c.state = "closed";
        if (refused) return;
        this.emit({ kind: "close", seq: 0, run: c.run, conn: connId, device: c.device, wasOpen, hungUp: c.hungUp });
        return;
      }
      case T.DROPPED: {
        const c = this.conns.get(connId);
        if (c?.state === "closed" || c?.state === "refused") return; // raced with the close
        this.emit({ kind: "dropped", seq: 0, run, conn: connId, type: p.readUInt16LE(0), errno: errnoName(p.readInt32LE(4)) });
        return;
      }
      default:
        this.relayLog.push(`unknown frame type 0x${type.toString(16)} on conn ${connId}`);
    }
  }

  /** A fork-server child's start: its FORKED packet and the shim's "forking" line (after the parent's output). */
  private childStarted(run: number): void {
    const { packet, line } = this.forkStart;
    if (!packet || !line) return;
    this.forkStart = {};
    this.childPid = packet.pid;
    this.emit({ kind: "forked", seq: 0, run, conn: packet.conn, pid: packet.pid });
  }

  /**
   * A fork-server child's end is complete with both its CHILD_EXIT packet (after all its packets)
   * and the shim's stderr line (after all its output): then the child-exit event, and the waits
   * for daemon actions end ("exited").
   */
  private childEnded(run: number): void {
    const { packet, line } = this.childEnd;
    if (!packet || line === undefined) return;
    this.childEnd = {};
    const st = packet.status;
    const sig = st & 0x7f;
    const code = sig === 0 ? (st >> 8) & 0xff : null;
    const signal = sig !== 0 && sig !== 0x7f ? ((signalNames.get(sig) ?? null) as NodeJS.Signals | null) : null;
    const pid = this.childPid ?? line;
    this.childPid = undefined;
    this.emit({ kind: "child-exit", seq: 0, run, conn: packet.conn, pid, code, signal });
    const err = new DaemonBridgeError("exited", `the daemon (fork-server child ${pid}) exited (code ${code}, signal ${signal}). ${this.describe()}`);
    for (const w of [...this.waiters]) if (DAEMON_ACTIONS.includes(w.kind)) w.reject(err);
  }

  /** Records an answerable event and runs its handler. */
  private decision<E extends OpenEvent | WriteEvent | IoctlEvent, R>(
    conn: number,
    base: Omit<E, "respond" | "answered">,
    encode: (r: R) => [number, Buffer],
    handler: ((e: E) => MaybePromise<R | undefined>) | undefined,
  ): void {
    let answered = false;
    const event = {
      ...base,
      get answered() {
        return answered;
      },
      respond: (r: R) => {
        if (answered) throw new DaemonBridgeError("state", `${base.kind}#${event.seq} was already answered`);
        const [type, payload] = encode(r);
        answered = true;
        this.pending.delete(event.seq);
        const c = this.conns.get(conn);
        if (c && c.state !== "closed" && !this.relayExited) this.send(type, conn, payload);
      },
    } as unknown as E;
    this.emit(event);
    this.pending.set(event.seq, { conn, event });
    if (handler) this.runHandler(event, handler);
  }

  private runHandler<E extends OpenEvent | WriteEvent | IoctlEvent, R>(event: E, handler: (e: E) => MaybePromise<R | undefined>): void {
    const answer = (r: R | undefined): void => {
      if (r === undefined || event.answered) return;
      try {
        (event.respond as (r: R) => void)(r);
      } catch (e) {
        this.handlerFailed(event, e);
      }
    };
    try {
      const r = handler(event);
      if (r instanceof Promise) r.then(answer, (e: unknown) => this.handlerFailed(event, e));
      else answer(r);
    } catch (e) {
      this.handlerFailed(event, e);
    }
  }

  private handlerFailed(event: OpenEvent | WriteEvent | IoctlEvent, e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.handlerErrors.push(err);
    if (!event.answered) {
      try {
        (event.respond as (r: ErrnoResult) => void)({ errno: "EIO" });
      } catch {
        // the connection is gone
      }
    }
  }

  private applyHandlerToPending(kind: "open" | "write" | "ioctl"): void {
    const handler = kind === "open" ? (this.openHandler ?? acceptAll) : kind === "write" ? this.writeHandler : this.ioctlHandler;
    if (!handler) return;
    for (const p of [...this.pending.values()]) {
      if (p.event.kind === kind && !p.event.answered) this.runHandler(p.event as OpenEvent, handler as OpenHandler);
    }
  }

  private onOutput(run: number, stream: "stdout" | "stderr", line: string): void {
    if (stream === "stderr") this.stderrBuf.push(line);
    const m = /^syslog:(\d+):([^:]*): (.*)$/.exec(line);
    if (m && stream === "stderr") {
      this.emit({ kind: "syslog", seq: 0, run, level: Number(m[1]), ident: m[2] ?? "", message: (m[3] ?? "").replace(/\\n/g, "\n") });
      return;
    }
    const source = line.startsWith("hvsim-shim: ") ? "shim" : line.startsWith("hvsim-sandbox: ") ? "sandbox" : "daemon";
    this.emit({ kind: "output", seq: 0, run, stream, source, line });
    const ended = stream === "stderr" && source === "shim" ? /^hvsim-shim: fork server: child (\d+) ended /.exec(line) : null;
    if (ended) {
      this.childEnd.line = Number(ended[1]);
      this.childEnded(run);
    } else if (stream === "stderr" && line === "hvsim-shim: fork server: forking a child") {
      this.forkStart.line = true;
      this.childStarted(run);
    }
  }

  private emit(e: BridgeEvent): void {
    (e as { seq: number }).seq = ++this.seqNo;
    this.history.push(e);
    for (const l of this.listeners.get(e.kind) ?? []) {
      try {
        l(e);
      } catch (err) {
        this.handlerErrors.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    for (const w of [...this.waiters]) {
      if (w.kind === e.kind && !this.consumed.has(e.seq) && w.match(e)) {
        w.resolve(e);
        break;
      }
    }
  }
}

const acceptAll: OpenHandler = () => "accept";

/** Events only a running daemon causes (their waits end when it exits). */
const DAEMON_ACTIONS: readonly BridgeEventKind[] = ["open", "write", "read", "poll", "ioctl"];

const signalNames = new Map<number, string>();
for (const [name, n] of Object.entries(osConstants.signals)) if (!signalNames.has(n)) signalNames.set(n, name);

function resultI64(r: number | ErrnoResult, what: string): Buffer {
  const b = Buffer.alloc(8);
  if (typeof r === "number") {
    if (!Number.isSafeInteger(r) || r < 0) throw new DaemonBridgeError("argument", `${what} result must be a count >= 0 or {errno}, got ${r}`);
    b.writeBigInt64LE(BigInt(r), 0);
  } else if (isErrnoResult(r)) {
    b.writeBigInt64LE(BigInt(-errnoNumber(r.errno)), 0);
  } else {
    throw new DaemonBridgeError("argument", `${what} result must be a count or {errno}, got ${JSON.stringify(r)}`);
  }
  return b;
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString("utf8");
}

function summarize(e: BridgeEvent): string {
  switch (e.kind) {
    case "open":
      return `#${e.seq} open ${e.device} conn ${e.conn}${e.answered ? "" : " (unanswered)"}`;
    case "write":
      return `#${e.seq} write ${e.data.length} bytes conn ${e.conn}${e.answered ? "" : " (unanswered)"}`;
    case "ioctl":
      return `#${e.seq} ioctl ${e.request} ${e.path}${e.answered ? "" : " (unanswered)"}`;
    case "read":
      return `#${e.seq} read(${e.count}) = ${e.errno ?? e.result}`;
    case "poll":
      return `#${e.seq} poll conn ${e.conn}`;
    case "close":
      return `#${e.seq} close conn ${e.conn}`;
    case "exit":
      return `#${e.seq} exit code ${e.code} signal ${e.signal}`;
    case "dropped":
      return `#${e.seq} dropped frame 0x${e.type.toString(16)} conn ${e.conn} (${e.errno})`;
    default:
      return `#${e.seq} ${e.kind}`;
  }
}
