// TMR_STS and the SCI on q35 (QEMU hw/acpi/core.c): after TMR_STS is cleared at time c, the next
// overflow_time is the first multiple of 2^23 ticks above floor(c * 3579545 / 1e9), and TMR_STS
// (and, with TMR_EN, the SCI from a clock event) comes at muldiv64(overflow_time, 1e9, 3579545)
// ns — the BigInt floor of when the tick count crosses k * 2^23, i.e. the crossing nanosecond
// itself when k * 2^23 * 1e9 is a multiple of 3579545, one ns before it otherwise. Checked for
// arbitrary clear times and chains of overflows, through the ports.
import { describe, it } from "vitest";
import fc from "fast-check";
import { bench, ENABLE_PM, io, refCrossNs, refDueNs, refTicks } from "../../specs/pmtimer/reference.ts";

const HALF = 1n << 23n;
const nextOverflow = (ns: bigint) => (refTicks(ns) / HALF + 1n) * HALF;
// Keep the last due time below 2^53 - 1 ns with room for a few overflows.
const clearTimes = fc.oneof(fc.integer({ min: 0, max: 50_000_000_000 }), fc.integer({ min: 0, max: 2 ** 53 - 40_000_000_000 }));
/** Also exactly at a due nanosecond, where a clear does not take. */
const dueOrAny = fc.oneof(clearTimes, fc.bigInt({ min: 1n, max: 3_000_000n }).map((k) => Number(refDueNs(k * HALF))));

function q35() {
  const b = bench("q35");
  for (const l of ENABLE_PM) io(b, l);
  const raises: number[] = [];
  b.irq.listen((line, level, at) => {
    if (line === 9 && level) raises.push(at);
  });
  return { b, raises };
}

describe("TMR_STS is due at each bit-23 toggle, exactly", () => {
  it("the due time is the BigInt floor of the crossing: crossing - 1 ns, or the crossing when exact", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 3_700_000n }), (k) => {
        const ticks = k * HALF;
        const due = refDueNs(ticks);
        const cross = refCrossNs(ticks);
        const exact = (ticks * 1_000_000_000n) % 3_579_545n === 0n;
        return refTicks(cross) === ticks && refTicks(cross - 1n) === ticks - 1n && due === (exact ? cross : cross - 1n);
      }),
      { numRuns: 5_000 },
    );
  });

  it("after a clear at any time, PM1_STS reads 0 until the due ns and 1 from it", () => {
    fc.assert(
      fc.property(dueOrAny, (c) => {
        const { b } = q35();
        b.clock.runUntil(c);
        io(b, "inw 0x600");
        io(b, "outw 0x600 0x1");
        const due = refDueNs(nextOverflow(BigInt(c)));
        if (due <= BigInt(c)) return io(b, "inw 0x600") === 1; // cleared at its own due ns: re-latches
        if (io(b, "inw 0x600") !== 0) return false;
        b.clock.runUntil(Number(due) - 1);
        if (io(b, "inw 0x600") !== 0) return false;
        b.clock.runUntil(Number(due));
        return io(b, "inw 0x600") === 1;
      }),
      { numRuns: 1_000 },
    );
  });

  it("with TMR_EN the SCI rises at each due ns from clock events, through chains of clears", () => {
    // Lags of 0 make the clear land on the due ns itself, where QEMU re-latches TMR_STS at once.
    const lag = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3_000_000_000 }));
    fc.assert(
      fc.property(dueOrAny, fc.array(lag, { minLength: 1, maxLength: 6 }), (start, lags) => {
        const { b, raises } = q35();
        const lowers: number[] = [];
        b.irq.listen((line, level, at) => {
          if (line === 9 && !level) lowers.push(at);
        });
        b.clock.runUntil(start);
        io(b, "outw 0x600 0x1");
        io(b, "outw 0x602 0x1");
        const want = { raises: [] as number[], lowers: [] as number[] };
        let c = BigInt(start);
        let high = refDueNs(nextOverflow(c)) <= c; // re-latched at once: TMR_EN raises the SCI now
        if (high) want.raises.push(start);
        for (const l of lags) {
          if (!high) {
            const due = refDueNs(nextOverflow(c));
            b.clock.runUntil(Number(due) + l); // no register read in between: the event does it
            want.raises.push(Number(due));
            high = true;
          } else {
            b.clock.runUntil(b.clock.now + l);
          }
          c = BigInt(b.clock.now);
          io(b, "outw 0x600 0x1");
          if (refDueNs(nextOverflow(c)) > c) {
            want.lowers.push(Number(c));
            high = false;
          }
        }
        return JSON.stringify({ raises, lowers }) === JSON.stringify(want);
      }),
      { numRuns: 1_000 },
    );
  });
});
