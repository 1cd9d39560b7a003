// bhyve and ideal-ACPI profiles of the stand-alone PM timer. Sources: freebsd-src
// sys/amd64/vmm/io/vpmtmr.c (handler accepts only a 4-byte IN, else -1 -> EIO from VM_RUN;
// baseval + (sbinuptime() - baseuptime) / freq_sbt; snapshot saves only baseval),
// sys/sys/time.h (FREQ2BT, bttosbt, nstosbt), vpmtmr.c (freq_sbt = 1199,
// wraps every exactly 1199 s). Expected values come from reference.ts (BigInt, from the formulas).
import { describe, expect, it } from "vitest";
import { bench, benchOf, refAcpi, refBhyve, REF_FREQ_SBT, refNsToSbt, restore, save } from "./reference.ts";
import { IoFault } from "../../sim/bus/portio.ts";
import { BHYVE_FREQ_SBT, NSTOSBT_MUL } from "../../sim/devices/pmtimer/ticks.ts";
import type { PmTimer } from "../../sim/devices/pmtimer/pmtimer.ts";
import type { Bench } from "../../sim/machine/bench.ts";

const timer = (b: Bench) => b.device<PmTimer>("pmtimer");

function eio(f: () => unknown): IoFault {
  try {
    f();
  } catch (e) {
    if (e instanceof IoFault) return e;
    throw e;
  }
  throw new Error("no IoFault");
}

describe("bhyve vpmtmr", () => {
  it("computes freq_sbt = 1199 the way vpmtmr_init does (FREQ2BT then bttosbt)", () => {
    expect(REF_FREQ_SBT).toBe(1199n);
    expect(BHYVE_FREQ_SBT).toBe(1199);
    // FREQ2BT's frac for 3,579,545 Hz (pmtimer.md): 0x4AFDD313180.
    expect(((1n << 63n) / 3_579_545n) << 1n).toBe(0x4afdd313180n);
    expect(NSTOSBT_MUL).toBe(9_223_372_037); // ceil(2^63 / 1e9), nstosbt's multiplier
  });

  it("answers a 4-byte IN at 0x408 with baseval + nstosbt(uptime) / 1199", () => {
    const b = bench("bhyve");
    for (const t of [0, 1, 279, 280, 1_000_000_000, 4_294_967_296, 123_456_789_012, 1_198_999_999_999]) {
      b.clock.runUntil(t);
      expect(b.ports.in(0x408, 4)).toBe(Number(refBhyve(BigInt(t))));
    }
    expect(timer(b).bits).toBe(32);
  });

  it("runs at 2^32 / 1199 Hz: 3,582,124 ticks in the first second", () => {
    const b = bench("bhyve");
    b.clock.runUntil(1_000_000_000);
    expect(b.ports.in(0x408, 4)).toBe(3_582_124);
    expect(Number(refNsToSbt(1_000_000_000n))).toBe(2 ** 32);
  });

  it("wraps at exactly 1199 s: 0xffffffff one ns before, 0 at 1,199,000,000,000 ns", () => {
    const b = bench("bhyve");
    b.clock.runUntil(1_199_000_000_000 - 1);
    expect(b.ports.in(0x408, 4)).toBe(0xffffffff);
    b.clock.runUntil(1_199_000_000_000);
    expect(b.ports.in(0x408, 4)).toBe(0);
    b.clock.runUntil(2 * 1_199_000_000_000);
    expect(b.ports.in(0x408, 4)).toBe(0);
  });

  it("refuses 1- and 2-byte INs, INs at 0x409-0x40b and every OUT with EIO, and traces the refusal", () => {
    const b = bench("bhyve");
    const faults: string[] = [];
    b.clock.trace.listen((r) => {
      if (r.type === "io-fault") faults.push(r.fields.join(" "));
    });
    expect(eio(() => b.ports.in(0x408, 1)).errno).toBe("EIO");
    expect(eio(() => b.ports.in(0x408, 2)).errno).toBe("EIO");
    expect(eio(() => b.ports.in(0x409, 1)).errno).toBe("EIO");
    expect(eio(() => b.ports.out(0x408, 4, 0)).errno).toBe("EIO");
    expect(eio(() => b.ports.out(0x408, 1, 0)).errno).toBe("EIO");
    expect(faults).toEqual(["in 1032 1 EIO pmtimer", "in 1032 2 EIO pmtimer", "in 1033 1 EIO pmtimer", "out 1032 4 EIO pmtimer", "out 1032 1 EIO pmtimer"]);
    expect(b.ports.in(0x408, 4)).toBe(0); // still answers a proper read
  });
});

describe("restore behaviour", () => {
  /** Runs a bhyve VM for `ns`, saves, restores on a fresh destination whose VM has been up `uptime` ns. */
  function migrate(policy: "monotonic" | "bhyve-upstream", ns: number, uptime: number) {
    const spec = { name: "bhyve-test", description: "", memory: 1 << 20, devices: [{ type: "pmtimer", id: "pmtimer", config: { profile: "bhyve", restore: policy, restoreUptimeNs: uptime } }] };
    const src = benchOf(spec);
    src.clock.runUntil(ns);
    const before = src.ports.in(0x408, 4);
    const dst = benchOf(spec);
    restore(dst, save(src));
    const after = dst.ports.in(0x408, 4);
    dst.clock.step(1_000_000);
    return { before, after, later: dst.ports.in(0x408, 4), state: timer(dst).state };
  }

  it("bhyve-upstream: the counter restarts from the destination VM's uptime and goes backwards", () => {
    const r = migrate("bhyve-upstream", 100_000_000_000, 2_000_000_000);
    expect(r.before).toBe(Number(refBhyve(100_000_000_000n)));
    expect(r.after).toBe(Number(refBhyve(2_000_000_000n))); // baseval 0 + uptime on the destination
    expect(r.after).toBeLessThan(r.before);
    expect(r.state).toEqual({ baseNs: 100_000_000_000 - 2_000_000_000, baseval: 0 });
  });

  it("monotonic: the counter resumes from the saved value and keeps counting", () => {
    const r = migrate("monotonic", 100_000_000_000, 2_000_000_000);
    expect(r.after).toBe(r.before);
    expect(r.state).toEqual({ baseNs: 100_000_000_000, baseval: r.before });
    expect(r.later).toBe(Number(refBhyve(1_000_000n, BigInt(r.before))));
  });

  it("the default policy is bhyve-upstream for bhyve, monotonic for acpi", () => {
    expect(timer(bench("bhyve")).restorePolicy).toBe("bhyve-upstream");
    expect(timer(bench("acpi")).restorePolicy).toBe("monotonic");
  });

  it("a reset-style afterRestore (not from a snapshot) changes nothing", () => {
    const b = bench("bhyve");
    b.clock.runUntil(5_000_000_000);
    const t = timer(b);
    const s = { ...t.state };
    t.afterRestore(b, { fromSnapshot: false });
    expect(t.state).toEqual(s);
  });
});

describe("acpi profile (ideal counter)", () => {
  it("32-bit with TMR_VAL_EXT: floor(ns * 3579545 / 1e9) mod 2^32, byte lanes for narrower reads", () => {
    const b = bench("acpi");
    const t = 1_300_000_000_123;
    b.clock.runUntil(t);
    const v = Number(refAcpi(BigInt(t), 32));
    expect(b.ports.in(0x408, 4)).toBe(v);
    expect(b.ports.in(0x408, 2)).toBe(v & 0xffff);
    expect(b.ports.in(0x40a, 2)).toBe(v >>> 16);
    expect(b.ports.in(0x40b, 1)).toBe(v >>> 24);
    b.ports.out(0x408, 4, 0); // ignored
    expect(b.ports.in(0x408, 4)).toBe(v);
  });

  it("24-bit without TMR_VAL_EXT", () => {
    const b = benchOf({ name: "acpi24", description: "", memory: 1 << 20, devices: [{ type: "pmtimer", id: "pmtimer", config: { profile: "acpi", tmrValExt: false } }] });
    b.clock.runUntil(5_686_000_280);
    expect(timer(b).bits).toBe(24);
    expect(b.ports.in(0x408, 4)).toBe(0x36910d);
  });

  it("qemu profile stand-alone: 24-bit, every byte reads the low byte (acpi-tmr ignores the offset)", () => {
    const b = benchOf({ name: "q", description: "", memory: 1 << 20, devices: [{ type: "pmtimer", id: "pmtimer", config: { profile: "qemu", port: 0x608 } }] });
    b.clock.runUntil(1_000_000_000);
    expect(b.ports.in(0x608, 4)).toBe(0x369e99);
    expect(b.ports.in(0x609, 1)).toBe(0x99);
  });

  it("rejects unknown profiles and policies, and validates its state", () => {
    const spec = (config: Record<string, unknown>) => ({ name: "x", description: "", memory: 4096, devices: [{ type: "pmtimer", id: "pmtimer", config }] });
    expect(() => benchOf(spec({ profile: "hpet" }))).toThrow(/unknown profile/);
    expect(() => benchOf(spec({ restore: "sometimes" }))).toThrow(/unknown restore policy/);
    const t = timer(bench("bhyve"));
    expect(t.kind.validate({ baseNs: 0, baseval: 2 ** 32 })).toMatch(/baseval/);
    expect(t.kind.validate({ baseNs: 0.5, baseval: 0 })).toMatch(/baseNs/);
    expect(t.kind.validate({ baseNs: -5, baseval: 7 })).toBeUndefined();
  });
});
