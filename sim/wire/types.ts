// One declaration per C struct. A declaration is data (primitives, arrays, nested structs and
// unions, packed or natural alignment); layout (size, align, offsets) is computed here the way gcc
// does it on x86-64, and the codec in codec.ts is compiled from the same declaration.

export type PrimName = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "u64" | "i64" | "char";

export interface PrimType<V = number | bigint, N extends PrimName = PrimName> {
  readonly kind: "prim";
  readonly name: N;
  readonly size: number;
  readonly align: number;
  /** Phantom: the decoded value type. */
  readonly _v?: V;
}

export interface ArrayType<E extends WireType = WireType> {
  readonly kind: "array";
  readonly elem: E;
  readonly length: number;
  readonly size: number;
  readonly align: number;
}

/**
 * A trailing flexible array member (`T name[]`). It adds nothing to sizeof; its element count comes
 * from fields decoded before it and is bounded by `max` before anything is allocated.
 */
export interface FlexType<E extends WireType = WireType> {
  readonly kind: "flex";
  readonly elem: E;
  readonly count: (prefix: Record<string, unknown>) => number;
  readonly max: number;
  readonly countText: string;
  readonly size: 0;
  readonly align: number;
}

export interface Field<N extends string | undefined = string | undefined, T extends WireType = WireType> {
  /** Member name; undefined for an anonymous union or struct, whose members C reaches directly. */
  readonly name: N;
  readonly type: T;
  /** Optional check of a decoded value: returns the reason it is invalid, or undefined. */
  readonly check?: (value: any) => string | undefined;
}

export interface LaidField extends Field {
  readonly offset: number;
}

export interface StructType<F extends readonly Field[] = readonly Field[]> {
  readonly kind: "struct";
  /** C name, e.g. "hv_kvp_msg" (without the `struct` keyword). */
  readonly name: string;
  readonly packed: boolean;
  readonly fields: readonly LaidField[];
  readonly size: number;
  readonly align: number;
  /** Phantom: the declared fields, for value types. */
  readonly _f?: F;
}

/**
 * Chooses which member a union is decoded as, from the bytes and from the members of the enclosing
 * struct decoded so far. Without one, the first member is used.
 */
export type UnionSelect = (parent: Record<string, unknown>, bytes: Uint8Array, offset: number) => string;

export interface UnionType<M extends readonly Field[] = readonly Field[]> {
  readonly kind: "union";
  readonly name: string;
  readonly packed: boolean;
  readonly members: readonly LaidField[];
  readonly size: number;
  readonly align: number;
  readonly select?: UnionSelect;
  readonly _m?: M;
}

export type WireType = PrimType | ArrayType | FlexType | StructType<any> | UnionType<any>;

// ---- primitives ----
const prim = <V, N extends PrimName>(name: N, size: number): PrimType<V, N> => Object.freeze({ kind: "prim", name, size, align: size });
export const u8 = prim<number, "u8">("u8", 1);
export const i8 = prim<number, "i8">("i8", 1);
/** C `char`: one byte; arrays of it decode to bytes like u8 arrays. */
export const char = prim<number, "char">("char", 1);
export const u16 = prim<number, "u16">("u16", 2);
export const i16 = prim<number, "i16">("i16", 2);
export const u32 = prim<number, "u32">("u32", 4);
export const i32 = prim<number, "i32">("i32", 4);
export const u64 = prim<bigint, "u64">("u64", 8);
export const i64 = prim<bigint, "i64">("i64", 8);

export function array<E extends WireType>(elem: E, length: number): ArrayType<E> {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`array length must be a whole number, got ${length}`);
  if (elem.kind === "flex") throw new TypeError("an array of flexible arrays is not a C type");
  return Object.freeze({ kind: "array", elem, length, size: elem.size * length, align: elem.align });
}

export function flex<E extends WireType>(
  elem: E,
  count: (prefix: Record<string, any>) => number,
  opts: { max: number; countText: string },
): FlexType<E> {
  return Object.freeze({ kind: "flex", elem, count, max: opts.max, countText: opts.countText, size: 0, align: elem.align });
}

export function field<N extends string, T extends WireType>(name: N, type: T, check?: (value: any) => string | undefined): Field<N, T> {
  return check ? { name, type, check } : { name, type };
}

/** An anonymous union (or struct) member: C code names its members directly. */
export function anon<T extends UnionType<any> | StructType<any>>(type: T): Field<undefined, T> {
  return { name: undefined, type };
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

export interface AggregateOptions {
  packed?: boolean;
}

export function struct<const F extends readonly Field[]>(name: string, fields: F, opts: AggregateOptions = {}): StructType<F> {
  const packed = opts.packed ?? false;
  let off = 0;
  let align = 1;
  const laid: LaidField[] = [];
  fields.forEach((f, i) => {
    if (f.type.kind === "flex" && i !== fields.length - 1) throw new TypeError(`${name}.${f.name}: a flexible array must be the last member`);
    const a = packed ? 1 : f.type.align;
    off = alignUp(off, a);
    laid.push(Object.freeze({ ...f, offset: off }));
    off += f.type.size;
    align = Math.max(align, a);
  });
  checkNames(name, laid);
  return Object.freeze({ kind: "struct", name, packed, fields: Object.freeze(laid), size: alignUp(off, align), align });
}

export function union<const M extends readonly Field[]>(
  name: string,
  members: M,
  opts: AggregateOptions & { select?: UnionSelect } = {},
): UnionType<M> {
  const packed = opts.packed ?? false;
  let size = 0;
  let align = 1;
  for (const m of members) {
    if (m.type.kind === "flex") throw new TypeError(`${name}.${m.name}: a flexible array cannot be a union member`);
    size = Math.max(size, m.type.size);
    align = Math.max(align, packed ? 1 : m.type.align);
  }
  const laid = members.map((m) => Object.freeze({ ...m, offset: 0 }));
  checkNames(name, laid);
  const u: UnionType<M> = { kind: "union", name, packed, members: Object.freeze(laid), size: alignUp(size, align), align };
  return Object.freeze(opts.select ? { ...u, select: opts.select } : u);
}

/** The names a member contributes to its enclosing scope (anonymous members lend theirs). */
function scopeNames(f: Field): string[] {
  if (f.name !== undefined) return [f.name];
  const t = f.type;
  if (t.kind === "union") return t.members.flatMap(scopeNames);
  if (t.kind === "struct") return t.fields.flatMap(scopeNames);
  throw new TypeError("only unions and structs can be anonymous members");
}

function checkNames(owner: string, fields: readonly Field[]): void {
  const seen = new Set<string>();
  for (const n of fields.flatMap(scopeNames)) {
    if (seen.has(n)) throw new TypeError(`${owner}: duplicate member name ${n}`);
    seen.add(n);
  }
}

// ---- value types, inferred from declarations ----
type ByteElem = PrimType<number, "u8" | "char" | "i8">;

export type ValueOf<T> = T extends PrimType<infer V, PrimName>
  ? V
  : T extends ArrayType<infer E>
    ? E extends ByteElem
      ? Uint8Array
      : E extends PrimType<number, "u16">
        ? Uint16Array
        : ValueOf<E>[]
    : T extends FlexType<infer E>
      ? ValueOf<E>[]
      : T extends StructType<infer F>
        ? StructValue<F>
        : T extends UnionType<infer M>
          ? OneOf<M>
          : never;

type FieldValue<F> = F extends Field<infer N, infer T>
  ? N extends string
    ? { [K in N]: ValueOf<T> }
    : T extends UnionType<infer M>
      ? OneOf<M>
      : T extends StructType<infer G>
        ? StructValue<G>
        : never
  : never;

type Intersect<F> = F extends readonly [infer H, ...infer R] ? FieldValue<H> & Intersect<R> : unknown;

/** A struct's value: one key per named member; an anonymous union adds one of its members' keys. */
export type StructValue<F extends readonly Field[]> = Intersect<F>;

/** Exactly one member of a union: `{ member: value }` (an anonymous union's key sits in its parent). */
export type OneOf<M extends readonly Field[]> = FieldValue<M[number]>;

/** Walks every leaf member: dotted C path, absolute offset, size (for layout listings and the gcc check). */
export interface FlatField {
  readonly path: string;
  readonly offset: number;
  readonly size: number;
  readonly type: WireType;
}

/** Every member of `t` by its C path, nested members too, union members all listed, depth first. */
export function flatten(t: StructType | UnionType, base = 0, prefix = ""): FlatField[] {
  const out: FlatField[] = [];
  const members = t.kind === "struct" ? t.fields : t.members;
  for (const m of members) {
    const off = base + m.offset;
    if (m.name === undefined) {
      out.push(...flatten(m.type as StructType | UnionType, off, prefix));
      continue;
    }
    const path = prefix + m.name;
    out.push({ path, offset: off, size: m.type.size, type: m.type });
    if (m.type.kind === "struct" || m.type.kind === "union") out.push(...flatten(m.type, off, path + "."));
  }
  return out;
}
