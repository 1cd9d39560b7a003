// The Hyper-V declarations decoding messages built by hand from the header facts (offsets from
// gcc on include/uapi/linux/hyperv.h, checked in gcc-layout.spec.ts): union members chosen by the
// operation, the `int error` overlay, the value union by value_type, and icmsg_negotiate's bounded
// version array (include/linux/hyperv.h, drivers/hv/channel_mgmt.c vmbus_prep_negotiate_resp).
import { describe, expect, it } from "vitest";
import { codec, type Codec } from "../../sim/wire/codec.ts";
import { hv_kvp_msg, hv_vss_msg, icmsg_negotiate, kvpBodyMember, hv_kvp_exchg_msg_value } from "../../sim/wire/hyperv.ts";
import {
  HV_S_CONT,
  KVP_OP_ENUMERATE,
  KVP_OP_REGISTER,
  KVP_OP_REGISTER1,
  KVP_OP_SET,
  REG_U32,
  REG_U64,
  UTIL_FW_VERSION,
  VSS_OP_GET_DM_INFO,
  VSS_OP_HOT_BACKUP,
} from "../../sim/wire/hyperv-constants.ts";

const kvp: Codec<any> = codec(hv_kvp_msg);
const vss: Codec<any> = codec(hv_vss_msg);
const nego: Codec<any> = codec(icmsg_negotiate);
const text = (s: string, n: number) => {
  const b = new Uint8Array(n);
  b.set(new TextEncoder().encode(s));
  return b;
};

describe("hv_kvp_msg", () => {
  it("a SET built by offset decodes as body.kvp_set with its key and value", () => {
    // kvp_hdr at 0 (operation, pool, pad); body at 4; kvp_set.data: value_type 4, key_size 8,
    // value_size 12, key 16..528, value 528..2576.
    const b = new Uint8Array(7432);
    const dv = new DataView(b.buffer);
    b[0] = KVP_OP_SET;
    b[1] = 2;
    dv.setUint32(8, 5, true);
    dv.setUint32(12, 4, true);
    b.set(new TextEncoder().encode("Name"), 16);
    b.set(new TextEncoder().encode("abc"), 528);
    const r = kvp.decode(b, { exact: true });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.kvp_hdr).toEqual({ operation: KVP_OP_SET, pool: 2, pad: 0 });
    expect(Object.keys(r.value.body)).toEqual(["kvp_set"]);
    const d = r.value.body.kvp_set.data;
    expect([d.value_type, d.key_size, d.value_size]).toEqual([0, 5, 4]);
    expect(d.key).toEqual(text("Name", 512));
    expect(d.value).toEqual(text("abc", 2048));
    expect(kvp.encode(r.value)).toEqual(b);
  });

  it("the body member follows the operation; 4 (GET_IP_INFO = legacy REGISTER) and unknown operations read kvp_ip_val", () => {
    expect([0, 1, 2, 3, 4, 5, 100, 42, 255].map(kvpBodyMember)).toEqual([
      "kvp_get", "kvp_set", "kvp_delete", "kvp_enum_data", "kvp_ip_val", "kvp_ip_val", "kvp_register", "kvp_ip_val", "kvp_ip_val",
    ]);
    expect(KVP_OP_REGISTER).toBe(4);
    const b = new Uint8Array(7432);
    b[0] = KVP_OP_REGISTER1;
    b.set(new TextEncoder().encode("3.1"), 4);
    const r = kvp.decode(b);
    expect(r.ok && r.value.body).toEqual({ kvp_register: { version: text("3.1", 512) } });
  });

  it("`int error` overlays the header: HV_S_CONT written by a daemon reads back as operation 3 (ENUMERATE)", () => {
    const bytes = kvp.encode({ error: HV_S_CONT | 0, body: {} });
    expect([...bytes.subarray(0, 4)]).toEqual([0x03, 0x01, 0x07, 0x80]);
    const r = kvp.decode(bytes);
    expect(r.ok && r.value.kvp_hdr).toEqual({ operation: KVP_OP_ENUMERATE, pool: 1, pad: 0x8007 });
    expect(r.ok && Object.keys(r.value.body)).toEqual(["kvp_enum_data"]);
  });

  it("the value union follows value_type: REG_U32 and REG_U64 read the number at the value's offset", () => {
    const c: Codec<any> = codec(hv_kvp_exchg_msg_value);
    const b = new Uint8Array(2572);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, REG_U32, true);
    dv.setUint32(524, 0xdeadbeef, true);
    expect(c.decode(b).ok && c.decode(b)).toMatchObject({ value: { value_type: REG_U32, value_u32: 0xdeadbeef } });
    dv.setUint32(0, REG_U64, true);
    dv.setBigUint64(524, 2n ** 64n - 2n, true);
    expect(c.decode(b)).toMatchObject({ ok: true, value: { value_u64: 2n ** 64n - 2n } });
  });
});

describe("hv_vss_msg", () => {
  it("GET_DM_INFO carries dm_info, other operations vss_cf (12 bytes)", () => {
    const b = Uint8Array.of(VSS_OP_GET_DM_INFO, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0);
    expect(vss.decode(b)).toEqual({ ok: true, size: 12, value: { vss_hdr: { operation: 3, reserved: new Uint8Array(7) }, dm_info: { flags: 7 } } });
    b[0] = VSS_OP_HOT_BACKUP;
    expect(vss.decode(b)).toEqual({ ok: true, size: 12, value: { vss_hdr: { operation: 2, reserved: new Uint8Array(7) }, vss_cf: { flags: 7 } } });
  });
});

describe("icmsg_negotiate", () => {
  /** counts, reserved, then (major, minor) pairs, as a host sends them. */
  function negotiate(fw: number, srv: number, versions: [number, number][]): Uint8Array {
    const b = new Uint8Array(8 + 4 * versions.length);
    const dv = new DataView(b.buffer);
    dv.setUint16(0, fw, true);
    dv.setUint16(2, srv, true);
    versions.forEach(([maj, min], i) => {
      dv.setUint16(8 + 4 * i, maj, true);
      dv.setUint16(10 + 4 * i, min, true);
    });
    return b;
  }

  it("decodes icframe_vercnt + icmsg_vercnt versions after the 8-byte fixed part", () => {
    const b = negotiate(2, 3, [[UTIL_FW_VERSION >> 16, 0], [1, 0], [4, 0], [3, 0], [1, 0]]);
    const r = nego.decode(b, { exact: true });
    expect(r).toMatchObject({ ok: true, size: 28 });
    expect(r.ok && r.value.icversion_data).toEqual([
      { major: 3, minor: 0 }, { major: 1, minor: 0 }, { major: 4, minor: 0 }, { major: 3, minor: 0 }, { major: 1, minor: 0 },
    ]);
  });

  it("each count is bounded by IC_VERSION_NEGOTIATION_MAX_VER_COUNT (100); 100 + 100 is accepted", () => {
    const over = nego.decode(negotiate(101, 0, []));
    expect(over.ok || over.error).toMatchObject({ field: "icframe_vercnt", offset: 0 });
    const overMsg = nego.decode(negotiate(0, 101, []));
    expect(overMsg.ok || overMsg.error).toMatchObject({ field: "icmsg_vercnt", offset: 2 });
    const max = negotiate(100, 100, Array.from({ length: 200 }, () => [1, 0] as [number, number]));
    expect(nego.decode(max)).toMatchObject({ ok: true, size: 808 });
  });

  it("versions missing from the input name the array and the byte counts", () => {
    const r = nego.decode(negotiate(2, 1, [[3, 0]]));
    expect(r.ok || r.error).toEqual({ struct: "icmsg_negotiate", field: "icversion_data", offset: 8, reason: "3 elements of 4 bytes need 20 bytes, input has 12" });
  });
});
