// BigInt references for the PM timer specs and properties, written from the upstream formulas
// (not from the model's code):
//  - QEMU hw/acpi/core.c: ticks = muldiv64(ns, 3579545, 1e9) (128-bit product, truncating
//    division); register = ticks & 0xffffff; TMR_STS due at muldiv64(overflow_time, 1e9, 3579545).
//  - bhyve sys/amd64/vmm/io/vpmtmr.c: value = baseval + (sbinuptime() - baseuptime) / freq_sbt,
//    truncated to 32 bits; freq_sbt = bttosbt(FREQ2BT(3579545)); both uptimes through FreeBSD
//    main's nstosbt (sys/sys/time.h), restated below macro by macro.
//  - The ACPI spec counter: floor(ns * 3579545 / 1e9) mod 2^24 or 2^32 (TMR_VAL_EXT).
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import type { Plain } from "../../sim/clock/canonical.ts";
import { clonePlain } from "../../sim/clock/canonical.ts";
import type { ClockState } from "../../sim/clock/clock.ts";

export const F = 3_579_545n;
export const NS = 1_000_000_000n;

export const refTicks = (ns: bigint): bigint => (ns * F) / NS;
export const refQemu = (ns: bigint): bigint => refTicks(ns) & 0xffffffn;
export const refAcpi = (ns: bigint, bits: 24 | 32): bigint => refTicks(ns) & ((1n << BigInt(bits)) - 1n);
/** muldiv64(ticks, 1e9, 3579545): when QEMU considers TMR_STS due. */
export const refDueNs = (ticks: bigint): bigint => (ticks * NS) / F;
/** First nanosecond at which the tick count reaches `ticks` (ceil(ticks * 1e9 / F)). */
export const refCrossNs = (ticks: bigint): bigint => (ticks * NS + F - 1n) / F;

/** FREQ2BT then bttosbt, in 64-bit unsigned arithmetic. */
export const REF_FREQ_SBT: bigint = (((1n << 63n) / F) << 1n) >> 32n;
// FreeBSD main sys/sys/time.h, in int64_t (BigInt's / and % truncate toward zero, as C's do):
//   #define SBT_1S ((sbintime_t)1 << 32)
//   #define __common_powers_of_two(a, b) ((~(a) & ((a) - 1) & ~(b) & ((b) - 1)) + 1)
//   __stime64_scale32_ceil(x, factor, divisor):
//       rem = x % divisor; return (x / divisor * factor + (rem * factor + divisor - 1) / divisor)
//   __stime64_scale64_ceil(x, factor, divisor):
//       gcd = __common_powers_of_two(factor, divisor); return __stime64_scale32_ceil(x, factor / gcd, divisor / gcd)
//   SBT_DECLARE_CONVERSION_PAIR(ns, 1000000000): nstosbt(ns) = __stime64_scale64_ceil(ns, SBT_1S, 1000000000)
export const SBT_1S = 1n << 32n;
const commonPowersOfTwo = (a: bigint, b: bigint): bigint => (~a & (a - 1n) & ~b & (b - 1n)) + 1n;
const scale32Ceil = (x: bigint, factor: bigint, divisor: bigint): bigint => {
  const rem = x % divisor;
  return (x / divisor) * factor + (rem * factor + divisor - 1n) / divisor;
};
const scale64Ceil = (x: bigint, factor: bigint, divisor: bigint): bigint => {
  const gcd = commonPowersOfTwo(factor, divisor);
  return scale32Ceil(x, factor / gcd, divisor / gcd);
};
/** FreeBSD main's nstosbt. */
export const refNsToSbt = (ns: bigint): bigint => scale64Ceil(ns, SBT_1S, NS);
/**
 * vpmtmr_handler's value: `*val = vpmtmr->baseval + delta / vpmtmr->freq_sbt` with
 * `delta = now - vpmtmr->baseuptime`, now = sbinuptime() — here both nstosbt of host uptimes.
 */
export const refBhyve = (nowNs: bigint, baseNs = 0n, baseval = 0n): bigint => (baseval + (refNsToSbt(nowNs) - refNsToSbt(baseNs)) / REF_FREQ_SBT) & 0xffffffffn;

export function bench(name: string, opts: { seed?: number } = {}): Bench {
  const spec = MACHINES[name];
  if (!spec) throw new Error(`no machine ${name}`);
  return new Bench(spec, defaultKinds(), { seed: opts.seed ?? 1 });
}

export function benchOf(spec: MachineSpec): Bench {
  return new Bench(spec, defaultKinds(), { seed: 1 });
}

/** What a snapshot of a bench holds, taken with the device states directly (clock + states). */
export interface SavedBench {
  clock: ClockState;
  states: Map<string, Plain>;
}

export function save(b: Bench): SavedBench {
  return { clock: b.clock.serialize(), states: new Map(b.devices().map((d) => [d.id, clonePlain(d.state as Plain)])) };
}

/** Restores `s` into `b` as the snapshot module does: clock, every state, then every afterRestore. */
export function restore(b: Bench, s: SavedBench): void {
  b.clock.restore(s.clock);
  for (const d of b.devices()) {
    const st = s.states.get(d.id);
    if (st === undefined) throw new Error(`no saved state for ${d.id}`);
    const why = d.kind.validate(st);
    if (why) throw new Error(`saved state of ${d.id} is invalid: ${why}`);
    d.state = clonePlain(st);
  }
  for (const d of b.devices()) d.afterRestore?.(b, { fromSnapshot: true });
}

/** Runs qtest-style lines on a bench's ports: "outl 0xcf8 0x8000f840", "inl 0x608". */
export function io(b: Bench, line: string): number | undefined {
  const [cmd, a, v] = line.split(" ");
  const size = ({ b: 1, w: 2, l: 4 } as const)[cmd!.at(-1) as "b" | "w" | "l"];
  if (cmd!.startsWith("in")) return b.ports.in(Number(a), size);
  b.ports.out(Number(a), size, Number(v));
  return undefined;
}

/** The qtest writes that map the PM block at 0x600 (PMBASE 0x601, ACPI_EN) on q35. */
export const ENABLE_PM = ["outl 0xcf8 0x8000f840", "outl 0xcfc 0x601", "outl 0xcf8 0x8000f844", "outb 0xcfc 0x80"];
