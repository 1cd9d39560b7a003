// A model of hv_kvp_daemon (Debian hyperv-daemons 6.1, tools/hv/hv_kvp_daemon.c) as a daemon
// endpoint (endpoint.ts): open, register with a 7432-byte REGISTER1, poll + read(7432), answer each
// request with one 7432-byte write, close and reopen after a failed read or write. Pools are the
// `.kvp_pool_N` files (state: file bytes plus the daemon's in-memory record array, whose stale
// bytes the files can show); the AUTO pool's ENUMERATE list comes from configuration. A script of
// directives injects crashes and slow answers for tests.
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind } from "../../machine/device.ts";
import {
  HV_E_FAIL,
  HV_GUID_NOTFOUND,
  HV_KVP_EXCHANGE_MAX_KEY_SIZE,
  HV_KVP_EXCHANGE_MAX_VALUE_SIZE,
  HV_S_CONT,
  KVP_OP_DELETE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_OP_GET_IP_INFO,
  KVP_OP_REGISTER,
  KVP_OP_REGISTER1,
  KVP_OP_SET,
  KVP_OP_SET_IP_INFO,
  KVP_POOL_AUTO,
  KVP_POOL_COUNT,
  MAX_ADAPTER_ID_SIZE,
  MAX_GATEWAY_SIZE,
  MAX_IP_ADDR_SIZE,
} from "../../wire/hyperv-constants.ts";
import { K, KVP_MSG_SIZE, rd32, rdI32, wr32 } from "./frames.ts";
import { cstr, utf8Bytes } from "./utf.ts";
import { ENTRIES_PER_BLOCK, POOL_KEY_SIZE, POOL_RECORD_SIZE, encodePoolFile, poolEntries, type PoolEntry } from "./pool.ts";
import { HVT_RESULT, type HvtResult } from "./endpoint.ts";
import { DaemonProcess, type DaemonPhase, type Directive } from "./daemon-process.ts";

/** The AUTO pool's index -> key list (hv_kvp_daemon's enum key_type order). */
export const AUTO_KEYS = [
  "FullyQualifiedDomainName",
  "IntegrationServicesVersion",
  "NetworkAddressIPv4",
  "NetworkAddressIPv6",
  "OSBuildNumber",
  "OSName",
  "OSMajorVersion",
  "OSMinorVersion",
  "OSVersion",
  "ProcessorArchitecture",
] as const;
export type AutoKey = (typeof AUTO_KEYS)[number];

export const DEFAULT_AUTO: Record<Exclude<AutoKey, "IntegrationServicesVersion">, string> = {
  FullyQualifiedDomainName: "hvsim-guest.example",
  NetworkAddressIPv4: "192.0.2.10",
  NetworkAddressIPv6: "2001:db8::10",
  OSBuildNumber: "6.1.0-hvsim-amd64",
  OSName: "Debian GNU/Linux",
  OSMajorVersion: "12",
  OSMinorVersion: "0",
  OSVersion: "6.1.0-hvsim-amd64",
  ProcessorArchitecture: "x86_64",
};

export interface Adapter {
  /** MAC as /sys/class/net/IF/address shows it (GET_IP_INFO: compared upper-cased with the host's adapter_id). */
  mac: string;
  /** /sys/class/net/IF/device/device_id, the NIC's VMBus GUID (SET_IP_INFO: compared as is with adapter_id). */
  deviceId?: string;
  ifName: string;
  addrFamily?: number;
  dhcpEnabled?: number;
  ipAddr?: string;
  subNet?: string;
  gateWay?: string;
  dnsAddr?: string;
}

/**
 * What the daemon does with the next request it reads (consumed one per request):
 * - answer: normally (after opNs);
 * - delay: the answer is written `ns` later (past 30 s it is late: the kernel refuses it with
 *   EINVAL and the daemon reopens the device);
 * - crash-before: the process dies on reading the request (nothing applied);
 * - crash-after: the process dies after applying it, before answering.
 */
export type { Directive } from "./daemon-process.ts";

export type KvpDaemonPhase = DaemonPhase;

export interface PoolState {
  [k: string]: any;
  /** The .kvp_pool_N file contents. */
  file: Uint8Array;
  /** The daemon's record array (num_blocks * 50 records); empty until first used. */
  mem: Uint8Array;
  count: number;
}

export interface KvpDaemonState {
  [k: string]: any;
  phase: KvpDaemonPhase;
  /** After the close in progress: open again (goto reopen_kvp_fd) or stop. */
  afterClose: "reopen" | "exit";
  /** Process generation: results tagged with an older one are ignored. */
  gen: number;
  inHandshake: boolean;
  /** The kernel's registration reply version ("3.1"), once read. */
  licVersion: string | null;
  /** The hv_msg buffer (reused for every read and write). */
  buf: Uint8Array;
  pools: PoolState[];
  script: Directive[];
  answerSeq: number | null;
  exitStatus: number | null;
  stats: { requests: number; answers: number; reopens: number; registrations: number; crashes: number };
  /** Settings received by SET_IP_INFO (the daemon would hand them to hv_set_ifconfig). */
  ipSettings: { ifName: string; ipAddr: string; subNet: string; gateWay: string; dnsAddr: string; dhcpEnabled: number }[];
}

export interface KvpDaemonConfig {
  /** Kernel device id (default "hv-utils"). */
  kernel?: string;
  /** Start (open the device) at bench creation (default true). */
  autostart?: boolean;
  /** Endpoint -> kernel call latency, ns (default 1 µs). */
  toKernelNs?: number;
  /** Time to handle one request before writing the answer, ns (default 20 µs). */
  opNs?: number;
  /** Registration op: REGISTER1 (default, Debian 6.1) or the legacy REGISTER. */
  register?: "REGISTER1" | "REGISTER";
  /** Initial pool contents: pool number -> [key, value] records. */
  pools?: Record<string, PoolEntry[]>;
  /** AUTO pool values (IntegrationServicesVersion is the kernel's registration version). */
  auto?: Partial<Record<Exclude<AutoKey, "IntegrationServicesVersion">, string>>;
  adapters?: Adapter[];
  /**
   * Status of SET_IP_INFO for a known adapter: kvp_set_ip_info answers HV_E_FAIL when
   * system("hv_set_ifconfig ...") fails, which it does on Debian (the script is not shipped).
   */
  setIpInfoStatus?: number;
  script?: Directive[];
}

export class KvpDaemonModel extends DaemonProcess<KvpDaemonState> implements Device<KvpDaemonState> {
  readonly kind = KvpDaemonKind;
  state: KvpDaemonState;
  private readonly opNs: number;
  private readonly regOp: number;
  private readonly auto: Record<Exclude<AutoKey, "IntegrationServicesVersion">, string>;
  private readonly adapters: Adapter[];
  private readonly setIpStatus: number;

  constructor(id: string, bench: Bench, cfg: KvpDaemonConfig) {
    super(id, bench, "kvp", cfg.kernel ?? "hv-utils", cfg.toKernelNs ?? 1_000);
    this.opNs = cfg.opNs ?? 20_000;
    this.regOp = cfg.register === "REGISTER" ? KVP_OP_REGISTER : KVP_OP_REGISTER1;
    this.auto = { ...DEFAULT_AUTO, ...(cfg.auto ?? {}) };
    this.adapters = cfg.adapters ?? [];
    this.setIpStatus = cfg.setIpInfoStatus ?? HV_E_FAIL;
    const pools: PoolState[] = [];
    for (let i = 0; i < KVP_POOL_COUNT; i++) pools.push({ file: encodePoolFile(cfg.pools?.[String(i)] ?? []), mem: new Uint8Array(0), count: 0 });
    this.state = {
      phase: "stopped",
      afterClose: "exit",
      gen: 0,
      inHandshake: true,
      licVersion: null,
      buf: new Uint8Array(KVP_MSG_SIZE),
      pools,
      script: [...(cfg.script ?? [])],
      answerSeq: null,
      exitStatus: null,
      stats: { requests: 0, answers: 0, reopens: 0, registrations: 0, crashes: 0 },
      ipSettings: [],
    };
    bench.clock.on(id, HVT_RESULT, (ev) => this.onResult(ev.payload as HvtResult));
    bench.clock.on(id, "start", () => this.start());
    bench.clock.on(id, "answer", (ev) => this.onAnswerDue(ev));
    if (cfg.autostart ?? true) bench.clock.schedule(0, id, "start", null);
  }

  /** Starts the daemon process (a new process: fresh memory, handshake again). */
  start(): void {
    if (this.running) return;
    const s = this.state;
    s.gen++;
    s.inHandshake = true;
    s.licVersion = null;
    s.exitStatus = null;
    for (const p of s.pools) {
      p.mem = new Uint8Array(0);
      p.count = 0;
    }
    this.trace("daemon-start", "kvp");
    this.openDevice();
  }

  protected override reopen(): void {
    this.state.stats.reopens++;
    this.state.inHandshake = true;
    this.state.phase = "closing";
    this.state.afterClose = "reopen";
    this.call({ call: "close" });
  }

  private onResult(r: HvtResult): void {
    const s = this.state;
    if ((r.tag ?? 0) !== s.gen || !this.running) return;
    switch (s.phase) {
      case "opening":
        if (r.ret < 0) return this.exit(1); // open failed: exit(EXIT_FAILURE)
        s.phase = "registering";
        s.buf = new Uint8Array(KVP_MSG_SIZE);
        s.buf[K.op] = this.regOp;
        this.call({ call: "write", bytes: s.buf.slice() });
        return;
      case "registering":
        if (r.ret !== KVP_MSG_SIZE) {
          s.afterClose = "exit";
          s.phase = "closing";
          this.call({ call: "close" });
          return;
        }
        s.stats.registrations++;
        return this.pollDevice();
      case "polling":
        if (r.revents !== undefined && r.revents & 0x8) {
          // POLLERR: the device is going away; the read below fails and the daemon reopens.
        }
        s.phase = "reading";
        this.call({ call: "read", len: KVP_MSG_SIZE });
        return;
      case "reading":
        if (r.ret !== KVP_MSG_SIZE || !r.bytes) return this.reopen();
        return this.handle(r.bytes);
      case "writing":
        return this.written(r.ret, KVP_MSG_SIZE);
      case "closing":
        return this.closed();
      default:
        return;
    }
  }

  private handle(bytes: Uint8Array): void {
    const s = this.state;
    const b = s.buf;
    b.set(bytes.subarray(0, KVP_MSG_SIZE));
    const op = b[K.op]!;
    const pool = b[K.pool]!;
    wr32(b, K.error, 0);
    if (s.inHandshake && op === KVP_OP_REGISTER1) {
      s.inHandshake = false;
      s.licVersion = cstr(b, K.version, HV_KVP_EXCHANGE_MAX_KEY_SIZE);
      this.trace("daemon-registered", "kvp", s.licVersion);
      return this.pollDevice();
    }
    const d = this.beginRequest();
    if (!d) return;
    this.process(op, pool);
    this.work(d, this.opNs);
  }

  // ---------------- request handling ----------------

  private process(op: number, pool: number): void {
    const b = this.state.buf;
    const fail = (status: number) => wr32(b, K.error, status);
    switch (op) {
      case KVP_OP_GET_IP_INFO:
        return this.getIpInfo();
      case KVP_OP_SET_IP_INFO:
        return this.setIpInfo();
      case KVP_OP_SET:
        if (!this.validPool(pool) || this.addOrModify(pool, K.key, rd32(b, K.keySize), K.value, rd32(b, K.valueSize))) fail(HV_S_CONT);
        return;
      case KVP_OP_GET:
        if (!this.validPool(pool) || this.getValue(pool, K.key, rd32(b, K.keySize), K.value, rd32(b, K.valueSize))) fail(HV_S_CONT);
        return;
      case KVP_OP_DELETE:
        if (!this.validPool(pool) || this.keyDelete(pool, K.delKey, rd32(b, K.delKeySize))) fail(HV_S_CONT);
        return;
      case KVP_OP_ENUMERATE:
        if (pool !== KVP_POOL_AUTO) {
          if (!this.validPool(pool) || this.enumerate(pool, rdI32(b, K.enumIndex))) fail(HV_S_CONT);
          return;
        }
        return this.enumerateAuto(rd32(b, K.enumIndex));
      default:
        return;
    }
  }

  /** Pools past 4 index past kvp_file_info[] upstream (undefined behaviour); the model refuses them. */
  private validPool(pool: number): boolean {
    if (pool < KVP_POOL_COUNT) return true;
    this.trace("daemon-bad-pool", "kvp", pool);
    return false;
  }

  private strcpy(off: number, text: string, room: number): void {
    const t = utf8Bytes(text).subarray(0, room - 1);
    this.state.buf.set(t, off);
    this.state.buf[off + t.length] = 0;
  }

  private enumerateAuto(index: number): void {
    const b = this.state.buf;
    const key = AUTO_KEYS[index];
    if (key === undefined) {
      wr32(b, K.error, HV_S_CONT);
      return;
    }
    const value = key === "IntegrationServicesVersion" ? (this.state.licVersion ?? "") : this.auto[key];
    this.strcpy(K.enumValue, value, HV_KVP_EXCHANGE_MAX_VALUE_SIZE);
    this.strcpy(K.enumKey, key, HV_KVP_EXCHANGE_MAX_KEY_SIZE);
  }

  /** kvp_mac_to_ip: an interface whose upper-cased MAC equals adapter_id (strcmp). */
  private adapterByMac(adapterIdOff: number): Adapter | undefined {
    const id = cstr(this.state.buf, adapterIdOff, MAX_ADAPTER_ID_SIZE * 2);
    return this.adapters.find((a) => a.mac.toUpperCase() === id);
  }

  /** kvp_get_if_name: an interface whose device_id equals adapter_id (strcmp). */
  private adapterByGuid(adapterIdOff: number): Adapter | undefined {
    const id = cstr(this.state.buf, adapterIdOff, MAX_ADAPTER_ID_SIZE * 2);
    return this.adapters.find((a) => a.deviceId !== undefined && a.deviceId === id);
  }

  private getIpInfo(): void {
    const b = this.state.buf;
    const a = this.adapterByMac(K.ip.adapterId);
    if (!a) {
      wr32(b, K.error, HV_E_FAIL);
      return;
    }
    this.strcpy(K.ip.ipAddr, a.ipAddr ?? "", MAX_IP_ADDR_SIZE * 2);
    this.strcpy(K.ip.subNet, a.subNet ?? "", MAX_IP_ADDR_SIZE * 2);
    this.strcpy(K.ip.gateWay, a.gateWay ?? "", MAX_GATEWAY_SIZE * 2);
    this.strcpy(K.ip.dnsAddr, a.dnsAddr ?? "", MAX_IP_ADDR_SIZE * 2);
    b[K.ip.dhcp] = a.dhcpEnabled ?? 0;
    if (a.addrFamily !== undefined) b[K.ip.addrFamily] = a.addrFamily;
  }

  private setIpInfo(): void {
    const b = this.state.buf;
    const a = this.adapterByGuid(K.ip.adapterId);
    if (!a) {
      wr32(b, K.error, HV_GUID_NOTFOUND);
      return;
    }
    this.state.ipSettings.push({
      ifName: a.ifName,
      ipAddr: cstr(b, K.ip.ipAddr, MAX_IP_ADDR_SIZE * 2),
      subNet: cstr(b, K.ip.subNet, MAX_IP_ADDR_SIZE * 2),
      gateWay: cstr(b, K.ip.gateWay, MAX_GATEWAY_SIZE * 2),
      dnsAddr: cstr(b, K.ip.dnsAddr, MAX_IP_ADDR_SIZE * 2),
      dhcpEnabled: b[K.ip.dhcp]!,
    });
    if (this.setIpStatus) wr32(b, K.error, this.setIpStatus);
  }

  // ---- pools: kvp_update_mem_state / kvp_update_file and the four operations ----

  /** Re-reads the pool file into the record array (whole records only), growing it by 50s. */
  private updateMem(pool: number): PoolState {
    const p = this.state.pools[pool]!;
    const n = Math.floor(p.file.length / POOL_RECORD_SIZE);
    let cap = Math.max(ENTRIES_PER_BLOCK, p.mem.length / POOL_RECORD_SIZE);
    while (cap <= n) cap += ENTRIES_PER_BLOCK;
    if (cap * POOL_RECORD_SIZE !== p.mem.length) {
      const grown = new Uint8Array(cap * POOL_RECORD_SIZE);
      grown.set(p.mem);
      p.mem = grown;
    }
    p.mem.set(p.file.subarray(0, n * POOL_RECORD_SIZE));
    p.count = n;
    return p;
  }

  private updateFile(p: PoolState): void {
    p.file = p.mem.slice(0, p.count * POOL_RECORD_SIZE);
  }

  /** memcmp(key, record[i].key, key_size) over the record's bytes. */
  private keyMatches(p: PoolState, i: number, keyOff: number, keySize: number): boolean {
    const b = this.state.buf;
    const at = i * POOL_RECORD_SIZE;
    const n = Math.min(keySize, POOL_RECORD_SIZE);
    for (let j = 0; j < n; j++) if (b[keyOff + j] !== p.mem[at + j]) return false;
    return true;
  }

  private find(p: PoolState, keyOff: number, keySize: number): number {
    for (let i = 0; i < p.count; i++) if (this.keyMatches(p, i, keyOff, keySize)) return i;
    return -1;
  }

  private copyIn(p: PoolState, at: number, srcOff: number, size: number): void {
    const n = Math.max(0, Math.min(size, KVP_MSG_SIZE - srcOff, p.mem.length - at));
    p.mem.set(this.state.buf.subarray(srcOff, srcOff + n), at);
  }

  private addOrModify(pool: number, keyOff: number, keySize: number, valueOff: number, valueSize: number): number {
    if (keySize > HV_KVP_EXCHANGE_MAX_KEY_SIZE || valueSize > HV_KVP_EXCHANGE_MAX_VALUE_SIZE) return 1;
    const p = this.updateMem(pool);
    const i = this.find(p, keyOff, keySize);
    if (i >= 0) {
      this.copyIn(p, i * POOL_RECORD_SIZE + POOL_KEY_SIZE, valueOff, valueSize);
      this.updateFile(p);
      return 0;
    }
    if ((p.count + 1) * POOL_RECORD_SIZE > p.mem.length) {
      const grown = new Uint8Array(p.mem.length + ENTRIES_PER_BLOCK * POOL_RECORD_SIZE);
      grown.set(p.mem);
      p.mem = grown;
    }
    const at = p.count * POOL_RECORD_SIZE;
    this.copyIn(p, at + POOL_KEY_SIZE, valueOff, valueSize);
    this.copyIn(p, at, keyOff, keySize);
    p.count++;
    this.updateFile(p);
    return 0;
  }

  private getValue(pool: number, keyOff: number, keySize: number, valueOff: number, valueSize: number): number {
    if (keySize > HV_KVP_EXCHANGE_MAX_KEY_SIZE || valueSize > HV_KVP_EXCHANGE_MAX_VALUE_SIZE) return 1;
    const p = this.updateMem(pool);
    const i = this.find(p, keyOff, keySize);
    if (i < 0) return 1;
    const at = i * POOL_RECORD_SIZE + POOL_KEY_SIZE;
    this.state.buf.set(p.mem.subarray(at, at + valueSize), valueOff);
    return 0;
  }

  private keyDelete(pool: number, keyOff: number, keySize: number): number {
    const p = this.updateMem(pool);
    const i = this.find(p, keyOff, keySize);
    if (i < 0) return 1;
    // Later records move up with strcpy: only up to their NULs, older bytes stay behind.
    for (let j = i, k = i + 1; k < p.count; j++, k++) {
      for (const [off, size] of [
        [0, POOL_KEY_SIZE],
        [POOL_KEY_SIZE, POOL_RECORD_SIZE - POOL_KEY_SIZE],
      ] as const) {
        const src = k * POOL_RECORD_SIZE + off;
        let len = 0;
        while (len < size - 1 && p.mem[src + len] !== 0) len++;
        p.mem.copyWithin(j * POOL_RECORD_SIZE + off, src, src + len);
        p.mem[j * POOL_RECORD_SIZE + off + len] = 0;
      }
    }
    p.count--;
    this.updateFile(p);
    return 0;
  }

  private enumerate(pool: number, index: number): number {
    const p = this.updateMem(pool);
    if (index < 0 || index >= p.count) return 1;
    const at = index * POOL_RECORD_SIZE;
    this.state.buf.set(p.mem.subarray(at, at + HV_KVP_EXCHANGE_MAX_KEY_SIZE), K.enumKey);
    this.state.buf.set(p.mem.subarray(at + POOL_KEY_SIZE, at + POOL_RECORD_SIZE), K.enumValue);
    return 0;
  }

  // ---- the bench's view of the pool files ----

  /** The bytes of .kvp_pool_N. */
  poolFile(pool: number): Uint8Array {
    const p = this.state.pools[pool];
    if (!p) throw new RangeError(`KVP pool ${pool} does not exist (0-4)`);
    return p.file.slice();
  }

  /** Replaces .kvp_pool_N (the daemon re-reads it before every operation). */
  setPoolFile(pool: number, bytes: Uint8Array): void {
    const p = this.state.pools[pool];
    if (!p) throw new RangeError(`KVP pool ${pool} does not exist (0-4)`);
    p.file = bytes.slice();
  }

  /** Pool contents as [key, value] text pairs. */
  entries(pool: number): [string, string][] {
    return poolEntries(this.poolFile(pool));
  }
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

export const KvpDaemonKind: DeviceKind<KvpDaemonState, KvpDaemonConfig> = {
  type: "hv-kvp-daemon",
  stateVersion: 1,
  validate(s: unknown) {
    const o = s as Partial<KvpDaemonState> | null;
    if (!o || typeof o !== "object") return "not an object";
    if (!["stopped", "opening", "registering", "polling", "reading", "working", "writing", "closing", "exited"].includes(o.phase as string)) return "phase is invalid";
    if (!isBytes(o.buf) || o.buf.length !== KVP_MSG_SIZE) return `buf is not ${KVP_MSG_SIZE} bytes`;
    if (!Array.isArray(o.pools) || o.pools.length !== KVP_POOL_COUNT) return "pools is not a list of 5";
    for (const [i, p] of o.pools.entries()) {
      if (!p || !isBytes(p.file) || !isBytes(p.mem) || p.mem.length % POOL_RECORD_SIZE !== 0) return `pools[${i}] is malformed`;
      if (!Number.isSafeInteger(p.count) || p.count < 0) return `pools[${i}].count is invalid`;
    }
    if (!Array.isArray(o.script)) return "script is not a list";
    if (!Number.isSafeInteger(o.gen)) return "gen is not an integer";
    return undefined;
  },
  create(bench, id, config) {
    return new KvpDaemonModel(id, bench, config);
  },
};
