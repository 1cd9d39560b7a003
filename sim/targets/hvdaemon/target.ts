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
import { HV_IDENTITY, HypervSessionBase, type CrashRequest, type HvAnswer, type HvIdentity, type HypervOpenOptions } from "../../conform/hyperv-session.ts";
import type { Service } from "../../devices/hyperv/index.ts";
import { DaemonBridge, DaemonBridgeError, type DaemonIdentity, type BridgeEventKind } from "./bridge.ts";

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
  private killOnRead = false;
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
      const r = this.kernel.write(this.service, FROM, new Uint8Array(e.data));
      this.pump();
      this.poke();
      return r >= 0 ? r : { errno: -r };
    });
    b.onIoctl((e) => {
      if (this.holding) return undefined;
      this.ioctls.push(`${e.request} ${e.path}`);
      this.lastCall = "ioctl";
      this.poke();
      const f = e.request === "FIFREEZE" ? this.failures.get(e.path) : undefined;
      return f ? { errno: f } : 0;
    });
    b.on("read", (e) => {
      this.lastCall = "read";
      if (e.result > 0) {
        const got = this.kernel.read(this.service, FROM, e.count);
        if (typeof got === "number") this.anomalies.push(`daemon read ${e.result} bytes but the kernel model's read says ${got}`);
        else if (got.length !== e.result) this.anomalies.push(`daemon read ${e.result} bytes of a ${got.length}-byte message`);
        if (this.killOnRead && this.state() === "USERSPACE_REQ") {
          this.killOnRead = false;
          this.holding = true;
          b.kill("SIGKILL");
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

  async start(o: RealSessionOptions): Promise<void> {
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

  /** Delivers the kernel's queued message to the daemon (once). */
  private pump(): void {
    const t = this.kernel.svc(this.service).hvt;
    if (t.outmsg && t.outmsg !== this.delivered && this.connOpen && this.bridge.connection !== undefined) {
      this.delivered = t.outmsg;
      this.bridge.deliver(t.outmsg);
    }
  }

  /** The daemon cannot act before the clock moves: blocked in poll with nothing queued, or gone. */
  private quiescent(): boolean {
    if (!this.bridge.running) return !this.connOpen;
    return this.connOpen && this.lastCall === "poll" && this.kernel.svc(this.service).hvt.outmsg === null;
  }

  protected async until(done: () => boolean, what: string): Promise<void> {
    const t0 = Date.now();
    const clock = this.bench.clock;
    let steps = 0;
    for (;;) {
      this.pump();
      if (this.bridge.handlerErrors.length) throw new Error(`bridge handler failed: ${this.bridge.handlerErrors[0]!.message}`);
      if (done()) return;
      const next = clock.nextAt;
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
    await this.until(() => this.bench.clock.nextAt === undefined && this.quiescent(), "the bench to settle");
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

  async crashDuring(req: CrashRequest): Promise<HvAnswer> {
    this.killOnRead = true;
    const a = await this.answerOf(this.send(req), "a request the daemon dies on");
    await this.bridge.exited(this.timeoutMs);
    return a;
  }

  async restart(): Promise<void> {
    this.killOnRead = false;
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
for (const s of ["kvp", "vss"] as const) registerDefaultCandidate(`hv-daemon:${s}`); // available() gives the reason when not usable
