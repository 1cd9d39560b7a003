// Exactness of every PM timer profile against BigInt references written from the upstream
// formulas (specs/pmtimer/reference.ts), for arbitrary virtual times in [0, 2^53), read one by
// one (the slow path) and as increasing sequences (the cached hot path); plus the wraparound
// properties stated in ticks.
import { describe, it } from "vitest";
import fc from "fast-check";
import { bench, benchOf, refAcpi, refBhyve, refDueNs, refNsToSbt, refQemu, refTicks, REF_FREQ_SBT } from "../../specs/pmtimer/reference.ts";
import { findAcpiPm } from "../../sim/devices/pmtimer/acpi-pm.ts";
import { pmTicks, pmTicksToNs, bhyveTicks, nstosbt } from "../../sim/devices/pmtimer/ticks.ts";
import type { PmTimer } from "../../sim/devices/pmtimer/pmtimer.ts";

const MAX = Number.MAX_SAFE_INTEGER; // 2^53 - 1
const anyNs = fc.oneof(
  fc.maxSafeNat(),
  fc.integer({ min: 0, max: 10_000_000_000 }),
  fc.integer({ min: MAX - 10_000_000_000, max: MAX }),
  // right around whole seconds and 2^19-ns windows, where the hot path changes window
  fc.tuple(fc.integer({ min: 0, max: 9_007_198 }), fc.integer({ min: -3, max: 3 })).map(([s, d]) => Math.min(MAX, Math.max(0, s * 1e9 + d))),
  fc.tuple(fc.integer({ min: 0, max: 17_179_869 }), fc.integer({ min: -2, max: 2 })).map(([w, d]) => Math.min(MAX, Math.max(0, w * 524_288 + d))),
);

const counters = () => {
  const acpi32 = bench("acpi").device<PmTimer>("pmtimer");
  const acpi24 = benchOf({ name: "a24", description: "", memory: 4096, devices: [{ type: "pmtimer", id: "pmtimer", config: { profile: "acpi", tmrValExt: false } }] }).device<PmTimer>("pmtimer");
  const bhyve = bench("bhyve").device<PmTimer>("pmtimer");
  const qemu = findAcpiPm(bench("q35"));
  return [
    { name: "qemu", read: (ns: number) => qemu.counterAt(ns), ref: (ns: bigint) => refQemu(ns), ticks: refTicks, bits: 24 },
    { name: "acpi-32", read: (ns: number) => acpi32.counterAt(ns), ref: (ns: bigint) => refAcpi(ns, 32), ticks: refTicks, bits: 32 },
    { name: "acpi-24", read: (ns: number) => acpi24.counterAt(ns), ref: (ns: bigint) => refAcpi(ns, 24), ticks: refTicks, bits: 24 },
    { name: "bhyve", read: (ns: number) => bhyve.counterAt(ns), ref: (ns: bigint) => refBhyve(ns), ticks: (ns: bigint) => refNsToSbt(ns) / REF_FREQ_SBT, bits: 32 },
  ];
};

describe("PM timer arithmetic is exact for every ns in [0, 2^53)", () => {
  it("pmTicks = floor(ns * 3579545 / 1e9); bhyveTicks = nstosbt(ns) / 1199; pmTicksToNs = muldiv64(t, 1e9, 3579545)", () => {
    fc.assert(
      fc.property(anyNs, (ns) => {
        const b = BigInt(ns);
        return BigInt(pmTicks(ns)) === refTicks(b) && BigInt(bhyveTicks(ns)) === refNsToSbt(b) / REF_FREQ_SBT;
      }),
      { numRuns: 20_000 },
    );
    // nstosbt, C semantics included for negative uptimes (a destination VM older than the bench's time).
    const signedNs = fc.oneof(anyNs, anyNs.map((n) => -n), fc.integer({ min: -5_000_000, max: 5_000_000 }));
    fc.assert(
      fc.property(signedNs, (ns) => {
        const p = nstosbt(ns);
        return p.frac >= 0 && p.frac < 2 ** 32 && BigInt(p.sec) * (1n << 32n) + BigInt(p.frac) === refNsToSbt(BigInt(ns));
      }),
      { numRuns: 20_000 },
    );
    // vpmtmr's (nstosbt(now) - nstosbt(base)) / freq_sbt, C division, any order of the two times.
    fc.assert(
      fc.property(signedNs, signedNs, (now, base) => {
        const want = (refNsToSbt(BigInt(now)) - refNsToSbt(BigInt(base))) / REF_FREQ_SBT;
        return BigInt(bhyveTicks(now, base)) === want;
      }),
      { numRuns: 20_000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number(refTicks(BigInt(MAX))) }), (t) => BigInt(pmTicksToNs(t)) === refDueNs(BigInt(t))),
      { numRuns: 20_000 },
    );
  });

  for (const c of counters()) {
    it(`${c.name}: one read at any time equals the BigInt reference`, () => {
      fc.assert(fc.property(anyNs, (ns) => BigInt(c.read(ns)) === c.ref(BigInt(ns))), { numRuns: 20_000 });
    });

    it(`${c.name}: increasing read sequences (cached path) equal the BigInt reference`, () => {
      fc.assert(
        fc.property(anyNs, fc.array(fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 2_000_000_000 })), { maxLength: 200 }), (start, steps) => {
          let t = start;
          for (const d of steps) {
            if (t + d > MAX) break;
            t += d;
            if (BigInt(c.read(t)) !== c.ref(BigInt(t))) return false;
          }
          return true;
        }),
        { numRuns: 2_000 },
      );
    });

    it(`${c.name}: the increment between two reads is the exact tick difference mod 2^${c.bits}`, () => {
      const mod = 1n << BigInt(c.bits);
      fc.assert(
        fc.property(anyNs, anyNs, (a, b) => {
          const [t1, t2] = a <= b ? [a, b] : [b, a];
          const inc = (((BigInt(c.read(t2)) - BigInt(c.read(t1))) % mod) + mod) % mod;
          const exact = (c.ticks(BigInt(t2)) - c.ticks(BigInt(t1))) % mod;
          return inc === exact;
        }),
        { numRuns: 10_000 },
      );
    });
  }

  it("bhyve after a restore: reads with any baseuptime (state.baseNs) equal vpmtmr's two-conversion formula, cached or not", () => {
    const t = bench("bhyve").device<PmTimer>("pmtimer");
    fc.assert(
      fc.property(fc.integer({ min: -1_000_000_000_000, max: 2 ** 52 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.array(fc.integer({ min: 0, max: 3_000_000_000 }), { minLength: 1, maxLength: 50 }), (base, baseval, steps) => {
        t.state = { baseNs: base, baseval };
        let now = Math.max(0, base);
        for (const d of steps) {
          now += d;
          if (BigInt(t.counterAt(now)) !== refBhyve(BigInt(now), BigInt(base), BigInt(baseval))) return false;
        }
        return true;
      }),
      { numRuns: 2_000 },
    );
  });

  it("bhyve repeats exactly every 1199 s; qemu/acpi advance exactly 3579545 ticks per second", () => {
    const cs = counters();
    const bh = cs.find((c) => c.name === "bhyve")!;
    fc.assert(fc.property(fc.integer({ min: 0, max: MAX - 1_199_000_000_000 }), (t) => bh.read(t + 1_199_000_000_000) === bh.read(t)), { numRuns: 10_000 });
    for (const c of cs.filter((x) => x.name !== "bhyve")) {
      const m = 2 ** c.bits;
      fc.assert(fc.property(fc.integer({ min: 0, max: MAX - 1_000_000_000 }), (t) => c.read(t + 1_000_000_000) === (c.read(t) + 3_579_545) % m), { numRuns: 10_000 });
    }
  });
});
