// The declaration engine and codec on small synthetic structs: layout by the C rules (values worked
// out by hand below, then the same structs compiled with gcc), decode errors that name the member,
// and the byte encoding of every primitive at its boundaries.
import { describe, expect, it } from "vitest";
import { anon, array, char, field, flex, i8, i16, i32, i64, struct, u8, u16, u32, u64, union, type PrimType, type StructType, type UnionType } from "../../sim/wire/types.ts";
import { codec, formatDecodeError, type Codec } from "../../sim/wire/codec.ts";
import { gccLayouts, requestOf, tsLayout } from "../helpers/gcc-layout.ts";

const P = { packed: true } as const;
/** A codec without value typing (for loops over mixed declarations). */
const anyCodec = (t: StructType | UnionType): Codec<any> => codec<StructType | UnionType, any>(t);

// ---- synthetic declarations, each with its C twin and hand-worked layout ----
const s_mixed = struct("s_mixed", [field("a", u8), field("b", u32), field("c", u16)]);
const s_mixed_p = struct("s_mixed_p", [field("a", u8), field("b", u32), field("c", u16)], P);
const s_u64 = struct("s_u64", [field("a", u8), field("b", u64), field("c", u8)]);
const s_tail = struct("s_tail", [field("a", u16), field("b", array(u8, 3))]);
const s_inner = struct("s_inner", [field("a", u8), field("b", u32)]);
const s_outer = struct("s_outer", [field("x", u8), field("in", s_inner), field("y", u8)]);
const s_outer_p = struct("s_outer_p", [field("x", u8), field("in", s_inner), field("y", u8)], P);
const u_small = union("u_small", [field("a", array(u8, 5)), field("b", u32)]);
const u_small_p = union("u_small_p", [field("a", array(u8, 5)), field("b", u32)], P);
const s_with_union = struct("s_with_union", [field("t", u8), field("u", u_small)]);
const s_anon = struct("s_anon", [field("t", u16), anon(union("<anonymous>", [field("x", u8), field("y", u64)])), field("z", u8)]);
const s_flex = struct("s_flex", [field("n", u32), field("c", u8), field("d", flex(u16, (p) => p.n, { max: 4, countText: "n" }))]);
const s_flex_p = struct("s_flex_p", [field("n", u32), field("c", u8), field("d", flex(u16, (p) => p.n, { max: 4, countText: "n" }))], P);
const s_arr = struct("s_arr", [field("a", i8), field("b", array(i16, 3)), field("c", array(i64, 2))]);

const C_TWINS = `
#include <linux/types.h>
struct s_mixed { __u8 a; __u32 b; __u16 c; };
struct s_mixed_p { __u8 a; __u32 b; __u16 c; } __attribute__((packed));
struct s_u64 { __u8 a; __u64 b; __u8 c; };
struct s_tail { __u16 a; __u8 b[3]; };
struct s_inner { __u8 a; __u32 b; };
struct s_outer { __u8 x; struct s_inner in; __u8 y; };
struct s_outer_p { __u8 x; struct s_inner in; __u8 y; } __attribute__((packed));
union u_small { __u8 a[5]; __u32 b; };
union u_small_p { __u8 a[5]; __u32 b; } __attribute__((packed));
struct s_with_union { __u8 t; union u_small u; };
struct s_anon { __u16 t; union { __u8 x; __u64 y; }; __u8 z; };
struct s_flex { __u32 n; __u8 c; __u16 d[]; };
struct s_flex_p { __u32 n; __u8 c; __u16 d[]; } __attribute__((packed));
struct s_arr { __s8 a; __s16 b[3]; __s64 c[2]; };
`;

/** Worked by hand: member offsets, sizeof, _Alignof (gcc x86-64 rules). */
const HAND: [StructType | UnionType, { size: number; align: number; offsets: Record<string, number> }][] = [
  // a@0, b aligned to 4, c right after b; size rounded to align 4
  [s_mixed, { size: 12, align: 4, offsets: { a: 0, b: 4, c: 8 } }],
  // packed: no padding anywhere, alignment 1
  [s_mixed_p, { size: 7, align: 1, offsets: { a: 0, b: 1, c: 5 } }],
  // u64 aligned to 8; tail padding to 24
  [s_u64, { size: 24, align: 8, offsets: { a: 0, b: 8, c: 16 } }],
  // 2 + 3 = 5, rounded to align 2
  [s_tail, { size: 6, align: 2, offsets: { a: 0, b: 2 } }],
  // the nested struct keeps its own alignment (4) and size (8)
  [s_outer, { size: 16, align: 4, offsets: { x: 0, in: 4, "in.a": 4, "in.b": 8, y: 12 } }],
  // a packed outer places the nested struct at 1 but keeps its inner padding (size 8)
  [s_outer_p, { size: 10, align: 1, offsets: { x: 0, in: 1, "in.a": 1, "in.b": 5, y: 9 } }],
  // a union is as big as its largest member, rounded to its alignment
  [u_small, { size: 8, align: 4, offsets: { a: 0, b: 0 } }],
  [u_small_p, { size: 5, align: 1, offsets: { a: 0, b: 0 } }],
  [s_with_union, { size: 12, align: 4, offsets: { t: 0, u: 4, "u.a": 4, "u.b": 4 } }],
  // the anonymous union (align 8) starts at 8; its members are reached directly
  [s_anon, { size: 24, align: 8, offsets: { t: 0, x: 8, y: 8, z: 16 } }],
  // the flexible array starts at its alignment (6) and adds nothing; sizeof rounds 6 up to 8
  [s_flex, { size: 8, align: 4, offsets: { n: 0, c: 4, d: 6 } }],
  [s_flex_p, { size: 5, align: 1, offsets: { n: 0, c: 4, d: 5 } }],
  [s_arr, { size: 24, align: 8, offsets: { a: 0, b: 2, c: 8 } }],
];

describe("layout rules (by hand, then gcc)", () => {
  for (const [t, want] of HAND) {
    it(`${t.kind} ${t.name}: size ${want.size}, align ${want.align}, offsets by hand`, () => {
      const c = anyCodec(t);
      expect({ size: c.size, align: c.align }).toEqual({ size: want.size, align: want.align });
      expect(tsLayout(c).offsets).toEqual(want.offsets);
    });
  }

  it("every synthetic struct and union equals gcc's layout (sizeof, _Alignof, offsetof, member sizes)", () => {
    const cs = HAND.map(([t]) => anyCodec(t));
    const { layouts } = gccLayouts(C_TWINS, cs.map(requestOf));
    for (const c of cs) {
      const g = layouts.get(c.name)!;
      expect(tsLayout(c), c.name).toEqual({ size: g.size, align: g.align, offsets: g.offsets, sizes: g.sizes });
    }
  });

  it("refuses declarations C does not allow", () => {
    expect(() => struct("bad", [field("d", flex(u8, () => 0, { max: 1, countText: "0" })), field("x", u8)])).toThrow(/last member/);
    expect(() => union("bad", [field("d", flex(u8, () => 0, { max: 1, countText: "0" }))])).toThrow(/union member/);
    expect(() => struct("dup", [field("a", u8), anon(union("<anonymous>", [field("a", u16)]))])).toThrow(/duplicate member name a/);
    expect(() => array(u8, -1)).toThrow(RangeError);
  });
});

describe("decode errors name the member", () => {
  it("short input: the first member past the end, its offset, and both lengths", () => {
    const r = codec(s_mixed).decode(new Uint8Array(6));
    expect(r).toEqual({ ok: false, error: { struct: "s_mixed", field: "b", offset: 4, reason: "input is 6 bytes, s_mixed needs 12" } });
    const empty = codec(s_outer).decode(new Uint8Array(0));
    expect(empty.ok || empty.error.field).toBe("x");
    const nested = codec(s_outer).decode(new Uint8Array(7));
    expect(nested.ok || [nested.error.field, nested.error.offset]).toEqual(["in.b", 8]);
  });

  it("short input inside a union: the member the select would decode, not just the first", () => {
    const sel = struct("sel", [
      field("kind", u8),
      field("u", union("<anonymous>", [field("small", u8), field("big", array(u8, 8))], { select: (p) => (p.kind === 1 ? "big" : "small") })),
    ]);
    const r = codec(sel).decode(Uint8Array.of(1, 0, 0));
    expect(r.ok || [r.error.field, r.error.offset]).toEqual(["u.big", 1]);
  });

  it("a flexible array count past its limit names the array and the count expression", () => {
    const b = new Uint8Array(32);
    new DataView(b.buffer).setUint32(0, 5, true);
    const r = codec(s_flex).decode(b);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toMatchObject({ struct: "s_flex", field: "d", offset: 6 });
    expect(r.error.reason).toBe("element count n = 5 exceeds the limit 4");
    expect(formatDecodeError(r.error)).toBe("s_flex.d at offset 6: element count n = 5 exceeds the limit 4");
  });

  it("a flexible array running past the input is refused before allocating", () => {
    const b = new Uint8Array(10);
    b[0] = 3; // 3 x u16 from offset 6 need 12 bytes
    const r = codec(s_flex).decode(b);
    expect(r.ok || r.error).toEqual({ struct: "s_flex", field: "d", offset: 6, reason: "3 elements of 2 bytes need 12 bytes, input has 10" });
  });

  it("a member check failing names the member", () => {
    const chk = struct("chk", [field("n", u16, (v: number) => (v > 100 ? `${v} > 100` : undefined))]);
    const r = codec(chk).decode(Uint8Array.of(101, 0));
    expect(r.ok || r.error).toEqual({ struct: "chk", field: "n", offset: 0, reason: "101 > 100" });
  });

  it("exact mode refuses trailing bytes, default mode reports the message size", () => {
    const bytes = new Uint8Array(14);
    expect(codec(s_mixed).decode(bytes, { exact: true })).toEqual({
      ok: false,
      error: { struct: "s_mixed", field: "", offset: 12, reason: "2 trailing bytes after the 12-byte message" },
    });
    const r = codec(s_mixed).decode(bytes);
    expect(r.ok && r.size).toBe(12);
    const f = new Uint8Array(12);
    f[0] = 3; // 3 elements end at 12 = sizeof rounded up... plus nothing trailing
    expect(codec(s_flex).decode(f, { exact: true }).ok).toBe(true);
  });

  it("a select naming no member, a throwing count, non-bytes input: errors, never exceptions", () => {
    const badSel = struct("bs", [field("u", union("<anonymous>", [field("a", u8)], { select: () => "nope" }))]);
    const r1 = codec(badSel).decode(new Uint8Array(1));
    expect(r1.ok || r1.error).toMatchObject({ field: "u", reason: "union <anonymous> has no member nope" });
    const throws = struct("th", [field("n", u8), field("d", flex(u8, () => { throw new Error("boom"); }, { max: 1, countText: "?" }))]);
    const r2 = codec(throws).decode(new Uint8Array(1));
    expect(r2.ok || r2.error.reason).toBe("internal decoder error: boom");
    expect(codec(s_mixed).decode("bytes" as unknown as Uint8Array)).toMatchObject({ ok: false, error: { reason: "input is not bytes" } });
  });
});

describe("unions", () => {
  it("a named union's select sees the enclosing struct decoded so far", () => {
    const seen: unknown[] = [];
    const t = struct("t", [
      field("op", u8),
      field("body", union("<anonymous>", [field("a", u8), field("b", u16)], { select: (p) => (seen.push({ ...p }), p.op === 2 ? "b" : "a") })),
    ]);
    const r = codec(t).decode(Uint8Array.of(2, 0, 0x34, 0x12)); // body (align 2) at 2
    expect(r.ok && r.value).toEqual({ op: 2, body: { b: 0x1234 } });
    expect(seen).toEqual([{ op: 2 }]);
  });

  it("an anonymous union's select sees the struct too, and its member lands in the struct", () => {
    const t = struct("t", [field("op", u8), anon(union("<anonymous>", [field("a", u8), field("b", u16)], { select: (p) => (p.op === 2 ? "b" : "a") }))], P);
    const c = codec(t);
    expect(c.decode(Uint8Array.of(1, 7, 9))).toEqual({ ok: true, value: { op: 1, a: 7 }, size: 3 });
    expect(c.decode(Uint8Array.of(2, 7, 9))).toEqual({ ok: true, value: { op: 2, b: 0x0907 }, size: 3 });
  });

  it("encode takes the one member present, zero-fills the rest, refuses two", () => {
    const c = codec(s_with_union);
    expect([...c.encode({ t: 1, u: { b: 0x01020304 } } as never)]).toEqual([1, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0]);
    expect([...c.encode({ t: 1, u: { a: Uint8Array.of(9, 8, 7, 6, 5) } } as never)]).toEqual([1, 0, 0, 0, 9, 8, 7, 6, 5, 0, 0, 0]);
    expect(() => c.encode({ t: 1, u: { a: new Uint8Array(5), b: 1 } } as never)).toThrow(/exactly one member/);
  });
});

describe("primitives: encode/decode bytes at the boundaries", () => {
  const cases: [string, PrimType<any, any>, number | bigint, number[]][] = [
    ["u8", u8, 0, [0]],
    ["u8", u8, 255, [0xff]],
    ["char", char, 0x41, [0x41]],
    ["i8", i8, -1, [0xff]],
    ["i8", i8, -128, [0x80]],
    ["i8", i8, 127, [0x7f]],
    ["u16", u16, 0xbeef, [0xef, 0xbe]],
    ["u16", u16, 65535, [0xff, 0xff]],
    ["i16", i16, -2, [0xfe, 0xff]],
    ["i16", i16, -32768, [0x00, 0x80]],
    ["u32", u32, 0xdeadbeef, [0xef, 0xbe, 0xad, 0xde]],
    ["u32", u32, 4294967295, [0xff, 0xff, 0xff, 0xff]],
    ["i32", i32, -1, [0xff, 0xff, 0xff, 0xff]],
    ["i32", i32, -2147483648, [0x00, 0x00, 0x00, 0x80]],
    ["i32", i32, 2147483647, [0xff, 0xff, 0xff, 0x7f]],
    ["i32", i32, -2147467259, [0x05, 0x40, 0x00, 0x80]], // HV_E_FAIL 0x80004005 as `int error`
    ["u64", u64, 0n, [0, 0, 0, 0, 0, 0, 0, 0]],
    ["u64", u64, 2n ** 64n - 1n, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
    ["u64", u64, 2n ** 63n, [0, 0, 0, 0, 0, 0, 0, 0x80]],
    ["u64", u64, 2n ** 53n + 1n, [1, 0, 0, 0, 0, 0, 0x20, 0]],
    ["i64", i64, -1n, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
    ["i64", i64, -(2n ** 63n), [0, 0, 0, 0, 0, 0, 0, 0x80]],
    ["i64", i64, 2n ** 63n - 1n, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
  ];
  for (const [name, t, v, bytes] of cases) {
    it(`${name} ${String(v)} <-> [${bytes.map((b) => b.toString(16)).join(" ")}]`, () => {
      const c = anyCodec(struct("one", [field("v", t)], P));
      expect([...c.encode({ v })]).toEqual(bytes);
      expect(c.decode(Uint8Array.from(bytes))).toEqual({ ok: true, value: { v }, size: bytes.length });
    });
  }

  it("refuses values outside the type, naming the member", () => {
    const enc = (t: PrimType<any, any>, v: unknown) => () => anyCodec(struct("one", [field("v", t)])).encode({ v });
    expect(enc(u8, 256)).toThrow(/^v: expected a u8, got 256$/);
    expect(enc(i8, -129)).toThrow(TypeError);
    expect(enc(u32, 1.5)).toThrow(TypeError);
    expect(enc(i32, 2 ** 31)).toThrow(TypeError);
    expect(enc(u16, -1)).toThrow(TypeError);
    expect(enc(u64, -1n)).toThrow(/expected a u64 bigint/);
    expect(enc(u64, 5)).toThrow(/expected a u64 bigint/);
    expect(enc(i64, 2n ** 63n)).toThrow(TypeError);
    const arr = codec(struct("arr", [field("xs", array(u16, 2))]));
    expect(() => arr.encode({ xs: [1, 70000] } as never)).toThrow(/^xs\[1\]: expected a u16/);
    expect(() => codec(s_outer).encode({ x: 1, in: { a: 1 }, y: 2 } as never)).toThrow(/^in\.b: missing$/);
  });
});

describe("byte arrays, flexible arrays and buffers", () => {
  it("decoded byte arrays are private copies of the input", () => {
    const c = codec(s_tail);
    const input = Uint8Array.of(1, 0, 7, 8, 9, 0);
    const r1 = c.decode(input);
    const r2 = c.decode(input);
    input[2] = 0xaa;
    expect(r1.ok && [...r1.value.b]).toEqual([7, 8, 9]);
    if (r1.ok) r1.value.b[0] = 0x55;
    expect(r2.ok && [...r2.value.b]).toEqual([7, 8, 9]);
  });

  it("each encode returns a fresh zero-filled message (short byte arrays leave zeros)", () => {
    const c = codec(s_tail);
    const a = c.encode({ a: 0xffff, b: Uint8Array.of(1, 2, 3) });
    const b = c.encode({ a: 1, b: Uint8Array.of(4) });
    expect([...a]).toEqual([0xff, 0xff, 1, 2, 3, 0]);
    expect([...b]).toEqual([1, 0, 4, 0, 0, 0]);
    a.fill(0x77);
    expect([...b]).toEqual([1, 0, 4, 0, 0, 0]);
  });

  it("a flexible array encodes after the fixed part and decodes with its count", () => {
    const c = codec(s_flex);
    const v = { n: 3, c: 9, d: [0x1111, 0x2222, 0x3333] };
    const bytes = c.encode(v);
    expect([...bytes]).toEqual([3, 0, 0, 0, 9, 0, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33]);
    expect(c.decode(bytes)).toEqual({ ok: true, value: v, size: 12 });
    // one element fits in sizeof's tail padding: the message stays 8 bytes
    expect(c.encode({ n: 1, c: 0, d: [5] }).length).toBe(8);
    const p = codec(s_flex_p);
    expect(p.decode(Uint8Array.of(2, 0, 0, 0, 0, 1, 0, 2, 0))).toEqual({ ok: true, value: { n: 2, c: 0, d: [1, 2] }, size: 9 });
  });

  it("encodeInto writes at an offset, zero-fills the message's bytes and refuses a short buffer", () => {
    const c = codec(s_mixed);
    const buf = new Uint8Array(16).fill(0xee);
    expect(c.encodeInto(buf, 2, { a: 1, b: 2, c: 3 })).toBe(12);
    expect([...buf]).toEqual([0xee, 0xee, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0xee, 0xee]);
    expect(() => c.encodeInto(buf, 5, { a: 1, b: 2, c: 3 })).toThrow(RangeError);
  });

  it("offsetOf knows every path and refuses unknown ones", () => {
    const c = codec(s_anon);
    expect(c.offsetOf("y")).toBe(8);
    expect(() => c.offsetOf("w")).toThrow(RangeError);
  });
});

describe("__u16 arrays as typed views", () => {
  const s_w = struct("s_w", [field("k", u8), field("w", array(u16, 3)), field("z", u8)]);
  it("decode to a private Uint16Array of the little-endian units; encode takes it or a plain array", () => {
    const c = codec(s_w);
    // k at 0, w at 2..7 (u16 alignment), z at 8, size 10.
    const bytes = new Uint8Array([7, 0, 0x41, 0x00, 0x34, 0x12, 0xff, 0xff, 9, 0]);
    const r = c.decode(bytes);
    if (!r.ok) throw new Error(formatDecodeError(r.error));
    expect(r.value.w).toBeInstanceOf(Uint16Array);
    expect([...r.value.w]).toEqual([0x41, 0x1234, 0xffff]);
    bytes[2] = 0x42; // the decoded value is a copy, not a view of the input
    expect(r.value.w[0]).toBe(0x41);
    const typed = c.encode({ k: 7, w: Uint16Array.of(0x41, 0x1234, 0xffff), z: 9 });
    const plain = anyCodec(s_w).encode({ k: 7, w: [0x41, 0x1234, 0xffff], z: 9 });
    expect([...typed]).toEqual([7, 0, 0x41, 0, 0x34, 0x12, 0xff, 0xff, 9, 0]);
    expect([...plain]).toEqual([...typed]);
    // A shorter array leaves the rest zero; a longer one is refused.
    expect([...c.encode({ k: 0, w: Uint16Array.of(0x0102), z: 0 })]).toEqual([0, 0, 2, 1, 0, 0, 0, 0, 0, 0]);
    expect(() => c.encode({ k: 0, w: new Uint16Array(4), z: 0 })).toThrow(/w: expected a Uint16Array or an array of at most 3 elements/);
  });
});
