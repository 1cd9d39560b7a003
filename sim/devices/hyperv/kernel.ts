// The guest kernel side: Linux 6.1 hv_utils for the KVP and VSS integration services
// (drivers/hv/hv_kvp.c, hv_snapshot.c, hv_utils_transport.c, channel_mgmt.c
// vmbus_prep_negotiate_resp). Host packets arrive in a per-service ring and are copied into the
// driver's receive buffer (kept in state: answers are built in place there, as upstream does, so
// stale bytes behave alike). Work items, timers and deliveries are clock events; all state is
// plain data. Behaviour that differs between profiles goes through quirk() (profile.ts).
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind } from "../../machine/device.ts";
import type { ClockEvent } from "../../clock/clock.ts";
import { NS_PER_S } from "../../clock/time.ts";
import {
  HV_E_FAIL,
  HV_KVP_EXCHANGE_MAX_KEY_SIZE,
  HV_KVP_EXCHANGE_MAX_VALUE_SIZE,
  HV_S_CONT,
  HV_UTIL_NEGO_TIMEOUT,
  HV_UTIL_TIMEOUT,
  HVUTIL_DEVICE_DYING,
  HVUTIL_DEVICE_INIT,
  HVUTIL_HOSTMSG_RECEIVED,
  HVUTIL_READY,
  HVUTIL_USERSPACE_RECV,
  HVUTIL_USERSPACE_REQ,
  HV_DRV_VERSION,
  ICMSG_HDR,
  ICMSGHDRFLAG_RESPONSE,
  ICMSGHDRFLAG_TRANSACTION,
  ICMSGTYPE_KVPEXCHANGE,
  ICMSGTYPE_NEGOTIATE,
  ICMSGTYPE_VSS,
  IC_VERSION_NEGOTIATION_MAX_VER_COUNT,
  KVP_FW_VERSIONS,
  KVP_OP_DELETE,
  KVP_OP_ENUMERATE,
  KVP_OP_GET,
  KVP_OP_GET_IP_INFO,
  KVP_OP_REGISTER,
  KVP_OP_REGISTER1,
  KVP_OP_SET,
  KVP_OP_SET_IP_INFO,
  KVP_RECV_BUFFER_SIZE,
  KVP_SRV_VERSIONS,
  MAX_ADAPTER_ID_SIZE,
  MAX_GATEWAY_SIZE,
  MAX_IP_ADDR_SIZE,
  REG_SZ,
  REG_U32,
  REG_U64,
  VSS_FREEZE_TIMEOUT,
  VSS_FW_VERSIONS,
  VSS_HBU_NO_AUTO_RECOVERY,
  VSS_MAX_PKT_SIZE,
  VSS_OP_FREEZE,
  VSS_OP_GET_DM_INFO,
  VSS_OP_HOT_BACKUP,
  VSS_OP_REGISTER,
  VSS_OP_REGISTER1,
  VSS_OP_THAW,
  VSS_SRV_VERSIONS,
} from "../../wire/hyperv-constants.ts";
import { IC, K, KIP, KVP_MSG_SIZE, V, VSS_MSG_SIZE, rd16, rd32, rd64, rdI32, versionText, wr16, wr32 } from "./frames.ts";
import { cstrlen, utf16sToUtf8s, utf8Bytes, utf8sToUtf16s } from "./utf.ts";
import { isProfile, quirk, type KernelProfile } from "./profile.ts";
import {
  EBADF,
  EAGAIN,
  EBUSY,
  EFAULT,
  EINVAL,
  HVT_CALL,
  HVT_RESULT,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLRDNORM,
  SERVICES,
  type HvtCall,
  type HvtResult,
  type Service,
} from "./endpoint.ts";

export type TransportMode = "init" | "chardev" | "destroy";

/** hv_utils_transport state of one character device. */
export interface HvtState {
  [k: string]: any;
  mode: TransportMode;
  /** Endpoint id holding the device open. */
  opener: string | null;
  /** The one queued message (outmsg). */
  outmsg: Uint8Array | null;
  /** The on_read callback registered with the queued message. */
  onRead: "kvp-register-done" | "vss-register-done" | null;
  /** A read blocked waiting for a message. */
  reader: { from: string; len: number; tag: number } | null;
  /** A poll waiting for a message. */
  poller: { from: string; tag: number } | null;
}

export interface ServiceState {
  [k: string]: any;
  /** enum hvutil_device_state. */
  state: number;
  /** Host packets delivered but not yet read by the driver. */
  ring: { id: number; bytes: Uint8Array }[];
  /** The driver's receive buffer (recv_buffer). */
  recv: Uint8Array;
  recvLen: number;
  recvReqId: number;
  /** Pending clock events (sequence numbers), null when none. */
  callbackSeq: number | null;
  workSeq: number | null;
  timeoutSeq: number | null;
  handshakeSeq: number | null;
  /** The daemon's registration op (dm_reg_value), 0 before any. */
  dmReg: number;
  /** KVP host_negotiatied: 0 NOT_STARTED, 1 IN_PROGRESS, 2 FINISHED. */
  hostNego: number;
  /** Versions picked at the last successful negotiation ("3.0"/"4.0"). */
  negotiated: { fw: string; srv: string } | null;
  hvt: HvtState;
  stats: { packets: number; dropped: number; answers: number; timeouts: number; stalled: number };
  /** A rawToDaemon message is in flight: its answer goes nowhere, then READY (absent: false). */
  raw?: boolean;
}

export interface KernelState {
  [k: string]: any;
  profile: KernelProfile;
  kvp: ServiceState;
  vss: ServiceState;
}

export interface KernelConfig {
  /** Host device id (default "host"). */
  host?: string;
  profile?: KernelProfile;
  /** Guest -> host packet delivery, ns (default 10 µs). */
  toHostNs?: number;
  /** Delay before a scheduled work item runs, ns (default 1 µs). */
  workNs?: number;
  /** Kernel -> endpoint result/wake-up delivery, ns (default 1 µs). */
  toDaemonNs?: number;
}

/** Per-request timeouts of the upstream drivers, in ns. */
export const KVP_TIMEOUT_NS = HV_UTIL_TIMEOUT * NS_PER_S;
export const KVP_HANDSHAKE_NS = HV_UTIL_NEGO_TIMEOUT * NS_PER_S;
export const VSS_FREEZE_TIMEOUT_NS = VSS_FREEZE_TIMEOUT * NS_PER_S;
export const VSS_TIMEOUT_NS = HV_UTIL_TIMEOUT * NS_PER_S;

export const STATE_NAMES = ["DEVICE_INIT", "READY", "HOSTMSG_RECEIVED", "USERSPACE_REQ", "USERSPACE_RECV", "DEVICE_DYING"] as const;

function newService(bufSize: number): ServiceState {
  return {
    state: HVUTIL_DEVICE_INIT,
    ring: [],
    recv: new Uint8Array(bufSize),
    recvLen: 0,
    recvReqId: 0,
    callbackSeq: null,
    workSeq: null,
    timeoutSeq: null,
    handshakeSeq: null,
    dmReg: 0,
    hostNego: 0,
    negotiated: null,
    hvt: { mode: "init", opener: null, outmsg: null, onRead: null, reader: null, poller: null },
    stats: { packets: 0, dropped: 0, answers: 0, timeouts: 0, stalled: 0 },
  };
}

const BUF_SIZE: Record<Service, number> = { kvp: KVP_RECV_BUFFER_SIZE, vss: VSS_MAX_PKT_SIZE };

/**
 * vmbus_prep_negotiate_resp on `buf` (the receive buffer holding a `buflen`-byte packet): picks
 * the first of our framework versions the host offers, then likewise the service version, and
 * rewrites the packet into the reply in place. Returns the picked versions or undefined.
 */
export function prepNegotiateResp(buf: Uint8Array, buflen: number, fw: readonly number[], srv: readonly number[]): { fw: number; srv: number } | undefined {
  if (buflen < ICMSG_HDR + 4) return undefined; // offsetof(struct icmsg_negotiate, reserved)
  wr16(buf, IC.icmsgsize, 0x10);
  const fwc = rd16(buf, IC.negFwCount);
  const msgc = rd16(buf, IC.negMsgCount);
  let frame = { major: fwc, minor: 0 };
  let msg = { major: msgc, minor: 0 };
  let found = false;
  const at = (j: number) => ({ major: rd16(buf, IC.negData + 4 * j), minor: rd16(buf, IC.negData + 4 * j + 2) });
  const valid = fwc <= IC_VERSION_NEGOTIATION_MAX_VER_COUNT && msgc <= IC_VERSION_NEGOTIATION_MAX_VER_COUNT && ICMSG_HDR + 8 + 4 * (fwc + msgc) <= buflen;
  if (valid) {
    for (const v of fw) {
      for (let j = 0; j < fwc; j++) {
        const x = at(j);
        if (x.major === v >>> 16 && x.minor === (v & 0xffff)) {
          frame = x;
          found = true;
          break;
        }
      }
      if (found) break;
    }
    if (found) {
      found = false;
      for (const v of srv) {
        for (let j = fwc; j < fwc + msgc; j++) {
          const x = at(j);
          if (x.major === v >>> 16 && x.minor === (v & 0xffff)) {
            msg = x;
            found = true;
            break;
          }
        }
        if (found) break;
      }
    }
  }
  wr16(buf, IC.negFwCount, found ? 1 : 0);
  wr16(buf, IC.negMsgCount, found ? 1 : 0);
  wr16(buf, IC.negData, frame.major);
  wr16(buf, IC.negData + 2, frame.minor);
  wr16(buf, IC.negData + 4, msg.major);
  wr16(buf, IC.negData + 6, msg.minor);
  return found ? { fw: (frame.major << 16) | frame.minor, srv: (msg.major << 16) | msg.minor } : undefined;
}

export class HvUtilsKernel implements Device<KernelState> {
  readonly kind = HvUtilsKind;
  state: KernelState;
  private readonly hostId: string;
  private readonly toHostNs: number;
  private readonly workNs: number;
  private readonly toDaemonNs: number;

  constructor(readonly id: string, private readonly bench: Bench, cfg: KernelConfig) {
    const profile = cfg.profile ?? "linux-6.1";
    if (!isProfile(profile)) throw new Error(`hv-utils: unknown profile ${String(profile)} (linux-6.1, spec)`);
    this.hostId = cfg.host ?? "host";
    this.toHostNs = cfg.toHostNs ?? 10_000;
    this.workNs = cfg.workNs ?? 1_000;
    this.toDaemonNs = cfg.toDaemonNs ?? 1_000;
    this.state = { profile, kvp: newService(BUF_SIZE.kvp), vss: newService(BUF_SIZE.vss) };
    const c = bench.clock;
    c.on(id, "vmbus.rx", (ev) => this.onRx(ev));
    c.on(id, "channel", (ev) => this.onChannel((ev.payload as { service: Service }).service));
    c.on(id, "work", (ev) => this.onWork(ev));
    c.on(id, "timeout", (ev) => this.onTimeout((ev.payload as { service: Service }).service));
    c.on(id, "handshake", () => this.onHandshakeTimer());
    c.on(id, "hvt.resume", (ev) => this.onResumeRead((ev.payload as { service: Service }).service));
    c.on(id, HVT_CALL, (ev) => this.onCall(ev.payload as HvtCall));
  }

  get profile(): KernelProfile {
    return this.state.profile;
  }

  svc(s: Service): ServiceState {
    return this.state[s];
  }

  /** The transaction state by name (DEVICE_INIT, READY, ...). */
  stateName(s: Service): string {
    return STATE_NAMES[this.svc(s).state] ?? String(this.svc(s).state);
  }

  private trace(what: string, ...fields: (string | number | null)[]): void {
    this.bench.clock.trace.record(this.bench.now, "hyperv", this.id, what, ...fields);
  }

  // ---------------- vmbus channel ----------------

  private onRx(ev: ClockEvent): void {
    const p = ev.payload as { service: Service; id: number; bytes: Uint8Array };
    const s = this.svc(p.service);
    if (s.state === HVUTIL_DEVICE_DYING) {
      this.trace("rx-after-destroy", p.service, p.id);
      return;
    }
    s.ring.push({ id: p.id, bytes: p.bytes });
    this.kick(p.service);
  }

  /** Schedules the channel callback (tasklet_schedule: once while pending) if packets wait. */
  private kick(service: Service): void {
    const s = this.svc(service);
    if (s.callbackSeq !== null || s.ring.length === 0 || s.state === HVUTIL_DEVICE_DYING) return;
    s.callbackSeq = this.bench.clock.schedule(0, this.id, "channel", { service });
  }

  /** hv_poll_channel(channel, *_poll_wrapper): the transaction is over, READY, read on. */
  private pollWrapper(service: Service): void {
    const s = this.svc(service);
    if (s.state === HVUTIL_DEVICE_DYING) return;
    s.state = HVUTIL_READY;
    this.kick(service);
  }

  /** vmbus_recvpacket into the receive buffer; undefined when nothing was read. */
  private receive(service: Service): { len: number } | undefined {
    const s = this.svc(service);
    const pkt = s.ring[0];
    if (!pkt) return undefined;
    if (pkt.bytes.length > s.recv.length) {
      // -ENOBUFS: the packet stays in the ring; the channel cannot make progress.
      s.stats.stalled++;
      this.trace("recv-too-big", service, pkt.id, pkt.bytes.length);
      return undefined;
    }
    s.ring.shift();
    s.recv.set(pkt.bytes, 0);
    s.recvLen = pkt.bytes.length;
    s.recvReqId = pkt.id;
    s.stats.packets++;
    return { len: pkt.bytes.length };
  }

  private sendToHost(service: Service, len: number, id: number): void {
    const s = this.svc(service);
    s.stats.answers++;
    this.trace("answer", service, id, rd32(s.recv, IC.status));
    this.bench.clock.schedule(this.toHostNs, this.hostId, "vmbus.rx", { service, id, bytes: s.recv.slice(0, len) });
  }

  private onChannel(service: Service): void {
    const s = this.svc(service);
    s.callbackSeq = null;
    if (service === "kvp") this.kvpChannel();
    else this.vssChannel();
  }

  private kvpChannel(): void {
    const s = this.state.kvp;
    if (s.state < HVUTIL_READY) {
      // No daemon yet: the channel is not read; the host waits (hv_kvp_onchannelcallback).
      if (s.hostNego === 0) {
        s.hostNego = 1;
        s.handshakeSeq = this.bench.clock.schedule(KVP_HANDSHAKE_NS, this.id, "handshake", null);
      }
      return;
    }
    if (s.state > HVUTIL_READY) return;
    const r = this.receive("kvp");
    if (!r) return;
    if (r.len < ICMSG_HDR) return this.drop("kvp", `packet of ${r.len} bytes is shorter than the IC header`);
    const type = rd16(s.recv, IC.icmsgtype);
    if (type === ICMSGTYPE_NEGOTIATE) {
      const picked = prepNegotiateResp(s.recv, r.len, KVP_FW_VERSIONS, KVP_SRV_VERSIONS);
      this.noteNegotiated("kvp", picked);
      s.recv[IC.icflags] = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
      this.sendToHost("kvp", r.len, s.recvReqId);
      s.hostNego = 2;
      this.pollWrapper("kvp");
      return;
    }
    if (type === ICMSGTYPE_KVPEXCHANGE) {
      s.state = HVUTIL_HOSTMSG_RECEIVED;
      this.trace("host-request", "kvp", s.recvReqId, s.recv[ICMSG_HDR + K.op]!);
      s.workSeq = this.bench.clock.schedule(this.workNs, this.id, "work", { service: "kvp", work: "sendkey" });
      s.timeoutSeq = this.bench.clock.schedule(KVP_TIMEOUT_NS, this.id, "timeout", { service: "kvp" });
      return;
    }
    this.drop("kvp", `message type ${type}`);
  }

  private vssChannel(): void {
    const s = this.state.vss;
    if (s.state > HVUTIL_READY) return;
    if (!quirk(this.profile, "vss-request-overwrite") && s.workSeq !== null) return;
    const r = this.receive("vss");
    if (!r) return;
    if (r.len < ICMSG_HDR) return this.drop("vss", `packet of ${r.len} bytes is shorter than the IC header`);
    const type = rd16(s.recv, IC.icmsgtype);
    if (type === ICMSGTYPE_NEGOTIATE) {
      const picked = prepNegotiateResp(s.recv, r.len, VSS_FW_VERSIONS, VSS_SRV_VERSIONS);
      this.noteNegotiated("vss", picked);
      s.recv[IC.icflags] = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
      this.sendToHost("vss", r.len, s.recvReqId);
      this.kick("vss");
      return;
    }
    if (type === ICMSGTYPE_VSS) {
      if (r.len < ICMSG_HDR + VSS_MSG_SIZE) return this.drop("vss", `VSS packet of ${r.len} bytes is shorter than ${ICMSG_HDR + VSS_MSG_SIZE}`);
      this.trace("host-request", "vss", s.recvReqId, s.recv[ICMSG_HDR + V.op]!);
      // schedule_work: a no-op while the work item is still queued (it then reads the new packet).
      if (s.workSeq === null) s.workSeq = this.bench.clock.schedule(this.workNs, this.id, "work", { service: "vss", work: "request" });
      else this.trace("request-overwritten", "vss", s.recvReqId);
      this.kick("vss");
      return;
    }
    this.drop("vss", `message type ${type}`);
  }

  private drop(service: Service, why: string): void {
    this.svc(service).stats.dropped++;
    this.trace("drop", service, why);
    this.kick(service);
  }

  private noteNegotiated(service: Service, picked: { fw: number; srv: number } | undefined): void {
    const s = this.svc(service);
    if (picked) {
      s.negotiated = { fw: versionText({ major: picked.fw >>> 16, minor: picked.fw & 0xffff }), srv: versionText({ major: picked.srv >>> 16, minor: picked.srv & 0xffff }) };
      this.trace("negotiated", service, s.negotiated.fw, s.negotiated.srv);
    } else this.trace("negotiation-failed", service);
  }

  private onHandshakeTimer(): void {
    // kvp_host_handshake_func: schedules the channel callback again.
    const s = this.state.kvp;
    s.handshakeSeq = null;
    this.trace("handshake-timer", "kvp", this.stateName("kvp"));
    if (s.callbackSeq === null) s.callbackSeq = this.bench.clock.schedule(0, this.id, "channel", { service: "kvp" });
  }

  private cancel(seq: number | null): boolean {
    return seq !== null && this.bench.clock.cancel(seq);
  }

  private onWork(ev: ClockEvent): void {
    const p = ev.payload as { service: Service; work: string };
    const s = this.svc(p.service);
    s.workSeq = null;
    if (p.service === "kvp") this.kvpSendKey();
    else this.vssHandleRequest();
  }

  private onTimeout(service: Service): void {
    const s = this.svc(service);
    s.timeoutSeq = null;
    s.stats.timeouts++;
    this.trace("timeout", service, s.recvReqId);
    if (service === "kvp") this.kvpRespond(null, HV_E_FAIL);
    else this.vssRespond(HV_E_FAIL);
    this.pollWrapper(service);
  }

  // ---------------- KVP ----------------

  /**
   * Units of UTF-16 the kernel converts for a host size field of a `fieldBytes`-byte field
   * (deviation kvp-utf16-length-units): linux-6.1 takes the byte count as a unit count; the spec
   * profile converts at most size/2 units and never reads past the field.
   */
  private units(size: number, fieldBytes: number): number {
    return quirk(this.profile, "kvp-utf16-length-units") ? size : Math.min(Math.floor(size / 2), fieldBytes / 2);
  }

  /** kvp_send_key: host request (UTF-16) -> daemon message (UTF-8), then USERSPACE_REQ. */
  private kvpSendKey(): void {
    const s = this.state.kvp;
    if (s.state !== HVUTIL_HOSTMSG_RECEIVED) return;
    const src = s.recv;
    const base = ICMSG_HDR;
    const op = src[base + K.op]!;
    const msg = new Uint8Array(KVP_MSG_SIZE);
    msg[K.op] = op;
    msg[K.pool] = src[base + K.pool]!;
    const key16 = (inOff: number, sizeOff: number, outOff: number, outSizeOff: number) => {
      const n = utf16sToUtf8s(src, base + inOff, this.units(rd32(src, base + sizeOff), HV_KVP_EXCHANGE_MAX_KEY_SIZE), msg, outOff, HV_KVP_EXCHANGE_MAX_KEY_SIZE - 1);
      wr32(msg, outSizeOff, n + 1);
    };
    switch (op) {
      case KVP_OP_SET_IP_INFO:
      case KVP_OP_GET_IP_INFO:
        this.ipInbound(src, base, msg, op);
        break;
      case KVP_OP_SET: {
        const type = rd32(src, base + K.valueType);
        if (type === REG_SZ) {
          const n = utf16sToUtf8s(src, base + K.value, this.units(rd32(src, base + K.valueSize), HV_KVP_EXCHANGE_MAX_VALUE_SIZE), msg, K.value, HV_KVP_EXCHANGE_MAX_VALUE_SIZE - 1);
          wr32(msg, K.valueSize, n + 1);
        } else if (type === REG_U32 || type === REG_U64) {
          const text = type === REG_U32 ? String(rd32(src, base + K.value)) : rd64(src, base + K.value).toString();
          msg.set(utf8Bytes(text), K.value);
          wr32(msg, K.valueSize, text.length + 1);
        }
        key16(K.key, K.keySize, K.key, K.keySize);
        break;
      }
      case KVP_OP_GET:
        key16(K.key, K.keySize, K.key, K.keySize);
        if (!quirk(this.profile, "kvp-get-value-size")) wr32(msg, K.valueSize, HV_KVP_EXCHANGE_MAX_VALUE_SIZE);
        break;
      case KVP_OP_DELETE:
        key16(K.delKey, K.delKeySize, K.delKey, K.delKeySize);
        break;
      case KVP_OP_ENUMERATE:
        wr32(msg, K.enumIndex, rd32(src, base + K.enumIndex));
        break;
    }
    s.state = HVUTIL_USERSPACE_REQ;
    const rc = this.hvtSend("kvp", msg, null);
    if (rc) {
      this.trace("send-to-daemon-failed", "kvp", rc);
      if (this.cancel(s.timeoutSeq)) {
        s.timeoutSeq = null;
        this.kvpRespond(msg, HV_E_FAIL);
        s.state = HVUTIL_READY;
        this.kick("kvp");
      }
    }
  }

  /** process_ib_ipinfo: the host's hv_kvp_ip_msg (UTF-16) into the daemon message (UTF-8). */
  private ipInbound(src: Uint8Array, base: number, msg: Uint8Array, op: number): void {
    if (op === KVP_OP_SET_IP_INFO) {
      utf16sToUtf8s(src, base + KIP.ipAddr, MAX_IP_ADDR_SIZE, msg, K.ip.ipAddr, MAX_IP_ADDR_SIZE);
      utf16sToUtf8s(src, base + KIP.subNet, MAX_IP_ADDR_SIZE, msg, K.ip.subNet, MAX_IP_ADDR_SIZE);
      utf16sToUtf8s(src, base + KIP.gateWay, MAX_GATEWAY_SIZE, msg, K.ip.gateWay, MAX_GATEWAY_SIZE);
      utf16sToUtf8s(src, base + KIP.dnsAddr, MAX_IP_ADDR_SIZE, msg, K.ip.dnsAddr, MAX_IP_ADDR_SIZE);
      msg[K.ip.dhcp] = src[base + KIP.dhcp]!;
    }
    utf16sToUtf8s(src, base + KIP.adapterId, MAX_ADAPTER_ID_SIZE, msg, K.ip.adapterId, MAX_ADAPTER_ID_SIZE);
    msg[K.ip.addrFamily] = src[base + KIP.addrFamily]!;
  }

  /** process_ob_ipinfo: the daemon's UTF-8 fields into the host's hv_kvp_ip_msg; < 0 on bad UTF-8. */
  private ipOutbound(m: Uint8Array, out: Uint8Array, base: number): number {
    const conv = (inOff: number, outOff: number, max: number) => utf8sToUtf16s(m, inOff, cstrlen(m, inOff), out, base + outOff, max);
    for (const [i, o, max] of [
      [K.ip.ipAddr, KIP.ipAddr, MAX_IP_ADDR_SIZE],
      [K.ip.subNet, KIP.subNet, MAX_IP_ADDR_SIZE],
      [K.ip.gateWay, KIP.gateWay, MAX_GATEWAY_SIZE],
      [K.ip.dnsAddr, KIP.dnsAddr, MAX_IP_ADDR_SIZE],
      [K.ip.adapterId, KIP.adapterId, MAX_ADAPTER_ID_SIZE],
    ] as const) {
      const n = conv(i, o, max);
      if (n < 0) return n;
    }
    out[base + KIP.dhcp] = m[K.ip.dhcp]!;
    out[base + KIP.addrFamily] = m[K.ip.addrFamily]!;
    return 0;
  }

  /** kvp_respond_to_host: completes the transaction in the receive buffer and sends it. */
  private kvpRespond(fromDaemon: Uint8Array | null, error: number): void {
    const s = this.state.kvp;
    const b = s.recv;
    const base = ICMSG_HDR;
    wr32(b, IC.status, error);
    if (!error && fromDaemon) {
      const op = b[base + K.op]!;
      let done = false;
      let keylen = 0;
      let valueOff = K.enumValue;
      let d = { type: K.enumValueType, keySize: K.enumKeySize, valueSize: K.enumValueSize, key: K.enumKey, value: K.enumValue };
      switch (op) {
        case KVP_OP_GET_IP_INFO:
          if (this.ipOutbound(fromDaemon, b, base) < 0) wr32(b, IC.status, HV_E_FAIL);
          done = true;
          break;
        case KVP_OP_SET_IP_INFO:
        case KVP_OP_SET:
        case KVP_OP_DELETE:
          done = true;
          break;
        case KVP_OP_GET:
          d = { type: K.valueType, keySize: K.keySize, valueSize: K.valueSize, key: K.key, value: K.value };
          if (!quirk(this.profile, "kvp-get-value-offset")) valueOff = K.getValue;
          break;
        default:
          keylen = utf8sToUtf16s(fromDaemon, K.enumKey, cstrlen(fromDaemon, K.enumKey), b, base + d.key, HV_KVP_EXCHANGE_MAX_KEY_SIZE / 2 - 2);
          wr32(b, base + d.keySize, 2 * (keylen + 1));
      }
      if (!done) {
        const valuelen = utf8sToUtf16s(fromDaemon, valueOff, cstrlen(fromDaemon, valueOff), b, base + d.value, HV_KVP_EXCHANGE_MAX_VALUE_SIZE / 2 - 2);
        wr32(b, base + d.valueSize, 2 * (valuelen + 1));
        if (keylen < 0 || valuelen < 0) wr32(b, IC.status, HV_E_FAIL);
        wr32(b, base + d.type, REG_SZ);
      }
    }
    b[IC.icflags] = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
    this.sendToHost("kvp", s.recvLen, s.recvReqId);
  }

  /** kvp_on_msg: a daemon write. Returns 0 or -errno. */
  private kvpOnMsg(m: Uint8Array): number {
    const s = this.state.kvp;
    if (m.length < KVP_MSG_SIZE) return -EINVAL;
    if (s.state < HVUTIL_READY) {
      const op = m[K.op]!;
      if (op !== KVP_OP_REGISTER && op !== KVP_OP_REGISTER1) {
        this.trace("incompatible-daemon", "kvp", op);
        return -EINVAL;
      }
      s.dmReg = op;
      const reply = new Uint8Array(KVP_MSG_SIZE);
      reply[K.op] = op;
      reply.set(utf8Bytes(HV_DRV_VERSION), K.version);
      this.hvtSend("kvp", reply, "kvp-register-done");
      this.trace("daemon-registering", "kvp", op);
      return 0;
    }
    if (s.state < HVUTIL_USERSPACE_REQ) return -EINVAL;
    s.state = HVUTIL_USERSPACE_RECV;
    if (s.raw) return this.rawAnswered("kvp");
    let error = 0;
    if (s.dmReg === KVP_OP_REGISTER) error = m[K.enumKey] === 0 ? HV_S_CONT : 0;
    else if (s.dmReg === KVP_OP_REGISTER1) error = rdI32(m, K.error);
    if (this.cancel(s.timeoutSeq)) {
      s.timeoutSeq = null;
      this.kvpRespond(m, error);
      this.pollWrapper("kvp");
    }
    return 0;
  }

  private kvpRegisterDone(): void {
    const s = this.state.kvp;
    if (this.cancel(s.handshakeSeq)) s.handshakeSeq = null;
    this.trace("daemon-registered", "kvp");
    this.pollWrapper("kvp");
  }

  private kvpOnReset(): void {
    const s = this.state.kvp;
    if (this.cancel(s.timeoutSeq)) {
      s.timeoutSeq = null;
      this.kvpRespond(null, HV_E_FAIL);
    }
    if (s.state !== HVUTIL_DEVICE_DYING) s.state = HVUTIL_DEVICE_INIT;
  }

  // ---------------- VSS ----------------

  private vssRespond(error: number): void {
    const s = this.state.vss;
    wr32(s.recv, IC.status, error);
    s.recv[IC.icflags] = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
    this.sendToHost("vss", s.recvLen, s.recvReqId);
    if (!quirk(this.profile, "vss-request-overwrite")) this.kick("vss");
  }

  /** vss_handle_request. */
  private vssHandleRequest(): void {
    const s = this.state.vss;
    const op = s.recv[ICMSG_HDR + V.op]!;
    switch (op) {
      case VSS_OP_THAW:
      case VSS_OP_FREEZE:
      case VSS_OP_HOT_BACKUP:
        if (s.state < HVUTIL_READY) {
          this.trace("not-registered", "vss", op);
          this.vssRespond(HV_E_FAIL);
          return;
        }
        s.state = HVUTIL_HOSTMSG_RECEIVED;
        this.vssSendOp();
        return;
      case VSS_OP_GET_DM_INFO:
        wr32(s.recv, ICMSG_HDR + V.flags, 0);
        break;
      default:
        break;
    }
    this.vssRespond(0);
    this.pollWrapper("vss");
  }

  private vssSendOp(): void {
    const s = this.state.vss;
    if (s.state !== HVUTIL_HOSTMSG_RECEIVED) return;
    const op = s.recv[ICMSG_HDR + V.op]!;
    const msg = new Uint8Array(VSS_MSG_SIZE);
    msg[V.op] = op;
    s.state = HVUTIL_USERSPACE_REQ;
    s.timeoutSeq = this.bench.clock.schedule(op === VSS_OP_FREEZE ? VSS_FREEZE_TIMEOUT_NS : VSS_TIMEOUT_NS, this.id, "timeout", { service: "vss" });
    const rc = this.hvtSend("vss", msg, null);
    if (rc) {
      this.trace("send-to-daemon-failed", "vss", rc);
      if (this.cancel(s.timeoutSeq)) {
        s.timeoutSeq = null;
        this.vssRespond(HV_E_FAIL);
        s.state = HVUTIL_READY;
        this.kick("vss");
      }
    }
  }

  private vssOnMsg(m: Uint8Array): number {
    const s = this.state.vss;
    if (m.length !== VSS_MSG_SIZE) return -EINVAL;
    const op = m[V.op]!;
    if (op === VSS_OP_REGISTER || op === VSS_OP_REGISTER1) {
      if (s.state > HVUTIL_READY) return -EINVAL;
      if (op === VSS_OP_REGISTER) {
        s.dmReg = op; // the legacy daemon expects no reply
      } else {
        const ver = new Uint8Array(4);
        wr32(ver, 0, VSS_OP_REGISTER1);
        if (this.hvtSend("vss", ver, "vss-register-done")) return -EFAULT;
        s.dmReg = op;
      }
      this.trace("daemon-registering", "vss", op);
      return 0;
    }
    if (s.state !== HVUTIL_USERSPACE_REQ) return -EINVAL;
    s.state = HVUTIL_USERSPACE_RECV;
    if (s.raw) return this.rawAnswered("vss");
    const hotBackup = quirk(this.profile, "vss-hot-backup-flag") ? op === VSS_OP_HOT_BACKUP : s.recv[ICMSG_HDR + V.op] === VSS_OP_HOT_BACKUP;
    if (hotBackup) wr32(s.recv, ICMSG_HDR + V.flags, VSS_HBU_NO_AUTO_RECOVERY);
    if (this.cancel(s.timeoutSeq)) {
      s.timeoutSeq = null;
      this.vssRespond(rdI32(m, V.error));
      this.pollWrapper("vss");
    }
    return 0;
  }

  private vssOnReset(): void {
    const s = this.state.vss;
    if (this.cancel(s.timeoutSeq)) {
      s.timeoutSeq = null;
      this.vssRespond(HV_E_FAIL);
    }
    if (s.state !== HVUTIL_DEVICE_DYING) s.state = HVUTIL_DEVICE_INIT;
  }

  // ---------------- hv_utils_transport (character device) ----------------

  /**
   * hvutil_transport_send: queue one message for the daemon. 0, -EINVAL (not open) or -EFAULT (slot
   * taken). Takes ownership of `msg` (callers pass a freshly built message, as upstream kzallocs).
   */
  private hvtSend(service: Service, msg: Uint8Array, onRead: HvtState["onRead"]): number {
    const t = this.svc(service).hvt;
    if (t.mode !== "chardev") return -EINVAL;
    if (t.outmsg) return -EFAULT;
    t.outmsg = msg;
    t.onRead = onRead;
    if (t.reader) this.bench.clock.schedule(0, this.id, "hvt.resume", { service });
    if (t.poller) {
      const w = t.poller;
      t.poller = null;
      this.result(w.from, { service, call: "poll", ret: 0, revents: POLLIN | POLLRDNORM, tag: w.tag });
    }
    return 0;
  }

  /**
   * Test hook for raw daemon-side messages (ones the kernel itself never builds, e.g. a key that
   * fills its field with no NUL): queues `msg` for the daemon as hvutil_transport_send does and
   * puts the service in USERSPACE_REQ as if a host request were in flight, but with no timer and
   * no host transaction, so the daemon's answer is accepted (kvp_on_msg / vss_on_msg) and goes
   * nowhere. Returns 0 or -errno (-EINVAL: not open, -EFAULT: a message is already queued).
   */
  rawToDaemon(service: Service, msg: Uint8Array): number {
    const s = this.svc(service);
    if (s.state < HVUTIL_READY || s.state === HVUTIL_DEVICE_DYING) return -EINVAL;
    const rc = this.hvtSend(service, msg.slice(), null);
    if (rc === 0) {
      s.state = HVUTIL_USERSPACE_REQ;
      s.raw = true;
    }
    return rc;
  }

  /** The daemon answered a rawToDaemon message: nothing goes to the host; READY again. */
  private rawAnswered(service: Service): number {
    delete this.svc(service).raw;
    this.pollWrapper(service);
    return 0;
  }

  private result(to: string, r: HvtResult): void {
    this.bench.clock.schedule(this.toDaemonNs, to, HVT_RESULT, r);
  }

  /** open(2). */
  open(service: Service, from: string): number {
    const t = this.svc(service).hvt;
    if (t.mode === "destroy") return -EBADF;
    if (t.mode === "init") {
      t.mode = "chardev";
      t.opener = from;
      this.trace("open", service, from);
      return 0;
    }
    return -EBUSY;
  }

  /** read(2) without blocking: the message, -EINVAL (short buffer), -EAGAIN (nothing queued), -EBADF. */
  read(service: Service, from: string, len: number): Uint8Array | number {
    const t = this.svc(service).hvt;
    if (t.opener !== from && t.mode !== "destroy") return -EBADF;
    if (t.mode === "destroy") return -EBADF;
    if (!t.outmsg) return -EAGAIN;
    if (len < t.outmsg.length) return -EINVAL;
    const m = t.outmsg;
    t.outmsg = null;
    const cb = t.onRead;
    t.onRead = null;
    if (cb === "kvp-register-done") this.kvpRegisterDone();
    else if (cb === "vss-register-done") this.vssRegisterDone();
    return m;
  }

  private vssRegisterDone(): void {
    this.trace("daemon-registered", "vss");
    this.pollWrapper("vss");
  }

  /** write(2): one message. The byte count or -errno. */
  write(service: Service, from: string, bytes: Uint8Array): number {
    const t = this.svc(service).hvt;
    if (t.mode === "destroy") return -EBADF;
    if (t.opener !== from) return -EBADF;
    const ret = service === "kvp" ? this.kvpOnMsg(bytes) : this.vssOnMsg(bytes);
    if (ret) this.trace("write-refused", service, ret);
    return ret ? ret : bytes.length;
  }

  /** poll(2) without waiting: the event mask now. */
  poll(service: Service, from: string): number {
    const t = this.svc(service).hvt;
    if (t.mode === "destroy") return POLLERR | POLLHUP;
    if (t.opener !== from) return POLLERR;
    return t.outmsg ? POLLIN | POLLRDNORM : 0;
  }

  /** close(2): back to INIT, the queued message dropped, the service reset (on_reset). */
  close(service: Service, from: string): number {
    const t = this.svc(service).hvt;
    if (t.opener !== from) return -EBADF;
    if (t.mode !== "destroy") t.mode = "init";
    t.opener = null;
    t.outmsg = null;
    t.onRead = null;
    t.reader = null;
    t.poller = null;
    this.trace("close", service, from);
    delete this.svc(service).raw;
    if (service === "kvp") this.kvpOnReset();
    else this.vssOnReset();
    return 0;
  }

  /** Driver removal (util_remove -> *_deinit, hvutil_transport_destroy): DEVICE_DYING. */
  destroy(service: Service): void {
    const s = this.svc(service);
    for (const k of ["callbackSeq", "workSeq", "timeoutSeq", "handshakeSeq"] as const) {
      this.cancel(s[k]);
      s[k] = null;
    }
    s.state = HVUTIL_DEVICE_DYING;
    const t = s.hvt;
    t.mode = "destroy";
    t.outmsg = null;
    if (t.poller) {
      this.result(t.poller.from, { service, call: "poll", ret: 0, revents: POLLERR | POLLHUP, tag: t.poller.tag });
      t.poller = null;
    }
    if (t.reader) {
      this.result(t.reader.from, { service, call: "read", ret: -EBADF, tag: t.reader.tag });
      t.reader = null;
    }
    this.trace("destroy", service);
  }

  private onResumeRead(service: Service): void {
    const t = this.svc(service).hvt;
    const r = t.reader;
    if (!r) return;
    t.reader = null;
    const got = this.read(service, r.from, r.len);
    this.result(r.from, typeof got === "number" ? { service, call: "read", ret: got, tag: r.tag } : { service, call: "read", ret: got.length, bytes: got, tag: r.tag });
  }

  /** An endpoint's call arriving as a clock event: run it and send the result back. */
  private onCall(c: HvtCall): void {
    const service = c.service;
    if (!SERVICES.includes(service)) return;
    const tag = c.tag ?? 0;
    const t = this.svc(service).hvt;
    switch (c.call) {
      case "open":
        return this.result(c.from, { service, call: "open", ret: this.open(service, c.from), tag });
      case "close":
        return this.result(c.from, { service, call: "close", ret: this.close(service, c.from), tag });
      case "write":
        return this.result(c.from, { service, call: "write", ret: this.write(service, c.from, c.bytes ?? new Uint8Array(0)), tag });
      case "poll": {
        const m = this.poll(service, c.from);
        if (m === 0) {
          t.poller = { from: c.from, tag };
          return;
        }
        return this.result(c.from, { service, call: "poll", ret: 0, revents: m, tag });
      }
      case "read": {
        const got = this.read(service, c.from, c.len ?? 0);
        if (got === -EAGAIN) {
          t.reader = { from: c.from, len: c.len ?? 0, tag };
          return;
        }
        return this.result(c.from, typeof got === "number" ? { service, call: "read", ret: got, tag } : { service, call: "read", ret: got.length, bytes: got, tag });
      }
    }
  }
}

function validService(s: unknown, size: number): string | undefined {
  const o = s as Partial<ServiceState> | null;
  if (!o || typeof o !== "object") return "not an object";
  if (!Number.isInteger(o.state) || o.state! < 0 || o.state! > 5) return "state is not a hvutil_device_state";
  if (!(o.recv instanceof Uint8Array) || o.recv.length !== size) return `recv is not ${size} bytes`;
  if (!Array.isArray(o.ring) || !o.ring.every((p) => p && Number.isSafeInteger(p.id) && p.bytes instanceof Uint8Array)) return "ring is malformed";
  for (const k of ["callbackSeq", "workSeq", "timeoutSeq", "handshakeSeq"] as const) {
    const v = o[k];
    if (v !== null && !Number.isSafeInteger(v)) return `${k} is neither null nor an event number`;
  }
  const t = o.hvt;
  if (!t || !["init", "chardev", "destroy"].includes(t.mode)) return "hvt.mode is invalid";
  if (t.outmsg !== null && !(t.outmsg instanceof Uint8Array)) return "hvt.outmsg is invalid";
  if (!Number.isSafeInteger(o.recvLen) || !Number.isSafeInteger(o.recvReqId)) return "recvLen/recvReqId are not integers";
  if (!o.stats || typeof o.stats !== "object") return "stats missing";
  return undefined;
}

export const HvUtilsKind: DeviceKind<KernelState, KernelConfig> = {
  type: "hv-utils",
  stateVersion: 1,
  validate(s: unknown) {
    const o = s as Partial<KernelState> | null;
    if (!o || typeof o !== "object") return "not an object";
    if (!isProfile(o.profile)) return "profile is not linux-6.1 or spec";
    return validService(o.kvp, KVP_RECV_BUFFER_SIZE) ?? validService(o.vss, VSS_MAX_PKT_SIZE);
  },
  create(bench, id, config) {
    return new HvUtilsKernel(id, bench, config);
  },
};
