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
// This adapter talks to real processes and so may use wall-clock timers (see eslint.config.js).
import { registerTargetFactory } from "../../conform/runner.ts";
import { registerDefaultCandidate } from "../../conform/targets.ts";
import type { Capability, Target } from "../../conform/types.ts";
import { HV_IDENTITY, HypervSessionBase, type CrashPoint, type CrashRequest, type HvAnswer, type HvIdentity, type HypervOpenOptions } from "../../conform/hyperv-session.ts";
import type { Service } from "../../devices/hyperv/index.ts";
import { DaemonBridge, DaemonBridgeError, type DaemonIdentity, type BridgeEventKind, type WriteEvent } from "./bridge.ts";

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
  }

  private mounts: RealSessionOptions["mounts"];

  async start(o: RealSessionOptions): Promise<void> {
    this.mounts = o.mounts;
    await this.bridge.start({
      service: this.service,
      identity: bridgeIdentity(o.identity ?? HV_IDENTITY),
      mounts: (o.mounts ?? []).map((m) => ({ ...m })),
      timeoutMs: this.timeoutMs,
    });
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

export function daemonAvailable(): true | string {
  const a = DaemonBridge.available();
  return a.ok ? true : a.reason;
}

export function hvDaemonTarget(service: Service, seed = 0): Target {
  const caps: Capability[] = [service === "kvp" ? "kvp-daemon" : "vss-daemon"];
  return {
    name: `hv-daemon:${service}`,
    description: `Debian's ${service === "kvp" ? "hv_kvp_daemon" : "hv_vss_daemon"} (real process, sandboxed) behind hvsim's Hyper-V host and hv_utils kernel models`,
    capabilities: new Set(caps),
    async available() {
      return daemonAvailable();
    },
    async openHyperv(svc, opts) {
      if (svc !== service) throw new Error(`hv-daemon:${service} has no ${svc} daemon`);
      return openRealHyperv(svc, opts, seed);
    },
  };
}

registerTargetFactory((spec, seed) => {
  if (spec === "hv-daemon:kvp") return hvDaemonTarget("kvp", seed);
  if (spec === "hv-daemon:vss") return hvDaemonTarget("vss", seed);
  return undefined;
});
for (const s of ["kvp", "vss"] as const) registerDefaultCandidate(async () => (daemonAvailable() === true ? `hv-daemon:${s}` : undefined));
