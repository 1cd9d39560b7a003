// Mutations that break messages where parsers break: lengths that lie, counts past limits,
// truncation, bit flips, boundary values, unterminated strings, UTF-16 that is not UTF-16, and
// plain random bytes. Structure-aware operators use field hints (offset, size, kind) taken from a
// wire declaration, so they hit the size and count fields rather than random bytes only.
import type { Rng } from "../clock/rng.ts";
import type { Codec } from "../wire/codec.ts";
import type { WireType } from "../wire/types.ts";

export interface FieldHint {
  readonly path: string;
  readonly offset: number;
  readonly size: number;
  /** uint: an integer member; bytes: a char/u8 array (text or data); u16s: a u16 array (UTF-16). */
  readonly kind: "uint" | "bytes" | "u16s";
}

function leafKind(t: WireType): FieldHint["kind"] | undefined {
  if (t.kind === "prim") return "uint";
  if (t.kind === "array" && t.elem.kind === "prim") {
    if (t.elem.size === 1) return "bytes";
    if (t.elem.size === 2) return "u16s";
  }
  return undefined;
}

/** Leaf members of a declaration as mutation hints. */
export function hintsFromCodec(c: Codec<unknown>): FieldHint[] {
  const out: FieldHint[] = [];
  for (const f of c.fields) {
    const k = leafKind(f.type);
    if (k && f.size > 0) out.push({ path: f.path, offset: f.offset, size: f.size, kind: k });
  }
  return out;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(0, xs.length - 1)]!;

/**
 * `n` pseudo-random bytes expanded from one draw of `rng` (xorshift32): the bench RNG is called
 * once, not once per 4 bytes, so multi-KiB random inputs cost about a memset.
 */
export function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = rng.u32() | 1;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
    out[i + 1] = x >>> 8;
    out[i + 2] = x >>> 16;
    out[i + 3] = x >>> 24;
  }
  for (; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

const BAD_UNITS = [0xd800, 0xdc00, 0xdbff, 0xfffe, 0x0041];

function writeUint(b: Uint8Array, off: number, size: number, v: bigint): void {
  for (let i = 0; i < size && off + i < b.length; i++) b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/** Boundary values for an integer of `size` bytes in a message of `len` bytes. */
function boundaries(size: number, len: number): bigint[] {
  const bits = BigInt(size * 8);
  const max = (1n << bits) - 1n;
  const vals = [0n, 1n, max, max - 1n, 1n << (bits - 1n), (1n << (bits - 1n)) - 1n, BigInt(len), BigInt(len + 1), 100n, 101n, 254n, 255n, 256n, 512n, 513n, 2048n, 2049n, 4096n];
  return vals.map((v) => v & max);
}

export type MutationName =
  | "bitflip"
  | "byte"
  | "truncate"
  | "extend"
  | "lie-length"
  | "random-uint"
  | "unterminated"
  | "bad-utf16"
  | "splice-random";

interface HintSets {
  readonly uints: readonly FieldHint[];
  readonly texts: readonly FieldHint[];
  readonly wides: readonly FieldHint[];
  readonly cuts: readonly number[];
}

const hintSets = new WeakMap<readonly FieldHint[], HintSets>();

function sets(hints: readonly FieldHint[]): HintSets {
  let h = hintSets.get(hints);
  if (!h) {
    h = {
      uints: hints.filter((x) => x.kind === "uint"),
      texts: hints.filter((x) => x.kind === "bytes"),
      wides: hints.filter((x) => x.kind === "u16s"),
      cuts: [...new Set(hints.flatMap((x) => [x.offset, x.offset + x.size]))].sort((a, b) => a - b),
    };
    hintSets.set(hints, h);
  }
  return h;
}

const BOUNDARY_CACHE = new Map<number, bigint[]>();

/**
 * Applies one mutation to `b` — in place where the length stays, else into a new array — and
 * returns the bytes.
 */
function mutateInPlace(b: Uint8Array, hints: readonly FieldHint[], rng: Rng, maxLen: number): { bytes: Uint8Array; op: MutationName } {
  const hs = sets(hints);
  const inside = (h: FieldHint) => h.offset < b.length;
  const ops: MutationName[] = ["bitflip", "byte", "truncate", "extend", "splice-random"];
  if (hs.uints.length) ops.push("lie-length", "lie-length", "lie-length", "random-uint");
  if (hs.texts.length) ops.push("unterminated");
  if (hs.wides.length) ops.push("bad-utf16");
  const op = pick(rng, ops);
  switch (op) {
    case "bitflip": {
      if (!b.length) return { bytes: b, op };
      const i = rng.int(0, b.length - 1);
      b[i] = b[i]! ^ (1 << rng.int(0, 7));
      return { bytes: b, op };
    }
    case "byte": {
      if (!b.length) return { bytes: b, op };
      b[rng.int(0, b.length - 1)] = pick(rng, [0, 1, 0x7f, 0x80, 0xfe, 0xff]);
      return { bytes: b, op };
    }
    case "truncate": {
      // Cut at a member boundary half of the time: where length checks tend to be off by one.
      const cut = hs.cuts.length && rng.int(0, 1) ? pick(rng, hs.cuts) : -1;
      const at = cut >= 0 && cut < b.length ? cut : rng.int(0, Math.max(0, b.length - 1));
      return { bytes: b.slice(0, at), op };
    }
    case "extend": {
      const n = Math.min(maxLen - b.length, rng.int(1, 64));
      if (n <= 0) return { bytes: b, op };
      const out = new Uint8Array(b.length + n);
      out.set(b);
      out.set(randomBytes(rng, n), b.length);
      return { bytes: out, op };
    }
    case "lie-length":
    case "random-uint": {
      const h = pick(rng, hs.uints);
      if (!inside(h)) return { bytes: b, op };
      let v: bigint;
      if (op === "lie-length") {
        let bs = BOUNDARY_CACHE.get(h.size * 1e9 + b.length);
        if (!bs) BOUNDARY_CACHE.set(h.size * 1e9 + b.length, (bs = boundaries(h.size, b.length)));
        v = pick(rng, bs);
      } else v = BigInt(rng.u32()) & ((1n << BigInt(h.size * 8)) - 1n);
      writeUint(b, h.offset, h.size, v);
      return { bytes: b, op };
    }
    case "unterminated": {
      const h = pick(rng, hs.texts);
      if (inside(h)) b.fill(0x41, h.offset, Math.min(b.length, h.offset + h.size));
      return { bytes: b, op };
    }
    case "bad-utf16": {
      const h = pick(rng, hs.wides);
      if (!inside(h)) return { bytes: b, op };
      const end = Math.min(b.length, h.offset + h.size);
      let x = rng.u32() | 1;
      for (let i = h.offset; i + 1 < end; i += 2) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const unit = BAD_UNITS[(x >>> 0) % BAD_UNITS.length]!;
        b[i] = unit & 0xff;
        b[i + 1] = unit >> 8;
      }
      return { bytes: b, op };
    }
    case "splice-random": {
      if (!b.length) return { bytes: randomBytes(rng, rng.int(1, Math.min(64, maxLen))), op };
      const at = rng.int(0, b.length - 1);
      const n = Math.min(b.length - at, rng.int(1, 32));
      b.set(randomBytes(rng, n), at);
      return { bytes: b, op };
    }
  }
}

/** Applies one mutation; returns the new bytes (the input is not changed). */
export function mutateOnce(input: Uint8Array, hints: readonly FieldHint[], rng: Rng, maxLen: number): { bytes: Uint8Array; op: MutationName } {
  return mutateInPlace(input.slice(), hints, rng, maxLen);
}

/** Applies 1..`max` mutations in a row. */
export function mutate(input: Uint8Array, hints: readonly FieldHint[], rng: Rng, maxLen: number, max = 4): { bytes: Uint8Array; ops: MutationName[] } {
  let bytes: Uint8Array = input.slice();
  const ops: MutationName[] = [];
  const n = rng.int(1, max);
  for (let i = 0; i < n; i++) {
    const r = mutateInPlace(bytes, hints, rng, maxLen);
    bytes = r.bytes;
    ops.push(r.op);
  }
  return { bytes, ops };
}
