// A Hyper-V session for conformance checks: hvsim's host and hv_utils kernel models on the virtual
// clock, with a daemon behind the kernel's character device. The same API drives the daemon model
// (this file, fully deterministic) and the real Debian daemons (sim/targets/hvdaemon/target.ts,
// which plugs the device bridge in as the daemon endpoint). Checks see only host-visible answers,
// what crossed the character device, and the FIFREEZE/FITHAW calls of the VSS daemon.
import { Bench } from "../machine/bench.ts";
import {
  hypervKinds,
  hypervMachine,
  HypervHost,
  HvUtilsKernel,
  KvpDaemonModel,
  VssDaemonModel,
  type KernelProfile,
  type KvpRequest,
  type Mount,
  type Service,
  type VssOpName,
} from "../devices/hyperv/index.ts";
import type { Plain } from "../clock/canonical.ts";
import { NS_PER_S } from "../clock/time.ts";

/** One mount-table line as the daemon reads it from /proc/mounts. */
export interface HvMount {
  fsname: string;
  dir: string;
  type: string;
  /** Comma-separated, e.g. "rw,relatime". */
  opts: string;
  /** The block device is loop-backed. */
  loop?: boolean;
}

/** The daemon's view of "its" machine (pinned identically for the model and the real daemon). */
export interface HvIdentity {
  hostname: string;
  /** Canonical name of the hostname (FullyQualifiedDomainName). */
  fqdn: string;
  /** uname(): release and machine. */
  release: string;
  machine: string;
  /** /etc/os-release NAME and VERSION_ID. */
  osName: string;
  versionId: string;
  /** One interface with one IPv4 and one IPv6 address ("a.b.c.d/len", "x::y/len"). */
  ifName: string;
  mac: string;
  ipv4: string;
  ipv6: string;
}

export const HV_IDENTITY: HvIdentity = {
  hostname: "hvsim-guest",
  fqdn: "hvsim-guest.hvsim.test",
  release: "6.1.0-hvsim-amd64",
  machine: "x86_64",
  osName: "Debian GNU/Linux",
  versionId: "12",
  ifName: "eth0",
  mac: "00:15:5d:00:00:01",
  ipv4: "192.0.2.10/24",
  ipv6: "2001:db8::10/64",
};

export interface HypervOpenOptions {
  profile?: KernelProfile;
  /** VSS: the mount table (default: none). */
  mounts?: HvMount[];
  identity?: HvIdentity;
}

/** A host-visible answer: status, IC flags and the decoded payload. */
export interface HvAnswer {
  readonly id: number;
  readonly status: number;
  readonly flags: number;
  readonly result: { [k: string]: Plain | undefined };
}

/** What crossed the character device (daemon side), in order. */
export type DeviceRecord =
  | { call: "open"; ret: number }
  | { call: "write"; len: number; op: number; ret: number }
  | { call: "read"; len: number; bytes: Uint8Array }
  | { call: "close" };

export type CrashRequest = { kvp: KvpRequest } | { vss: VssOpName };

/**
 * Where a daemon killed during a transaction dies, defined the same way on the model and on the
 * real daemon so both are compared at the same point:
 *   - "before-apply": right after its read() of the request returned, before it acted on it
 *     (the model's crash-before directive; the bridge's shim kills the real daemon inside that
 *     read, after the kernel saw the message consumed): nothing is applied.
 *   - "after-apply": in the write() of its answer, after it applied the request (pool file
 *     written, FIFREEZE/FITHAW done) (the model's crash-after; the real daemon's answering write
 *     is left unanswered and it is killed there): everything but the answer happened.
 * A SIGKILL at any other moment lands at one of these two for what the host and the files can
 * observe: hv_kvp_daemon applies a request in one step between its read and its write
 * (tools/hv/hv_kvp_daemon.c:1458 read, :1524 kvp_key_add_or_modify / :1542 kvp_key_delete, :1628
 * write); hv_vss_daemon's FIFREEZE walk (hv_vss_daemon.c:294 read, :320 vss_operate, :345 write)
 * is the exception (a kill between two mounts leaves some frozen), which neither point produces.
 */
export type CrashPoint = "before-apply" | "after-apply";

export interface HypervSession {
  readonly service: Service;
  readonly profile: KernelProfile;
  /** Waits until the daemon has registered (kernel state READY). */
  registered(): Promise<void>;
  /** The kernel's transaction state by name (READY, DEVICE_INIT, ...). */
  state(): string;
  /** Device calls since the session opened (or the last takeDevice()). */
  takeDevice(): DeviceRecord[];
  negotiate(): Promise<HvAnswer>;
  kvp(req: KvpRequest): Promise<HvAnswer>;
  vss(op: VssOpName): Promise<HvAnswer>;
  /** VSS: "FIFREEZE /dir" / "FITHAW /dir" since the last call. */
  takeIoctls(): string[];
  /** VSS: the next FIFREEZE of `dir` fails with `errno` (0 clears). */
  failFreeze(dir: string, errno: number): void;
  /** Sends `req`, kills the daemon at `point` (default before-apply), returns the host's answer. */
  crashDuring(req: CrashRequest, point?: CrashPoint): Promise<HvAnswer>;
  /** VSS: the mount directories whose filesystem is frozen now (table order). */
  frozen(): string[];
  /**
   * The daemon's answer to the next request is written `ns` of virtual time late (after the
   * kernel's own timeout, that write fails with EINVAL: hv_snapshot.c vss_on_msg / hv_kvp.c
   * kvp_on_msg refuse an answer when no request is outstanding).
   */
  delayNextAnswer(ns: number): void;
  /**
   * The device goes away (hvutil_transport_destroy, drivers/hv/hv_utils_transport.c: poll
   * reports POLLERR|POLLHUP, read and write fail EBADF, a new open fails EBADF).
   */
  resetDevice(): Promise<void>;
  /** Runs until the daemon has exited; its exit status (null when killed by a signal). */
  daemonExit(): Promise<number | null>;
  /** Runs until nothing is pending on the virtual clock and the daemon cannot act without it. */
  settled(): Promise<void>;
  /**
   * Hands the daemon one raw message (HvUtilsKernel.rawToDaemon: bytes the kernel would never
   * build) and returns the bytes it writes back, or undefined when it wrote nothing (it died).
   */
  rawToDaemon(msg: Uint8Array): Promise<Uint8Array | undefined>;
  /** Starts the daemon again and waits for its registration. */
  restart(): Promise<void>;
  /**
   * Sends the VSS ops back to back without waiting for answers (the host's `force`: all in the
   * guest's ring at once), runs until nothing is pending, returns each answer or undefined.
   */
  vssBurst(ops: VssOpName[]): Promise<(HvAnswer | undefined)[]>;
  close(): Promise<void>;
}

/** uname/os-release -> AUTO pool values, as hv_kvp_daemon derives them (kvp_get_os_info). */
export function autoValues(id: HvIdentity): Record<string, string> {
  const dot = id.versionId.indexOf(".");
  return {
    FullyQualifiedDomainName: id.fqdn,
    NetworkAddressIPv4: id.ipv4.split("/")[0] ?? "",
    NetworkAddressIPv6: id.ipv6.split("/")[0] ?? "",
    OSBuildNumber: id.release,
    OSName: id.osName,
    OSMajorVersion: dot < 0 ? id.versionId : id.versionId.slice(0, dot),
    OSMinorVersion: dot < 0 ? "" : id.versionId.slice(dot + 1),
    OSVersion: id.release.split("-")[0] ?? "",
    ProcessorArchitecture: id.machine,
  };
}

/** An IPv4 prefix length as a dotted netmask (what inet_ntop prints for ifa_netmask). */
function netmask(len: number): string {
  const m = len <= 0 ? 0 : (0xffffffff << (32 - Math.min(32, len))) >>> 0;
  return [24, 16, 8, 0].map((sh) => (m >>> sh) & 0xff).join(".");
}

/**
 * The guest's own adapter as hv_kvp_daemon answers GET_IP_INFO for it, from the identity the bridge
 * gives the real daemon (getifaddrs: one IPv4 then one IPv6 address on ifName):
 * tools/hv/hv_kvp_daemon.c (linux 6.1.192) :983 upper-cases the MAC it compares with adapter_id;
 * :878/:892 addr_family |= ADDR_FAMILY_IPV4 | ADDR_FAMILY_IPV6 (3); :793 joins addresses with ';';
 * :906/:913 the IPv6 subnet is "/<prefix>" appended after ';'; :923 kvp_get_ipconfig_info gets the
 * gateway, DNS and DHCP state from `ip route` / hv_get_dns_info / hv_get_dhcp_info, which the
 * sandbox refuses (popen fails): gateway and DNS stay empty, dhcp_enabled 0.
 */
export function identityAdapter(id: HvIdentity): { mac: string; ifName: string; addrFamily: number; dhcpEnabled: number; ipAddr: string; subNet: string; gateWay: string; dnsAddr: string } {
  const [v4, l4] = id.ipv4.split("/");
  const [v6, l6] = id.ipv6.split("/");
  return { mac: id.mac, ifName: id.ifName, addrFamily: 3, dhcpEnabled: 0, ipAddr: `${v4};${v6}`, subNet: `${netmask(Number(l4))};/${l6}`, gateWay: "", dnsAddr: "" };
}

export function modelMounts(ms: readonly HvMount[]): Mount[] {
  return ms.map((m) => ({ fsname: m.fsname, dir: m.dir, type: m.type, opts: m.opts.split(","), ...(m.loop ? { loop: true } : {}) }));
}

/** Everything but the daemon: host + kernel on a bench, answer collection, device recording. */
export abstract class HypervSessionBase implements HypervSession {
  readonly bench: Bench;
  readonly host: HypervHost;
  readonly kernel: HvUtilsKernel;
  readonly profile: KernelProfile;
  protected device: DeviceRecord[] = [];
  /** The bytes of the daemon's last write on the service (rawToDaemon's answer). */
  protected lastWrite: Uint8Array | null = null;

  constructor(
    readonly service: Service,
    o: HypervOpenOptions,
    daemons: { kvp?: Record<string, unknown>; vss?: Record<string, unknown> },
    seed: number,
  ) {
    this.profile = o.profile ?? "linux-6.1";
    this.bench = new Bench(
      hypervMachine({ profile: this.profile, kvpDaemon: daemons.kvp ?? false, vssDaemon: daemons.vss ?? false }),
      hypervKinds(),
      { seed },
    );
    this.host = this.bench.device<HypervHost>("host");
    this.kernel = this.bench.device<HvUtilsKernel>("hv-utils");
    // Record the device calls of whatever endpoint talks to the kernel (instance-level wrappers
    // around the kernel's file operations; the model daemon reaches them through its clock events).
    const k = this.kernel;
    const open = k.open.bind(k), read = k.read.bind(k), write = k.write.bind(k), close = k.close.bind(k);
    k.open = (s, from) => {
      const ret = open(s, from);
      if (s === this.service) this.device.push({ call: "open", ret });
      return ret;
    };
    k.read = (s, from, len) => {
      const got = read(s, from, len);
      if (s === this.service && typeof got !== "number") this.device.push({ call: "read", len: got.length, bytes: got.slice() });
      return got;
    };
    k.write = (s, from, bytes) => {
      if (s === this.service) this.lastWrite = bytes.slice();
      const ret = write(s, from, bytes);
      if (s === this.service) this.device.push({ call: "write", len: bytes.length, op: bytes[0] ?? -1, ret });
      return ret;
    };
    k.close = (s, from) => {
      const ret = close(s, from);
      if (s === this.service) this.device.push({ call: "close" });
      return ret;
    };
  }

  /** Runs the bench (and the daemon) until `done()` holds. */
  protected abstract until(done: () => boolean, what: string): Promise<void>;
  abstract takeIoctls(): string[];
  abstract failFreeze(dir: string, errno: number): void;
  abstract crashDuring(req: CrashRequest, point?: CrashPoint): Promise<HvAnswer>;
  abstract frozen(): string[];
  abstract delayNextAnswer(ns: number): void;
  abstract daemonExit(): Promise<number | null>;

  /** The kernel side of the device reset; subclasses add what the daemon sees. */
  async resetDevice(): Promise<void> {
    this.kernel.destroy(this.service);
  }

  /** Queues `req` on the host; returns its transaction id. */
  protected send(req: CrashRequest): number {
    return "kvp" in req ? this.host.kvp(req.kvp) : this.host.vss(req.vss);
  }
  abstract restart(): Promise<void>;
  abstract close(): Promise<void>;

  state(): string {
    return this.kernel.stateName(this.service);
  }

  takeDevice(): DeviceRecord[] {
    const d = this.device;
    this.device = [];
    return d;
  }

  async registered(): Promise<void> {
    await this.until(() => this.state() === "READY", `the ${this.service} daemon to register (kernel state READY)`);
  }

  protected async answerOf(id: number, what: string): Promise<HvAnswer> {
    await this.until(() => this.host.answer(this.service, id) !== undefined, `the host's answer to ${what} (transaction ${id})`);
    const a = this.host.answer(this.service, id)!;
    return { id, status: a.status, flags: a.flags, result: a.result };
  }

  async negotiate(): Promise<HvAnswer> {
    return this.answerOf(this.host.negotiate(this.service), "the version negotiation");
  }

  async kvp(req: KvpRequest): Promise<HvAnswer> {
    return this.answerOf(this.host.kvp(req), `KVP ${req.op}`);
  }

  async vss(op: VssOpName): Promise<HvAnswer> {
    return this.answerOf(this.host.vss(op), `VSS ${op}`);
  }

  /** Runs until no clock event is pending and the daemon cannot act without one. */
  protected abstract settle(): Promise<void>;

  settled(): Promise<void> {
    return this.settle();
  }

  /** Whether the daemon process is still alive (rawToDaemon stops waiting when it is not). */
  protected abstract daemonAlive(): boolean;

  async rawToDaemon(msg: Uint8Array): Promise<Uint8Array | undefined> {
    this.lastWrite = null;
    const rc = this.kernel.rawToDaemon(this.service, msg);
    if (rc) throw new Error(`rawToDaemon: the kernel refused the message (${rc}); is the daemon registered?`);
    await this.until(() => this.lastWrite !== null || !this.daemonAlive(), "the daemon's answer to a raw message");
    const w = this.lastWrite;
    this.lastWrite = null;
    return w ?? undefined;
  }

  async vssBurst(ops: VssOpName[]): Promise<(HvAnswer | undefined)[]> {
    if (!this.host.svc("vss").negotiationSent) await this.negotiate();
    const ids = ops.map((op) => this.host.vss(op, { force: true }));
    await this.settle();
    return ids.map((id) => {
      const a = this.host.answer("vss", id);
      return a && { id, status: a.status, flags: a.flags, result: a.result };
    });
  }
}

/** The session over hvsim's daemon models (deterministic, virtual time only). */
export class ModelHypervSession extends HypervSessionBase {
  private readonly kvpd: KvpDaemonModel | undefined;
  private readonly vssd: VssDaemonModel | undefined;
  private ioctlsSeen = 0;

  constructor(service: Service, o: HypervOpenOptions, seed = 0) {
    const id = o.identity ?? HV_IDENTITY;
    super(service, o, service === "kvp" ? { kvp: { auto: autoValues(id), adapters: [identityAdapter(id)] } } : { vss: { mounts: modelMounts(o.mounts ?? []) } }, seed);
    this.kvpd = this.bench.findDevice<KvpDaemonModel>("kvp-daemon");
    this.vssd = this.bench.findDevice<VssDaemonModel>("vss-daemon");
  }

  protected async until(done: () => boolean, what: string): Promise<void> {
    const clock = this.bench.clock;
    const end = this.bench.now + 3600 * NS_PER_S;
    while (!done()) {
      const next = clock.nextAt;
      if (next === undefined || next > end) throw new Error(`model: gave up waiting for ${what} (no event within an hour of virtual time; kernel state ${this.state()})`);
      clock.runNext();
    }
  }

  protected async settle(): Promise<void> {
    const clock = this.bench.clock;
    const end = this.bench.now + 3600 * NS_PER_S;
    while (clock.nextAt !== undefined && clock.nextAt <= end) clock.runNext();
  }

  takeIoctls(): string[] {
    const all = this.vssd?.state.ioctls ?? [];
    const out = all.slice(this.ioctlsSeen).filter((x) => x[0] !== "open").map((x) => `${x[0]} ${x[1]}`);
    this.ioctlsSeen = all.length;
    return out;
  }

  failFreeze(dir: string, errno: number): void {
    this.vssd?.failAt(dir, errno ? { freeze: errno } : {});
  }

  async crashDuring(req: CrashRequest, point: CrashPoint = "before-apply"): Promise<HvAnswer> {
    const d = this.kvpd ?? this.vssd!;
    d.queue({ do: point === "before-apply" ? "crash-before" : "crash-after" });
    return this.answerOf(this.send(req), "a request the daemon dies on");
  }

  frozen(): string[] {
    const v = this.vssd;
    if (!v) return [];
    return v.state.mounts.filter((m) => v.state.frozen.includes(m.fs ?? m.fsname)).map((m) => m.dir);
  }

  delayNextAnswer(ns: number): void {
    (this.kvpd ?? this.vssd!).queue({ do: "delay", ns });
  }

  async daemonExit(): Promise<number | null> {
    const d = this.kvpd ?? this.vssd!;
    await this.until(() => !d.running, "the daemon to exit");
    return d.state.exitStatus === 137 ? null : d.state.exitStatus;
  }

  async restart(): Promise<void> {
    (this.kvpd ?? this.vssd!).start();
    await this.registered();
  }

  protected daemonAlive(): boolean {
    return (this.kvpd ?? this.vssd!).running;
  }

  async close(): Promise<void> {}
}
