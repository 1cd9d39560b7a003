// Exact ACPI PM timer arithmetic on `number`s, for every virtual time in [0, 2^53) ns.
//
// The counters need products beyond 2^53 (ns * 3579545 reaches 3.2e22; bhyve's sbintime reaches
// 3.9e16), so nothing here multiplies a full time by a full rate. Every function splits its input
// so that each intermediate value is an integer below 2^53, where double arithmetic is exact, and
// each division is either by a power of two (exact) or an integer division Math.floor(x / d) with
// integer 0 <= x < 2^53 and d >= 1, which is exact too:
//
//   Lemma. For integers x >= 0 and d >= 1 with q = floor(x / d), Math.floor(x / d) = q whenever
//   half an ulp of q + 1 is below 1 / d — in particular whenever x + d <= 2^53.
//   fl(x / d) >= q because q is representable and rounding is monotonic. If d divides x the
//   quotient is exact. Otherwise q + 1 - x / d >= 1 / d, more than half an ulp of q + 1 (half an
//   ulp of y is at most y * 2^-53, and (q + 1) * d <= x + d - 1 < 2^53), so fl(x / d) < q + 1.
//   For ns / 1e9 with ns < 2^53 (where x + d may pass 2^53): q + 1 < 2^24, whose half ulp is
//   2^-30 < 1e-9.
//
// The specs and properties check all of it against BigInt references (properties/pmtimer).

/** ACPI PM timer frequency (ACPI spec; bhyve PMTMR_FREQ, QEMU PM_TIMER_FREQUENCY). */
export const PMTMR_FREQ = 3_579_545;
export const NS_PER_SEC = 1_000_000_000;
const TWO32 = 2 ** 32;

// ---------------------------------------------------------------------------------------------
// The ideal counter: floor(ns * 3579545 / 1e9). QEMU computes exactly this with muldiv64 (a
// 128-bit intermediate product, truncating division) on its virtual clock.
//
// Split ns = s * 1e9 + r with 0 <= r < 1e9. Then ns * F / 1e9 = s * F + r * F / 1e9 and s * F is
// an integer, so floor(ns * F / 1e9) = s * F + floor(r * F / 1e9). s <= 9,007,199 and r * F <
// 3.58e15 < 2^53, so every term is exact (the lemma above covers both floors).

/** floor(ns * 3579545 / 1e9) for an integer ns in [0, 2^53): QEMU's muldiv64(ns, 3579545, 1e9). */
export function pmTicks(ns: number): number {
  const s = Math.floor(ns / NS_PER_SEC);
  return s * PMTMR_FREQ + Math.floor(((ns - s * NS_PER_SEC) * PMTMR_FREQ) / NS_PER_SEC);
}

/**
 * floor(ticks * 1e9 / 3579545) for an integer tick count below 2^53 / 1e9 * 3579545 (any count the
 * counter reaches before 2^53 ns): QEMU's muldiv64(overflow_time, 1e9, 3579545), the virtual time
 * TMR_STS is due. Split ticks = a * F + b (0 <= b < F): a * 1e9 + floor(b * 1e9 / F), b * 1e9 <
 * 3.58e15.
 */
export function pmTicksToNs(ticks: number): number {
  const a = Math.floor(ticks / PMTMR_FREQ);
  return a * NS_PER_SEC + Math.floor(((ticks - a * PMTMR_FREQ) * NS_PER_SEC) / PMTMR_FREQ);
}

/** 3579545 / 1e9 rounded to a double: the multiplier of the cached read (see PmTickCache). */
export const PM_TICKS_PER_NS = PMTMR_FREQ / NS_PER_SEC;

/**
 * The hot path of the ideal counter: the last whole second read is cached, so a read in the same
 * second costs one subtraction, one multiplication and a floor — no division. The window always
 * starts at a multiple of 1e9 ns, where the split above is exact.
 *
 * Exactness of floor(fl(r * K)) = floor(r * 3579545 / 1e9) for every integer r in [0, 1e9), with
 * K = fl(3579545 / 1e9): both sides are non-decreasing in r (rounding is monotonic), so they agree
 * everywhere if they agree on both sides of every step of the exact quotient — at r_k - 1 and r_k,
 * r_k = ceil(k * 1e9 / 3579545), for k = 1 .. 3579545. specs/pmtimer/ticks.spec.ts checks exactly
 * those 7.2 million points (in well under a second). (Error bounds alone leave the exact
 * integers: r * K is within 6.4e-10 of the exact value, whose fractional part is 0 or at least
 * 5e-9 since 3579545 / 1e9 = 715909 / 2e8.)
 */
export class PmTickCache {
  private lo = 0;
  private base = 0;

  /** floor(ns * 3579545 / 1e9), ns an integer in [0, 2^53). */
  ticks(ns: number): number {
    let r = ns - this.lo;
    // The miss path returns nothing and the formula below is the only return: a second return of
    // a (non-inlined) call's result would make the optimizing compiler merge a tagged value with
    // this double, and box the double (a heap allocation) on every read. The constants are
    // literals (1e9 and PM_TICKS_PER_NS; the spec checks the literal): a module binding costs a
    // load and a hole check per use in optimized code.
    if (!(r >= 0 && r < 1e9)) {
      this.refill(ns);
      r = ns - this.lo;
    }
    return this.base + Math.floor(r * 0.003579545);
  }

  private refill(ns: number): void {
    const s = Math.floor(ns / NS_PER_SEC);
    this.lo = s * NS_PER_SEC;
    this.base = s * PMTMR_FREQ;
  }
}

// ---------------------------------------------------------------------------------------------
// bhyve (freebsd-src sys/amd64/vmm/io/vpmtmr.c): the counter is
//   baseval + (sbinuptime() - baseuptime) / freq_sbt, truncated to uint32          (vpmtmr_handler)
// with sbintime_t a signed 32.32 fixed-point count of seconds and freq_sbt the period of one tick
// in sbintime, computed at VM creation as FREQ2BT(PMTMR_FREQ, &bt); freq_sbt = bttosbt(bt):
//   FREQ2BT: bt.sec = 0; bt.frac = ((uint64_t)0x8000000000000000 / freq) << 1
//   bttosbt: (bt.sec << 32) + (bt.frac >> 32)
// The division truncates 1199.86 to 1199, so the counter runs at 2^32 / 1199 Hz and wraps every
// 2^32 * 1199 sbt = exactly 1199 s. Note the difference of two converted times: after a restore
// baseuptime is not at 0, and (S(now) - S(base)) / 1199 is not S(now - base) / 1199.
//
// Both times are host uptimes. The bench has nanoseconds, so a host uptime of t ns is the sbintime
// FreeBSD main's nstosbt(t) gives (sys/sys/time.h): SBT_DECLARE_CONVERSION_PAIR(ns, 1000000000)
// defines nstosbt(ns) = __stime64_scale64_ceil(ns, SBT_1S, 1000000000), which divides factor and
// divisor by their common power of two (__common_powers_of_two: 2^9) and calls
// __stime64_scale32_ceil(ns, 2^23, 1953125):
//   rem = ns % 1953125;  ns / 1953125 * 2^23 + (rem * 2^23 + 1953125 - 1) / 1953125
// in int64_t arithmetic (C division truncates toward zero). For ns >= 0 that is exactly
// ceil(ns * 2^32 / 1e9), the smallest sbintime not below ns (so sbttons(nstosbt(ns)) == ns).
// FreeBSD 12-14 computed ((ns % 1e9) * 9223372037 + 0x7fffffff) >> 31 for the sub-second part (its
// rounded-up constant makes it one sbintime high where ceil is exact or nearly so — a tick early one
// ns before some counter steps) and split whole seconds only from SBT_1S = 2^32 ns on, so its
// 64-bit product wraps between about 2.0e9 and 2^32 ns. Only main's conversion is modelled.
// Host uptimes below 0 (a bhyve-upstream restore on a destination VM older than the bench's
// time) take the C formula as written: for ns < 0 it is not ceil (trunc toward zero, then + 1 when
// inexact), and this code follows it.
//
// For exactness with doubles: S(t) = sec * 2^32 + frac with sec = floor(t / 1e9) and
// frac = ceil((t mod 1e9) * 2^23 / 1953125) (the whole seconds are exact: 1e9 * 2^23 / 1953125 =
// 2^32); (t mod 1e9) * 2^23 < 8.39e15 < 2^53. Then with 2^32 = Q * 1199 + R and
// S(now) - S(base) = ds * 2^32 + df:   floor(delta / 1199) = ds * Q + floor((ds * R + df) / 1199).

/** bhyve's freq_sbt for PMTMR_FREQ, computed the way vpmtmr_init does (FREQ2BT, then bttosbt). */
export const BHYVE_FREQ_SBT: number = (() => {
  const frac = BigInt.asUintN(64, ((1n << 63n) / BigInt(PMTMR_FREQ)) << 1n);
  const sec = 0n;
  return Number((sec << 32n) + (frac >> 32n));
})();

/** nstosbt's factor and divisor after __common_powers_of_two: 2^32 / 1e9 = 2^23 / 1953125. */
export const NSTOSBT_FACTOR = 2 ** 23;
export const NSTOSBT_DIVISOR = 1_953_125;
const TWO23 = NSTOSBT_FACTOR;
const D5 = NSTOSBT_DIVISOR;

/** An sbintime as sec * 2^32 + frac with 0 <= frac < 2^32 (sec may be negative). */
export interface SbtParts {
  sec: number;
  frac: number;
}

/** FreeBSD main's nstosbt(ns) for an integer ns in (-2^53, 2^53), split into 2^32 parts. */
export function nstosbt(ns: number): SbtParts {
  if (ns >= 0) {
    const sec = Math.floor(ns / NS_PER_SEC);
    return { sec, frac: Math.floor(((ns - sec * NS_PER_SEC) * TWO23 + D5 - 1) / D5) };
  }
  // C: q = ns / 1953125 (toward zero), rem = ns % 1953125 (<= 0), q * 2^23 + (rem * 2^23 + D - 1) / D.
  const q = Math.ceil(ns / D5); // exact: |ns| < 2^53 and the lemma's bound (|q| + 1 < 2^32)
  const rem = ns - q * D5;
  const t = Math.trunc((rem * TWO23 + D5 - 1) / D5); // |numerator| < 1.7e13: exact
  // q * 2^23 = floor(q / 512) * 2^32 + (q mod 512) * 2^23, then add t and carry.
  const qh = Math.floor(q / 512);
  const f = (q - qh * 512) * TWO23 + t;
  const carry = Math.floor(f / TWO32);
  return { sec: qh + carry, frac: f - carry * TWO32 };
}

/** 2^32 = Q * freq_sbt + R: lets floor((ds * 2^32 + df) / freq_sbt) stay below 2^53. */
const SBT_Q = Math.floor(TWO32 / BHYVE_FREQ_SBT);
const SBT_R = TWO32 - SBT_Q * BHYVE_FREQ_SBT;
/** freq_sbt * 1953125: the divisor of the cached read (see BhyveTickCache). */
export const WINDOW_DIV = BHYVE_FREQ_SBT * D5;
/**
 * 1 / WINDOW_DIV rounded. For every integer x in [0, BHYVE_X_LIMIT) — the cached read's
 * numerators — floor(fl(x * WINDOW_INV)) = floor(x / WINDOW_DIV): both sides are non-decreasing
 * in x, so it is enough that they agree at k * W - 1 and k * W for every k up to
 * BHYVE_X_LIMIT / W + 1 (3.6 million points, all below 2^53; specs/pmtimer/ticks.spec.ts checks
 * them). An error bound alone would only give "within one": x / W * 2^-52 < 1e-9.
 */
export const WINDOW_INV = 1 / WINDOW_DIV;
/** Exclusive bound of the cached read's numerator e + r * 2^23 (e < 1199 * D, r < 1e9). */
export const BHYVE_X_LIMIT = BHYVE_FREQ_SBT * D5 + TWO23 * NS_PER_SEC;

/**
 * vpmtmr's `(sbinuptime() - baseuptime) / freq_sbt` with both uptimes from nstosbt: bhyve ticks
 * between host uptimes baseNs and nowNs (integers in (-2^53, 2^53)), C's int64 division (toward
 * zero). Not reduced mod 2^32 (the register truncates).
 */
export function bhyveTicks(nowNs: number, baseNs = 0): number {
  const a = nstosbt(nowNs);
  const b = nstosbt(baseNs);
  let ds = a.sec - b.sec;
  let df = a.frac - b.frac;
  const neg = ds < 0 || (ds === 0 && df < 0);
  if (neg) {
    ds = -ds;
    df = -df;
  }
  const q = ds * SBT_Q + Math.floor((ds * SBT_R + df) / BHYVE_FREQ_SBT);
  return neg ? -q : q;
}

/**
 * bhyveTicks with the current second of `now` cached for one base (the hot path). In second s with
 * r = now - s * 1e9, S(now) = s * 2^32 + floor((r * 2^23 + D - 1) / D), so with ds = s - base.sec,
 * a = ds * R - base.frac = a1 * 1199 + a0 (0 <= a0 < 1199):
 *   ticks = ds * Q + floor((a + floor((r * 2^23 + D - 1) / D)) / 1199)
 *         = ds * Q + a1 + floor((a0 * D + r * 2^23 + D - 1) / (1199 * D))   (floor(floor(z) / n) = floor(z / n))
 * The last numerator is below 1199 * D + 2^23 * 1e9 < 8.4e15 < 2^53 (BHYVE_X_LIMIT): per read
 * one multiply-add, one multiplication by the reciprocal of 1199 * D and a floor, no division
 * (exact, see WINDOW_INV). The window starts at
 * the base when the base lies inside it, so the cached reads never see a negative difference
 * (those take bhyveTicks's C truncation, one read at a time).
 */
export class BhyveTickCache {
  private lo = 0;
  private rMin = Infinity;
  private baseNs = NaN;
  private base = 0;
  private e = 0;

  ticks(now: number, baseNs: number): number {
    let r = now - this.lo;
    // One return only, as in PmTickCache.ticks (no boxing of the result on the hot path).
    if (!(r >= this.rMin && r < 1e9 && baseNs === this.baseNs)) {
      this.refill(now, baseNs);
      r = now - this.lo;
    }
    // floor(x / W) without a division: exact for these x (see WINDOW_INV). Literals as in
    // PmTickCache (the spec checks them): 8388608 = 2^23, 4.27022518765638e-10 = WINDOW_INV.
    return this.base + Math.floor((this.e + r * 8388608) * 4.27022518765638e-10);
  }

  private refill(now: number, baseNs: number): void {
    if (now < baseNs) {
      // Before the base (bhyveTicks's C truncation): a window of this one read — r = 0 and e = 0
      // make the formula return `base` — that matches nothing afterwards (rMin = Infinity).
      this.lo = now;
      this.rMin = Infinity;
      this.baseNs = NaN;
      this.base = bhyveTicks(now, baseNs);
      this.e = 0;
      return;
    }
    const s = Math.floor(now / NS_PER_SEC);
    const b = nstosbt(baseNs);
    const ds = s - b.sec;
    const a = ds * SBT_R - b.frac;
    const a1 = Math.floor(a / BHYVE_FREQ_SBT);
    this.lo = s * NS_PER_SEC;
    this.rMin = Math.max(0, baseNs - this.lo);
    this.baseNs = baseNs;
    this.base = ds * SBT_Q + a1;
    this.e = (a - a1 * BHYVE_FREQ_SBT) * D5 + D5 - 1;
  }
}
