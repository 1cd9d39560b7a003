// Conformance targets hv-daemon:kvp and hv-daemon:vss: the REAL Debian hv_kvp_daemon /
// hv_vss_daemon behind hvsim's host and hv_utils kernel models. The device bridge (bridge.ts) is
// plugged in as the kernel's daemon endpoint: the daemon's open/write/close of /dev/vmbus/hv_*
// become the kernel model's file operations (HvUtilsKernel.open/write/close), a message the kernel
// queues (hvutil_transport_send) is delivered to the daemon's read(), and the daemon's read of it
// consumes it in the kernel (so on_read callbacks such as "registration done" run as upstream).
//
// Time: the virtual clock runs freely over events due within NEAR_NS (packet deliveries, work
// items); an event further away (a 30 s transaction timeout, the 55 s handshake timer) is only run
// while the daemon is quiescent (blocked in poll with nothing queued for it, or gone), so a real
// daemon that is merely slow on the wall clock never meets a virtual timeout. Waits are bounded on
// the wall clock (timeoutMs, generous) and fail with what was awaited and the daemon's state.
//
// Other daemon binaries: `hv-daemon:kvp=<program>` / `hv-daemon:vss=<program>` run any program that
// speaks the /dev/vmbus/hv_kvp / hv_vss protocol behind the same bridge and sandbox (with -n, as
// the Debian daemons); `=asan` names the sanitized daemons scripts/build-hv-daemons.sh built
// (sanitized.ts). A sanitizer report of the daemon fails the check that was running (afterCheck).
//
// This adapter talks to real processes and so may use wall-clock timers (see eslint.config.js).
import { accessSync, constants as fsConstants, statSync } from "node:fs";
import { resolve } from "node:path";
import { registerTargetFactory } from "../../conform/runner.ts";
import { registerDefaultCandidate } from "../../conform/targets.ts";
import type { Capability, Target } from "../../conform/types.ts";
import { HV_IDENTITY, HypervSessionBase, type CrashPoint, type CrashRequest, type HvAnswer, type HvIdentity, type HypervOpenOptions } from "../../conform/hyperv-session.ts";
import type { KvpRequest, Service, VssOpName } from "../../devices/hyperv/index.ts";
import { DaemonBridge, DaemonBridgeError, type DaemonIdentity, type BridgeEventKind, type WriteEvent } from "./bridge.ts";
import {
  explainReport,
  findSanitizedDaemons,
  reportExcerpt,
  reportSummary,
  SANITIZED_SHORTHAND,
  SANITIZER_ENV,
  sanitizerPreload,
  SanitizerWatch,
  type SanitizerReport,
} from "./sanitized.ts";

const FROM = "hv-daemon";
/** Virtual-time horizon the clock may always run to (1 ms); farther events wait for quiescence. */
const NEAR_NS = 1_000_000;

export function bridgeIdentity(id: HvIdentity): DaemonIdentity {
  return {
    hostname: id.hostname,
    fqdn: id.fqdn,
    uname: { sysname: "Linux", release: id.release, version: "#1 SMP PREEMPT_DYNAMIC hvsim", machine: id.machine },
    osRelease: `NAME="${id.osName}"\nVERSION_ID="${id.versionId}"\nID=debian\n`,
    interfaces: [
      { name: id.ifName, address: id.ipv4, mac: id.mac },
      { name: id.ifName, address: id.ipv6, mac: id.mac },
    ],
  };
}

export interface RealSessionOptions extends HypervOpenOptions {
  /** Wall-clock limit of one wait, ms (default 20000). */
  timeoutMs?: number;
  /** Run this daemon binary (with -n) instead of Debian's /usr/sbin one. */
  program?: string;
}

/** A Hyper-V session with the real daemon behind hvsim's kernel model. */
export class RealHypervSession extends HypervSessionBase {
  readonly bridge = new DaemonBridge();
  private readonly timeoutMs: number;
  private delivered: Uint8Array | null = null;
  private connOpen = false;
  /** Last device call the daemon made on its open connection. */
  private lastCall: BridgeEventKind | undefined;
  private ioctls: string[] = [];
  private readonly failures = new Map<string, number>();
  /** Set while killing the daemon mid-transaction: its writes and ioctls are left unanswered. */
  private holding = false;
  /** crashDuring's point for the request being sent (undefined: no crash planned). */
  private crashAt: CrashPoint | undefined;
  /**
   * Filesystems (mount directories) frozen by the daemon's FIFREEZE and not yet thawed: the kernel
   * keeps them frozen whatever happens to the daemon (fs/super.c freeze_super: EBUSY when already
   * frozen; thaw_super: EINVAL when not frozen, which hv_vss_daemon.c:52-53 both count as success).
   */
  private readonly frozenDirs = new Set<string>();
  /** delayNextAnswer: the next answering write is held until the virtual clock reaches `due`. */
  private delayNs: number | undefined;
  private held: { event: WriteEvent; due: number } | undefined;
  private wake: (() => void) | undefined;
  /** Anomalies of the bridging itself (a read the kernel model disagrees with...). */
  readonly anomalies: string[] = [];
  /** Sanitizer reports the daemon printed (a sanitized build: hv-daemon:kvp=asan). */
  readonly sanitizer = new SanitizerWatch(this.bridge);
  /** The request the host has out while the daemon works (for explainReport). */
  private inFlight: KvpRequest | undefined;
  private readonly reportRequests = new Map<SanitizerReport, KvpRequest | undefined>();

  constructor(service: Service, o: RealSessionOptions, seed = 0) {
    super(service, o, {}, seed);
    this.timeoutMs = o.timeoutMs ?? 20_000;
    const b = this.bridge;
    b.onOpen(() => {
      const r = this.kernel.open(this.service, FROM);
      if (r === 0) {
        this.connOpen = true;
        this.lastCall = "open";
        this.delivered = null;
      }
      this.poke();
      return r === 0 ? "accept" : { errno: -r };
    });
    b.onWrite((e) => {
      if (this.holding) return undefined; // the daemon dies in write(): it never reaches the kernel
      this.lastCall = "write";
      const answering = e.data.length > 4 && this.state() === "USERSPACE_REQ";
      if (answering && this.crashAt === "after-apply") {
        // The crash point "after-apply": the request is applied, the answer never written.
        this.crashAt = undefined;
        this.holding = true;
        b.kill("SIGKILL");
        this.poke();
        return undefined;
      }
      if (answering && this.delayNs !== undefined) {
        this.held = { event: e, due: this.bench.now + this.delayNs };
        this.delayNs = undefined;
        this.poke();
        return undefined;
      }
      return this.kernelWrite(e);
    });
    b.onIoctl((e) => {
      if (this.holding) return undefined;
      this.ioctls.push(`${e.request} ${e.path}`);
      this.lastCall = "ioctl";
      this.poke();
      const f = e.request === "FIFREEZE" ? this.failures.get(e.path) : undefined;
      if (f) return { errno: f };
      if (e.request === "FIFREEZE") {
        if (this.frozenDirs.has(e.path)) return { errno: "EBUSY" };
        this.frozenDirs.add(e.path);
        return 0;
      }
      if (!this.frozenDirs.delete(e.path)) return { errno: "EINVAL" };
      return 0;
    });
    b.on("read", (e) => {
      this.lastCall = "read";
      if (e.result > 0) {
        const got = this.kernel.read(this.service, FROM, e.count);
        if (typeof got === "number") this.anomalies.push(`daemon read ${e.result} bytes but the kernel model's read says ${got}`);
        else if (got.length !== e.result) this.anomalies.push(`daemon read ${e.result} bytes of a ${got.length}-byte message`);
        if (this.crashAt === "before-apply" && this.state() === "USERSPACE_REQ") {
          // The shim killed the daemon inside this read (deliver(..., {killAfterRead})).
          this.crashAt = undefined;
          this.holding = true;
        }
      }
      this.poke();
    });
    b.on("poll", () => {
      this.lastCall = "poll";
      this.poke();
    });
    b.on("close", (e) => {
      if (e.wasOpen) {
        this.kernel.close(this.service, FROM);
        this.connOpen = false;
        this.lastCall = "close";
        this.delivered = null;
      }
      this.poke();
    });
    for (const k of ["exit", "dropped", "syslog", "output"] as const) b.on(k, () => this.poke());
    this.sanitizer.onReport = (r) => {
      this.reportRequests.set(r, this.inFlight);
      r.during = this.inFlight ? JSON.stringify(this.inFlight) : undefined;
    };
  }

  private mounts: RealSessionOptions["mounts"];

  async start(o: RealSessionOptions): Promise<void> {
    this.mounts = o.mounts;
    await this.bridge.start({
      service: this.service,
      identity: bridgeIdentity(o.identity ?? HV_IDENTITY),
      mounts: (o.mounts ?? []).map((m) => ({ ...m })),
      timeoutMs: this.timeoutMs,
      ...(o.program ? { program: { path: o.program, args: ["-n"] }, preload: sanitizerPreload(o.program), env: { ...SANITIZER_ENV } } : {}),
    });
  }

  /** Sanitizer reports so far, each with the daemon deviation that explains it (or none). */
  sanitizerReports(): SanitizerReport[] {
    for (const r of this.sanitizer.reports) r.explainedBy ??= explainReport(r, this.reportRequests.get(r));
    return this.sanitizer.reports;
  }

  override async kvp(req: KvpRequest): Promise<HvAnswer> {
    this.inFlight = req;
    try {
      return await super.kvp(req);
    } finally {
      this.inFlight = undefined;
    }
  }

  override async vss(op: VssOpName): Promise<HvAnswer> {
    this.inFlight = undefined;
    return super.vss(op);
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private kernelWrite(e: WriteEvent): number | { errno: number } {
    const r = this.kernel.write(this.service, FROM, new Uint8Array(e.data));
    this.pump();
    this.poke();
    return r >= 0 ? r : { errno: -r };
  }

  /** Delivers the kernel's queued message to the daemon (once). */
  private pump(): void {
    const t = this.kernel.svc(this.service).hvt;
    if (t.outmsg && t.outmsg !== this.delivered && this.connOpen && this.bridge.connection !== undefined) {
      this.delivered = t.outmsg;
      // A request (not a registration reply) the daemon is to die on right after reading it.
      const kill = this.crashAt === "before-apply" && this.state() === "USERSPACE_REQ";
      this.bridge.deliver(t.outmsg, undefined, kill ? { killAfterRead: true } : undefined);
    }
  }

  /** A held (delayed) answer whose time has come goes to the kernel now. */
  private releaseHeld(): void {
    const h = this.held;
    if (!h || this.bench.now < h.due) return;
    this.held = undefined;
    if (!h.event.answered) h.event.respond(this.kernelWrite(h.event));
  }

  /** The daemon cannot act before the clock moves: blocked in poll with nothing queued, blocked in a held write, or gone. */
  private quiescent(): boolean {
    if (!this.bridge.running) return !this.connOpen;
    if (this.held) return true;
    return this.connOpen && this.lastCall === "poll" && this.kernel.svc(this.service).hvt.outmsg === null;
  }

  protected async until(done: () => boolean, what: string): Promise<void> {
    const t0 = Date.now();
    const clock = this.bench.clock;
    let steps = 0;
    for (;;) {
      this.releaseHeld();
      this.pump();
      if (this.bridge.handlerErrors.length) throw new Error(`bridge handler failed: ${this.bridge.handlerErrors[0]!.message}`);
      const bad = this.sanitizer.reports.length ? this.sanitizerReports().find((r) => r.complete && !r.explainedBy) : undefined;
      if (bad) throw new Error(`hv-daemon:${this.service}: ${reportSummary(bad)}\n  ${reportExcerpt(bad).join("\n  ")}`);
      if (done()) return;
      const next = clock.nextAt;
      if (this.held && (next === undefined || next > this.held.due)) {
        clock.runUntil(this.held.due);
        continue;
      }
      if (next !== undefined && (next - this.bench.now <= NEAR_NS || this.quiescent())) {
        clock.runNext();
        if (++steps % 256 === 0) await new Promise((r) => setImmediate(r));
        continue;
      }
      const waited = Date.now() - t0;
      const dead = next === undefined && !this.bridge.running && !this.connOpen;
      if (dead && waited > 1000) {
        throw new DaemonBridgeError(
          "exited",
          `hv-daemon:${this.service}: the daemon is gone and nothing is pending on the virtual clock while waiting for ${what}; kernel state ${this.state()}. ${this.bridge.describe()}`,
        );
      }
      if (waited > this.timeoutMs) {
        throw new DaemonBridgeError(
          "timeout",
          `hv-daemon:${this.service}: no progress for ${waited} ms (wall clock) waiting for ${what}; kernel state ${this.state()}, virtual time ${this.bench.now} ns, last device call ${this.lastCall ?? "none"}. ${this.bridge.describe()}`,
        );
      }
      await this.changed(next === undefined ? 200 : 20);
    }
  }

  protected async settle(): Promise<void> {
    await this.until(() => this.bench.clock.nextAt === undefined && this.quiescent() && !this.held, "the bench to settle");
  }

  takeIoctls(): string[] {
    const out = this.ioctls;
    this.ioctls = [];
    return out;
  }

  failFreeze(dir: string, errno: number): void {
    if (errno) this.failures.set(dir, errno);
    else this.failures.delete(dir);
  }

  async crashDuring(req: CrashRequest, point: CrashPoint = "before-apply"): Promise<HvAnswer> {
    this.inFlight = "kvp" in req ? req.kvp : undefined;
    this.crashAt = point;
    const a = await this.answerOf(this.send(req), "a request the daemon dies on");
    await this.bridge.exited(this.timeoutMs);
    return a;
  }

  frozen(): string[] {
    return (this.mounts ?? []).map((m) => m.dir).filter((d) => this.frozenDirs.has(d));
  }

  delayNextAnswer(ns: number): void {
    this.delayNs = ns;
  }

  override async resetDevice(): Promise<void> {
    await super.resetDevice();
    // What hvutil_transport_destroy leaves the daemon (hv_utils_transport.c): the bridge's defaults.
    if (this.bridge.connection !== undefined) this.bridge.hangup();
  }

  protected daemonAlive(): boolean {
    return this.bridge.running || this.connOpen;
  }

  async daemonExit(): Promise<number | null> {
    await this.until(() => !this.bridge.running && !this.connOpen, "the daemon to exit");
    return (await this.bridge.exited(this.timeoutMs)).code;
  }

  async restart(): Promise<void> {
    this.crashAt = undefined;
    await this.bridge.restart({ timeoutMs: this.timeoutMs });
    this.holding = false;
    await this.registered();
  }

  async close(): Promise<void> {
    await this.bridge.stop();
  }
}

export async function openRealHyperv(service: Service, o: RealSessionOptions, seed = 0): Promise<RealHypervSession> {
  const s = new RealHypervSession(service, o, seed);
  try {
    await s.start(o);
  } catch (e) {
    await s.close();
    throw e;
  }
  return s;
}

/**
 * Whether the daemon can be bridged here: Debian's packaged daemons (no `program`), or the bridge
 * tools plus `program` being an executable file.
 */
export function daemonAvailable(program?: string): true | string {
  if (program === undefined) {
    const a = DaemonBridge.available();
    return a.ok ? true : a.reason;
  }
  try {
    if (!statSync(program).isFile()) return `${program} is not a file`;
    accessSync(program, fsConstants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${program} not found` : code === "EACCES" ? `${program} is not executable` : `${program}: ${(e as Error).message}`;
  }
  const a = DaemonBridge.toolsAvailable();
  return a.ok ? true : a.reason;
}

/** A parsed `hv-daemon:<service>[=<program>|=asan]` target name. */
export interface DaemonSpec {
  readonly service: Service;
  /** undefined: Debian's packaged daemon; "asan": the sanitized build; else a path as given. */
  readonly program?: string;
}

/** Parses a hv-daemon target name; undefined when `spec` is not one. */
export function parseDaemonSpec(spec: string): DaemonSpec | undefined {
  const m = /^hv-daemon:(kvp|vss)(?:=(.*))?$/s.exec(spec);
  if (!m) return undefined;
  const service = m[1] as Service;
  return m[2] === undefined ? { service } : { service, program: m[2] };
}

/** The program a spec runs, or why there is none: resolves `asan` and relative paths. */
export function daemonProgram(d: DaemonSpec, cwd = process.cwd()): { path: string | undefined } | { reason: string } {
  if (d.program === undefined) return { path: undefined };
  if (d.program === "") return { reason: `no program after '=' (hv-daemon:${d.service}=<program> or hv-daemon:${d.service}=${SANITIZED_SHORTHAND})` };
  if (d.program === SANITIZED_SHORTHAND) {
    const found = findSanitizedDaemons();
    return "reason" in found ? { reason: found.reason } : { path: found[d.service] };
  }
  return { path: resolve(cwd, d.program) };
}

/** Reports of the sessions a target opened, for the runner's afterCheck. */
function collectReports(sessions: RealHypervSession[]): { failures: string[]; notes: string[] } {
  const failures: string[] = [];
  // Explained reports, once per deviation and kind of report (the index in a UBSan bounds message varies).
  const known = new Map<string, { text: string; during: string | undefined; n: number }>();
  for (const s of sessions.splice(0)) {
    for (const r of s.sanitizerReports()) {
      const during = r.during ? ` during ${r.during}` : "";
      if (r.explainedBy) {
        const text = `${r.explainedBy}: the daemon's ${reportSummary(r)}`;
        const key = text.replace(/\bindex \d+/, "index N");
        const k = known.get(key);
        if (k) k.n += 1;
        else known.set(key, { text, during: r.during, n: 1 });
      } else failures.push(`sanitizer report (daemon run ${r.run}${during}): ${reportSummary(r)}\n  ${reportExcerpt(r).join("\n  ")}`);
    }
  }
  const notes = [...known.values()].map((k) => `${k.text} (${k.n === 1 ? "once" : `${k.n} times`}${k.during ? `, first during ${k.during}` : ""})`);
  return { failures, notes };
}

export function hvDaemonTarget(service: Service, seed = 0, program?: string): Target {
  const caps: Capability[] = [service === "kvp" ? "kvp-daemon" : "vss-daemon"];
  const spec: DaemonSpec = program === undefined ? { service } : { service, program };
  const name = `hv-daemon:${service}${program === undefined ? "" : `=${program}`}`;
  const binary = service === "kvp" ? "hv_kvp_daemon" : "hv_vss_daemon";
  const sessions: RealHypervSession[] = [];
  return {
    name,
    description:
      program === undefined
        ? `Debian's ${binary} (real process, sandboxed) behind hvsim's Hyper-V host and hv_utils kernel models`
        : program === SANITIZED_SHORTHAND
          ? `${binary} built from Debian's linux-source-6.1 with ASan+UBSan (scripts/build-hv-daemons.sh), sandboxed, behind hvsim's Hyper-V host and hv_utils kernel models`
          : `${program} (a ${service} daemon; real process, sandboxed) behind hvsim's Hyper-V host and hv_utils kernel models`,
    capabilities: new Set(caps),
    async available() {
      const p = daemonProgram(spec);
      if ("reason" in p) return p.reason;
      return daemonAvailable(p.path);
    },
    async openHyperv(svc, opts) {
      if (svc !== service) throw new Error(`${name} has no ${svc} daemon`);
      const p = daemonProgram(spec);
      if ("reason" in p) throw new DaemonBridgeError("unavailable", p.reason);
      const s = await openRealHyperv(svc, p.path === undefined ? opts : { ...opts, program: p.path }, seed);
      sessions.push(s);
      return s;
    },
    afterCheck() {
      return collectReports(sessions);
    },
  };
}

registerTargetFactory((spec, seed) => {
  const d = parseDaemonSpec(spec);
  return d ? hvDaemonTarget(d.service, seed, d.program) : undefined;
});
// Default candidates by name: available() gives the reason one is left out (--list shows it). The
// sanitized build is one once scripts/build-hv-daemons.sh has made it.
for (const s of ["kvp", "vss"] as const) registerDefaultCandidate(`hv-daemon:${s}`);
for (const s of ["kvp", "vss"] as const) registerDefaultCandidate(`hv-daemon:${s}=${SANITIZED_SHORTHAND}`);
