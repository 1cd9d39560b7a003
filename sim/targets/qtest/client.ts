// Client for QEMU's qtest text protocol (qemu system/qtest.c): one command line out, one reply
// line back, over a child process's stdin/stdout (`-qtest stdio`) or a UNIX socket
// (`-qtest unix:PATH,server=on,wait=off`). Asynchronous `IRQ raise N` / `IRQ lower N` lines (after
// irq_intercept_in/out) may arrive at any time, also between a command and its reply; they are
// kept apart from replies, in order, each stamped with the number of replies received before it.
//
// One command is in flight at a time; the others wait in a queue. Each command has a timeout.
// After a timeout the stream cannot be trusted any more (a late reply would be taken for the next
// command's), so the client refuses every further command: close it and start a new one.
//
// This adapter talks to real processes and so may use wall-clock timers (see eslint.config.js).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { isExecutable } from "../program.ts";

// ---------------------------------------------------------------------------------------------
// Errors

export type QtestErrorKind =
  | "timeout" // no reply within the command's timeout
  | "fail" // the target answered FAIL ... (or ERR ...)
  | "malformed" // a reply the command does not expect, or a line while no command was in flight
  | "exited" // the process exited / the connection closed
  | "spawn" // the process could not be started / the socket not connected
  | "closed" // close() was called
  | "unusable" // an earlier timeout or protocol error left the stream out of sync
  | "argument"; // the caller passed a value the protocol cannot carry

export class QtestError extends Error {
  override name = "QtestError";
  constructor(
    readonly kind: QtestErrorKind,
    message: string,
    /** The command line concerned, when there is one. */
    readonly command?: string,
    /** The raw reply line, for "fail" and "malformed". */
    readonly reply?: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Events and options

export interface QtestIrqEvent {
  readonly level: "raise" | "lower";
  readonly irq: number;
  /** How many replies had been received when this line arrived (its position in the reply sequence). */
  readonly afterReplies: number;
  /** The command in flight when it arrived, if any (the IRQ was caused by or during it). */
  readonly during: string | undefined;
  /** The line as received, e.g. `IRQ raise 9`. */
  readonly raw: string;
}

export interface QtestExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface QtestClientOptions {
  /** Per-command timeout in ms (default 10000; the first command also waits for QEMU to start). */
  timeoutMs?: number;
  /** close(): how long to wait after closing stdin before SIGTERM, and after SIGTERM before SIGKILL (default 1000). */
  closeGraceMs?: number;
  /** How many stderr lines to keep for error messages (default 20). */
  stderrLines?: number;
  /** Called for each IRQ line, after it has been appended to `irqEvents`. */
  onIrq?: (event: QtestIrqEvent) => void;
}

export interface QtestSpawnOptions extends QtestClientOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface QtestConnectOptions extends QtestClientOptions {
  /** Keep retrying ENOENT / ECONNREFUSED for this long (ms, default 10000): QEMU creates its socket asynchronously. */
  connectTimeoutMs?: number;
  /**
   * A process serving the socket, owned by the client: reaped by close(), its exit and (when piped)
   * stderr reported. Its stdout is not read: give it `stdio: ["ignore", "ignore", "pipe"]` or similar.
   */
  child?: ChildProcess;
}

export interface CommandOptions {
  /** Overrides the client's per-command timeout. */
  timeoutMs?: number;
}

// ---------------------------------------------------------------------------------------------
// Locating a qtest-enabled QEMU, and the standard q35 argument list

/** Arguments for a q35 machine under the qtest accelerator, protocol on stdio, no log; data files and SeaBIOS from Debian's qemu-system-x86 / seabios (the qtest binary has no data files of its own). */
export const Q35_QTEST_ARGS: readonly string[] = Object.freeze([
  "-machine", "q35,pit=off,hpet=off",
  "-accel", "qtest",
  "-display", "none",
  "-nodefaults",
  "-qtest", "stdio",
  "-qtest-log", "/dev/null",
  "-L", "/usr/share/qemu",
  "-bios", "/usr/share/seabios/bios-256k.bin",
]);

/** Q35_QTEST_ARGS followed by `extra`. */
export function q35QtestArgs(extra: readonly string[] = []): string[] {
  return [...Q35_QTEST_ARGS, ...extra];
}

export type QtestQemuLookup = { path: string } | { reason: string };

export interface FindQtestQemuOptions {
  env?: NodeJS.ProcessEnv;
  /** Start the binary once to check that it answers under -accel qtest (default true; cached per path). */
  verify?: boolean;
}

const verified = new Map<string, string | null>();

/**
 * Finds a qemu-system-x86_64 with the qtest accelerator without building one: `HVSIM_QEMU_QTEST`
 * when set (an explicit setting that does not work is reported, not skipped over), else the cache
 * of scripts/build-qemu-qtest.sh, `${HVSIM_CACHE:-~/.cache/hvsim}/qemu-qtest/<version>/`,
 * preferring the installed qemu-system-x86's source version. Also checks the data files that
 * Q35_QTEST_ARGS names. Returns `{ reason }` saying what is missing and how to get it.
 */
export function findQtestQemu(options: FindQtestQemuOptions = {}): QtestQemuLookup {
  const env = options.env ?? process.env;
  const verify = options.verify ?? true;
  const build = "run scripts/build-qemu-qtest.sh (as root) or set HVSIM_QEMU_QTEST";
  let path: string;
  const explicit = env.HVSIM_QEMU_QTEST;
  if (explicit) {
    if (!isExecutable(explicit)) return { reason: `HVSIM_QEMU_QTEST=${explicit} is not an executable file` };
    path = explicit;
  } else {
    const root = join(env.HVSIM_CACHE || join(env.HOME || homedir(), ".cache", "hvsim"), "qemu-qtest");
    const found = cachedBinary(root);
    if (!found) return { reason: `no qtest-enabled QEMU in ${root}: ${build}` };
    path = found;
  }
  for (const file of ["/usr/share/seabios/bios-256k.bin", "/usr/share/qemu"]) {
    if (!existsSync(file)) return { reason: `${file} is missing (install Debian's qemu-system-x86 and seabios)` };
  }
  if (verify) {
    const problem = probeQtest(path);
    if (problem) return { reason: `${path} does not work as a qtest QEMU: ${problem}${explicit ? "" : `; ${build}`}` };
  }
  return { path };
}

function cachedBinary(root: string): string | undefined {
  const name = "qemu-system-x86_64";
  const installed = installedSourceVersion();
  if (installed) {
    const exact = join(root, installed, name);
    if (isExecutable(exact)) return exact;
  }
  let dirs: string[];
  try {
    dirs = readdirSync(root);
  } catch {
    return undefined;
  }
  // Another version's build: the newest one (it still runs with the installed data files).
  const candidates = dirs
    .map((d) => join(root, d, name))
    .filter(isExecutable)
    .map((p) => ({ p, t: statSync(p).mtimeMs }))
    .sort((a, b) => b.t - a.t || (a.p < b.p ? -1 : 1));
  return candidates[0]?.p;
}

function installedSourceVersion(): string | undefined {
  const r = spawnSync("dpkg-query", ["-W", "-f=${db:Status-Status} ${source:Version}", "qemu-system-x86"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  const m = r.status === 0 ? /^installed (\S+)$/.exec(r.stdout.trim()) : null;
  if (!m) return undefined;
  const version = m[1]!;
  return version.slice(version.indexOf(":") + 1); // the cache directory has no epoch
}

// Run in a separate node process so that findQtestQemu() can stay synchronous: QEMU does not exit
// when its qtest stdin closes, so the probe reads the first reply line and kills it.
const PROBE_SCRIPT = `
const { spawn } = require("node:child_process");
const c = spawn(process.argv[1], process.argv.slice(2), { stdio: ["pipe", "pipe", "pipe"] });
let out = "", err = "", finished = false;
const done = (extra) => {
  if (finished) return;
  finished = true;
  try { c.kill("SIGKILL"); } catch {}
  process.stdout.write(JSON.stringify({ out, err, ...extra }));
  process.exit(0);
};
c.stdout.setEncoding("utf8");
c.stderr.setEncoding("utf8");
c.stdout.on("data", (d) => { out += d; if (out.includes("\\n")) done({}); });
c.stderr.on("data", (d) => { err += d; });
c.on("exit", (code, signal) => setTimeout(() => done({ code, signal }), 50));
c.on("error", (e) => done({ error: e.message }));
c.stdin.on("error", () => {});
c.stdin.write("clock_step 7\\n");
setTimeout(() => done({ timeout: true }), 15000);
`;

/** Starts the binary under -accel qtest and asks `clock_step 7`; null when it answers `OK 7`. */
function probeQtest(path: string): string | null {
  const cached = verified.get(path);
  if (cached !== undefined) return cached;
  const args = ["-machine", "none", "-accel", "qtest", "-display", "none", "-nodefaults", "-qtest", "stdio", "-qtest-log", "/dev/null"];
  const r = spawnSync(process.execPath, ["-e", PROBE_SCRIPT, path, ...args], { encoding: "utf8", timeout: 30_000 });
  let problem: string | null = null;
  try {
    const res = JSON.parse(r.stdout) as { out: string; err: string; code?: number | null; signal?: string | null; error?: string; timeout?: boolean };
    if (!res.out.startsWith("OK 7\n")) {
      const err = res.err.trim().split("\n").slice(-3).join(" | ");
      const how = res.error ?? (res.timeout ? "no reply within 15 s" : `exit ${res.code ?? res.signal}`);
      problem = `probe \`clock_step 7\` answered ${JSON.stringify(res.out.slice(0, 80))} (${how})${err ? `, stderr: ${err}` : ""}`;
    }
  } catch {
    problem = `probe failed: ${r.error?.message ?? `node exited ${r.status ?? r.signal}: ${r.stderr.slice(0, 200)}`}`;
  }
  verified.set(path, problem);
  return problem;
}

// ---------------------------------------------------------------------------------------------
// The client

interface Pending {
  readonly line: string;
  readonly timeoutMs: number;
  readonly resolve: (reply: string) => void;
  readonly reject: (error: QtestError) => void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_GRACE_MS = 1_000;

function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}

function checkAddr(addr: number | bigint, what = "address"): bigint {
  const ok = typeof addr === "bigint" ? addr >= 0n && addr <= 0xffff_ffff_ffff_ffffn : Number.isSafeInteger(addr) && addr >= 0;
  if (!ok) throw new QtestError("argument", `${what} must be an integer in 0..2^64-1, got ${String(addr)}`);
  return BigInt(addr);
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new QtestError("argument", `port must be in 0..0xffff, got ${port}`);
  return port;
}

function checkValue(value: number | bigint, bits: 8 | 16 | 32 | 64): bigint {
  const max = (1n << BigInt(bits)) - 1n;
  const ok = typeof value === "bigint" ? value >= 0n && value <= max : Number.isSafeInteger(value) && value >= 0 && BigInt(value) <= max;
  if (!ok) throw new QtestError("argument", `value must be an unsigned ${bits}-bit integer, got ${String(value)}`);
  return BigInt(value);
}

function checkSize(size: number): number {
  // QEMU g_assert()s a zero length, which aborts the process.
  if (!Number.isSafeInteger(size) || size < 1) throw new QtestError("argument", `size must be a positive integer, got ${size}`);
  return size;
}

export class QtestClient {
  /** IRQ lines received so far, in order. */
  readonly irqEvents: QtestIrqEvent[] = [];
  /** Replies received so far. */
  replyCount = 0;

  private readonly timeoutMs: number;
  private readonly graceMs: number;
  private readonly stderrKeep: number;
  private readonly onIrq: ((event: QtestIrqEvent) => void) | undefined;
  private readonly queue: Pending[] = [];
  private inFlight: Pending | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stdoutBuf = "";
  private stderrBuf = "";
  private readonly stderrTail: string[] = [];
  /** Set once no further command can succeed; every later command is rejected with it. */
  private dead: QtestError | undefined;
  /** A line that arrived while no command was in flight: the next command is rejected with it. */
  private stray: string | undefined;
  private exitInfo: QtestExit | undefined;
  private readonly exited: Promise<QtestExit | undefined>;
  private resolveExited!: (exit: QtestExit | undefined) => void;
  private outputEnded = false;
  private closing: Promise<QtestExit | undefined> | undefined;
  private readonly description: string;

  private constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly child: ChildProcess | undefined,
    private readonly socket: Socket | undefined,
    description: string,
    options: QtestClientOptions,
  ) {
    this.description = description;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.graceMs = options.closeGraceMs ?? DEFAULT_GRACE_MS;
    this.stderrKeep = options.stderrLines ?? 20;
    this.onIrq = options.onIrq;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));

    input.setEncoding("utf8");
    input.on("data", (chunk: string) => this.onData(chunk));
    input.on("end", () => this.onOutputEnd());
    input.on("error", () => this.onOutputEnd());
    output.on("error", () => {
      // EPIPE and the like: the process is going away; its exit is what gets reported.
    });
    if (child) {
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (chunk: string) => this.onStderr(chunk));
      child.on("error", (err) => {
        this.die(new QtestError("spawn", `${this.description}: could not start: ${err.message}`));
        if (child.pid === undefined) this.resolveExited(undefined);
      });
      if (child.exitCode !== null || child.signalCode !== null) {
        // Already gone (a child handed to connect()): its exit event has passed.
        this.exitInfo = { code: child.exitCode, signal: child.signalCode };
        this.resolveExited(this.exitInfo);
      }
      child.on("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        this.resolveExited(this.exitInfo);
        // Let stdout drain first: a reply written just before exiting still counts.
        if (this.outputEnded) this.onGone();
        else setTimeout(() => this.onGone(), 250);
      });
    } else {
      this.resolveExited(undefined);
    }
  }

  /** Spawns `command args` speaking qtest on its stdin/stdout. */
  static spawn(command: string, args: readonly string[] = [], options: QtestSpawnOptions = {}): QtestClient {
    const child = spawn(command, [...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    return new QtestClient(child.stdout!, child.stdin!, child, undefined, `qtest process "${command}"`, options);
  }

  /** Spawns a qtest QEMU with Q35_QTEST_ARGS followed by `extraArgs`. */
  static spawnQ35(qemuPath: string, extraArgs: readonly string[] = [], options: QtestSpawnOptions = {}): QtestClient {
    return QtestClient.spawn(qemuPath, q35QtestArgs(extraArgs), options);
  }

  /** Connects to a UNIX socket on which a target serves qtest (e.g. `-qtest unix:PATH,server=on,wait=off`). */
  static async connect(path: string, options: QtestConnectOptions = {}): Promise<QtestClient> {
    const limit = options.connectTimeoutMs ?? 10_000;
    const started = Date.now();
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path);
          s.once("connect", () => {
            s.off("error", reject);
            resolve(s);
          });
          s.once("error", reject);
        });
        const client = new QtestClient(socket, socket, options.child, socket, `qtest socket ${path}`, options);
        socket.on("close", () => client.onOutputEnd());
        return client;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const retry = (code === "ENOENT" || code === "ECONNREFUSED") && Date.now() - started < limit;
        const childGone = options.child && (options.child.exitCode !== null || options.child.signalCode !== null);
        if (!retry || childGone) {
          if (options.child) killHard(options.child);
          throw new QtestError("spawn", `could not connect to qtest socket ${path}: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** The process id, when the client owns a process. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The exit status once the owned process has exited. */
  get exitStatus(): QtestExit | undefined {
    return this.exitInfo;
  }

  /** The last stderr lines of the owned process. */
  stderrLines(): string[] {
    return this.stderrBuf ? [...this.stderrTail, this.stderrBuf] : [...this.stderrTail];
  }

  /** Removes and returns the IRQ events received so far. */
  takeIrqEvents(): QtestIrqEvent[] {
    return this.irqEvents.splice(0, this.irqEvents.length);
  }

  // ---- raw protocol ----------------------------------------------------------------------------

  /**
   * Sends one command line and resolves with the exact reply line (without its newline), whatever
   * it says (`OK ...`, `FAIL ...`, `ERR ...`). Rejects with a QtestError on timeout, exit, close,
   * or a stray line received before it.
   */
  command(line: string, options: CommandOptions = {}): Promise<string> {
    if (/[\r\n]/.test(line)) return Promise.reject(new QtestError("argument", `a command is one line, got ${JSON.stringify(line)}`, line));
    if (this.dead) return Promise.reject(this.deadFor(line));
    return new Promise<string>((resolve, reject) => {
      this.queue.push({ line, timeoutMs: options.timeoutMs ?? this.timeoutMs, resolve, reject });
      this.pump();
    });
  }

  /** Sends a command and returns what follows `OK` (`""` for a bare `OK`); any other reply is a QtestError. */
  async commandOk(line: string, options: CommandOptions = {}): Promise<string> {
    const reply = await this.command(line, options);
    if (reply === "OK") return "";
    if (reply.startsWith("OK ")) return reply.slice(3);
    if (reply.startsWith("FAIL") || reply.startsWith("ERR")) {
      throw new QtestError("fail", `${this.description}: command "${line}" failed: ${reply}`, line, reply);
    }
    throw new QtestError("malformed", `${this.description}: command "${line}": unexpected reply ${JSON.stringify(reply)}`, line, reply);
  }

  private async expectOk(line: string): Promise<void> {
    const rest = await this.commandOk(line);
    if (rest !== "") throw new QtestError("malformed", `${this.description}: command "${line}": expected "OK", got ${JSON.stringify(`OK ${rest}`)}`, line, `OK ${rest}`);
  }

  private async expectHex(line: string, maxBits: number): Promise<bigint> {
    const rest = await this.commandOk(line);
    if (!/^0x[0-9a-fA-F]+$/.test(rest)) {
      throw new QtestError("malformed", `${this.description}: command "${line}": expected "OK 0x<hex>", got ${JSON.stringify(`OK ${rest}`)}`, line, `OK ${rest}`);
    }
    const value = BigInt(rest);
    if (value >> BigInt(maxBits) !== 0n) {
      throw new QtestError("malformed", `${this.description}: command "${line}": value ${rest} wider than ${maxBits} bits`, line, `OK ${rest}`);
    }
    return value;
  }

  private async expectNs(line: string): Promise<number> {
    const rest = await this.commandOk(line);
    if (!/^-?\d+$/.test(rest)) {
      throw new QtestError("malformed", `${this.description}: command "${line}": expected "OK <ns>", got ${JSON.stringify(`OK ${rest}`)}`, line, `OK ${rest}`);
    }
    return Number(rest);
  }

  // ---- clock -----------------------------------------------------------------------------------

  /** Advances the virtual clock by `ns` (or to the next deadline when omitted); returns the new time in ns. */
  async clockStep(ns?: number | bigint): Promise<number> {
    if (ns === undefined) return this.expectNs("clock_step");
    checkAddr(ns, "ns");
    return this.expectNs(`clock_step ${ns.toString()}`);
  }

  /** Sets the virtual clock to `ns` (timers up to it run); returns the new time in ns. */
  async clockSet(ns: number | bigint): Promise<number> {
    checkAddr(ns, "ns");
    return this.expectNs(`clock_set ${ns.toString()}`);
  }

  // ---- port I/O --------------------------------------------------------------------------------

  async inb(port: number): Promise<number> {
    return Number(await this.expectHex(`inb ${hex(checkPort(port))}`, 8));
  }
  async inw(port: number): Promise<number> {
    return Number(await this.expectHex(`inw ${hex(checkPort(port))}`, 16));
  }
  async inl(port: number): Promise<number> {
    return Number(await this.expectHex(`inl ${hex(checkPort(port))}`, 32));
  }
  async outb(port: number, value: number): Promise<void> {
    return this.expectOk(`outb ${hex(checkPort(port))} ${hex(checkValue(value, 8))}`);
  }
  async outw(port: number, value: number): Promise<void> {
    return this.expectOk(`outw ${hex(checkPort(port))} ${hex(checkValue(value, 16))}`);
  }
  async outl(port: number, value: number): Promise<void> {
    return this.expectOk(`outl ${hex(checkPort(port))} ${hex(checkValue(value, 32))}`);
  }

  // ---- memory ----------------------------------------------------------------------------------

  async readb(addr: number | bigint): Promise<number> {
    return Number(await this.expectHex(`readb ${hex(checkAddr(addr))}`, 8));
  }
  async readw(addr: number | bigint): Promise<number> {
    return Number(await this.expectHex(`readw ${hex(checkAddr(addr))}`, 16));
  }
  async readl(addr: number | bigint): Promise<number> {
    return Number(await this.expectHex(`readl ${hex(checkAddr(addr))}`, 32));
  }
  async readq(addr: number | bigint): Promise<bigint> {
    return this.expectHex(`readq ${hex(checkAddr(addr))}`, 64);
  }
  async writeb(addr: number | bigint, value: number): Promise<void> {
    return this.expectOk(`writeb ${hex(checkAddr(addr))} ${hex(checkValue(value, 8))}`);
  }
  async writew(addr: number | bigint, value: number): Promise<void> {
    return this.expectOk(`writew ${hex(checkAddr(addr))} ${hex(checkValue(value, 16))}`);
  }
  async writel(addr: number | bigint, value: number): Promise<void> {
    return this.expectOk(`writel ${hex(checkAddr(addr))} ${hex(checkValue(value, 32))}`);
  }
  async writeq(addr: number | bigint, value: number | bigint): Promise<void> {
    return this.expectOk(`writeq ${hex(checkAddr(addr))} ${hex(checkValue(value, 64))}`);
  }

  /** `read ADDR SIZE` -> the bytes (the reply is `OK 0x` and two hex digits a byte). */
  async read(addr: number | bigint, size: number): Promise<Uint8Array> {
    const line = `read ${hex(checkAddr(addr))} ${hex(checkSize(size))}`;
    const rest = await this.commandOk(line);
    if (!/^0x[0-9a-fA-F]*$/.test(rest) || rest.length !== 2 + 2 * size) {
      throw new QtestError("malformed", `${this.description}: command "${line}": expected "OK 0x" and ${2 * size} hex digits, got ${JSON.stringify(`OK ${rest}`)}`, line, `OK ${rest}`);
    }
    return new Uint8Array(Buffer.from(rest.slice(2), "hex"));
  }

  /** `write ADDR SIZE 0xHEX`. */
  async write(addr: number | bigint, bytes: Uint8Array): Promise<void> {
    checkSize(bytes.length);
    return this.expectOk(`write ${hex(checkAddr(addr))} ${hex(bytes.length)} 0x${Buffer.from(bytes).toString("hex")}`);
  }

  /** `b64read ADDR SIZE` -> the bytes (the reply is `OK <base64>`). */
  async b64read(addr: number | bigint, size: number): Promise<Uint8Array> {
    const line = `b64read ${hex(checkAddr(addr))} ${hex(checkSize(size))}`;
    const rest = await this.commandOk(line);
    const bytes = Buffer.from(rest, "base64");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(rest) || bytes.length !== size) {
      throw new QtestError("malformed", `${this.description}: command "${line}": expected "OK" and ${size} bytes in base64, got ${JSON.stringify(`OK ${rest}`)}`, line, `OK ${rest}`);
    }
    return new Uint8Array(bytes);
  }

  /** `b64write ADDR SIZE BASE64`. */
  async b64write(addr: number | bigint, bytes: Uint8Array): Promise<void> {
    checkSize(bytes.length);
    return this.expectOk(`b64write ${hex(checkAddr(addr))} ${hex(bytes.length)} ${Buffer.from(bytes).toString("base64")}`);
  }

  /** `memset ADDR SIZE VALUE`. */
  async memset(addr: number | bigint, size: number, value: number): Promise<void> {
    return this.expectOk(`memset ${hex(checkAddr(addr))} ${hex(checkSize(size))} ${hex(checkValue(value, 8))}`);
  }

  // ---- interrupts ------------------------------------------------------------------------------

  /** Intercepts the GPIO inputs of the device at QOM `path` (e.g. "ioapic"): `IRQ raise|lower N` lines follow. */
  async irqInterceptIn(path: string): Promise<void> {
    return this.expectOk(`irq_intercept_in ${checkPath(path)}`);
  }

  /** Intercepts the GPIO outputs of the device at QOM `path`. */
  async irqInterceptOut(path: string): Promise<void> {
    return this.expectOk(`irq_intercept_out ${checkPath(path)}`);
  }

  // ---- lifetime --------------------------------------------------------------------------------

  /**
   * Ends the session: queued commands are rejected, the input closes, and an owned process is
   * reaped — SIGTERM when it has not exited `closeGraceMs` after its stdin closed (QEMU may linger),
   * SIGKILL another `closeGraceMs` later. Resolves with its exit status (undefined for a socket
   * without a process). Safe to call more than once.
   */
  close(): Promise<QtestExit | undefined> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<QtestExit | undefined> {
    this.die(new QtestError("closed", `${this.description}: the client was closed`));
    this.output.end();
    this.socket?.destroy();
    const child = this.child;
    if (!child || child.pid === undefined) return this.exitInfo;
    if (this.exitInfo) return this.exitInfo;
    const wait = (ms: number) =>
      Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    if (!(await wait(this.graceMs))) {
      child.kill("SIGTERM");
      if (!(await wait(this.graceMs))) {
        child.kill("SIGKILL");
        await this.exited;
      }
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
    return this.exitInfo;
  }

  // ---- internals -------------------------------------------------------------------------------

  private pump(): void {
    if (this.inFlight) return;
    if (this.dead) {
      for (const p of this.queue.splice(0)) p.reject(this.deadFor(p.line));
      return;
    }
    const next = this.queue.shift();
    if (!next) return;
    if (this.stray !== undefined) {
      const stray = this.stray;
      this.stray = undefined;
      this.die(new QtestError("unusable", `${this.description}: the stream is out of sync (received ${JSON.stringify(stray)} while no command was in flight)`));
      next.reject(new QtestError("malformed", `${this.description}: command "${next.line}" not sent: received ${JSON.stringify(stray)} while no command was in flight`, next.line, stray));
      this.pump();
      return;
    }
    this.inFlight = next;
    this.timer = setTimeout(() => this.onTimeout(next), next.timeoutMs);
    this.output.write(`${next.line}\n`);
  }

  private onTimeout(p: Pending): void {
    if (this.inFlight !== p) return;
    this.inFlight = undefined;
    this.timer = undefined;
    const err = new QtestError("timeout", `${this.description}: no reply to "${p.line}" within ${p.timeoutMs} ms${this.stderrSuffix()}`, p.line);
    this.die(new QtestError("unusable", `${this.description}: unusable after "${p.line}" timed out (a late reply would be taken for another command's)`));
    p.reject(err);
    this.pump();
  }

  private onData(chunk: string): void {
    this.stdoutBuf += chunk;
    let nl: number;
    while ((nl = this.stdoutBuf.indexOf("\n")) >= 0) {
      const line = this.stdoutBuf.slice(0, nl);
      this.stdoutBuf = this.stdoutBuf.slice(nl + 1);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    const irq = /^IRQ (raise|lower) (-?\d+)$/.exec(line);
    if (irq) {
      const event: QtestIrqEvent = {
        level: irq[1] as "raise" | "lower",
        irq: Number(irq[2]),
        afterReplies: this.replyCount,
        during: this.inFlight?.line,
        raw: line,
      };
      this.irqEvents.push(event);
      this.onIrq?.(event);
      return;
    }
    const p = this.inFlight;
    if (!p) {
      if (!this.dead) this.stray ??= line;
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight = undefined;
    this.replyCount += 1;
    p.resolve(line);
    this.pump();
  }

  private onStderr(chunk: string): void {
    this.stderrBuf += chunk;
    const lines = this.stderrBuf.split("\n");
    this.stderrBuf = lines.pop() ?? "";
    for (const l of lines) {
      this.stderrTail.push(l);
      if (this.stderrTail.length > this.stderrKeep) this.stderrTail.shift();
    }
  }

  private onOutputEnd(): void {
    if (this.outputEnded) return;
    this.outputEnded = true;
    if (!this.child || this.exitInfo) this.onGone();
    else setTimeout(() => this.onGone(), 2000); // give the exit status time to arrive (a loaded machine)
  }

  private onGone(): void {
    if (this.dead && this.dead.kind !== "unusable") return;
    const exit = this.exitInfo;
    const how = exit
      ? exit.signal
        ? `was killed by ${exit.signal}`
        : `exited with code ${exit.code}`
      : this.child
        ? "closed its output"
        : "closed the connection";
    this.die(new QtestError("exited", `${this.description} ${how}`));
  }

  /** Marks the client unusable and rejects the in-flight and queued commands. */
  private die(err: QtestError): void {
    if (this.dead && this.dead.kind !== "unusable") return;
    this.dead = err;
    const p = this.inFlight;
    if (p) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.inFlight = undefined;
      p.reject(this.deadFor(p.line));
    }
    for (const q of this.queue.splice(0)) q.reject(this.deadFor(q.line));
  }

  private deadFor(line: string): QtestError {
    const d = this.dead!;
    const verb = d.kind === "exited" ? `while "${line}" was pending` : `cannot run "${line}"`;
    const suffix = d.kind === "exited" || d.kind === "spawn" ? this.stderrSuffix() : "";
    return new QtestError(d.kind, `${d.message} (${verb})${suffix}`, line);
  }

  private stderrSuffix(): string {
    const lines = this.stderrLines().filter((l) => l.trim() !== "");
    return lines.length ? `; last stderr lines:\n  ${lines.join("\n  ")}` : "";
  }
}

function checkPath(path: string): string {
  if (!/^\S+$/.test(path)) throw new QtestError("argument", `a QOM path is one word, got ${JSON.stringify(path)}`);
  return path;
}

function killHard(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}
