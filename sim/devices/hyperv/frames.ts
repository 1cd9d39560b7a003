// Host-side IC framing and the message layouts the three actors exchange, on top of the wire
// declarations of sim/wire/hyperv.ts (offsets come from those codecs, not from constants here).
// Builders produce bytes; parsers return {ok:false, error} instead of throwing and bound every
// count and size before use. Facts: Linux 6.1 include/linux/hyperv.h (vmbuspipe_hdr, icmsg_hdr,
// icmsg_negotiate), include/uapi/linux/hyperv.h (hv_kvp_msg, hv_vss_msg).
import { lookupWire } from "../../wire/registry.ts";
import { formatDecodeError, type Codec } from "../../wire/codec.ts";
import {
  HV_KVP_EXCHANGE_MAX_KEY_SIZE,
  HV_KVP_EXCHANGE_MAX_VALUE_SIZE,
  ICMSG_HDR,
  IC_VERSION_NEGOTIATION_MAX_VER_COUNT,
  ICMSGHDRFLAG_REQUEST,
  ICMSGHDRFLAG_TRANSACTION,
  MAX_ADAPTER_ID_SIZE,
  MAX_GATEWAY_SIZE,
  MAX_IP_ADDR_SIZE,
  REG_SZ,
  REG_U32,
  REG_U64,
} from "../../wire/hyperv-constants.ts";
import { cstr, utf16leBytes, utf16leText } from "./utf.ts";

function wire(name: string): Codec<any> {
  const e = lookupWire(name);
  if (!e) throw new Error(`hyperv: wire struct ${name} is not registered`);
  return e.codec;
}

export const KVP_MSG = wire("hv_kvp_msg");
export const VSS_MSG = wire("hv_vss_msg");
export const ICMSG = wire("icmsg_hdr");
export const PIPE = wire("vmbuspipe_hdr");
export const NEGOTIATE = wire("icmsg_negotiate");
export const KVP_IP_MSG = wire("hv_kvp_ip_msg");

/** sizeof(struct hv_kvp_msg) = 7432, sizeof(struct hv_vss_msg) = 12 (include/uapi/linux/hyperv.h). */
export const KVP_MSG_SIZE = KVP_MSG.size;
export const VSS_MSG_SIZE = VSS_MSG.size;

/** Byte offsets inside hv_kvp_msg (the daemon's message, and the host's payload after ICMSG_HDR). */
export const K = {
  op: KVP_MSG.offsetOf("kvp_hdr.operation"),
  pool: KVP_MSG.offsetOf("kvp_hdr.pool"),
  error: KVP_MSG.offsetOf("error"),
  // kvp_get / kvp_set share one layout (hv_kvp_exchg_msg_value at body)
  valueType: KVP_MSG.offsetOf("body.kvp_set.data.value_type"),
  keySize: KVP_MSG.offsetOf("body.kvp_set.data.key_size"),
  valueSize: KVP_MSG.offsetOf("body.kvp_set.data.value_size"),
  key: KVP_MSG.offsetOf("body.kvp_set.data.key"),
  value: KVP_MSG.offsetOf("body.kvp_set.data.value"),
  getValue: KVP_MSG.offsetOf("body.kvp_get.data.value"),
  delKeySize: KVP_MSG.offsetOf("body.kvp_delete.key_size"),
  delKey: KVP_MSG.offsetOf("body.kvp_delete.key"),
  enumIndex: KVP_MSG.offsetOf("body.kvp_enum_data.index"),
  enumValueType: KVP_MSG.offsetOf("body.kvp_enum_data.data.value_type"),
  enumKeySize: KVP_MSG.offsetOf("body.kvp_enum_data.data.key_size"),
  enumValueSize: KVP_MSG.offsetOf("body.kvp_enum_data.data.value_size"),
  enumKey: KVP_MSG.offsetOf("body.kvp_enum_data.data.key"),
  enumValue: KVP_MSG.offsetOf("body.kvp_enum_data.data.value"),
  version: KVP_MSG.offsetOf("body.kvp_register.version"),
  ip: {
    adapterId: KVP_MSG.offsetOf("body.kvp_ip_val.adapter_id"),
    addrFamily: KVP_MSG.offsetOf("body.kvp_ip_val.addr_family"),
    dhcp: KVP_MSG.offsetOf("body.kvp_ip_val.dhcp_enabled"),
    ipAddr: KVP_MSG.offsetOf("body.kvp_ip_val.ip_addr"),
    subNet: KVP_MSG.offsetOf("body.kvp_ip_val.sub_net"),
    gateWay: KVP_MSG.offsetOf("body.kvp_ip_val.gate_way"),
    dnsAddr: KVP_MSG.offsetOf("body.kvp_ip_val.dns_addr"),
  },
} as const;

/** Offsets inside hv_kvp_ip_msg: the host's IP payloads (packed, 2-byte header). */
export const KIP = {
  adapterId: KVP_IP_MSG.offsetOf("kvp_ip_val.adapter_id"),
  addrFamily: KVP_IP_MSG.offsetOf("kvp_ip_val.addr_family"),
  dhcp: KVP_IP_MSG.offsetOf("kvp_ip_val.dhcp_enabled"),
  ipAddr: KVP_IP_MSG.offsetOf("kvp_ip_val.ip_addr"),
  subNet: KVP_IP_MSG.offsetOf("kvp_ip_val.sub_net"),
  gateWay: KVP_IP_MSG.offsetOf("kvp_ip_val.gate_way"),
  dnsAddr: KVP_IP_MSG.offsetOf("kvp_ip_val.dns_addr"),
} as const;

/** Offsets inside hv_vss_msg. */
export const V = {
  op: VSS_MSG.offsetOf("vss_hdr.operation"),
  error: VSS_MSG.offsetOf("error"),
  flags: VSS_MSG.offsetOf("vss_cf.flags"),
} as const;

/** Offsets of the icmsg_hdr fields counted from the start of a packet (after vmbuspipe_hdr). */
export const IC = {
  icmsgtype: PIPE.size + ICMSG.offsetOf("icmsgtype"),
  icmsgsize: PIPE.size + ICMSG.offsetOf("icmsgsize"),
  status: PIPE.size + ICMSG.offsetOf("status"),
  txid: PIPE.size + ICMSG.offsetOf("ictransaction_id"),
  icflags: PIPE.size + ICMSG.offsetOf("icflags"),
  negFwCount: ICMSG_HDR + NEGOTIATE.offsetOf("icframe_vercnt"),
  negMsgCount: ICMSG_HDR + NEGOTIATE.offsetOf("icmsg_vercnt"),
  negData: ICMSG_HDR + NEGOTIATE.offsetOf("icversion_data"),
} as const;

// ---- little-endian helpers on plain byte arrays ----
export const rd16 = (b: Uint8Array, o: number): number => (b[o] ?? 0) | ((b[o + 1] ?? 0) << 8);
export const rd32 = (b: Uint8Array, o: number): number => (((b[o] ?? 0) | ((b[o + 1] ?? 0) << 8) | ((b[o + 2] ?? 0) << 16)) + (b[o + 3] ?? 0) * 0x1000000);
export const rdI32 = (b: Uint8Array, o: number): number => rd32(b, o) | 0;
export function wr16(b: Uint8Array, o: number, v: number): void {
  if (o + 2 > b.length) return;
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
export function wr32(b: Uint8Array, o: number, v: number): void {
  if (o + 4 > b.length) return;
  const x = v >>> 0;
  b[o] = x & 0xff;
  b[o + 1] = (x >>> 8) & 0xff;
  b[o + 2] = (x >>> 16) & 0xff;
  b[o + 3] = x >>> 24;
}
export function rd64(b: Uint8Array, o: number): bigint {
  return BigInt(rd32(b, o)) | (BigInt(rd32(b, o + 4)) << 32n);
}
export function wr64(b: Uint8Array, o: number, v: bigint): void {
  wr32(b, o, Number(v & 0xffffffffn));
  wr32(b, o + 4, Number((v >> 32n) & 0xffffffffn));
}

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };
const fail = <T>(error: string): ParseResult<T> => ({ ok: false, error });

// ---- IC frames ----

export interface Version {
  readonly major: number;
  readonly minor: number;
}

export const versionText = (v: Version): string => `${v.major}.${v.minor}`;
/** "4.0" -> {4, 0}; undefined for anything else. */
export function parseVersion(s: string): Version | undefined {
  const m = /^(\d{1,5})\.(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const major = Number(m[1]), minor = Number(m[2]);
  return major <= 0xffff && minor <= 0xffff ? { major, minor } : undefined;
}
export const versionFromInt = (v: number): Version => ({ major: v >>> 16, minor: v & 0xffff });

export interface IcFrameInput {
  readonly msgType: number;
  readonly transactionId?: number;
  readonly flags?: number;
  readonly status?: number;
  readonly icverframe?: Version;
  readonly icvermsg?: Version;
  /** Overrides icmsgsize (default: payload length). */
  readonly icmsgsize?: number;
  readonly payload: Uint8Array;
}

/** A host packet: vmbuspipe_hdr + icmsg_hdr + payload. */
export function buildIcFrame(f: IcFrameInput): Uint8Array {
  const out = new Uint8Array(ICMSG_HDR + f.payload.length);
  PIPE.encodeInto(out, 0, { flags: 0, msgsize: ICMSG.size + f.payload.length });
  ICMSG.encodeInto(out, PIPE.size, {
    icverframe: f.icverframe ?? { major: 3, minor: 0 },
    icmsgtype: f.msgType,
    icvermsg: f.icvermsg ?? { major: 0, minor: 0 },
    icmsgsize: f.icmsgsize ?? Math.min(0xffff, f.payload.length),
    status: f.status ?? 0,
    ictransaction_id: (f.transactionId ?? 0) & 0xff,
    icflags: f.flags ?? ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_REQUEST,
    reserved: new Uint8Array(2),
  });
  out.set(f.payload, ICMSG_HDR);
  return out;
}

export interface IcFrame {
  readonly pipeFlags: number;
  readonly pipeMsgsize: number;
  readonly icverframe: Version;
  readonly msgType: number;
  readonly icvermsg: Version;
  readonly icmsgsize: number;
  readonly status: number;
  readonly transactionId: number;
  readonly flags: number;
  /** The bytes after the 28-byte header, bounded by icmsgsize. */
  readonly payload: Uint8Array;
}

/**
 * Parses a host/guest IC packet. Errors: shorter than the 28-byte header; an icmsgsize larger than
 * the bytes after the header (a frame length larger than the packet).
 */
export function parseIcFrame(bytes: Uint8Array): ParseResult<IcFrame> {
  if (!(bytes instanceof Uint8Array)) return fail("not bytes");
  if (bytes.length < ICMSG_HDR) return fail(`packet is ${bytes.length} bytes, shorter than the ${ICMSG_HDR}-byte IC header`);
  const p = PIPE.decode(bytes);
  const h = ICMSG.decode(bytes.subarray(PIPE.size));
  if (!p.ok) return fail(formatDecodeError(p.error));
  if (!h.ok) return fail(formatDecodeError(h.error));
  const v = h.value;
  const avail = bytes.length - ICMSG_HDR;
  if (v.icmsgsize > avail) return fail(`icmsgsize ${v.icmsgsize} is larger than the ${avail} bytes after the header`);
  return {
    ok: true,
    value: {
      pipeFlags: p.value.flags,
      pipeMsgsize: p.value.msgsize,
      icverframe: v.icverframe,
      msgType: v.icmsgtype,
      icvermsg: v.icvermsg,
      icmsgsize: v.icmsgsize,
      status: v.status,
      transactionId: v.ictransaction_id,
      flags: v.icflags,
      payload: bytes.slice(ICMSG_HDR, ICMSG_HDR + v.icmsgsize),
    },
  };
}

// ---- negotiation bodies ----

export interface Negotiate {
  readonly fwCount: number;
  readonly msgCount: number;
  readonly framework: readonly Version[];
  readonly service: readonly Version[];
}

/** icmsg_negotiate with the given framework and service versions. */
export function buildNegotiate(framework: readonly Version[], service: readonly Version[], counts?: { fw?: number; msg?: number }): Uint8Array {
  return NEGOTIATE.encode({
    icframe_vercnt: counts?.fw ?? framework.length,
    icmsg_vercnt: counts?.msg ?? service.length,
    reserved: 0,
    icversion_data: [...framework, ...service],
  });
}

/** Parses an icmsg_negotiate body: each count at most 100, every version inside the input. */
export function parseNegotiate(body: Uint8Array): ParseResult<Negotiate> {
  if (!(body instanceof Uint8Array)) return fail("not bytes");
  if (body.length >= 4) {
    const fw = rd16(body, 0), msg = rd16(body, 2);
    if (fw > IC_VERSION_NEGOTIATION_MAX_VER_COUNT || msg > IC_VERSION_NEGOTIATION_MAX_VER_COUNT) {
      return fail(`version counts ${fw}/${msg}: each must be at most ${IC_VERSION_NEGOTIATION_MAX_VER_COUNT}`);
    }
  }
  const r = NEGOTIATE.decode(body);
  if (!r.ok) return fail(formatDecodeError(r.error));
  const v = r.value as { icframe_vercnt: number; icmsg_vercnt: number; icversion_data: Version[] };
  return {
    ok: true,
    value: {
      fwCount: v.icframe_vercnt,
      msgCount: v.icmsg_vercnt,
      framework: v.icversion_data.slice(0, v.icframe_vercnt).map((x) => ({ major: x.major, minor: x.minor })),
      service: v.icversion_data.slice(v.icframe_vercnt).map((x) => ({ major: x.major, minor: x.minor })),
    },
  };
}

// ---- hv_kvp_msg (host payloads: UTF-16LE; daemon messages: UTF-8) ----

export type KvpValue = string | { readonly u32: number } | { readonly u64: bigint };

export interface HostKvpOverrides {
  valueType?: number;
  keySize?: number;
  valueSize?: number;
}

function putUtf16(msg: Uint8Array, off: number, room: number, s: string): number {
  const b = utf16leBytes(s);
  if (b.length + 2 > room) throw new RangeError(`string of ${s.length} UTF-16 units does not fit ${room} bytes with its terminator`);
  msg.set(b, off);
  return b.length + 2;
}

/** A host KVP request payload (hv_kvp_msg, strings UTF-16LE, sizes in bytes with the terminator). */
export function buildHostKvp(
  req:
    | { op: "get" | "delete"; pool: number; key: string }
    | { op: "set"; pool: number; key: string; value: KvpValue }
    | { op: "enumerate"; pool: number; index: number },
  opCode: number,
  ov: HostKvpOverrides = {},
): Uint8Array {
  const m = new Uint8Array(KVP_MSG_SIZE);
  m[K.op] = opCode;
  m[K.pool] = req.pool;
  switch (req.op) {
    case "get":
    case "set": {
      const ks = putUtf16(m, K.key, HV_KVP_EXCHANGE_MAX_KEY_SIZE, req.key);
      wr32(m, K.keySize, ov.keySize ?? ks);
      if (req.op === "set") {
        const v = req.value;
        if (typeof v === "string") {
          wr32(m, K.valueType, ov.valueType ?? REG_SZ);
          wr32(m, K.valueSize, ov.valueSize ?? putUtf16(m, K.value, HV_KVP_EXCHANGE_MAX_VALUE_SIZE, v));
        } else if ("u32" in v) {
          wr32(m, K.valueType, ov.valueType ?? REG_U32);
          wr32(m, K.value, v.u32);
          wr32(m, K.valueSize, ov.valueSize ?? 4);
        } else {
          wr32(m, K.valueType, ov.valueType ?? REG_U64);
          wr64(m, K.value, v.u64);
          wr32(m, K.valueSize, ov.valueSize ?? 8);
        }
      } else {
        wr32(m, K.valueType, ov.valueType ?? REG_SZ);
        wr32(m, K.valueSize, ov.valueSize ?? 0);
      }
      break;
    }
    case "delete":
      wr32(m, K.delKeySize, ov.keySize ?? putUtf16(m, K.delKey, HV_KVP_EXCHANGE_MAX_KEY_SIZE, req.key));
      break;
    case "enumerate":
      wr32(m, K.enumIndex, req.index);
      break;
  }
  return m;
}

export interface IpInfo {
  adapterId: string;
  addrFamily: number;
  dhcpEnabled: number;
  ipAddr: string;
  subNet: string;
  gateWay: string;
  dnsAddr: string;
}

/** A host GET_IP_INFO / SET_IP_INFO payload: hv_kvp_ip_msg (UTF-16LE fields). */
export function buildHostIp(opCode: number, ip: Partial<IpInfo> & { adapterId: string }): Uint8Array {
  const m = new Uint8Array(KVP_MSG_SIZE);
  m[0] = opCode;
  putUtf16(m, KIP.adapterId, MAX_ADAPTER_ID_SIZE * 2, ip.adapterId);
  m[KIP.addrFamily] = ip.addrFamily ?? 0;
  m[KIP.dhcp] = ip.dhcpEnabled ?? 0;
  putUtf16(m, KIP.ipAddr, MAX_IP_ADDR_SIZE * 2, ip.ipAddr ?? "");
  putUtf16(m, KIP.subNet, MAX_IP_ADDR_SIZE * 2, ip.subNet ?? "");
  putUtf16(m, KIP.gateWay, MAX_GATEWAY_SIZE * 2, ip.gateWay ?? "");
  putUtf16(m, KIP.dnsAddr, MAX_IP_ADDR_SIZE * 2, ip.dnsAddr ?? "");
  return m;
}

/** The host's view of an IP payload (hv_kvp_ip_msg). */
export function readHostIp(payload: Uint8Array): IpInfo {
  return {
    adapterId: utf16leText(payload, KIP.adapterId, MAX_ADAPTER_ID_SIZE),
    addrFamily: payload[KIP.addrFamily] ?? 0,
    dhcpEnabled: payload[KIP.dhcp] ?? 0,
    ipAddr: utf16leText(payload, KIP.ipAddr, MAX_IP_ADDR_SIZE),
    subNet: utf16leText(payload, KIP.subNet, MAX_IP_ADDR_SIZE),
    gateWay: utf16leText(payload, KIP.gateWay, MAX_GATEWAY_SIZE),
    dnsAddr: utf16leText(payload, KIP.dnsAddr, MAX_IP_ADDR_SIZE),
  };
}

/** A daemon-side hv_kvp_msg as readable fields (UTF-8 strings up to their NUL, sizes bounded). */
export interface KvpMsgView {
  readonly operation: number;
  readonly pool: number;
  /** The header read as `int error` (the daemon's answers). */
  readonly error: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly key: string;
  readonly value: string;
  readonly index: number;
  readonly enumKey: string;
  readonly enumValue: string;
  readonly version: string;
}

/** Parses a daemon-side hv_kvp_msg: exactly 7432 bytes (else an error); never throws. */
export function parseKvpMsg(bytes: Uint8Array): ParseResult<KvpMsgView> {
  if (!(bytes instanceof Uint8Array)) return fail("not bytes");
  const r = KVP_MSG.decode(bytes, { exact: true });
  if (!r.ok) return fail(formatDecodeError(r.error));
  const b = bytes;
  return {
    ok: true,
    value: {
      operation: b[K.op]!,
      pool: b[K.pool]!,
      error: rdI32(b, K.error),
      keySize: rd32(b, K.keySize),
      valueSize: rd32(b, K.valueSize),
      key: cstr(b, K.key, HV_KVP_EXCHANGE_MAX_KEY_SIZE),
      value: cstr(b, K.value, HV_KVP_EXCHANGE_MAX_VALUE_SIZE),
      index: rd32(b, K.enumIndex),
      enumKey: cstr(b, K.enumKey, HV_KVP_EXCHANGE_MAX_KEY_SIZE),
      enumValue: cstr(b, K.enumValue, HV_KVP_EXCHANGE_MAX_VALUE_SIZE),
      version: cstr(b, K.version, HV_KVP_EXCHANGE_MAX_KEY_SIZE),
    },
  };
}

export interface VssMsgView {
  readonly operation: number;
  readonly error: number;
  readonly flags: number;
}

/** Parses an hv_vss_msg: exactly 12 bytes; never throws. */
export function parseVssMsg(bytes: Uint8Array): ParseResult<VssMsgView> {
  if (!(bytes instanceof Uint8Array)) return fail("not bytes");
  const r = VSS_MSG.decode(bytes, { exact: true });
  if (!r.ok) return fail(formatDecodeError(r.error));
  return { ok: true, value: { operation: bytes[V.op]!, error: rdI32(bytes, V.error), flags: rd32(bytes, V.flags) } };
}

export function buildVssMsg(operation: number, flags = 0): Uint8Array {
  const m = new Uint8Array(VSS_MSG_SIZE);
  m[V.op] = operation;
  wr32(m, V.flags, flags);
  return m;
}
