// fast-check arbitraries built from any wire declaration (sim/wire/types.ts), producing values the
// codec can encode and decode back unchanged:
// - a union without a select yields its first member (the one decode picks); a union with a select
//   yields the member the select picks for the members generated before it (struct fields are
//   generated in C order, so the select sees the same "parent so far" decode gives it), checked
//   again against the member's own bytes;
// - a flexible array gets exactly the element count its count function gives for the generated
//   prefix, and values failing a member's `check` or a flex bound are never produced;
// - numbers lean towards small values and boundaries, so opcodes, counts and types that selects
//   and bounds look at come up often; `overrides` pins any member by its dotted path.
// Large arrays are zero, a short random prefix, text, or dense pseudo-random content from one seed.
import { fc } from "@fast-check/vitest";
import type { ArrayType, Field, FlexType, PrimType, StructType, UnionType, WireType } from "../../sim/wire/types.ts";
import { codec } from "../../sim/wire/codec.ts";

type Rec = Record<string, unknown>;

export interface ArbitraryOptions {
  /** Arbitraries for members by dotted C path (as `codec.fields` names them), replacing the generic ones. */
  readonly overrides?: Readonly<Record<string, fc.Arbitrary<unknown>>>;
}

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);

function range(p: PrimType): { lo: bigint; hi: bigint } {
  const bits = BigInt(p.size * 8);
  const signed = p.name.startsWith("i");
  return signed ? { lo: -(1n << (bits - 1n)), hi: (1n << (bits - 1n)) - 1n } : { lo: 0n, hi: (1n << bits) - 1n };
}

export function primArbitrary(p: PrimType): fc.Arbitrary<number | bigint> {
  const { lo, hi } = range(p);
  if (p.size === 8) {
    return fc.oneof(
      { weight: 3, arbitrary: fc.bigInt({ min: lo, max: hi }) },
      { weight: 2, arbitrary: fc.bigInt({ min: lo < 0n ? -16n : 0n, max: 255n }) },
      { weight: 1, arbitrary: fc.constantFrom(lo, hi, 0n, 1n) },
    );
  }
  const l = Number(lo);
  const h = Number(hi);
  return fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: l, max: h }) },
    { weight: 2, arbitrary: fc.integer({ min: Math.max(l, -16), max: Math.min(h, 16) }) },
    { weight: 1, arbitrary: fc.integer({ min: Math.max(l, 0), max: Math.min(h, 255) }) },
    { weight: 1, arbitrary: fc.constantFrom(l, h, 0, 1) },
  );
}

/** xorshift32 from a seed: dense content for big arrays without generating every element. */
function* stream(seed: number): Generator<number> {
  let x = seed | 0 || 0x9e3779b9;
  for (;;) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield x >>> 0;
  }
}

function primFromBits(p: PrimType, next: () => number): number | bigint {
  if (p.size === 8) {
    const v = (BigInt(next()) << 32n) | BigInt(next());
    return p.name === "i64" ? BigInt.asIntN(64, v) : v;
  }
  const bits = p.size * 8;
  const u = bits === 32 ? next() : next() & ((1 << bits) - 1);
  if (!p.name.startsWith("i")) return u;
  return u >= 2 ** (bits - 1) ? u - 2 ** bits : u;
}

const isByteElem = (t: WireType) => t.kind === "prim" && (t.name === "u8" || t.name === "char" || t.name === "i8");

/** Bytes of length n: zeros, a short prefix, NUL-terminated text, or dense content. */
function bytesArbitrary(n: number): fc.Arbitrary<Uint8Array> {
  if (n <= 64) return fc.uint8Array({ minLength: n, maxLength: n });
  const pad = (b: Uint8Array) => {
    const out = new Uint8Array(n);
    out.set(b.subarray(0, n));
    return out;
  };
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(null).map(() => new Uint8Array(n)) },
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 48 }).map(pad) },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map((s) => pad(new TextEncoder().encode(s).subarray(0, n - 1))) },
    {
      weight: 1,
      arbitrary: fc.integer().map((seed) => {
        const g = stream(seed);
        return Uint8Array.from({ length: n }, () => g.next().value! & 0xff);
      }),
    },
  );
}

/** Elements of a fixed-length array (not bytes). */
function elementsArbitrary(t: ArrayType, path: string, opts: ArbitraryOptions): fc.Arbitrary<unknown[]> {
  const n = t.length;
  const elem = valueArbitrary(t.elem, `${path}[]`, opts);
  if (n <= 64 || t.elem.kind !== "prim") return fc.array(elem, { minLength: n, maxLength: n });
  const p = t.elem;
  const zero = p.size === 8 ? 0n : 0;
  const fill = (prefix: unknown[]) => Array.from({ length: n }, (_, i) => (i < prefix.length ? prefix[i] : zero));
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(null).map(() => fill([])) },
    { weight: 3, arbitrary: fc.array(elem, { maxLength: 32 }).map(fill) },
    // UTF-16 text (the KVP IP strings are __u16 arrays)
    { weight: p.name === "u16" ? 2 : 0, arbitrary: fc.string({ maxLength: 40 }).map((s) => fill(Array.from(s.slice(0, n - 1), (c) => c.charCodeAt(0)))) },
    {
      weight: 1,
      arbitrary: fc.integer().map((seed) => {
        const g = stream(seed);
        const next = () => g.next().value!;
        return Array.from({ length: n }, () => primFromBits(p, next));
      }),
    },
  );
}

function valueArbitrary(t: WireType, path: string, opts: ArbitraryOptions): fc.Arbitrary<unknown> {
  const o = opts.overrides?.[path];
  if (o) return o;
  switch (t.kind) {
    case "prim":
      return primArbitrary(t);
    case "array":
      if (isByteElem(t.elem)) return bytesArbitrary(t.length);
      // __u16 arrays decode to Uint16Array (sim/wire/codec.ts): generate them as such.
      if (t.elem.kind === "prim" && t.elem.name === "u16") return elementsArbitrary(t, path, opts).map((a) => Uint16Array.from(a as number[]));
      return elementsArbitrary(t, path, opts);
    case "flex":
      throw new TypeError(`${path}: a flexible array is generated by its struct`);
    case "struct":
      return membersArbitrary(t.fields, path, opts, fc.constant({}));
    case "union":
      // A union on its own (no enclosing struct): its select sees an empty parent.
      return unionMemberArbitrary(t, path, opts, {});
  }
}

/** The member a union decodes as, given the parent so far and the member's own bytes. */
function selected(u: UnionType, parent: Rec, bytes: Uint8Array): string | undefined {
  const first = u.members[0];
  if (!u.select) return first?.name ?? firstName(first);
  return u.select(parent, bytes, 0);
}

function firstName(f: Field | undefined): string | undefined {
  if (!f) return undefined;
  if (f.name !== undefined) return f.name;
  const t = f.type as StructType | UnionType;
  return firstName(t.kind === "struct" ? t.fields[0] : t.members[0]);
}

const unionCodecs = new WeakMap<UnionType, ReturnType<typeof codec>>();
function unionCodec(u: UnionType) {
  let c = unionCodecs.get(u);
  if (!c) unionCodecs.set(u, (c = codec(u)));
  return c;
}

/**
 * One member of `u`, as the record it contributes ({ member: value }), chosen as decode would
 * choose it after `parent`: first by the select on a zero-filled union, then confirmed on the
 * member's actual bytes.
 */
function unionMemberArbitrary(u: UnionType, path: string, opts: ArbitraryOptions, parent: Rec): fc.Arbitrary<Rec> {
  const which = selected(u, parent, new Uint8Array(u.size));
  const m = u.members.find((x) => (x.name ?? firstName(x)) === which);
  if (!m) throw new TypeError(`${path || u.name}: select chose ${String(which)}, not a member of ${u.name}`);
  let arb: fc.Arbitrary<Rec>;
  if (m.name === undefined) {
    // An anonymous member of the union: its own names sit in the union's scope.
    const inner = m.type as StructType | UnionType;
    arb = inner.kind === "struct" ? membersArbitrary(inner.fields, path, opts, fc.constant({})) : unionMemberArbitrary(inner, path, opts, parent);
  } else {
    const name = m.name;
    arb = withCheck(m, valueArbitrary(m.type, join(path, name), opts)).map((v) => ({ [name]: v }));
  }
  if (!u.select) return arb;
  return arb.filter((rec) => {
    try {
      return selected(u, parent, unionCodec(u).encode(rec)) === which;
    } catch {
      return false;
    }
  });
}

function withCheck(f: Field, arb: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const check = f.check;
  return check ? arb.filter((v) => check(v) === undefined) : arb;
}

/**
 * The members of a struct (or an anonymous aggregate lending its names), generated in order on
 * top of `start`: independent members together, and a chain wherever a member depends on what
 * came before (a union with a select, a flexible array).
 */
function membersArbitrary(fields: readonly Field[], path: string, opts: ArbitraryOptions, start: fc.Arbitrary<Rec>): fc.Arbitrary<Rec> {
  let acc = start;
  let pending: Record<string, fc.Arbitrary<unknown>> = {};
  const flush = () => {
    if (Object.keys(pending).length === 0) return;
    const rec = fc.record(pending);
    acc = fc.tuple(acc, rec).map(([a, b]) => ({ ...a, ...b }));
    pending = {};
  };
  for (const f of fields) {
    const t = f.type;
    const p = f.name === undefined ? path : join(path, f.name);
    if (f.name !== undefined && opts.overrides?.[p]) {
      pending[f.name] = opts.overrides[p]!;
      continue;
    }
    if (t.kind === "flex") {
      flush();
      const name = f.name!;
      const ft: FlexType = t;
      const elem = valueArbitrary(ft.elem, `${p}[]`, opts);
      acc = acc.chain((prefix) => {
        const count = ft.count(prefix);
        if (!Number.isSafeInteger(count) || count < 0 || count > ft.max) return fc.constant(undefined);
        const arr = isByteElem(ft.elem) ? fc.uint8Array({ minLength: count, maxLength: count }) : fc.array(elem, { minLength: count, maxLength: count });
        return arr.map((v) => ({ ...prefix, [name]: v }));
      }).filter((x): x is Rec => x !== undefined);
      continue;
    }
    if (t.kind === "union" && (t.select || f.name === undefined)) {
      // Depends on the members before it (select), or lends its member's name to this scope.
      flush();
      const u: UnionType = t;
      const name = f.name;
      acc = acc.chain((prefix) =>
        unionMemberArbitrary(u, p, opts, prefix).map((member) => (name === undefined ? { ...prefix, ...member } : { ...prefix, [name]: member })),
      );
      continue;
    }
    if (f.name === undefined) {
      // An anonymous struct: its members join this scope.
      flush();
      acc = membersArbitrary((t as StructType).fields, path, opts, acc);
      continue;
    }
    pending[f.name] = withCheck(f, valueArbitrary(t, p, opts));
  }
  flush();
  return acc;
}

/** Values of a declared struct (or union) that encode and decode back unchanged. */
export function arbitraryOf<V = Rec>(type: StructType | UnionType, opts: ArbitraryOptions = {}): fc.Arbitrary<V> {
  return valueArbitrary(type, "", opts) as fc.Arbitrary<V>;
}
