// Encoders and decoders compiled once from a declaration (types.ts). Little-endian throughout.
// decode() never throws: short input, a count past its bound or a failed member check comes back
// as a DecodeError naming the member and the reason, and lengths are checked before allocation.
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
}

export function formatDecodeError(e: DecodeError): string {
  return `${e.struct}${e.field ? "." + e.field : ""} at offset ${e.offset}: ${e.reason}`;
}

class Fail {
  constructor(readonly field: string, readonly offset: number, readonly reason: string) {}
}

type Dec = (dv: DataView, u8: Uint8Array, off: number, path: string, end: { n: number }) => unknown;
type DecInto = (dv: DataView, u8: Uint8Array, off: number, path: string, end: { n: number }, into: Record<string, unknown>) => void;
type Enc = (dv: DataView, u8: Uint8Array, off: number, v: any, path: string) => number;

function isByteElem(t: WireType): boolean {
  return t.kind === "prim" && (t.name === "u8" || t.name === "char" || t.name === "i8");
}

function compileDec(t: WireType): Dec {
  switch (t.kind) {
    case "prim":
      switch (t.name) {
        case "u8":
        case "char":
          return (_dv, u8, off) => u8[off];
        case "i8":
          return (dv, _u8, off) => dv.getInt8(off);
        case "u16":
          return (dv, _u8, off) => dv.getUint16(off, true);
        case "i16":
          return (dv, _u8, off) => dv.getInt16(off, true);
        case "u32":
          return (dv, _u8, off) => dv.getUint32(off, true);
        case "i32":
          return (dv, _u8, off) => dv.getInt32(off, true);
        case "u64":
          return (dv, _u8, off) => dv.getBigUint64(off, true);
        case "i64":
          return (dv, _u8, off) => dv.getBigInt64(off, true);
      }
      break;
    case "array": {
      const n = t.length;
      if (isByteElem(t.elem)) return (_dv, u8, off) => u8.slice(off, off + n);
      const ed = compileDec(t.elem);
      const es = t.elem.size;
      return (dv, u8, off, path, end) => {
        const out = new Array<unknown>(n);
        for (let i = 0; i < n; i++) out[i] = ed(dv, u8, off + i * es, path, end);
        return out;
      };
    }
    case "flex":
      throw new TypeError("a flexible array is decoded by its struct");
    case "struct": {
      const into = compileStructInto(t);
      return (dv, u8, off, path, end) => {
        const o: Record<string, unknown> = {};
        into(dv, u8, off, path, end, o);
        return o;
      };
    }
    case "union": {
      const into = compileUnionInto(t);
      return (dv, u8, off, path, end) => {
        const o: Record<string, unknown> = {};
        into(dv, u8, off, path, end, o);
        return o;
      };
    }
  }
  throw new TypeError("unknown wire type");
}

function compileStructInto(t: StructType): DecInto {
  const steps: DecInto[] = t.fields.map((f) => {
    const foff = f.offset;
    if (f.name === undefined) {
      const inner = f.type.kind === "union" ? compileUnionInto(f.type) : compileStructInto(f.type as StructType);
      return (dv, u8, off, path, end, into) => inner(dv, u8, off + foff, path, end, into);
    }
    const name = f.name;
    const check = f.check;
    if (f.type.kind === "flex") {
      const ft = f.type;
      const es = ft.elem.size;
      const byteElem = isByteElem(ft.elem);
      const ed = byteElem ? undefined : compileDec(ft.elem);
      return (dv, u8, off, path, end, into) => {
        const at = off + foff;
        const p = path + name;
        const count = ft.count(into);
        if (!Number.isSafeInteger(count) || count < 0) throw new Fail(p, at, `element count ${ft.countText} = ${count} is not a valid count`);
        if (count > ft.max) throw new Fail(p, at, `element count ${ft.countText} = ${count} exceeds the limit ${ft.max}`);
        const need = at + count * es;
        if (need > u8.length) throw new Fail(p, at, `${count} elements of ${es} bytes need ${need} bytes, input has ${u8.length}`);
        let v: unknown;
        if (byteElem) v = u8.slice(at, need);
        else {
          const arr = new Array<unknown>(count);
          for (let i = 0; i < count; i++) arr[i] = ed!(dv, u8, at + i * es, p + ".", end);
          v = arr;
        }
        if (need > end.n) end.n = need;
        into[name] = v;
      };
    }
    const d = compileDec(f.type);
    const nested = f.type.kind === "struct" || f.type.kind === "union";
    return (dv, u8, off, path, end, into) => {
      const v = d(dv, u8, off + foff, nested ? path + name + "." : path, end);
      if (check) {
        const why = check(v);
        if (why !== undefined) throw new Fail(path + name, off + foff, why);
      }
      into[name] = v;
    };
  });
  const n = steps.length;
  return (dv, u8, off, path, end, into) => {
    for (let i = 0; i < n; i++) steps[i]!(dv, u8, off, path, end, into);
  };
}

function compileUnionInto(t: UnionType): DecInto {
  const byName = new Map<string, DecInto>();
  for (const m of t.members) {
    if (m.name === undefined) {
      const inner = m.type.kind === "union" ? compileUnionInto(m.type) : compileStructInto(m.type as StructType);
      // An anonymous member of a union is chosen by the first of its own names.
      const first = (m.type.kind === "union" ? m.type.members : (m.type as StructType).fields)[0];
      byName.set(first?.name ?? "", inner);
      continue;
    }
    const name = m.name;
    const d = compileDec(m.type);
    const nested = m.type.kind === "struct" || m.type.kind === "union";
    const check = m.check;
    byName.set(name, (dv, u8, off, path, end, into) => {
      const v = d(dv, u8, off, nested ? path + name + "." : path, end);
      if (check) {
        const why = check(v);
        if (why !== undefined) throw new Fail(path + name, off, why);
      }
      into[name] = v;
    });
  }
  const first = t.members[0]?.name ?? "";
  const select = t.select;
  return (dv, u8, off, path, end, into) => {
    const which = select ? select(into, u8, off) : first;
    const d = byName.get(which);
    if (!d) throw new Fail(path, off, `union ${t.name} has no member ${which}`);
    d(dv, u8, off, path, end, into);
  };
}

function compileEnc(t: WireType): Enc {
  switch (t.kind) {
    case "prim": {
      const name = t.name;
      const size = t.size;
      const bits = size * 8;
      const signed = name[0] === "i";
      const lo = signed ? -(2 ** (bits - 1)) : 0;
      const hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
      if (size === 8) {
        const blo = signed ? -(1n << 63n) : 0n;
        const bhi = signed ? (1n << 63n) - 1n : (1n << 64n) - 1n;
        return (dv, _u8, off, v, path) => {
          if (typeof v !== "bigint" || v < blo || v > bhi) throw new TypeError(`${path}: expected a ${name} bigint, got ${String(v)}`);
          if (signed) dv.setBigInt64(off, v, true);
          else dv.setBigUint64(off, v, true);
          return 8;
        };
      }
      return (dv, _u8, off, v, path) => {
        if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) throw new TypeError(`${path}: expected a ${name}, got ${String(v)}`);
        if (size === 1) dv.setUint8(off, v & 0xff);
        else if (size === 2) dv.setUint16(off, v & 0xffff, true);
        else dv.setUint32(off, v >>> 0, true);
        return size;
      };
    }
    case "array":
    case "flex": {
      const isFlex = t.kind === "flex";
      const n = t.kind === "array" ? t.length : Infinity;
      const es = t.elem.size;
      if (isByteElem(t.elem)) {
        return (_dv, u8, off, v, path) => {
          if (!(v instanceof Uint8Array) || v.length > n) throw new TypeError(`${path}: expected at most ${n} bytes`);
          u8.set(v, off);
          return isFlex ? v.length : n;
        };
      }
      const ee = compileEnc(t.elem);
      return (dv, u8, off, v, path) => {
        if (!Array.isArray(v) || v.length > n) throw new TypeError(`${path}: expected an array of at most ${n} elements`);
        for (let i = 0; i < v.length; i++) ee(dv, u8, off + i * es, v[i], `${path}[${i}]`);
        return isFlex ? v.length * es : n * es;
      };
    }
    case "struct": {
      const steps = t.fields.map((f) => {
        const foff = f.offset;
        if (f.name === undefined) {
          const inner = compileEnc(f.type);
          return (dv: DataView, u8: Uint8Array, off: number, v: any, path: string) => foff + inner(dv, u8, off + foff, v, path);
        }
        const name = f.name;
        const e = compileEnc(f.type);
        return (dv: DataView, u8: Uint8Array, off: number, v: any, path: string) => {
          const x = v[name];
          if (x === undefined) throw new TypeError(`${path}${path ? "." : ""}${name}: missing`);
          return foff + e(dv, u8, off + foff, x, path ? `${path}.${name}` : name);
        };
      });
      const size = t.size;
      return (dv, u8, off, v, path) => {
        if (v === null || typeof v !== "object") throw new TypeError(`${path || t.name}: expected an object`);
        let end = size;
        for (const s of steps) end = Math.max(end, s(dv, u8, off, v, path));
        return end;
      };
    }
    case "union": {
      const members = t.members.map((m) => {
        const e = compileEnc(m.type);
        if (m.name === undefined) {
          const names = (m.type.kind === "union" ? m.type.members : (m.type as StructType).fields).map((x) => x.name);
          return { has: (v: any) => names.some((k) => k !== undefined && v[k] !== undefined), enc: (dv: DataView, u8: Uint8Array, off: number, v: any, path: string) => e(dv, u8, off, v, path) };
        }
        const name = m.name;
        return {
          has: (v: any) => v[name] !== undefined,
          enc: (dv: DataView, u8: Uint8Array, off: number, v: any, path: string) => e(dv, u8, off, v[name], path ? `${path}.${name}` : name),
        };
      });
      const size = t.size;
      return (dv, u8, off, v, path) => {
        if (v === null || typeof v !== "object") throw new TypeError(`${path || t.name}: expected an object`);
        let chosen = -1;
        for (let i = 0; i < members.length; i++) {
          if (members[i]!.has(v)) {
            if (chosen >= 0) throw new TypeError(`${path || t.name}: give exactly one member of union ${t.name}`);
            chosen = i;
          }
        }
        if (chosen < 0) return size; // no member: all zero
        return Math.max(size, members[chosen]!.enc(dv, u8, off, v, path));
      };
    }
  }
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
  /** Encodes into `buf` at `offset`; returns the number of bytes the message occupies. */
  encodeInto(buf: Uint8Array, offset: number, value: T): number;
}

function hasFlex(t: StructType | UnionType): boolean {
  return t.kind === "struct" && t.fields.some((f) => f.type.kind === "flex");
}

export function codec<T extends StructType<any> | UnionType<any>, V = ValueOf<T>>(type: T): Codec<V> {
  const decInto = type.kind === "struct" ? compileStructInto(type) : compileUnionInto(type);
  const enc = compileEnc(type);
  const flat = flatten(type);
  const offsets = new Map(flat.map((f) => [f.path, f.offset]));
  const size = type.size;
  const flexible = hasFlex(type);

  function shortAt(len: number): DecodeError {
    const f = flat.find((x) => x.size > 0 && x.offset + x.size > len && x.type.kind !== "struct" && x.type.kind !== "union");
    return {
      struct: type.name,
      field: f?.path ?? "",
      offset: f?.offset ?? len,
      reason: `input is ${len} bytes, ${type.name} needs ${size}`,
    };
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
      if (bytes.length < size) return { ok: false, error: shortAt(bytes.length) };
      try {
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const end = { n: size };
        const out: Record<string, unknown> = {};
        decInto(dv, bytes, 0, "", end, out);
        if (opts?.exact && bytes.length !== end.n) {
          return { ok: false, error: { struct: type.name, field: "", offset: end.n, reason: `${bytes.length - end.n} trailing bytes after the ${end.n}-byte message` } };
        }
        return { ok: true, value: out as V, size: end.n };
      } catch (e) {
        if (e instanceof Fail) return { ok: false, error: { struct: type.name, field: e.field, offset: e.offset, reason: e.reason } };
        return { ok: false, error: { struct: type.name, field: "", offset: 0, reason: `internal decoder error: ${(e as Error).message}` } };
      }
    },
    encode(value: V): Uint8Array {
      if (!flexible) {
        const buf = new Uint8Array(size);
        enc(new DataView(buf.buffer), buf, 0, value, "");
        return buf;
      }
      // Flexible arrays: encode into a buffer sized by a first pass.
      const scratch = new Uint8Array(size + flexBytes(type as StructType, value as Record<string, unknown>));
      const n = enc(new DataView(scratch.buffer), scratch, 0, value, "");
      return scratch.subarray(0, n);
    },
    encodeInto(buf: Uint8Array, offset: number, value: V): number {
      const need = size + (flexible ? flexBytes(type as StructType, value as Record<string, unknown>) : 0);
      if (offset < 0 || offset + need > buf.length) throw new RangeError(`${type.name} needs ${need} bytes at offset ${offset}, buffer has ${buf.length}`);
      buf.fill(0, offset, offset + need);
      return enc(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), buf, offset, value, "");
    },
  };
}

function flexBytes(t: StructType, v: Record<string, unknown>): number {
  const f = t.fields[t.fields.length - 1]!;
  if (f.type.kind !== "flex" || f.name === undefined) return 0;
  const arr = v[f.name] as { length: number } | undefined;
  return (arr?.length ?? 0) * f.type.elem.size;
}
