// Seeds and dictionaries for coverage-guided engines (AFL++ today), derived from the wire
// declarations: every offset and size comes from the struct's codec (sim/wire), every constant
// from sim/wire/hyperv-constants.ts (include/uapi/linux/hyperv.h). Pure and deterministic: the
// same declarations give the same files, so an exported corpus is reproducible.
//
// - kernelMessageSeeds("hv_kvp_msg" | "hv_vss_msg"): one valid kernel-to-daemon message per
//   operation (and per pool for KVP), the way drivers/hv/hv_kvp.c / hv_snapshot.c fill them:
//   NUL-terminated UTF-8 keys with key_size counting the NUL, REG_SZ values, IPv4 settings.
// - targetSeeds(target, seed, n): the structured inputs of an in-process target (a user's
//   exec: program fuzzed --like that target).
// - dictionaryFor(hints, extra): the protocol's constants and every field's boundary values
//   (size, size - 1, size + 1, 0, -1, INT_MIN, INT_MAX as the field's width, little-endian), in
//   AFL++'s dictionary format (formatAflDictionary).
import { inputFor, type FuzzTarget } from "./engine.ts";
import { hintsFromCodec, type FieldHint } from "./mutate.ts";
import { lookupWire } from "../wire/registry.ts";
import * as H from "../wire/hyperv-constants.ts";

export interface NamedBytes {
  readonly name: string;
  readonly bytes: Uint8Array;
}

const enc = new TextEncoder();

/** The hint at `path` of a declaration (throws: a missing member is a bug in this file). */
function at(hints: readonly FieldHint[], path: string): FieldHint {
  const h = hints.find((x) => x.path === path);
  if (!h) throw new Error(`no member ${path}`);
  return h;
}

function putUint(b: Uint8Array, h: FieldHint, v: number): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (h.size === 1) dv.setUint8(h.offset, v);
  else if (h.size === 2) dv.setUint16(h.offset, v, true);
  else if (h.size === 4) dv.setUint32(h.offset, v >>> 0, true);
  else if (h.size === 8) dv.setBigUint64(h.offset, BigInt(v), true);
  else throw new Error(`${h.path}: no ${h.size}-byte integers`);
}

/** NUL-terminated UTF-8 text into a byte array member; the byte count with the NUL. */
function putText(b: Uint8Array, h: FieldHint, s: string): number {
  const t = enc.encode(s).subarray(0, h.size - 1);
  b.set(t, h.offset);
  b[h.offset + t.length] = 0;
  return t.length + 1;
}

const KVP_POOLS = [H.KVP_POOL_EXTERNAL, H.KVP_POOL_GUEST, H.KVP_POOL_AUTO, H.KVP_POOL_AUTO_EXTERNAL, H.KVP_POOL_AUTO_INTERNAL];

function kvpSeeds(): NamedBytes[] {
  const c = lookupWire("hv_kvp_msg")!.codec;
  const hs = hintsFromCodec(c);
  const out: NamedBytes[] = [];
  const msg = (op: number, pool: number, fill: (b: Uint8Array) => void, tag: string) => {
    const b = new Uint8Array(c.size);
    putUint(b, at(hs, "kvp_hdr.operation"), op);
    putUint(b, at(hs, "kvp_hdr.pool"), pool);
    fill(b);
    out.push({ name: `kvp-op${op}-pool${pool}-${tag}`, bytes: b });
  };
  const keyed = (m: "kvp_get" | "kvp_set", key: string, value?: string, type = H.REG_SZ) => (b: Uint8Array) => {
    putUint(b, at(hs, `body.${m}.data.value_type`), type);
    putUint(b, at(hs, `body.${m}.data.key_size`), putText(b, at(hs, `body.${m}.data.key`), key));
    if (value !== undefined) putUint(b, at(hs, `body.${m}.data.value_size`), putText(b, at(hs, `body.${m}.data.value`), value));
  };
  for (const pool of KVP_POOLS) {
    msg(H.KVP_OP_SET, pool, keyed("kvp_set", "key", "value"), "set");
    msg(H.KVP_OP_GET, pool, keyed("kvp_get", "key"), "get");
    msg(H.KVP_OP_DELETE, pool, (b) => putUint(b, at(hs, "body.kvp_delete.key_size"), putText(b, at(hs, "body.kvp_delete.key"), "key")), "delete");
    for (const index of [0, 1]) msg(H.KVP_OP_ENUMERATE, pool, (b) => putUint(b, at(hs, "body.kvp_enum_data.index"), index), `enumerate${index}`);
  }
  // The host's well-known keys, as SET on the external pool and GET on the guest pool.
  msg(H.KVP_OP_SET, H.KVP_POOL_EXTERNAL, keyed("kvp_set", "FullyQualifiedDomainName", "host.example"), "set-fqdn");
  msg(H.KVP_OP_SET, H.KVP_POOL_EXTERNAL, keyed("kvp_set", "key32", "\x07\0\0", H.REG_U32), "set-u32");
  msg(H.KVP_OP_GET, H.KVP_POOL_GUEST, keyed("kvp_get", "OSName"), "get-osname");
  // GET_IP_INFO names an adapter; SET_IP_INFO carries a whole IPv4 configuration. The members are
  // __u16 arrays, but hv_kvp.c converts the host's UTF-16 to UTF-8 into them (utf16s_to_utf8s):
  // the daemon reads UTF-8.
  msg(H.KVP_OP_GET_IP_INFO, 0, (b) => putText(b, at(hs, "body.kvp_ip_val.adapter_id"), "eth0"), "get-ip");
  msg(
    H.KVP_OP_SET_IP_INFO,
    0,
    (b) => {
      putText(b, at(hs, "body.kvp_ip_val.adapter_id"), "eth0");
      putUint(b, at(hs, "body.kvp_ip_val.addr_family"), H.ADDR_FAMILY_IPV4);
      putText(b, at(hs, "body.kvp_ip_val.ip_addr"), "192.0.2.10");
      putText(b, at(hs, "body.kvp_ip_val.sub_net"), "255.255.255.0");
      putText(b, at(hs, "body.kvp_ip_val.gate_way"), "192.0.2.1");
      putText(b, at(hs, "body.kvp_ip_val.dns_addr"), "192.0.2.53");
    },
    "set-ip",
  );
  return out;
}

function vssSeeds(): NamedBytes[] {
  const c = lookupWire("hv_vss_msg")!.codec;
  const hs = hintsFromCodec(c);
  const ops = [H.VSS_OP_CREATE, H.VSS_OP_DELETE, H.VSS_OP_HOT_BACKUP, H.VSS_OP_GET_DM_INFO, H.VSS_OP_BU_COMPLETE, H.VSS_OP_FREEZE, H.VSS_OP_THAW, H.VSS_OP_AUTO_RECOVER];
  return ops.map((op) => {
    const b = new Uint8Array(c.size);
    putUint(b, at(hs, "vss_hdr.operation"), op);
    if (op === H.VSS_OP_HOT_BACKUP) putUint(b, at(hs, "vss_cf.flags"), H.VSS_HBU_NO_AUTO_RECOVERY);
    return { name: `vss-op${op}`, bytes: b };
  });
}

/** One valid kernel-to-daemon message per operation (and pool), from the declaration. */
export function kernelMessageSeeds(struct: "hv_kvp_msg" | "hv_vss_msg"): NamedBytes[] {
  return struct === "hv_kvp_msg" ? kvpSeeds() : vssSeeds();
}

/** The structured inputs of an in-process target (runs 0..n-1 of `seed`), distinct by content. */
export function targetSeeds(target: FuzzTarget, seed: number, n: number): NamedBytes[] {
  const out: NamedBytes[] = [];
  const seen = new Set<string>();
  for (let run = 0; out.length < n && run < n * 8; run++) {
    const g = inputFor(target, seed, run);
    if (g.mode !== "structured" || !g.bytes.length) continue;
    const key = Buffer.from(g.bytes).toString("base64");
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ name: `${target.name}-seed${seed}-run${run}`, bytes: g.bytes });
  }
  return out;
}

function le(v: bigint, size: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = BigInt.asUintN(size * 8, v);
  for (let i = 0; i < size; i++) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

/** The protocol constants worth a dictionary entry, per message struct. */
function protocolTokens(struct: string): NamedBytes[] {
  const u8 = (name: string, v: number) => ({ name, bytes: Uint8Array.of(v) });
  const u32 = (name: string, v: number) => ({ name, bytes: le(BigInt(v), 4) });
  const str = (name: string, s: string) => ({ name, bytes: enc.encode(s) });
  if (struct === "hv_kvp_msg") {
    return [
      ...[H.KVP_OP_GET, H.KVP_OP_SET, H.KVP_OP_DELETE, H.KVP_OP_ENUMERATE, H.KVP_OP_GET_IP_INFO, H.KVP_OP_SET_IP_INFO, H.KVP_OP_REGISTER, H.KVP_OP_REGISTER1].map((v) => u8(`kvp_op_${v}`, v)),
      ...KVP_POOLS.map((v) => u8(`kvp_pool_${v}`, v)),
      u8("kvp_pool_count", H.KVP_POOL_COUNT),
      ...[H.REG_SZ, H.REG_U32, H.REG_U64].map((v) => u32(`reg_type_${v}`, v)),
      ...[H.ADDR_FAMILY_NONE, H.ADDR_FAMILY_IPV4, H.ADDR_FAMILY_IPV6].map((v) => u8(`addr_family_${v}`, v)),
      u32("max_key_size", H.HV_KVP_EXCHANGE_MAX_KEY_SIZE),
      u32("max_value_size", H.HV_KVP_EXCHANGE_MAX_VALUE_SIZE),
      str("key_fqdn", "FullyQualifiedDomainName"),
      str("key_osname", "OSName"),
      str("key_netaddr", "NetworkAddressIPv4"),
      str("version", "3.1"),
      str("ipv4", "192.0.2.10"),
      str("ipv6", "2001:db8::1"),
      str("sep", ";"),
    ];
  }
  if (struct === "hv_vss_msg") {
    return [
      ...[H.VSS_OP_CREATE, H.VSS_OP_DELETE, H.VSS_OP_HOT_BACKUP, H.VSS_OP_GET_DM_INFO, H.VSS_OP_BU_COMPLETE, H.VSS_OP_FREEZE, H.VSS_OP_THAW, H.VSS_OP_AUTO_RECOVER, H.VSS_OP_REGISTER, H.VSS_OP_REGISTER1].map(
        (v) => u8(`vss_op_${v}`, v),
      ),
      u32("vss_hbu_no_auto_recovery", H.VSS_HBU_NO_AUTO_RECOVERY),
    ];
  }
  return [];
}

/**
 * A dictionary for a message: its protocol constants, and for every integer member the values
 * where bounds checks break at that member's width (0, 1, -1, INT_MIN, INT_MAX), and for every
 * array member its size, size - 1 and size + 1 as 32-bit little-endian integers (the values a
 * length field is compared with). Deduplicated by bytes.
 */
export function dictionaryFor(struct: string | undefined, hints: readonly FieldHint[]): NamedBytes[] {
  const out: NamedBytes[] = [];
  const seen = new Set<string>();
  const add = (e: NamedBytes) => {
    const k = Buffer.from(e.bytes).toString("hex");
    if (!e.bytes.length || seen.has(k)) return;
    seen.add(k);
    out.push(e);
  };
  for (const e of struct ? protocolTokens(struct) : []) add(e);
  for (const w of [...new Set(hints.filter((h) => h.kind === "uint" && h.size <= 8).map((h) => h.size))].sort((a, b) => a - b)) {
    const bits = BigInt(w * 8);
    for (const [n, v] of [
      ["zero", 0n],
      ["one", 1n],
      ["minus1", -1n],
      ["int_min", -(1n << (bits - 1n))],
      ["int_max", (1n << (bits - 1n)) - 1n],
    ] as const) {
      add({ name: `${n}_${w}`, bytes: le(v, w) });
    }
  }
  for (const s of [...new Set(hints.filter((h) => h.kind !== "uint").map((h) => h.size))].sort((a, b) => a - b)) {
    for (const d of [-1, 0, 1]) add({ name: `size_${s}${d < 0 ? "_minus1" : d > 0 ? "_plus1" : ""}`, bytes: le(BigInt(s + d), 4) });
  }
  return out;
}

/** AFL++'s dictionary file format: one `name="bytes"` per line, bytes escaped as \xNN. */
export function formatAflDictionary(entries: readonly NamedBytes[]): string {
  const esc = (b: Uint8Array) =>
    Array.from(b, (x) => (x >= 0x20 && x < 0x7f && x !== 0x22 && x !== 0x5c ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, "0")}`)).join("");
  return entries.map((e) => `${e.name.replace(/[^A-Za-z0-9_]/g, "_")}="${esc(e.bytes)}"\n`).join("");
}
