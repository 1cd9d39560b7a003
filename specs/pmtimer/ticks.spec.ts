// The division-free hot paths of ticks.ts (PmTickCache, BhyveTickCache) against the BigInt
// references of specs/pmtimer/reference.ts (written from QEMU's muldiv64 and FreeBSD's nstosbt /
// vpmtmr_handler), at the points where a rounding error would show first: the reads whose exact
// quotient is an integer or within one step of one.
import { describe, expect, it } from "vitest";
import { refNsToSbt, refTicks, REF_FREQ_SBT } from "./reference.ts";
import { BHYVE_X_LIMIT, BhyveTickCache, bhyveTicks, NSTOSBT_DIVISOR, PM_TICKS_PER_NS, PmTickCache, WINDOW_DIV, WINDOW_INV } from "../../sim/devices/pmtimer/ticks.ts";

/** bhyve ticks between two host uptimes, C's truncating int64 division (vpmtmr_handler, unmasked). */
const refBhyveDelta = (now: bigint, base: bigint): bigint => (refNsToSbt(now) - refNsToSbt(base)) / REF_FREQ_SBT;

describe("ticks.ts hot paths: the constants and the exactness proofs of ticks.ts", () => {
  it("the multiplier and the bhyve window divisor are the values the proofs assume", () => {
    expect(PM_TICKS_PER_NS).toBe(3579545 / 1e9);
    expect(PM_TICKS_PER_NS).toBe(0.003579545); // the literal in PmTickCache.ticks
    // freq_sbt (1199, from FREQ2BT/bttosbt in BigInt) times nstosbt's reduced divisor 1953125.
    expect(BigInt(WINDOW_DIV)).toBe(REF_FREQ_SBT * BigInt(NSTOSBT_DIVISOR));
    expect(WINDOW_INV).toBe(1 / WINDOW_DIV);
    expect(WINDOW_INV).toBe(4.27022518765638e-10); // the literal in BhyveTickCache.ticks
    expect(BHYVE_X_LIMIT).toBe(1199 * 1953125 + 2 ** 23 * 1e9);
    expect(BHYVE_X_LIMIT).toBeLessThan(2 ** 53);
  });

  // Both floors are non-decreasing, so agreeing at both sides of every step of the exact quotient
  // means agreeing everywhere in the range (the argument in ticks.ts). Step points in integers.
  it("floor(r * PM_TICKS_PER_NS) = floor(r * 3579545 / 1e9) for every r in [0, 1e9): all 3579545 steps", () => {
    const cache = new PmTickCache();
    let bad = 0;
    for (let k = 1; k <= 3_579_545; k++) {
      let r = Math.ceil((k * 1e9) / 3_579_545);
      // the first r whose exact quotient reaches k (integer products below 2^53 are exact)
      while (r * 3_579_545 < k * 1e9) r++;
      while ((r - 1) * 3_579_545 >= k * 1e9) r--;
      if (Math.floor(r * 0.003579545) !== k || Math.floor((r - 1) * 0.003579545) !== k - 1) bad++;
      // and the cache itself (its literal), in the first and in the last second below 2^53 ns
      for (const s of [0, 9_007_198]) {
        if (s * 1e9 + r > Number.MAX_SAFE_INTEGER) continue;
        if (cache.ticks(s * 1e9 + r) !== s * 3_579_545 + k || cache.ticks(s * 1e9 + r - 1) !== s * 3_579_545 + k - 1) bad++;
      }
    }
    expect(bad).toBe(0);
  });

  it("floor(x * WINDOW_INV) = floor(x / WINDOW_DIV) for every integer x below BHYVE_X_LIMIT: every step", () => {
    const W = WINDOW_DIV;
    const kmax = Math.floor(BHYVE_X_LIMIT / W) + 1;
    let bad = 0;
    for (let k = 1; k <= kmax; k++) {
      const x = k * W;
      if (Math.floor(x * 4.27022518765638e-10) !== k || Math.floor((x - 1) * 4.27022518765638e-10) !== k - 1) bad++;
    }
    expect(kmax).toBeGreaterThan(3_500_000);
    expect(bad).toBe(0);
  });

  it("BhyveTickCache at reads whose numerator is k * W or k * W - 1 (base 0) equals vpmtmr's formula", () => {
    // In second s with base 0 the cached numerator is e + r * 2^23, e = ((s * 2^32) mod 1199) *
    // 1953125 + 1953124 (ticks.ts); solve e + r * 2^23 = t (mod W) for r < 1e9, t = 0 and -1.
    const W = BigInt(WINDOW_DIV), D = BigInt(NSTOSBT_DIVISOR), T23 = 1n << 23n;
    const inv = (a: bigint, m: bigint): bigint => {
      let [x, y, u, v] = [a % m, m, 1n, 0n];
      while (y !== 0n) {
        const q = x / y;
        [x, y, u, v] = [y, x - q * y, v, u - q * v];
      }
      return ((u % m) + m) % m;
    };
    const i23 = inv(T23, W);
    const c = new BhyveTickCache();
    let points = 0;
    for (let s = 0n; s < 4000n; s++) {
      const e = (((s << 32n) % REF_FREQ_SBT) * D) + D - 1n;
      for (const t of [0n, -1n]) {
        const r = ((((t - e) % W) + W) * i23) % W;
        if (r >= 1_000_000_000n) continue;
        const now = s * 1_000_000_000n + r;
        expect(BigInt(c.ticks(Number(now), 0))).toBe(refBhyveDelta(now, 0n));
        points++;
      }
    }
    expect(points).toBeGreaterThan(2000);
  });
});

describe("PmTickCache = floor(ns * 3579545 / 1e9) where the quotient is (nearly) an integer", () => {
  // r * 715909 = j (mod 2e8): j = 0 is an integer quotient, j = 1 just above one, j = 2e8 - 1 just
  // below the next. 715909^-1 mod 2e8 by the extended Euclidean algorithm.
  const M = 200_000_000n;
  const inv = (() => {
    let [a, b, x0, x1] = [715_909n, M, 1n, 0n];
    while (b !== 0n) {
      const q = a / b;
      [a, b, x0, x1] = [b, a - q * b, x1, x0 - q * x1];
    }
    return ((x0 % M) + M) % M;
  })();
  const near: number[] = [];
  for (const j of [0n, 1n, 2n, M - 2n, M - 1n]) {
    const r0 = (j * inv) % M;
    for (let k = 0n; k < 5n; k++) near.push(Number(r0 + k * M));
  }
  near.push(999_999_999);
  const seconds = [0, 1, 7, 1_000_000, 9_007_198]; // the last second before 2^53 ns

  it("the points are what they claim (715909 * inv = 1 mod 2e8)", () => {
    expect((715_909n * inv) % M).toBe(1n);
  });

  for (const s of seconds) {
    it(`second ${s}: fresh and cached reads equal the BigInt reference`, () => {
      const cached = new PmTickCache();
      for (const r of near.sort((a, b) => a - b)) {
        const ns = s * 1e9 + r;
        if (ns > Number.MAX_SAFE_INTEGER) continue;
        const want = refTicks(BigInt(ns));
        expect(BigInt(new PmTickCache().ticks(ns))).toBe(want);
        expect(BigInt(cached.ticks(ns))).toBe(want);
      }
    });
  }
});

describe("BhyveTickCache = vpmtmr's (nstosbt(now) - nstosbt(base)) / 1199", () => {
  it("reads before, at and after a base inside a second, across seconds, in and out of the cache", () => {
    const c = new BhyveTickCache();
    for (const base of [0, 1, 123_456_789, 5_000_000_001, 1_000_000_000_000_123]) {
      const times: number[] = [];
      for (const d of [-2_000_000_001, -1_000_000_000, -999, -1, 0, 1, 2, 997, 1199, 999_999_999, 1_000_000_000, 3_000_000_007]) times.push(base + d);
      // Interleave: the miss path before the base (one-read window) then back into a cached second.
      for (const now of [...times, ...times.slice().reverse(), ...times]) {
        const want = refBhyveDelta(BigInt(now), BigInt(base));
        expect(BigInt(c.ticks(now, base))).toBe(want);
        expect(BigInt(bhyveTicks(now, base))).toBe(want);
      }
    }
  });

  it("a polling guest (997 ns steps over two seconds) reads what the reference reads at every step", () => {
    const c = new BhyveTickCache();
    const base = 777_777_777;
    let reads = 0;
    for (let now = 1_000_000_000_000_123; now < 1_000_002_000_000_123; now += 997 * 1013, reads++) {
      expect(BigInt(c.ticks(now, base))).toBe(refBhyveDelta(BigInt(now), BigInt(base)));
    }
    expect(reads).toBeGreaterThan(1900);
  });
});
