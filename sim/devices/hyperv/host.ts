// The Hyper-V host side of the KVP and VSS channels: it negotiates first, then sends requests with
// at most one transaction outstanding per service (later requests wait in the host's queue), and
// records every answer with its status and transaction id. Packets travel as clock events; a
// `force` send skips the queue (to show what the guest does with a second request in its ring).
// Every transaction has a host timeout (hostTimeoutNs; `timeoutNs: "hyperv"`, the default): an
// unanswered one is recorded as timed out (status -1, result {timedOut: true}) and the next queued
// request goes, so a lost transaction cannot stall the channel forever. `timeoutNs: "none"` (or 0)
// opts out: the host then waits forever, for a spec or scenario that is about "no answer, ever".
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind } from "../../machine/device.ts";
import type { ClockEvent } from "../../clock/clock.ts";
import type { Plain } from "../../clock/canonical.ts";
import {
  ICMSG_HDR,
  ICMSGTYPE_KVPEXCHANGE,
  ICMSGTYPE_NEGOTIATE,
  ICMSGTYPE_VSS,
  KVP_OP_DELETE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_OP_GET_IP_INFO,
  KVP_OP_SET,
  KVP_OP_SET_IP_INFO,
  VSS_OP_AUTO_RECOVER,
  VSS_OP_BU_COMPLETE,
  VSS_OP_CREATE,
  VSS_OP_DELETE,
  VSS_OP_FREEZE,
  VSS_OP_GET_DM_INFO,
  VSS_OP_HOT_BACKUP,
  VSS_OP_THAW,
} from "../../wire/hyperv-constants.ts";
import {
  IC,
  K,
  V,
  buildHostIp,
  buildHostKvp,
  buildIcFrame,
  buildNegotiate,
  buildVssMsg,
  parseVersion,
  rd16,
  rd32,
  readHostIp,
  versionText,
  type HostKvpOverrides,
  type IpInfo,
  type KvpValue,
  type Version,
} from "./frames.ts";
import { utf16leText } from "./utf.ts";
import { SERVICES, type Service } from "./endpoint.ts";

export type KvpOpName = "get" | "set" | "delete" | "enumerate" | "get-ip-info" | "set-ip-info";
export const KVP_OPS: Record<KvpOpName, number> = {
  get: KVP_OP_GET,
  set: KVP_OP_SET,
  delete: KVP_OP_DELETE,
  enumerate: KVP_OP_ENUMERATE,
  "get-ip-info": KVP_OP_GET_IP_INFO,
  "set-ip-info": KVP_OP_SET_IP_INFO,
};
export type VssOpName = "create" | "delete" | "hot-backup" | "get-dm-info" | "bu-complete" | "freeze" | "thaw" | "auto-recover";
export const VSS_OPS: Record<VssOpName, number> = {
  create: VSS_OP_CREATE,
  delete: VSS_OP_DELETE,
  "hot-backup": VSS_OP_HOT_BACKUP,
  "get-dm-info": VSS_OP_GET_DM_INFO,
  "bu-complete": VSS_OP_BU_COMPLETE,
  freeze: VSS_OP_FREEZE,
  thaw: VSS_OP_THAW,
  "auto-recover": VSS_OP_AUTO_RECOVER,
};

export type KvpRequest =
  | { op: "get" | "delete"; pool: number; key: string; overrides?: HostKvpOverrides }
  | { op: "set"; pool: number; key: string; value: KvpValue; overrides?: HostKvpOverrides }
  | { op: "enumerate"; pool: number; index: number }
  | { op: "get-ip-info"; adapterId: string; addrFamily?: number }
  | ({ op: "set-ip-info" } & Partial<IpInfo> & { adapterId: string });

export type RequestKind = "negotiate" | "kvp" | "vss" | "raw";

export interface HostAnswer {
  [k: string]: Plain | undefined;
  readonly id: number;
  readonly kind: RequestKind;
  /** The request's operation (KVP/VSS op number; -1 for negotiate and raw). */
  readonly op: number;
  readonly pool: number;
  readonly sentAt: number;
  readonly at: number;
  readonly status: number;
  readonly flags: number;
  readonly length: number;
  /** Decoded fields, by kind (see decodeAnswer). */
  readonly result: { [k: string]: Plain | undefined };
}

interface Pending {
  [k: string]: Plain | undefined;
  id: number;
  kind: RequestKind;
  op: number;
  pool: number;
  bytes: Uint8Array;
}

interface Outstanding {
  [k: string]: Plain | undefined;
  id: number;
  kind: RequestKind;
  op: number;
  pool: number;
  sentAt: number;
  /** Sequence number of the pending host.timeout clock event (null: none). */
  timeoutSeq: number | null;
}

export interface HostServiceState {
  [k: string]: any;
  nextId: number;
  negotiationSent: boolean;
  outstanding: Outstanding[];
  queue: Pending[];
  answers: HostAnswer[];
  /** Answers for which no transaction was outstanding (duplicates, strays). */
  unexpected: { id: number; at: number }[];
  /** Answers dropped from `answers` to keep it within keepAnswers. */
  forgotten: number;
  /** Transactions the host gave up on (host timeout), in order. */
  timedOut: { id: number; at: number }[];
  negotiated: { fw: string; srv: string } | null;
  lastBytes: Uint8Array | null;
}

export interface HostState {
  [k: string]: any;
  kvp: HostServiceState;
  vss: HostServiceState;
}

export interface HostConfig {
  /** Guest kernel device id (default "hv-utils"). */
  guest?: string;
  /** Host -> guest packet delivery, ns (default 10 µs). */
  toGuestNs?: number;
  /** Versions the host offers, "major.minor" (defaults: framework 3.0; KVP service 4.0, VSS 5.0). */
  offers?: Partial<Record<Service, { framework?: string[]; service?: string[] }>>;
  /** Answers kept per service (oldest dropped first; default 100000). */
  keepAnswers?: number;
  /**
   * Host timeout per transaction: "hyperv" (the default) for hostTimeoutNs of the op, a number of
   * ns, or "none" / 0 for never (the host waits for an answer forever).
   */
  timeoutNs?: number | "hyperv" | "none";
}

/**
 * The host's timeout for one transaction. No public source states the timeout of the Hyper-V host's
 * own KVP/VSS integration components, so hvsim chooses, and documents here, the guest kernel's
 * timeout for the same transaction plus 5 s: drivers/hv/hv_snapshot.c (linux 6.1.192) waits
 * VSS_FREEZE_TIMEOUT (15 min, :40, armed at :195-196) for a FREEZE and HV_UTIL_TIMEOUT (30 s) for
 * every other op, as drivers/hv/hv_kvp.c:727-728 does for every KVP op, and then answers HV_E_FAIL
 * itself; the margin makes sure a guest that gives up on its own is always heard before the host
 * gives up on it. This is the default (HostConfig.timeoutNs "hyperv"); "none" turns it off.
 */
export function hostTimeoutNs(service: Service, kind: RequestKind, op: number): number {
  const guest = service === "vss" && kind === "vss" && op === VSS_OP_FREEZE ? 15 * 60 : 30;
  return (guest + 5) * 1_000_000_000;
}

const DEFAULT_OFFERS: Record<Service, { framework: string[]; service: string[] }> = {
  kvp: { framework: ["3.0"], service: ["4.0"] },
  vss: { framework: ["3.0"], service: ["5.0"] },
};

function versions(list: readonly string[], what: string): Version[] {
  return list.map((s) => {
    const v = parseVersion(s);
    if (!v) throw new Error(`hyperv host: ${what} version ${JSON.stringify(s)} is not "major.minor"`);
    return v;
  });
}

function newHostService(): HostServiceState {
  return { nextId: 1, negotiationSent: false, outstanding: [], queue: [], answers: [], unexpected: [], forgotten: 0, timedOut: [], negotiated: null, lastBytes: null };
}

/** Reads the fields of an answer that matter for its kind. Never throws. */
export function decodeAnswer(service: Service, kind: RequestKind, op: number, bytes: Uint8Array): { [k: string]: Plain | undefined } {
  if (bytes.length < ICMSG_HDR) return { short: true };
  const p = bytes.subarray(ICMSG_HDR);
  if (kind === "negotiate") {
    return {
      fwCount: rd16(bytes, IC.negFwCount),
      msgCount: rd16(bytes, IC.negMsgCount),
      framework: `${rd16(bytes, IC.negData)}.${rd16(bytes, IC.negData + 2)}`,
      service: `${rd16(bytes, IC.negData + 4)}.${rd16(bytes, IC.negData + 6)}`,
      icmsgsize: rd16(bytes, IC.icmsgsize),
    };
  }
  if (service === "vss") return { flags: rd32(p, V.flags), operation: p[V.op] ?? 0 };
  if (kind !== "kvp") return {};
  switch (op) {
    case KVP_OP_GET: {
      const valueSize = rd32(p, K.valueSize);
      return { key: utf16leText(p, K.key, 256), value: utf16leText(p, K.value, Math.min(1024, Math.floor(valueSize / 2))), valueSize, valueType: rd32(p, K.valueType) };
    }
    case KVP_OP_ENUMERATE: {
      const keySize = rd32(p, K.enumKeySize), valueSize = rd32(p, K.enumValueSize);
      return {
        index: rd32(p, K.enumIndex),
        key: utf16leText(p, K.enumKey, Math.min(256, Math.floor(keySize / 2))),
        value: utf16leText(p, K.enumValue, Math.min(1024, Math.floor(valueSize / 2))),
        keySize,
        valueSize,
        valueType: rd32(p, K.enumValueType),
      };
    }
    case KVP_OP_GET_IP_INFO:
      return { ...readHostIp(p) };
    default:
      return {};
  }
}

export class HypervHost implements Device<HostState> {
  readonly kind = HypervHostKind;
  state: HostState;
  private readonly guest: string;
  private readonly toGuestNs: number;
  private readonly keep: number;
  private readonly timeoutNs: number | "hyperv";
  private readonly offers: Record<Service, { framework: Version[]; service: Version[] }>;

  constructor(readonly id: string, private readonly bench: Bench, cfg: HostConfig) {
    this.guest = cfg.guest ?? "hv-utils";
    this.toGuestNs = cfg.toGuestNs ?? 10_000;
    this.keep = cfg.keepAnswers ?? 100_000;
    const t = cfg.timeoutNs ?? "hyperv";
    if (t !== "hyperv" && t !== "none" && !(typeof t === "number" && Number.isSafeInteger(t) && t >= 0)) {
      throw new Error(`hyperv host: timeoutNs must be "hyperv", "none" or whole ns >= 0, got ${JSON.stringify(t)}`);
    }
    this.timeoutNs = t === "none" ? 0 : t;
    this.offers = {
      kvp: { framework: versions(cfg.offers?.kvp?.framework ?? DEFAULT_OFFERS.kvp.framework, "framework"), service: versions(cfg.offers?.kvp?.service ?? DEFAULT_OFFERS.kvp.service, "service") },
      vss: { framework: versions(cfg.offers?.vss?.framework ?? DEFAULT_OFFERS.vss.framework, "framework"), service: versions(cfg.offers?.vss?.service ?? DEFAULT_OFFERS.vss.service, "service") },
    };
    this.state = { kvp: newHostService(), vss: newHostService() };
    bench.clock.on(id, "vmbus.rx", (ev) => this.onRx(ev));
    bench.clock.on(id, "host.timeout", (ev) => this.onTimeout(ev));
  }

  svc(s: Service): HostServiceState {
    return this.state[s];
  }

  /** Sends the version negotiation (done automatically before a service's first request). */
  negotiate(service: Service, offer?: { framework?: string[]; service?: string[]; counts?: { fw?: number; msg?: number } }): number {
    const s = this.svc(service);
    s.negotiationSent = true;
    const fw = offer?.framework ? versions(offer.framework, "framework") : this.offers[service].framework;
    const srv = offer?.service ? versions(offer.service, "service") : this.offers[service].service;
    const body = buildNegotiate(fw, srv, offer?.counts);
    return this.submit(service, "negotiate", -1, 0, body, ICMSGTYPE_NEGOTIATE, false);
  }

  /** Queues a KVP request; returns its transaction id. */
  kvp(req: KvpRequest, opts: { force?: boolean } = {}): number {
    const op = KVP_OPS[req.op];
    let payload: Uint8Array;
    if (req.op === "get-ip-info" || req.op === "set-ip-info") payload = buildHostIp(op, req);
    else if (req.op === "enumerate") payload = buildHostKvp(req, op);
    else payload = buildHostKvp(req, op, req.overrides);
    const pool = "pool" in req ? req.pool : 0;
    return this.submit("kvp", "kvp", op, pool, payload, ICMSGTYPE_KVPEXCHANGE, opts.force ?? false);
  }

  kvpSet(pool: number, key: string, value: KvpValue): number {
    return this.kvp({ op: "set", pool, key, value });
  }
  kvpGet(pool: number, key: string): number {
    return this.kvp({ op: "get", pool, key });
  }
  kvpDelete(pool: number, key: string): number {
    return this.kvp({ op: "delete", pool, key });
  }
  kvpEnumerate(pool: number, index: number): number {
    return this.kvp({ op: "enumerate", pool, index });
  }

  /** Queues a VSS request (op by name or number); returns its transaction id. */
  vss(op: VssOpName | number, opts: { force?: boolean; flags?: number } = {}): number {
    const n = typeof op === "number" ? op : VSS_OPS[op];
    return this.submit("vss", "vss", n, 0, buildVssMsg(n, opts.flags ?? 0), ICMSGTYPE_VSS, opts.force ?? false);
  }

  /** Sends arbitrary packet bytes (a whole IC frame) as a transaction, bypassing negotiation. */
  sendRaw(service: Service, packet: Uint8Array, opts: { force?: boolean } = {}): number {
    const s = this.svc(service);
    const id = s.nextId++;
    this.enqueue(service, { id, kind: "raw", op: -1, pool: 0, bytes: packet.slice() }, opts.force ?? false);
    return id;
  }

  private submit(service: Service, kind: RequestKind, op: number, pool: number, payload: Uint8Array, msgType: number, force: boolean): number {
    const s = this.svc(service);
    if (kind !== "negotiate" && !s.negotiationSent) this.negotiate(service);
    const id = s.nextId++;
    const bytes = buildIcFrame({ msgType, transactionId: id, payload, icvermsg: kind === "negotiate" ? { major: 0, minor: 0 } : this.offers[service].service[0] });
    this.enqueue(service, { id, kind, op, pool, bytes }, force);
    return id;
  }

  private enqueue(service: Service, p: Pending, force: boolean): void {
    const s = this.svc(service);
    if (force || (s.outstanding.length === 0 && s.queue.length === 0)) this.transmit(service, p);
    else s.queue.push(p);
  }

  private transmit(service: Service, p: Pending): void {
    const s = this.svc(service);
    const t = this.timeoutNs === "hyperv" ? hostTimeoutNs(service, p.kind, p.op) : this.timeoutNs;
    const timeoutSeq = t > 0 ? this.bench.clock.schedule(t, this.id, "host.timeout", { service, id: p.id }) : null;
    s.outstanding.push({ id: p.id, kind: p.kind, op: p.op, pool: p.pool, sentAt: this.bench.now, timeoutSeq });
    this.bench.clock.trace.record(this.bench.now, "hyperv", this.id, "host-send", service, p.id, p.kind, p.op);
    this.bench.clock.schedule(this.toGuestNs, this.guest, "vmbus.rx", { service, id: p.id, bytes: p.bytes });
  }

  private onRx(ev: ClockEvent): void {
    const { service, id, bytes } = ev.payload as { service: Service; id: number; bytes: Uint8Array };
    const s = this.svc(service);
    s.lastBytes = bytes;
    const i = s.outstanding.findIndex((o) => o.id === id);
    if (i < 0) {
      s.unexpected.push({ id, at: this.bench.now });
      this.bench.clock.trace.record(this.bench.now, "hyperv", this.id, "host-unexpected-answer", service, id);
      return;
    }
    const o = s.outstanding[i]!;
    s.outstanding.splice(i, 1);
    if (o.timeoutSeq != null) this.bench.clock.cancel(o.timeoutSeq);
    const status = bytes.length >= ICMSG_HDR ? rd32(bytes, IC.status) : -1;
    const flags = bytes.length >= ICMSG_HDR ? bytes[IC.icflags]! : -1;
    const result = decodeAnswer(service, o.kind, o.op, bytes);
    if (o.kind === "negotiate" && result.fwCount === 1) s.negotiated = { fw: result.framework as string, srv: result.service as string };
    s.answers.push({ id, kind: o.kind, op: o.op, pool: o.pool, sentAt: o.sentAt, at: this.bench.now, status, flags, length: bytes.length, result });
    if (s.answers.length > this.keep) {
      s.answers.splice(0, s.answers.length - this.keep);
      s.forgotten++;
    }
    this.bench.clock.trace.record(this.bench.now, "hyperv", this.id, "host-answer", service, id, status);
    if (s.outstanding.length === 0) {
      const next = s.queue.shift();
      if (next) this.transmit(service, next);
    }
  }

  /** The host gives up on transaction `id`: recorded (status -1, result.timedOut), the next queued request goes. */
  private onTimeout(ev: ClockEvent): void {
    const { service, id } = ev.payload as { service: Service; id: number };
    const s = this.svc(service);
    const i = s.outstanding.findIndex((o) => o.id === id);
    if (i < 0) return;
    const o = s.outstanding[i]!;
    s.outstanding.splice(i, 1);
    (s.timedOut ??= []).push({ id, at: this.bench.now });
    s.answers.push({ id, kind: o.kind, op: o.op, pool: o.pool, sentAt: o.sentAt, at: this.bench.now, status: -1, flags: -1, length: 0, result: { timedOut: true } });
    if (s.answers.length > this.keep) {
      s.answers.splice(0, s.answers.length - this.keep);
      s.forgotten++;
    }
    this.bench.clock.trace.record(this.bench.now, "hyperv", this.id, "host-timeout", service, id);
    if (s.outstanding.length === 0) {
      const next = s.queue.shift();
      if (next) this.transmit(service, next);
    }
  }

  /** The recorded answer to transaction `id`, if any. */
  answer(service: Service, id: number): HostAnswer | undefined {
    const a = this.svc(service).answers;
    for (let i = a.length - 1; i >= 0; i--) if (a[i]!.id === id) return a[i];
    return undefined;
  }

  /** True when nothing is outstanding or queued on `service`. */
  idle(service: Service): boolean {
    const s = this.svc(service);
    return s.outstanding.length === 0 && s.queue.length === 0;
  }

  offered(service: Service): { framework: string[]; service: string[] } {
    return { framework: this.offers[service].framework.map(versionText), service: this.offers[service].service.map(versionText) };
  }
}

export const HypervHostKind: DeviceKind<HostState, HostConfig> = {
  type: "hyperv-host",
  stateVersion: 1,
  validate(s: unknown) {
    const o = s as Partial<HostState> | null;
    if (!o || typeof o !== "object") return "not an object";
    for (const k of SERVICES) {
      const v = o[k] as Partial<HostServiceState> | undefined;
      if (!v || typeof v !== "object") return `${k} is missing`;
      if (!Number.isSafeInteger(v.nextId) || v.nextId! < 1) return `${k}.nextId is not a positive integer`;
      if (!Array.isArray(v.outstanding) || !Array.isArray(v.queue) || !Array.isArray(v.answers) || !Array.isArray(v.unexpected)) return `${k} lists are malformed`;
      if (!v.queue.every((p) => p && p.bytes instanceof Uint8Array)) return `${k}.queue holds a request without bytes`;
      if (typeof v.negotiationSent !== "boolean") return `${k}.negotiationSent is not a boolean`;
    }
    return undefined;
  },
  create(bench, id, config) {
    return new HypervHost(id, bench, config);
  },
};
