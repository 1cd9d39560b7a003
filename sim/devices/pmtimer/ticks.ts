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
const TWO31 = 2 ** 31;
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

/**
 * The hot path of the ideal counter: the last whole second read is cached, so a read in the same
 * second costs one subtraction, one multiplication, one division and a floor. The window always
 * starts at a multiple of 1e9 ns, where the split above is exact.
 */
export class PmTickCache {
  private lo = 0;
  private base = 0;

  /** floor(ns * 3579545 / 1e9), ns an integer in [0, 2^53). */
  ticks(ns: number): number {
    const r = ns - this.lo;
    if (r >= 0 && r < NS_PER_SEC) return this.base + Math.floor((r * PMTMR_FREQ) / NS_PER_SEC);
    return this.refill(ns);
  }

  private refill(ns: number): number {
    const s = Math.floor(ns / NS_PER_SEC);
    this.lo = s * NS_PER_SEC;
    this.base = s * PMTMR_FREQ;
    return this.base + Math.floor(((ns - this.lo) * PMTMR_FREQ) / NS_PER_SEC);
  }
}

// ---------------------------------------------------------------------------------------------
// bhyve (freebsd-src sys/amd64/vmm/io/vpmtmr.c): the counter is
//   baseval + (sbinuptime() - baseuptime) / freq_sbt, truncated to uint32,
// with sbintime_t a 32.32 fixed-point count of seconds and freq_sbt the period of one tick in
// sbintime, computed at VM creation as FREQ2BT(PMTMR_FREQ, &bt); freq_sbt = bttosbt(bt):
//   FREQ2BT: bt.sec = 0; bt.frac = ((uint64_t)0x8000000000000000 / freq) << 1
//   bttosbt: (bt.sec << 32) + (bt.frac >> 32)
// The division truncates 1199.86 to 1199, so the counter runs at 2^32 / 1199 Hz and wraps every
// 2^32 * 1199 sbt = exactly 1199 s.

/** bhyve's freq_sbt for PMTMR_FREQ, computed the way vpmtmr_init does (FREQ2BT, then bttosbt). */
export const BHYVE_FREQ_SBT: number = (() => {
  const frac = BigInt.asUintN(64, ((1n << 63n) / BigInt(PMTMR_FREQ)) << 1n);
  const sec = 0n;
  return Number((sec << 32n) + (frac >> 32n));
})();

// ns -> sbintime. bhyve reads sbinuptime() directly; the bench has nanoseconds, so the host's
// uptime since the counter's base is converted the way FreeBSD's nstosbt() (sys/sys/time.h)
// converts nanoseconds: whole seconds become sec << 32, and the remaining r < 1e9 ns become
//   ((r * 9223372037) + 0x7fffffff) >> 31          (64-bit unsigned arithmetic)
// where 9223372037 = ceil(2^63 / 1e9): r * 2^32 / 1e9 computed with a rounded-up constant and
// rounded up, so that sbttons(nstosbt(x)) == x. Upstream only splits off whole seconds when
// ns >= SBT_1S (2^32, i.e. 4.29 s); between 1e9 and 2^32 ns it feeds the whole value to the
// multiplication, whose 64-bit product wraps above ~2e9 ns. We always split at whole seconds —
// the conversion nstosbt is meant to compute, identical to upstream below 1 s and from 2^32 ns on.
//
// For an exact result with doubles: C = 9223372037 is never multiplied by the whole r. With
// r = rh * 2^19 + rl (rl < 2^19, rh < 1908) and P = rh * C = p1 * 2^12 + p0 (p0 < 2^12):
//   r * C = p1 * 2^31 + p0 * 2^19 + rl * C, so
//   (r * C + 2^31 - 1) >> 31 = p1 + floor((p0 * 2^19 + rl * C + 2^31 - 1) / 2^31)
// with P < 1.8e13 and p0 * 2^19 + rl * C + 2^31 < 4.9e15 < 2^53, all exact; the last division is
// by a power of two (a multiplication by 2^-31, exact).

/** ceil(2^63 / 1e9), nstosbt's multiplier (computed, not typed: 9223372037). */
export const NSTOSBT_MUL: number = Number(((1n << 63n) + BigInt(NS_PER_SEC) - 1n) / BigInt(NS_PER_SEC));
const SPLIT = 2 ** 19;
const INV_TWO31 = 2 ** -31;
const ROUND_UP = TWO31 - 1;

/** nstosbt of a sub-second remainder r in [0, 1e9): the fractional sbintime, in [0, 2^32). */
export function subSecondSbt(r: number): number {
  const rh = Math.floor(r / SPLIT);
  const p = rh * NSTOSBT_MUL;
  const p1 = Math.floor(p / 4096);
  return p1 + Math.floor(((p - p1 * 4096) * SPLIT + (r - rh * SPLIT) * NSTOSBT_MUL + ROUND_UP) * INV_TWO31);
}

/** 2^32 = Q * freq_sbt + R: lets floor((s * 2^32 + f) / freq_sbt) stay below 2^53. */
const SBT_Q = Math.floor(TWO32 / BHYVE_FREQ_SBT);
const SBT_R = TWO32 - SBT_Q * BHYVE_FREQ_SBT;
const WINDOW_DIV = BHYVE_FREQ_SBT * TWO31;

/**
 * floor(nstosbt(d) / freq_sbt): bhyve ticks after d ns, d an integer in [0, 2^53). With
 * nstosbt(d) = s * 2^32 + f: floor((s * 2^32 + f) / freq) = s * Q + floor((s * R + f) / freq).
 * Not reduced mod 2^32 (the register truncates).
 */
export function bhyveTicks(d: number): number {
  const s = Math.floor(d / NS_PER_SEC);
  const f = subSecondSbt(d - s * NS_PER_SEC);
  return s * SBT_Q + Math.floor((s * SBT_R + f) / BHYVE_FREQ_SBT);
}

/**
 * bhyveTicks with the current 2^19-ns window cached (the hot path). A window lies inside one
 * second and is one rh step of subSecondSbt, so with a = s * R + p1 and e = p0 * 2^19 + 2^31 - 1:
 *   ticks = s * Q + floor((a + floor((e + rl * C) / 2^31)) / freq)
 *         = s * Q + floor((a * 2^31 + e + rl * C) / (freq * 2^31))     (floor(floor(z) / n) = floor(z / n))
 *         = s * Q + a1 + floor((a0 * 2^31 + e + rl * C) / (freq * 2^31))   with a = a1 * freq + a0.
 * The last numerator is below 1199 * 2^31 + 2^31 * 2 + 2^19 * C < 4.9e15, so a read inside the
 * window is one multiplication, one division and one floor — the same work as the ideal counter.
 */
export class BhyveTickCache {
  private lo = 0;
  private len = 0;
  private base = 0;
  private e = 0;

  ticks(d: number): number {
    const rl = d - this.lo;
    if (rl >= 0 && rl < this.len) return this.base + Math.floor((this.e + rl * NSTOSBT_MUL) / WINDOW_DIV);
    return this.refill(d);
  }

  private refill(d: number): number {
    const s = Math.floor(d / NS_PER_SEC);
    const r = d - s * NS_PER_SEC;
    const rh = Math.floor(r / SPLIT);
    const p = rh * NSTOSBT_MUL;
    const p1 = Math.floor(p / 4096);
    const a = s * SBT_R + p1;
    const a1 = Math.floor(a / BHYVE_FREQ_SBT);
    this.lo = s * NS_PER_SEC + rh * SPLIT;
    this.len = Math.min(SPLIT, NS_PER_SEC - rh * SPLIT);
    this.base = s * SBT_Q + a1;
    this.e = (a - a1 * BHYVE_FREQ_SBT) * TWO31 + (p - p1 * 4096) * SPLIT + ROUND_UP;
    // Not `return this.ticks(d)`: a recursive hot path is not inlined into its callers.
    return this.base + Math.floor((this.e + (d - this.lo) * NSTOSBT_MUL) / WINDOW_DIV);
  }
}
