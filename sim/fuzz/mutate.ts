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

/**
 * `n` pseudo-random bytes expanded from one draw of `rng` (xorshift32): the bench RNG is called
 * once, not once per 4 bytes, so multi-KiB random inputs cost about a memset.
 */
export function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  randomInto(rng, out, 0, n);
  return out;
}

/** randomBytes(rng, n) written at out[off, off + n) instead of into a new array (same bytes). */
export function randomInto(rng: Rng, out: Uint8Array, off: number, n: number): void {
  let x = rng.u32() | 1;
  let i = off;
  const end = off + n;
  if (n >= 64) {
    // One little-endian 32-bit store per word: the same bytes as the four byte stores below.
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (; i + 4 <= end; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      dv.setInt32(i, x, true);
    }
  }
  for (; i + 4 <= end; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
    out[i + 1] = x >>> 8;
    out[i + 2] = x >>> 16;
    out[i + 3] = x >>> 24;
  }
  for (; i < end; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
}

const BAD_UNITS = [0xd800, 0xdc00, 0xdbff, 0xfffe, 0x0041];
/** BAD_UNITS split into their low and high bytes (a byte table is faster to index than the list). */
const BAD_LO = new Uint8Array(BAD_UNITS.map((u) => u & 0xff));
const BAD_HI = new Uint8Array(BAD_UNITS.map((u) => u >> 8));

/** Writes the `size` low bytes of `v` little-endian at b[off], as far as the input's `len` goes. */
function writeUint(b: Uint8Array, len: number, off: number, size: number, v: bigint): void {
  if (size <= 4) writeUint32(b, len, off, size, Number(v));
  else for (let i = 0; i < size && off + i < len; i++) b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/** writeUint for 0 <= x < 2^32, in number arithmetic. */
function writeUint32(b: Uint8Array, len: number, off: number, size: number, x: number): void {
  for (let i = 0; i < size && off + i < len; i++) b[off + i] = (x >>> (8 * i)) & 0xff;
}

/** How many boundary values there are (see boundary). */
const BOUNDARY_COUNT = 18;
const ROUND_NUMBERS = [100, 101, 254, 255, 256, 512, 513, 2048, 2049, 4096];

/**
 * Boundary value k (0 <= k < BOUNDARY_COUNT) for an integer of `size` bytes in a message of `len`
 * bytes: 0, 1, max, max - 1, the sign bit, the largest positive value, len, len + 1, then round
 * numbers, each cut to `size` bytes. Computed on demand (no table per message length).
 */
function boundary(k: number, size: number, len: number): bigint {
  if (size <= 4) return BigInt(boundary32(k, size, len));
  const bits = BigInt(size * 8);
  const max = (1n << bits) - 1n;
  const half = 1n << (bits - 1n);
  const v = k === 0 ? 0n : k === 1 ? 1n : k === 2 ? max : k === 3 ? max - 1n : k === 4 ? half : k === 5 ? half - 1n : k === 6 ? BigInt(len) : k === 7 ? BigInt(len + 1) : BigInt(ROUND_NUMBERS[k - 8]!);
  return v & max;
}

/** boundary() for size <= 4, in number arithmetic. */
function boundary32(k: number, size: number, len: number): number {
  const m = 2 ** (8 * size);
  const v = k === 0 ? 0 : k === 1 ? 1 : k === 2 ? m - 1 : k === 3 ? m - 2 : k === 4 ? m / 2 : k === 5 ? m / 2 - 1 : k === 6 ? len : k === 7 ? len + 1 : ROUND_NUMBERS[k - 8]!;
  return v % m;
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
  /** The operators that apply (the lie-length weight is 3). */
  readonly ops: readonly MutationName[];
}

const hintSets = new WeakMap<readonly FieldHint[], HintSets>();

function sets(hints: readonly FieldHint[]): HintSets {
  let h = hintSets.get(hints);
  if (!h) {
    const uints = hints.filter((x) => x.kind === "uint");
    const texts = hints.filter((x) => x.kind === "bytes");
    const wides = hints.filter((x) => x.kind === "u16s");
    const ops: MutationName[] = ["bitflip", "byte", "truncate", "extend", "splice-random"];
    if (uints.length) ops.push("lie-length", "lie-length", "lie-length", "random-uint");
    if (texts.length) ops.push("unterminated");
    if (wides.length) ops.push("bad-utf16");
    h = { uints, texts, wides, ops, cuts: [...new Set(hints.flatMap((x) => [x.offset, x.offset + x.size]))].sort((a, b) => a - b) };
    hintSets.set(hints, h);
  }
  return h;
}

const BYTE_VALUES = [0, 1, 0x7f, 0x80, 0xfe, 0xff];

/**
 * Applies one mutation to the first `len` bytes of `b`, in place; returns the new length and
 * stores the operator in `op[0]`. `b` must hold max(len, maxLen, 64) bytes: no operator grows
 * an input past that (extend stops at maxLen, a splice into nothing writes at most 64 bytes).
 * Nothing is allocated, so a mutation of a few bytes of a 7 KiB message costs a few stores.
 */
function mutateIn(b: Uint8Array, len: number, hs: HintSets, rng: Rng, maxLen: number, op: MutationName[]): number {
  const name = hs.ops[rng.int(0, hs.ops.length - 1)]!;
  op[0] = name;
  switch (name) {
    case "bitflip": {
      if (!len) return len;
      const i = rng.int(0, len - 1);
      b[i] = b[i]! ^ (1 << rng.int(0, 7));
      return len;
    }
    case "byte": {
      if (!len) return len;
      const i = rng.int(0, len - 1);
      b[i] = BYTE_VALUES[rng.int(0, BYTE_VALUES.length - 1)]!;
      return len;
    }
    case "truncate": {
      // Cut at a member boundary half of the time: where length checks tend to be off by one.
      const cut = hs.cuts.length && rng.int(0, 1) ? hs.cuts[rng.int(0, hs.cuts.length - 1)]! : -1;
      return cut >= 0 && cut < len ? cut : rng.int(0, Math.max(0, len - 1));
    }
    case "extend": {
      const n = Math.min(maxLen - len, rng.int(1, 64));
      if (n <= 0) return len;
      randomInto(rng, b, len, n);
      return len + n;
    }
    case "lie-length":
    case "random-uint": {
      const h = hs.uints[rng.int(0, hs.uints.length - 1)]!;
      if (h.offset >= len) return len;
      let v: bigint;
      if (name === "lie-length") {
        const k = rng.int(0, BOUNDARY_COUNT - 1);
        if (h.size <= 4) {
          writeUint32(b, len, h.offset, h.size, boundary32(k, h.size, len));
          return len;
        }
        v = boundary(k, h.size, len);
      } else {
        const u = rng.u32();
        if (h.size <= 4) {
          writeUint32(b, len, h.offset, h.size, h.size === 4 ? u : u & (2 ** (8 * h.size) - 1));
          return len;
        }
        v = BigInt(u) & ((1n << BigInt(h.size * 8)) - 1n);
      }
      writeUint(b, len, h.offset, h.size, v);
      return len;
    }
    case "unterminated": {
      const h = hs.texts[rng.int(0, hs.texts.length - 1)]!;
      if (h.offset < len) b.fill(0x41, h.offset, Math.min(len, h.offset + h.size));
      return len;
    }
    case "bad-utf16": {
      const h = hs.wides[rng.int(0, hs.wides.length - 1)]!;
      if (h.offset >= len) return len;
      const end = Math.min(len, h.offset + h.size);
      let x = rng.u32() | 1;
      for (let i = h.offset; i + 1 < end; i += 2) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const k = (x >>> 0) % 5;
        b[i] = BAD_LO[k]!;
        b[i + 1] = BAD_HI[k]!;
      }
      return len;
    }
    case "splice-random": {
      if (!len) {
        const n = rng.int(1, Math.min(64, maxLen));
        randomInto(rng, b, 0, n);
        return n;
      }
      const at = rng.int(0, len - 1);
      const n = Math.min(len - at, rng.int(1, 32));
      randomInto(rng, b, at, n);
      return len;
    }
  }
}

/** The buffer size mutateInto needs for an input of `len` bytes. */
export function mutationRoom(len: number, maxLen: number): number {
  return Math.max(len, maxLen, 64);
}

/**
 * Applies 1..`max` mutations in a row to the first `len` bytes of `b` (which must hold
 * mutationRoom(len, maxLen) bytes), in place; returns the new length. When `ops` is given, the
 * operators applied are appended to it.
 */
export function mutateInto(b: Uint8Array, len: number, hints: readonly FieldHint[], rng: Rng, maxLen: number, max = 4, ops?: MutationName[]): number {
  const hs = sets(hints);
  const op: MutationName[] = ["bitflip"];
  const n = rng.int(1, max);
  for (let i = 0; i < n; i++) {
    len = mutateIn(b, len, hs, rng, maxLen, op);
    ops?.push(op[0]!);
  }
  return len;
}

function room(input: Uint8Array, maxLen: number): Uint8Array {
  const b = new Uint8Array(mutationRoom(input.length, maxLen));
  b.set(input);
  return b;
}

/** Applies one mutation; returns the new bytes (the input is not changed). */
export function mutateOnce(input: Uint8Array, hints: readonly FieldHint[], rng: Rng, maxLen: number): { bytes: Uint8Array; op: MutationName } {
  const b = room(input, maxLen);
  const op: MutationName[] = ["bitflip"];
  const len = mutateIn(b, input.length, sets(hints), rng, maxLen, op);
  return { bytes: b.slice(0, len), op: op[0]! };
}

/** Applies 1..`max` mutations in a row. */
export function mutate(input: Uint8Array, hints: readonly FieldHint[], rng: Rng, maxLen: number, max = 4): { bytes: Uint8Array; ops: MutationName[] } {
  const b = room(input, maxLen);
  const ops: MutationName[] = [];
  const len = mutateInto(b, input.length, hints, rng, maxLen, max, ops);
  return { bytes: b.slice(0, len), ops };
}
