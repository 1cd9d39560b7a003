// Parsers of the Hyper-V messages return errors instead of throwing and bound counts and sizes
// before use. Limits: IC_VERSION_NEGOTIATION_MAX_VER_COUNT 100 and ICMSG_HDR 28
// (include/linux/hyperv.h), sizeof(hv_kvp_msg) 7432 / sizeof(hv_vss_msg) 12
// (include/uapi/linux/hyperv.h), pool records of 512 + 2048 bytes (tools/hv/hv_kvp_daemon.c).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  KVP_MSG_SIZE,
  POOL_RECORD_SIZE,
  buildIcFrame,
  buildNegotiate,
  decodePoolFile,
  encodePoolFile,
  parseIcFrame,
  parseKvpMsg,
  parseNegotiate,
  parseVssMsg,
  utf16sToUtf8s,
  utf8sToUtf16s,
  utf16leBytes,
  utf8Bytes,
  wr16,
} from "../../sim/devices/hyperv/index.ts";

describe("IC frames", () => {
  it("round-trips a frame and bounds the payload by icmsgsize", () => {
    const f = parseIcFrame(buildIcFrame({ msgType: 2, transactionId: 0x1ff, payload: new Uint8Array([1, 2, 3]) }));
    expect(f.ok && [f.value.msgType, f.value.transactionId, f.value.flags, [...f.value.payload]]).toEqual([2, 0xff, 3, [1, 2, 3]]);
  });

  it("refuses a packet shorter than 28 bytes and an icmsgsize larger than the packet", () => {
    expect(parseIcFrame(new Uint8Array(27))).toMatchObject({ ok: false });
    const p = buildIcFrame({ msgType: 0, payload: new Uint8Array(4) });
    wr16(p, 8 + 10, 5);
    const r = parseIcFrame(p);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/icmsgsize 5 is larger than the 4 bytes/);
  });
});

describe("negotiate bodies", () => {
  it("reads the counts and the versions", () => {
    const r = parseNegotiate(buildNegotiate([{ major: 3, minor: 0 }], [{ major: 4, minor: 0 }, { major: 3, minor: 0 }]));
    expect(r).toEqual({ ok: true, value: { fwCount: 1, msgCount: 2, framework: [{ major: 3, minor: 0 }], service: [{ major: 4, minor: 0 }, { major: 3, minor: 0 }] } });
  });

  it("refuses counts over 100 before reading, and counts the input cannot hold", () => {
    expect(parseNegotiate(buildNegotiate([], [], { fw: 101, msg: 0 }))).toMatchObject({ ok: false });
    expect(parseNegotiate(buildNegotiate([], [], { fw: 0, msg: 65535 }))).toMatchObject({ ok: false });
    const r = parseNegotiate(buildNegotiate([{ major: 3, minor: 0 }], [], { fw: 100, msg: 100 }));
    expect(!r.ok && r.error).toMatch(/need/);
  });
});

describe("hv_kvp_msg / hv_vss_msg", () => {
  it("require exactly 7432 and 12 bytes", () => {
    expect(parseKvpMsg(new Uint8Array(KVP_MSG_SIZE - 1)).ok).toBe(false);
    expect(parseKvpMsg(new Uint8Array(KVP_MSG_SIZE + 1)).ok).toBe(false);
    expect(parseKvpMsg(new Uint8Array(KVP_MSG_SIZE)).ok).toBe(true);
    expect(parseVssMsg(new Uint8Array(11)).ok).toBe(false);
    expect(parseVssMsg(new Uint8Array([6, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]))).toEqual({ ok: true, value: { operation: 6, error: 6, flags: 5 } });
  });
});

describe("pool files", () => {
  it("encodes 2560-byte records and decodes text up to the NUL, ignoring stale bytes after it", () => {
    const f = encodePoolFile([["k1", "v1"], ["ключ", "значение"]]);
    expect(f.length).toBe(2 * POOL_RECORD_SIZE);
    f.set(utf8Bytes("STALE"), 10); // after k1's NUL
    const d = decodePoolFile(f);
    expect(d.ok && d.value.records.map((r) => [r.key, r.value])).toEqual([["k1", "v1"], ["ключ", "значение"]]);
  });

  it("ignores a trailing partial record (the daemon freads whole records) and bounds the count", () => {
    const f = new Uint8Array(POOL_RECORD_SIZE + 100);
    const d = decodePoolFile(f);
    expect(d.ok && [d.value.records.length, d.value.trailing]).toEqual([1, 100]);
    expect(decodePoolFile(new Uint8Array(3 * POOL_RECORD_SIZE), { maxRecords: 2 }).ok).toBe(false);
    expect(() => encodePoolFile([["k".repeat(512), ""]])).toThrow(RangeError);
  });
});

describe("parsers never throw", () => {
  it("on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 9000 }), (b) => {
        for (const f of [parseIcFrame, parseNegotiate, parseKvpMsg, parseVssMsg, decodePoolFile]) {
          const r = f(b);
          expect(typeof r.ok).toBe("boolean");
        }
      }),
      { numRuns: 300 },
    );
  });

  it("on mutated valid negotiate frames", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 64 }), (fw, msg, extra) => {
        const r = parseNegotiate(buildNegotiate([], [], { fw, msg }).slice(0, 8 + extra));
        if (r.ok) expect(r.value.framework.length + r.value.service.length).toBeLessThanOrEqual(200);
        else expect(r.error.length).toBeGreaterThan(0);
      }),
    );
  });
});

describe("kernel string conversions (fs/nls/nls_base.c)", () => {
  it("UTF-16 -> UTF-8 and back are inverses for valid text within the limits", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 60 }), (s) => {
        fc.pre(!s.includes("\0"));
        const u16 = utf16leBytes(s + "\0");
        const u8 = new Uint8Array(4096);
        const n = utf16sToUtf8s(u16, 0, u16.length / 2, u8, 0, 4095);
        expect(new TextDecoder().decode(u8.subarray(0, n))).toBe(s);
        const back = new Uint8Array(8192);
        const m = utf8sToUtf16s(u8, 0, n, back, 0, 4000);
        expect(m).toBe(s.length);
      }),
    );
  });

  it("skips lone surrogates (UTF-16 -> UTF-8) and rejects invalid UTF-8 with -EINVAL", () => {
    const u16 = utf16leBytes("a\ud800b\udc00c");
    const out = new Uint8Array(16);
    expect(utf16sToUtf8s(u16, 0, 5, out, 0, 16)).toBe(3);
    expect(new TextDecoder().decode(out.subarray(0, 3))).toBe("abc");
    for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xe2, 0x82]]) {
      expect(utf8sToUtf16s(new Uint8Array(bad), 0, bad.length, new Uint8Array(16), 0, 8)).toBe(-22);
    }
  });
});
