// Wire codec throughput: one case call = decode one realistic 7432-byte hv_kvp_msg (a KVP SET as
// the kernel forwards it to hv_kvp_daemon: UTF-8 key and value, value_type 0) and encode the decoded
// value back to bytes. The in-run reference describes the same struct with the `restructure`
// package (header, the body union chosen by kvp_hdr.operation, the value union by value_type, byte
// arrays as buffers) and does the same decode + encode. Goal: hvsim at least 5x the reference.
//
// Both cases are checked once, in setup(), to reproduce the message byte for byte.
import * as r from "restructure";
import { hv_kvp_msg } from "../../sim/wire/hyperv.ts";
import { codec } from "../../sim/wire/codec.ts";
import { KVP_OP_SET, KVP_POOL_EXTERNAL } from "../../sim/wire/hyperv-constants.ts";
import type { BenchSuite } from "../harness.ts";

const KEY = "VirtualMachineName";
const VALUE = "hvsim-guest-01.example.internal";

/** A KVP SET message as bytes, built by offset from the header facts (not by either codec). */
export function kvpSetMessage(): Uint8Array {
  const buf = new Uint8Array(7432);
  const dv = new DataView(buf.buffer);
  const enc = new TextEncoder();
  buf[0] = KVP_OP_SET; // kvp_hdr.operation
  buf[1] = KVP_POOL_EXTERNAL; // kvp_hdr.pool
  // body.kvp_set.data at 4: value_type(4) key_size(4) value_size(4) key[512] value[2048]
  dv.setUint32(4, 0, true);
  dv.setUint32(8, KEY.length + 1, true);
  dv.setUint32(12, VALUE.length + 1, true);
  buf.set(enc.encode(KEY), 16);
  buf.set(enc.encode(VALUE), 16 + 512);
  return buf;
}

// ---- the reference: the same struct in restructure ----
const BODY = 7428;
const pad = (n: number) => new r.Reserved(r.uint8, n);
const exchgValue = new r.Struct({
  value_type: r.uint32le,
  key_size: r.uint32le,
  value_size: r.uint32le,
  key: new r.Buffer(512),
  // The anonymous value union, chosen by value_type (hv_kvp.c reads value_u32/value_u64 for REG_U32/REG_U64).
  u: new r.VersionedStruct("value_type", {
    0: { value: new r.Buffer(2048) },
    1: { value: new r.Buffer(2048) },
    4: { value_u32: r.uint32le, _r: pad(2044) },
    8: { value_u64: new r.Array(r.uint32le, 2), _r: pad(2040) },
  }),
});
const ipaddr = new r.Struct({
  adapter_id: new r.Array(r.uint16le, 128),
  addr_family: r.uint8,
  dhcp_enabled: r.uint8,
  ip_addr: new r.Array(r.uint16le, 1024),
  sub_net: new r.Array(r.uint16le, 1024),
  gate_way: new r.Array(r.uint16le, 512),
  dns_addr: new r.Array(r.uint16le, 1024),
});
const kvpMsgRef = new r.Struct({
  kvp_hdr: new r.Struct({ operation: r.uint8, pool: r.uint8, pad: r.uint16le }),
  body: new r.VersionedStruct("kvp_hdr.operation", {
    0: { kvp_get: new r.Struct({ data: exchgValue }), _r: pad(BODY - 2572) },
    1: { kvp_set: new r.Struct({ data: exchgValue }), _r: pad(BODY - 2572) },
    2: { kvp_delete: new r.Struct({ key_size: r.uint32le, key: new r.Buffer(512) }), _r: pad(BODY - 516) },
    3: { kvp_enum_data: new r.Struct({ index: r.uint32le, data: exchgValue }), _r: pad(BODY - 2576) },
    4: { kvp_ip_val: ipaddr, _r: pad(BODY - 7426) },
    5: { kvp_ip_val: ipaddr, _r: pad(BODY - 7426) },
    100: { kvp_register: new r.Struct({ version: new r.Buffer(512) }), _r: pad(BODY - 512) },
  }),
});

const kvpCodec = codec(hv_kvp_msg);
const message = kvpSetMessage();
/** Keeps every result reachable so the work cannot be optimised away. */
export let sink: Uint8Array = message;

function hvsimCase(): void {
  const d = kvpCodec.decode(message);
  if (!d.ok) throw new Error("hvsim failed to decode the KVP SET message");
  sink = kvpCodec.encode(d.value);
}

function restructureCase(): void {
  sink = kvpMsgRef.toBuffer(kvpMsgRef.fromBuffer(message));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export const suite = {
  name: "wire: hv_kvp_msg decode+encode",
  reference: "restructure",
  goal: 5,
  goalNote: "hvsim's compiled codec at least 5x restructure on a 7432-byte KVP SET message",
  setup: () => {
    hvsimCase();
    if (!sameBytes(sink, message)) throw new Error("hvsim's decode+encode does not reproduce the message");
    restructureCase();
    if (!sameBytes(sink, message)) throw new Error("restructure's decode+encode does not reproduce the message");
  },
  cases: {
    hvsim: hvsimCase,
    restructure: restructureCase,
  },
} satisfies BenchSuite;
