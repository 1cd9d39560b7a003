// Encoders and decoders compiled once from a declaration (types.ts). Little-endian throughout.
// decode() never throws: short input, a count past its bound or a failed member check comes back
// as a DecodeError naming the member and the reason, and lengths are checked before allocation.
//
// Speed: each codec is compiled to straight-line JavaScript (one decode and one encode function per
// declaration, nested members inlined, member paths for error messages fixed at compile time), so
// every property access site sees one object shape. The byte arrays a decode returns and the
// buffers encode() returns are carved from a shared zero-filled slab instead of being allocated one
// by one (an ArrayBuffer allocation costs far more than copying a few KiB). Each such Uint8Array is
// still a private copy of the right length; only its `.buffer` is the larger slab (like Node's
// Buffer pool). Take `.slice()` of one if you need an ArrayBuffer of its own.
import { flatten, type FlatField, type StructType, type UnionType, type ValueOf, type WireType } from "./types.ts";

export interface DecodeError {
  /** The C struct being decoded. */
  readonly struct: string;
  /** Dotted C path of the member at fault ("" for the whole input). */
  readonly field: string;
  /** Byte offset of that member in the input. */
  readonly offset: number;
  readonly reason: string;
}

export type DecodeResult<T> = { readonly ok: true; readonly value: T; readonly size: number } | { readonly ok: false; readonly error: DecodeError };

export interface DecodeOptions {
  /** Refuse input longer than the decoded message (default: trailing bytes are ignored). */
  readonly exact?: boolean;
  /**
   * Byte arrays and __u16 arrays of the value are views of `bytes` instead of copies (a __u16
   * array at an odd address is still copied): no allocation beyond the records, for callers that
   * drop the value before they change `bytes` (a fuzzer's round-trip check). Default false.
   */
  readonly view?: boolean;
}

export function formatDecodeError(e: DecodeError): string {
  return `${e.struct}${e.field ? "." + e.field : ""} at offset ${e.offset}: ${e.reason}`;
}

class Fail {
  constructor(readonly field: string, readonly offset: number, readonly reason: string) {}
}

// ---- the slab pool ----
const SLAB_SIZE = 256 * 1024;
/** Requests larger than this get their own buffer. */
const SLAB_MAX_REQUEST = 16 * 1024;
let slab = new Uint8Array(0);
let slabPos = 0;

/** A zero-filled byte array of length n, never handed out before. */
function alloc(n: number): Uint8Array {
  if (n > SLAB_MAX_REQUEST) return new Uint8Array(n);
  if (slabPos + n > slab.length) {
    slab = new Uint8Array(SLAB_SIZE);
    slabPos = 0;
  }
  const out = slab.subarray(slabPos, slabPos + n);
  slabPos += (n + 7) & ~7; // keep every array 8-byte aligned
  return out;
}

/** The host stores a u16 low byte first (then a Uint16Array over LE bytes reads them as is). */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A private Uint16Array of the n little-endian u16s at u8[from, from + 2n). */
function copyU16(u8: Uint8Array, from: number, n: number): Uint16Array {
  const bytes = alloc(n * 2);
  if (HOST_LE) {
    bytes.set(u8.subarray(from, from + n * 2));
    return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  }
  const out = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  for (let i = 0; i < n; i++) out[i] = u8[from + 2 * i]! | (u8[from + 2 * i + 1]! << 8);
  return out;
}

/** Writes a Uint16Array's elements little-endian at u8[off]. */
function putU16(u8: Uint8Array, off: number, x: Uint16Array): void {
  if (HOST_LE) u8.set(new Uint8Array(x.buffer, x.byteOffset, x.length * 2), off);
  else
    for (let i = 0; i < x.length; i++) {
      u8[off + 2 * i] = x[i]! & 0xff;
      u8[off + 2 * i + 1] = x[i]! >> 8;
    }
}

/** A Uint16Array over the n little-endian u16s at u8[from, from + 2n) when aligned, else a copy. */
function viewU16(u8: Uint8Array, from: number, n: number): Uint16Array {
  const at = u8.byteOffset + from;
  return HOST_LE && (at & 1) === 0 ? new Uint16Array(u8.buffer, at, n) : copyU16(u8, from, n);
}

/** u8[from, to) as a view. */
function viewBytes(u8: Uint8Array, from: number, to: number): Uint8Array {
  return u8.subarray(from, to);
}

/** A private copy of u8[from, to). */
function copyBytes(u8: Uint8Array, from: number, to: number): Uint8Array {
  const n = to - from;
  const out = alloc(n);
  if (n <= 16) for (let i = 0; i < n; i++) out[i] = u8[from + i]!;
  else out.set(u8.subarray(from, to));
  return out;
}

// ---- code generation ----
// Functions from selects, counts and checks are reached through `ext`; everything else is inlined.
type Rec = Record<string, unknown>;
/** A compiled decoder returns the record, or the Fail that stopped it (returned, not thrown: cheaper). */
type DecFn = (dv: DataView, u8: Uint8Array, end: { n: number }) => Rec | Fail;
type EncFn = (dv: DataView, u8: Uint8Array, off0: number, v: unknown) => number;

const lit = (x: string) => JSON.stringify(x);
const join = (path: string, name: string) => (path ? `${path}.${name}` : name);

/** An offset: a JavaScript expression (or none) plus a constant. */
interface Off {
  readonly v: string;
  readonly k: number;
}
const plus = (o: Off, n: number): Off => ({ v: o.v, k: o.k + n });
const js = (o: Off) => (o.v ? (o.k ? `(${o.v} + ${o.k})` : `(${o.v})`) : String(o.k));

/** A member path for encode errors: known at compile time, or an expression (inside array loops). */
interface PathE {
  readonly s?: string;
  readonly e: string;
}
const staticPath = (s: string): PathE => ({ s, e: lit(s) });
const childPath = (p: PathE, name: string): PathE =>
  p.s !== undefined ? staticPath(join(p.s, name)) : { e: `((${p.e}) ? (${p.e}) + "." : "") + ${lit(name)}` };
const orName = (p: PathE, name: string) => (p.s !== undefined ? lit(p.s || name) : `((${p.e}) || ${lit(name)})`);

class Gen {
  readonly ext: unknown[] = [];
  /** Functions the body calls (union members, outlined). */
  readonly fns: string[] = [];
  private n = 0;
  /**
   * Moves `block` into a function of its own taking `params`; returns the expression calling it.
   * A union's members are outlined so each is compiled, optimized and deoptimized on its own: a
   * member seen for the first time after optimization then costs a small function's recompile, not
   * the whole message's (hv_kvp_msg inlined is one function of thousands of lines).
   */
  outline(prefix: string, params: readonly string[], block: readonly string[]): string {
    const f = this.fresh(prefix);
    this.fns.push(`function ${f}(${params.join(", ")}) {`, ...block, "}");
    return `${f}(${params.join(", ")})`;
  }
  fresh(prefix: string): string {
    return `${prefix}${this.n++}`;
  }
  ref(x: unknown): string {
    this.ext.push(x);
    return `ext[${this.ext.length - 1}]`;
  }
}

function isByteElem(t: WireType): boolean {
  return t.kind === "prim" && (t.name === "u8" || t.name === "char" || t.name === "i8");
}

/** __u16 elements of a fixed-length array decode into a Uint16Array (a typed view of its own). */
function isU16Elem(t: WireType): boolean {
  return t.kind === "prim" && t.name === "u16";
}

/** The name an anonymous member is chosen by in a union: its first own name. */
function firstName(f: { name: string | undefined; type: WireType }): string {
  if (f.name !== undefined) return f.name;
  const t = f.type as StructType | UnionType;
  const m = (t.kind === "union" ? t.members : t.fields)[0];
  return m?.name ?? "";
}

const READ: Record<string, (o: string) => string> = {
  u8: (o) => `u8[${o}]`,
  char: (o) => `u8[${o}]`,
  i8: (o) => `dv.getInt8(${o})`,
  u16: (o) => `dv.getUint16(${o}, true)`,
  i16: (o) => `dv.getInt16(${o}, true)`,
  u32: (o) => `dv.getUint32(${o}, true)`,
  i32: (o) => `dv.getInt32(${o}, true)`,
  u64: (o) => `dv.getBigUint64(${o}, true)`,
  i64: (o) => `dv.getBigInt64(${o}, true)`,
};

/** Statements decoding `t` at `off` go to `out`; returns the expression holding the value. */
function decValue(g: Gen, t: WireType, off: Off, path: string, parent: string | undefined, out: string[]): string {
  switch (t.kind) {
    case "prim":
      return READ[t.name]!(js(off));
    case "array": {
      const n = t.length;
      if (isByteElem(t.elem)) return `copyBytes(u8, ${js(off)}, ${js(plus(off, n))})`;
      if (isU16Elem(t.elem)) return `copyU16(u8, ${js(off)}, ${n})`;
      const a = g.fresh("a");
      const i = g.fresh("i");
      const body: string[] = [];
      const e = decValue(g, t.elem, { v: `${js(off)} + ${i} * ${t.elem.size}`, k: 0 }, path, undefined, body);
      out.push(`const ${a} = new Array(${n});`, `for (let ${i} = 0; ${i} < ${n}; ${i}++) {`, ...body, `${a}[${i}] = ${e};`, `}`);
      return a;
    }
    case "flex":
      throw new TypeError("a flexible array is decoded by its struct");
    case "struct": {
      const o = g.fresh("o");
      out.push(`const ${o} = {};`);
      decMembers(g, t.fields, off, path, o, out);
      return o;
    }
    case "union": {
      const o = g.fresh("o");
      out.push(`const ${o} = {};`);
      decUnion(g, t, off, path, o, parent ?? o, out);
      return o;
    }
  }
}

function decMembers(g: Gen, fields: StructType["fields"], off: Off, path: string, into: string, out: string[]): void {
  for (const f of fields) {
    const foff = plus(off, f.offset);
    if (f.name === undefined) {
      // An anonymous member lends its names to this scope: same path, same record.
      if (f.type.kind === "union") decUnion(g, f.type, foff, path, into, into, out);
      else decMembers(g, (f.type as StructType).fields, foff, path, into, out);
      continue;
    }
    const p = join(path, f.name);
    const key = lit(f.name);
    const block: string[] = [];
    if (f.type.kind === "flex") {
      const ft = f.type;
      const es = ft.elem.size;
      const [at, c, need] = [g.fresh("at"), g.fresh("c"), g.fresh("need")];
      const countIs = `${lit(`element count ${ft.countText} = `)} + ${c}`;
      block.push(
        `const ${at} = ${js(foff)};`,
        `const ${c} = ${g.ref(ft.count)}(${into});`,
        `if (!Number.isSafeInteger(${c}) || ${c} < 0) return new Fail(${lit(p)}, ${at}, ${countIs} + " is not a valid count");`,
        `if (${c} > ${ft.max}) return new Fail(${lit(p)}, ${at}, ${countIs} + ${lit(` exceeds the limit ${ft.max}`)});`,
        `const ${need} = ${at} + ${c} * ${es};`,
        `if (${need} > u8.length) return new Fail(${lit(p)}, ${at}, ${c} + ${lit(` elements of ${es} bytes need `)} + ${need} + " bytes, input has " + u8.length);`,
      );
      if (isByteElem(ft.elem)) block.push(`${into}[${key}] = copyBytes(u8, ${at}, ${need});`);
      else {
        const [a, i] = [g.fresh("a"), g.fresh("i")];
        const body: string[] = [];
        const e = decValue(g, ft.elem, { v: `${at} + ${i} * ${es}`, k: 0 }, p, undefined, body);
        block.push(`const ${a} = new Array(${c});`, `for (let ${i} = 0; ${i} < ${c}; ${i}++) {`, ...body, `${a}[${i}] = ${e};`, `}`, `${into}[${key}] = ${a};`);
      }
      block.push(`if (${need} > end.n) end.n = ${need};`);
    } else {
      const e = decValue(g, f.type, foff, p, into, block);
      if (f.check) {
        const [v, w] = [g.fresh("v"), g.fresh("w")];
        block.push(`const ${v} = ${e};`, `const ${w} = ${g.ref(f.check)}(${v});`, `if (${w} !== undefined) return new Fail(${lit(p)}, ${js(foff)}, ${w});`, `${into}[${key}] = ${v};`);
      } else block.push(`${into}[${key}] = ${e};`);
    }
    out.push("{", ...block, "}");
  }
}

function decUnion(g: Gen, u: UnionType, off: Off, path: string, into: string, selParent: string, out: string[]): void {
  const member = (m: UnionType["members"][number]): string[] => {
    const block: string[] = [];
    if (m.name === undefined) {
      if (m.type.kind === "union") decUnion(g, m.type, off, path, into, into, block);
      else decMembers(g, (m.type as StructType).fields, off, path, into, block);
      return block;
    }
    const p = join(path, m.name);
    const e = decValue(g, m.type, off, p, undefined, block);
    if (m.check) {
      const [v, w] = [g.fresh("v"), g.fresh("w")];
      block.push(`const ${v} = ${e};`, `const ${w} = ${g.ref(m.check)}(${v});`, `if (${w} !== undefined) return new Fail(${lit(p)}, ${js(off)}, ${w});`, `${into}[${lit(m.name)}] = ${v};`);
    } else block.push(`${into}[${lit(m.name)}] = ${e};`);
    return block;
  };
  if (!u.select) {
    const m = u.members[0];
    if (!m) out.push(`return new Fail(${lit(path)}, ${js(off)}, ${lit(`union ${u.name} has no members`)});`);
    else out.push("{", ...member(m), "}");
    return;
  }
  const s = g.fresh("s");
  out.push(`const ${s} = ${g.ref(u.select)}(${selParent}, u8, ${js(off)});`, `switch (${s}) {`);
  const seen = new Set<string>();
  for (const m of u.members) {
    const key = firstName(m);
    if (seen.has(key)) continue;
    seen.add(key);
    // Outlined where the member's offset is a constant (not inside an array loop).
    const body = member(m);
    // A decoder returns its Fail (a throw costs about a microsecond), so the caller passes it on.
    const params = into === selParent ? ["dv", "u8", "end", into] : ["dv", "u8", "end", into, selParent];
    const r = g.fresh("r");
    const call = off.v === "" ? [`const ${r} = ${g.outline("dm", params, body)};`, `if (${r} !== undefined) return ${r};`] : body;
    out.push(`case ${lit(key)}: {`, ...call, "break;", "}");
  }
  out.push(`default: return new Fail(${lit(path)}, ${js(off)}, ${lit(`union ${u.name} has no member `)} + ${s});`, "}");
}

/** Statements encoding the value in variable `x` as `t` at `off`. */
function encValue(g: Gen, t: WireType, off: Off, path: PathE, x: string, out: string[]): void {
  switch (t.kind) {
    case "prim": {
      const bits = t.size * 8;
      const signed = t.name[0] === "i";
      const where = path.s !== undefined ? lit(path.s || "value") : `((${path.e}) || "value")`;
      if (t.size === 8) {
        const lo = signed ? -(1n << 63n) : 0n;
        const hi = signed ? (1n << 63n) - 1n : (1n << 64n) - 1n;
        out.push(
          `if (typeof ${x} !== "bigint" || ${x} < ${lo}n || ${x} > ${hi}n) throw new TypeError(${where} + ${lit(`: expected a ${t.name} bigint, got `)} + String(${x}));`,
          `dv.${signed ? "setBigInt64" : "setBigUint64"}(${js(off)}, ${x}, true);`,
        );
        return;
      }
      const lo = signed ? -(2 ** (bits - 1)) : 0;
      const hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
      out.push(`if (typeof ${x} !== "number" || !Number.isInteger(${x}) || ${x} < ${lo} || ${x} > ${hi}) throw new TypeError(${where} + ${lit(`: expected a ${t.name}, got `)} + String(${x}));`);
      if (t.size === 1) out.push(`u8[${js(off)}] = ${x} & 0xff;`);
      else if (t.size === 2) out.push(`dv.setUint16(${js(off)}, ${x} & 0xffff, true);`);
      else out.push(`dv.setUint32(${js(off)}, ${x} >>> 0, true);`);
      return;
    }
    case "array":
    case "flex": {
      const isFlex = t.kind === "flex";
      const n = t.kind === "array" ? t.length : Infinity;
      const es = t.elem.size;
      const where = path.s !== undefined ? lit(path.s || "value") : `((${path.e}) || "value")`;
      if (isByteElem(t.elem)) {
        out.push(
          `if (!(${x} instanceof Uint8Array) || ${x}.length > ${n}) throw new TypeError(${where} + ${lit(`: expected a Uint8Array of at most ${n} bytes`)});`,
          `u8.set(${x}, ${js(off)});`,
        );
        if (isFlex) out.push(`{ const r = ${js(off)} - off0 + ${x}.length; if (r > end) end = r; }`);
        return;
      }
      const [i, e] = [g.fresh("i"), g.fresh("e")];
      const typed = !isFlex && isU16Elem(t.elem);
      if (typed) out.push(`if (${x} instanceof Uint16Array && ${x}.length <= ${n}) putU16(u8, ${js(off)}, ${x}); else {`);
      const elemPath: PathE = { e: `${where} + "[" + ${i} + "]"` };
      const body: string[] = [];
      encValue(g, t.elem, { v: `${js(off)} + ${i} * ${es}`, k: 0 }, elemPath, e, body);
      out.push(
        `if (!Array.isArray(${x}) || ${x}.length > ${n}) throw new TypeError(${where} + ${lit(`: expected ${typed ? "a Uint16Array or an array" : "an array"} of at most ${n} elements`)});`,
        `for (let ${i} = 0; ${i} < ${x}.length; ${i}++) {`,
        `const ${e} = ${x}[${i}];`,
        ...body,
        "}",
      );
      if (typed) out.push("}");
      if (isFlex) out.push(`{ const r = ${js(off)} - off0 + ${x}.length * ${es}; if (r > end) end = r; }`);
      return;
    }
    case "struct": {
      out.push(`if (${x} === null || typeof ${x} !== "object") throw new TypeError(${orName(path, t.name)} + ": expected an object");`);
      for (const f of t.fields) {
        const foff = plus(off, f.offset);
        const block: string[] = [];
        if (f.name === undefined) encValue(g, f.type, foff, path, x, block);
        else {
          const p = childPath(path, f.name);
          const y = g.fresh("y");
          block.push(`const ${y} = ${x}[${lit(f.name)}];`, `if (${y} === undefined) throw new TypeError(${p.e} + ": missing");`);
          encValue(g, f.type, foff, p, y, block);
        }
        out.push("{", ...block, "}");
      }
      return;
    }
    case "union": {
      const c = g.fresh("c");
      const name = orName(path, t.name);
      out.push(`if (${x} === null || typeof ${x} !== "object") throw new TypeError(${name} + ": expected an object");`, `let ${c} = -1;`);
      t.members.forEach((m, i) => {
        const names =
          m.name !== undefined ? [m.name] : (m.type.kind === "union" ? m.type.members : (m.type as StructType).fields).flatMap((k) => (k.name === undefined ? [] : [k.name]));
        const has = names.map((k) => `${x}[${lit(k)}] !== undefined`).join(" || ") || "false";
        out.push(`if (${has}) { if (${c} >= 0) throw new TypeError(${name} + ${lit(`: give exactly one member of union ${t.name}`)}); ${c} = ${i}; }`);
      });
      out.push(`switch (${c}) {`);
      t.members.forEach((m, i) => {
        const block: string[] = [];
        if (m.name === undefined) encValue(g, m.type, off, path, x, block);
        else {
          const y = g.fresh("y");
          block.push(`const ${y} = ${x}[${lit(m.name)}];`);
          encValue(g, m.type, off, childPath(path, m.name), y, block);
        }
        // Outlined unless the member uses loop variables (inside an array) or a flexible tail's `end`.
        const local = (off.v === "off0" || off.v === "") && path.s !== undefined && !block.some((l) => /\bend\b/.test(l));
        out.push(`case ${i}: {`, ...(local ? [g.outline("em", ["dv", "u8", "off0", x], block) + ";"] : block), "break;", "}");
      });
      out.push("}");
      return;
    }
  }
}

function compile(type: StructType | UnionType): { dec: DecFn; decView: DecFn; enc: EncFn } {
  const gd = new Gen();
  const dbody: string[] = [];
  const root = decValue(gd, type, { v: "", k: 0 }, "", undefined, dbody);
  const decSrc = `"use strict";\n${gd.fns.join("\n")}\nreturn function decode_${type.name.replace(/\W/g, "_")}(dv, u8, end) {\n${dbody.join("\n")}\nreturn ${root};\n};`;
  const ge = new Gen();
  const ebody: string[] = [];
  encValue(ge, type, { v: "off0", k: 0 }, staticPath(""), "v", ebody);
  const encSrc = `"use strict";\n${ge.fns.join("\n")}\nreturn function encode_${type.name.replace(/\W/g, "_")}(dv, u8, off0, v) {\nlet end = ${type.size};\n${ebody.join("\n")}\nreturn end;\n};`;
  const dec = new Function("ext", "Fail", "copyBytes", "copyU16", decSrc)(gd.ext, Fail, copyBytes, copyU16) as DecFn;
  // The same decoder with views in place of copies (DecodeOptions.view).
  const decView = new Function("ext", "Fail", "copyBytes", "copyU16", decSrc)(gd.ext, Fail, viewBytes, viewU16) as DecFn;
  const enc = new Function("ext", "putU16", encSrc)(ge.ext, putU16) as EncFn;
  return { dec, decView, enc };
}

export interface Codec<T> {
  readonly type: StructType | UnionType;
  readonly name: string;
  readonly size: number;
  readonly align: number;
  /** Every member by dotted C path with its offset and size. */
  readonly fields: readonly FlatField[];
  /** Offset of a member by its dotted C path; throws for an unknown path (a programming error). */
  offsetOf(path: string): number;
  /** Decodes one message from the start of `bytes`. Never throws. */
  decode(bytes: Uint8Array, opts?: DecodeOptions): DecodeResult<T>;
  /** Encodes `value` into a new zero-filled buffer of the message's size. */
  encode(value: T): Uint8Array;
  /**
   * encode(value) into one of two buffers the codec keeps (`slot` 0 or 1): the same bytes, the same
   * errors, no allocation; the result is overwritten by the next call with the same slot.
   */
  encodeReused(value: T, slot: 0 | 1): Uint8Array;
  /** Encodes into `buf` at `offset`; returns the number of bytes the message occupies. */
  encodeInto(buf: Uint8Array, offset: number, value: T): number;
}

function hasFlex(t: StructType | UnionType): boolean {
  return t.kind === "struct" && t.fields.some((f) => f.type.kind === "flex");
}

const isLeaf = (f: FlatField) => f.type.kind !== "struct" && f.type.kind !== "union";

/** Whether a decoded value has the member at a path (split at dots; anonymous members sit in their parent). */
function present(v: unknown, path: readonly string[]): boolean {
  let x: unknown = v;
  for (const k of path) {
    if (x === null || typeof x !== "object" || !(k in x)) return false;
    x = (x as Rec)[k];
  }
  return true;
}

export function codec<T extends StructType<any> | UnionType<any>, V = ValueOf<T>>(type: T): Codec<V> {
  const { dec, decView, enc } = compile(type);
  const flat = flatten(type);
  const offsets = new Map(flat.map((f) => [f.path, f.offset]));
  const size = type.size;
  const flexible = hasFlex(type);
  /** The members shortAt may name, in declaration order, with their split paths. */
  const leaves = flat.filter((x) => x.size > 0 && isLeaf(x)).map((f) => ({ f, parts: f.path.split(".") }));
  /** Where shortAt pads a short input (zeroed before each use). */
  let padded: Uint8Array | undefined;
  const reused: [Uint8Array, Uint8Array] = [new Uint8Array(0), new Uint8Array(0)];

  /**
   * The error for input shorter than the struct: names the first member past the end among those
   * the message actually has (its unions chosen from the bytes that are there), else the first.
   */
  function shortAt(bytes: Uint8Array): DecodeError {
    const len = bytes.length;
    const reason = `input is ${len} bytes, ${type.name} needs ${size}`;
    const crossing = leaves.filter((x) => x.f.offset + x.f.size > len);
    let f = crossing[0]?.f;
    try {
      // Decoded as views of the padded copy: only which members exist is looked at.
      const pad = (padded ??= new Uint8Array(size));
      pad.fill(0, len);
      pad.set(bytes);
      const out = decView(new DataView(pad.buffer), pad, { n: size });
      if (out instanceof Fail) throw out;
      f = crossing.find((x) => present(out, x.parts))?.f ?? f;
    } catch {
      // keep the first crossing member
    }
    return { struct: type.name, field: f?.path ?? "", offset: f?.offset ?? len, reason };
  }

  return {
    type,
    name: type.name,
    size,
    align: type.align,
    fields: flat,
    offsetOf(path: string): number {
      const o = offsets.get(path);
      if (o === undefined) throw new RangeError(`${type.name} has no member ${path}`);
      return o;
    },
    decode(bytes: Uint8Array, opts?: DecodeOptions): DecodeResult<V> {
      if (!(bytes instanceof Uint8Array)) return { ok: false, error: { struct: type.name, field: "", offset: 0, reason: "input is not bytes" } };
      if (bytes.length < size) return { ok: false, error: shortAt(bytes) };
      try {
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const end = { n: size };
        const out = opts?.view ? decView(dv, bytes, end) : dec(dv, bytes, end);
        if (out instanceof Fail) return { ok: false, error: { struct: type.name, field: out.field, offset: out.offset, reason: out.reason } };
        if (opts?.exact && bytes.length !== end.n) {
          return { ok: false, error: { struct: type.name, field: "", offset: end.n, reason: `${bytes.length - end.n} trailing bytes after the ${end.n}-byte message` } };
        }
        return { ok: true, value: out as V, size: end.n };
      } catch (e) {
        if (e instanceof Fail) return { ok: false, error: { struct: type.name, field: e.field, offset: e.offset, reason: e.reason } };
        return { ok: false, error: { struct: type.name, field: "", offset: 0, reason: `internal decoder error: ${(e as Error)?.message ?? String(e)}` } };
      }
    },
    encode(value: V): Uint8Array {
      const need = flexible ? size + flexBytes(type as StructType, value) : size;
      const buf = alloc(need);
      // A view of exactly this message: a write past it throws instead of touching the slab.
      const n = enc(new DataView(buf.buffer, buf.byteOffset, need), buf, 0, value);
      return n === need ? buf : buf.subarray(0, n);
    },
    encodeReused(value: V, slot: 0 | 1): Uint8Array {
      const need = flexible ? size + flexBytes(type as StructType, value) : size;
      if (reused[slot].length < need) reused[slot] = new Uint8Array(Math.max(need, 2 * reused[slot].length));
      const buf = reused[slot].subarray(0, need);
      buf.fill(0);
      const n = enc(new DataView(buf.buffer, buf.byteOffset, need), buf, 0, value);
      return n === need ? buf : buf.subarray(0, n);
    },
    encodeInto(buf: Uint8Array, offset: number, value: V): number {
      const need = size + (flexible ? flexBytes(type as StructType, value) : 0);
      if (offset < 0 || offset + need > buf.length) throw new RangeError(`${type.name} needs ${need} bytes at offset ${offset}, buffer has ${buf.length}`);
      buf.fill(0, offset, offset + need);
      return enc(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), buf, offset, value);
    },
  };
}

function flexBytes(t: StructType, v: unknown): number {
  const f = t.fields[t.fields.length - 1]!;
  if (f.type.kind !== "flex" || f.name === undefined || v === null || typeof v !== "object") return 0;
  const arr = (v as Rec)[f.name] as { length?: unknown } | undefined;
  return typeof arr?.length === "number" ? arr.length * f.type.elem.size : 0;
}
