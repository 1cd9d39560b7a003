// Properties of every registered wire codec:
// 1. decode(encode(x)) deep-equals x for values generated from the declaration (arbitrary.ts), and
//    decode reports exactly the encoded length as the message size;
// 2. decode never throws, whatever the bytes: random input of 0..2*size bytes, and valid encodings
//    with bytes overwritten, cut short or extended. It returns either a value (whose size fits the
//    input) or a well-formed error: this struct's name, "" or a declared member path, an offset
//    inside the input or the struct, a non-empty reason.
// Plus, for the unions chosen by an operation field, every (operation -> member) pair round-trips
// through the select.
import { describe, expect } from "vitest";
import { test, fc } from "@fast-check/vitest";
import { wireEntries, type WireEntry } from "../../sim/wire/registry.ts";
import type { Codec, DecodeResult } from "../../sim/wire/codec.ts";
import { KVP_BODY_MEMBER_BY_OP, hv_kvp_msg, hv_vss_msg, hv_kvp_exchg_msg_value } from "../../sim/wire/hyperv.ts";
import { codec } from "../../sim/wire/codec.ts";
import { REG_SZ, REG_U32, REG_U64, VSS_OP_FREEZE, VSS_OP_GET_DM_INFO, VSS_OP_HOT_BACKUP } from "../../sim/wire/hyperv-constants.ts";
import { arbitraryOf } from "./arbitrary.ts";

const RUNS = Number(process.env.HVSIM_PROP_RUNS ?? 40);

function expectWellFormed(e: WireEntry, bytes: Uint8Array, r: DecodeResult<unknown>): void {
  const paths = new Set(e.codec.fields.map((f) => f.path));
  if (r.ok) {
    expect(r.value).toBeTypeOf("object");
    expect(Number.isSafeInteger(r.size)).toBe(true);
    expect(r.size).toBeGreaterThanOrEqual(e.codec.size);
    expect(r.size).toBeLessThanOrEqual(bytes.length);
    return;
  }
  const err = r.error;
  expect(err.struct).toBe(e.name);
  expect(err.field === "" || paths.has(err.field), `field '${err.field}' is a member path`).toBe(true);
  expect(Number.isSafeInteger(err.offset)).toBe(true);
  expect(err.offset).toBeGreaterThanOrEqual(0);
  expect(err.offset).toBeLessThanOrEqual(Math.max(bytes.length, e.codec.size));
  expect(typeof err.reason === "string" && err.reason.length > 0).toBe(true);
  expect(err.reason).not.toMatch(/internal decoder error/);
}

/** Input bytes: a length and a seed expanded to dense content (fast for multi-KiB structs). */
const randomBytes = (max: number) =>
  fc.tuple(fc.integer({ min: 0, max }), fc.integer()).map(([n, seed]) => {
    let x = seed | 0 || 1;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out;
  });

const mutation = fc.record({
  writes: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
  cut: fc.option(fc.nat(), { nil: undefined }),
  extra: fc.uint8Array({ maxLength: 16 }),
});

for (const e of wireEntries()) {
  describe(`wire ${e.name}`, () => {
    const arb = arbitraryOf(e.type);

    test.prop([arb], { numRuns: RUNS })("decode(encode(x)) deep-equals x", (x) => {
      const bytes = e.codec.encode(x);
      const r = e.codec.decode(bytes, { exact: true });
      if (!r.ok) throw new Error(`decode failed: ${JSON.stringify(r.error)}`);
      expect(r.value).toStrictEqual(x);
      expect(r.size).toBe(bytes.length);
    });

    test.prop([randomBytes(2 * Math.max(e.codec.size, 8))], { numRuns: RUNS })("decode of arbitrary bytes never throws and is well formed", (bytes) => {
      let r: DecodeResult<unknown> | undefined;
      expect(() => (r = e.codec.decode(bytes))).not.toThrow();
      expectWellFormed(e, bytes, r!);
      expect(() => (r = e.codec.decode(bytes, { exact: true }))).not.toThrow();
      expectWellFormed(e, bytes, r!);
      if (r!.ok) expect(r!.size).toBe(bytes.length);
    });

    test.prop([arb, mutation], { numRuns: RUNS })("decode of a mutated encoding never throws and is well formed", (x, m) => {
      const enc = e.codec.encode(x);
      let bytes = new Uint8Array(enc.length + m.extra.length);
      bytes.set(enc);
      bytes.set(m.extra, enc.length);
      for (const [at, v] of m.writes) if (bytes.length) bytes[at % bytes.length] = v;
      if (m.cut !== undefined) bytes = bytes.subarray(0, m.cut % (bytes.length + 1));
      let r: DecodeResult<unknown> | undefined;
      expect(() => (r = e.codec.decode(bytes))).not.toThrow();
      expectWellFormed(e, bytes, r!);
    });
  });
}

describe("unions chosen by an operation round-trip for every operation", () => {
  const kvp: Codec<unknown> = codec(hv_kvp_msg);
  for (const [op, member] of KVP_BODY_MEMBER_BY_OP) {
    test.prop([arbitraryOf(hv_kvp_msg, { overrides: { "kvp_hdr.operation": fc.constant(op) } })], { numRuns: 10 })(
      `hv_kvp_msg with operation ${op} carries body.${member}`,
      (x) => {
        const r = kvp.decode(kvp.encode(x));
        if (!r.ok) throw new Error(JSON.stringify(r.error));
        expect(Object.keys((r.value as { body: object }).body)).toEqual([member]);
        expect(r.value).toStrictEqual(x);
      },
    );
  }

  const vss: Codec<unknown> = codec(hv_vss_msg);
  for (const [op, member] of [[VSS_OP_GET_DM_INFO, "dm_info"], [VSS_OP_HOT_BACKUP, "vss_cf"], [VSS_OP_FREEZE, "vss_cf"]] as const) {
    test.prop([arbitraryOf(hv_vss_msg, { overrides: { "vss_hdr.operation": fc.constant(op) } })], { numRuns: 10 })(
      `hv_vss_msg with operation ${op} carries ${member}`,
      (x) => {
        const r = vss.decode(vss.encode(x));
        if (!r.ok) throw new Error(JSON.stringify(r.error));
        expect(member in (r.value as object)).toBe(true);
        expect(r.value).toStrictEqual(x);
      },
    );
  }

  const val: Codec<unknown> = codec(hv_kvp_exchg_msg_value);
  for (const [type, member] of [[REG_SZ, "value"], [REG_U32, "value_u32"], [REG_U64, "value_u64"], [0, "value"]] as const) {
    test.prop([arbitraryOf(hv_kvp_exchg_msg_value, { overrides: { value_type: fc.constant(type) } })], { numRuns: 10 })(
      `hv_kvp_exchg_msg_value with value_type ${type} carries ${member}`,
      (x) => {
        const r = val.decode(val.encode(x));
        if (!r.ok) throw new Error(JSON.stringify(r.error));
        expect(member in (r.value as object)).toBe(true);
        expect(r.value).toStrictEqual(x);
      },
    );
  }
});
