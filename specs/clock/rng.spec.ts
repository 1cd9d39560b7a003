// The bench's RNG: xoroshiro128+ as pure-rand seeds it, checked against an independent 64-bit
// (BigInt) implementation of the published algorithm; determinism; state round trips; refusals.
import { describe, expect, it } from "vitest";
import { Rng, checkRngState } from "../../sim/clock/rng.ts";

const MASK64 = (1n << 64n) - 1n;
const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (64n - k))) & MASK64;

/**
 * xoroshiro128+ (Blackman & Vigna, a=24 b=16 c=37), yielding the low 32 bits of s0 + s1. Seeding
 * as pure-rand's xoroshiro128plus(seed): s0 = 0xffffffff:~seed, s1 = seed:0 (high:low words).
 */
function* reference(seed: number): Generator<number> {
  let s0 = (0xffffffffn << 32n) | BigInt(~seed >>> 0);
  let s1 = BigInt(seed >>> 0) << 32n;
  for (;;) {
    const out = Number((s0 + s1) & 0xffffffffn);
    const t = s1 ^ s0;
    s0 = rotl(s0, 24n) ^ t ^ ((t << 16n) & MASK64);
    s1 = rotl(t, 37n);
    yield out;
  }
}

const take = (g: Generator<number>, n: number) => Array.from({ length: n }, () => g.next().value as number);

describe("Rng", () => {
  it.each([0, 1, 42, 0x1234567, 2 ** 31 - 1])("u32 from seed %i is the xoroshiro128+ sequence", (seed) => {
    const r = new Rng(seed);
    const got = Array.from({ length: 2000 }, () => r.u32());
    expect(got).toEqual(take(reference(seed), 2000));
    for (const x of got) expect(x >= 0 && x < 2 ** 32 && Number.isInteger(x)).toBe(true);
  });

  it("is deterministic per seed, and different seeds give different streams", () => {
    const a = new Rng(7), b = new Rng(7), c = new Rng(8);
    const sa = Array.from({ length: 50 }, () => [a.u32(), a.int(-5, 5), a.bytes(3)]);
    const sb = Array.from({ length: 50 }, () => [b.u32(), b.int(-5, 5), b.bytes(3)]);
    const sc = Array.from({ length: 50 }, () => [c.u32(), c.int(-5, 5), c.bytes(3)]);
    expect(sb).toEqual(sa);
    expect(sc).not.toEqual(sa);
  });

  it("int(min, max) stays within both inclusive bounds and reaches them", () => {
    const r = new Rng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const x = r.int(-3, 4);
      expect(Number.isInteger(x) && x >= -3 && x <= 4).toBe(true);
      seen.add(x);
    }
    expect([...seen].sort((p, q) => p - q)).toEqual([-3, -2, -1, 0, 1, 2, 3, 4]);
    expect(r.int(9, 9)).toBe(9);
  });

  it("bytes(n) has n bytes, built from whole u32 draws (low byte first)", () => {
    for (let n = 0; n <= 9; n++) {
      const r = new Rng(11), twin = new Rng(11);
      const b = r.bytes(n);
      expect(b).toBeInstanceOf(Uint8Array);
      expect(b.length).toBe(n);
      const words = Array.from({ length: Math.ceil(n / 4) }, () => twin.u32());
      const expected = Array.from({ length: n }, (_, i) => (words[i >> 2]! >>> ((i & 3) * 8)) & 0xff);
      expect([...b]).toEqual(expected);
      // Both consumed the same number of draws.
      expect(r.u32()).toBe(twin.u32());
    }
  });

  it("getState / setState / fromState round-trip, through JSON too", () => {
    const r = new Rng(99);
    for (let i = 0; i < 17; i++) r.u32();
    const state = r.getState();
    expect(state).toHaveLength(4);
    const ahead = Array.from({ length: 20 }, () => r.u32());
    r.setState(state);
    expect(Array.from({ length: 20 }, () => r.u32())).toEqual(ahead);
    const copy = Rng.fromState(JSON.parse(JSON.stringify(state)) as number[]);
    expect(Array.from({ length: 20 }, () => copy.u32())).toEqual(ahead);
    // The returned state is a copy: changing it does not touch the generator.
    const s2 = r.getState() as number[];
    const next = new Rng(0);
    next.setState(s2);
    s2[0] = 5;
    expect(next.u32()).toBe(r.u32());
  });

  it("refuses a bad seed or state with a RangeError and keeps its state", () => {
    expect(() => new Rng(1.5)).toThrow(/seed must be a safe integer, got 1.5/);
    expect(() => new Rng(NaN)).toThrow(RangeError);
    const r = new Rng(5), twin = new Rng(5);
    for (const bad of [[1, 2, 3], [1, 2, 3, 4, 5], [1, 2, 3, 0.5], [1, 2, 3, 2 ** 31], "abcd", null]) {
      expect(() => r.setState(bad as unknown as number[])).toThrow(/invalid RNG state: it /);
    }
    expect(() => Rng.fromState([1, 2])).toThrow(RangeError);
    expect(r.u32()).toBe(twin.u32());
  });

  it("checkRngState names the problem", () => {
    expect(checkRngState([0, -1, 2 ** 31 - 1, -(2 ** 31)])).toBeUndefined();
    expect(checkRngState({})).toBe("is not a list");
    expect(checkRngState([1])).toBe("has 1 numbers, not 4");
    expect(checkRngState([1, 2, "3", 4])).toBe("[2] is not a 32-bit signed integer");
  });
});
