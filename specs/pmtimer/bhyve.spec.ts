// bhyve and ideal-ACPI profiles of the stand-alone PM timer. Sources: freebsd-src
// sys/amd64/vmm/io/vpmtmr.c (vpmtmr_handler: `if (!in || bytes != 4) return (-1);`, then
// `*val = vpmtmr->baseval + delta / vpmtmr->freq_sbt` with `delta = now - vpmtmr->baseuptime`;
// the snapshot saves only baseval), sys/amd64/vmm/vmm_ioport.c (ioport_handler[IO_PMTMR] only;
// a handler error is EIO from vm_run; no handler: "punt to userspace"), usr.sbin/bhyve/inout.c
// (default_inout, x86.strictio), sys/sys/time.h on main (FREQ2BT, bttosbt, nstosbt). Expected
// values come from reference.ts (BigInt, restating the upstream formulas) or are literals computed
// from those formulas (named where they are used).
import { describe, expect, it } from "vitest";
import { bench, benchOf, refAcpi, refBhyve, REF_FREQ_SBT, refNsToSbt, restore, save } from "./reference.ts";
import { IoFault } from "../../sim/bus/portio.ts";
import { BHYVE_FREQ_SBT, NSTOSBT_DIVISOR, NSTOSBT_FACTOR } from "../../sim/devices/pmtimer/ticks.ts";
import type { PmTimer } from "../../sim/devices/pmtimer/pmtimer.ts";
import { BhyveInoutKind, type BhyveInout } from "../../sim/devices/pmtimer/bhyve-inout.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import type { Bench } from "../../sim/machine/bench.ts";

const timer = (b: Bench) => b.device<PmTimer>("pmtimer");
const NS_BI = 1_000_000_000n;

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
    // nstosbt = __stime64_scale64_ceil(ns, SBT_1S, 1000000000): __common_powers_of_two(2^32, 1e9) = 2^9.
    expect([NSTOSBT_FACTOR, NSTOSBT_DIVISOR]).toEqual([2 ** 32 / 512, 1e9 / 512]);
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

  it("refuses 1- and 2-byte INs and every OUT at 0x408 with EIO, and traces the refusal", () => {
    const b = bench("bhyve");
    const faults: string[] = [];
    b.clock.trace.listen((r) => {
      if (r.type === "io-fault") faults.push(r.fields.join(" "));
    });
    expect(eio(() => b.ports.in(0x408, 1)).errno).toBe("EIO");
    expect(eio(() => b.ports.in(0x408, 2)).errno).toBe("EIO");
    expect(eio(() => b.ports.out(0x408, 4, 0)).errno).toBe("EIO");
    expect(eio(() => b.ports.out(0x408, 1, 0)).errno).toBe("EIO");
    expect(faults).toEqual(["in 1032 1 EIO pmtimer", "in 1032 2 EIO pmtimer", "out 1032 4 EIO pmtimer", "out 1032 1 EIO pmtimer"]);
    expect(b.ports.in(0x408, 4)).toBe(0); // still answers a proper read
  });
});

describe("FreeBSD main's nstosbt (sys/sys/time.h) decides the counter step to the nanosecond", () => {
  // Golden values computed from main's formula (nstosbt(t) = t / 1953125 * 2^23 + (t % 1953125 *
  // 2^23 + 1953124) / 1953125, vpmtmr: nstosbt(t) / 1199) by hand-checked BigInt arithmetic:
  //   t = 5,132,708 ns: nstosbt = 22,044,813 = 1199 * 18,386 - 1   -> reads 18,385
  //   t = 5,132,709 ns: nstosbt = 22,044,818                        -> reads 18,386
  //   t = 7,010,923 ns: nstosbt = 30,111,685 = 1199 * 25,114 - 1   -> reads 25,113
  //   t = 1,000,000,002,166,708 ns: nstosbt / 1199 = 3,582,124,524,858 -> reads that mod 2^32
  // hvsim before this fix used ((r * 9223372037) + 0x7fffffff) >> 31 (FreeBSD 12-14's sub-second
  // term), one sbintime high at these points: it read 18,386, 25,114 and ...859, one tick early.
  const cases: [number, number][] = [
    [5_132_708, 18_385],
    [5_132_709, 18_386],
    [7_010_923, 25_113],
    [7_010_924, 25_114],
    [1_000_000_002_166_708, 3_582_124_524_858 % 2 ** 32],
    [1_000_000_002_166_709, 3_582_124_524_859 % 2 ** 32],
  ];
  for (const [t, want] of cases) {
    it(`inl 0x408 at ${t} ns reads ${want}`, () => {
      const b = bench("bhyve");
      b.clock.runUntil(t);
      expect(b.ports.in(0x408, 4)).toBe(want);
      expect(Number(refBhyve(BigInt(t)))).toBe(want); // the restated formula agrees with the literal
    });
  }

  it("main's nstosbt is ceil(ns * 2^32 / 1e9) for ns >= 0, as its comment says (rounded up)", () => {
    for (const ns of [0n, 1n, 279n, 280n, 999_999_999n, 1_000_000_000n, 1_953_125n, 5_132_708n, 2_000_000_000n, 4_294_967_296n, 2n ** 53n - 1n]) {
      expect(refNsToSbt(ns)).toBe((ns * (1n << 32n) + NS_BI - 1n) / NS_BI);
    }
  });

  it("after a restore bhyve divides the difference of two converted uptimes, not the conversion of the difference", () => {
    // bhyve-upstream with the destination VM created at the restore: baseuptime = nstosbt(1 ns) = 5.
    // At 280 ns: (nstosbt(280) - 5) / 1199 = (1203 - 5) / 1199 = 0; nstosbt(279) / 1199 = 1199 / 1199 = 1.
    const src = bench("bhyve");
    src.clock.runUntil(1);
    const dst = bench("bhyve");
    restore(dst, save(src));
    dst.clock.runUntil(280);
    expect(refNsToSbt(280n)).toBe(1203n);
    expect(refNsToSbt(1n)).toBe(5n);
    expect(dst.ports.in(0x408, 4)).toBe(0);
    expect(Number(refBhyve(280n, 1n))).toBe(0);
    dst.clock.runUntil(281);
    expect(dst.ports.in(0x408, 4)).toBe(1); // nstosbt(281) = 1207: (1207 - 5) / 1199 = 1
  });
});

describe("ports no in-kernel handler takes go to bhyve's user space (usr.sbin/bhyve/inout.c)", () => {
  const strict = () => benchOf({ ...MACHINES.bhyve!, devices: MACHINES.bhyve!.devices.map((d) => (d.id === "inout" ? { ...d, config: { strictIo: true } } : d)) });

  it("default_inout: an IN of 1, 2 or 4 bytes reads 0xff, 0xffff or 0xffffffff; an OUT is dropped", () => {
    const b = bench("bhyve");
    b.clock.runUntil(1_000_000_000);
    for (const p of [0x409, 0x40a, 0x40b, 0x407, 0x400, 0x80, 0xcf8]) {
      expect(b.ports.in(p, 1)).toBe(0xff);
      expect(b.ports.in(p, 2)).toBe(0xffff);
      expect(b.ports.in(p, 4)).toBe(0xffffffff);
    }
    // Dispatch is on the first port only: a dword at 0x405..0x407 is user space's, whole.
    expect(b.ports.in(0x405, 4)).toBe(0xffffffff);
    expect(b.ports.in(0x407, 2)).toBe(0xffff);
    b.ports.out(0x409, 1, 0x12);
    b.ports.out(0x40a, 2, 0x1234);
    expect(b.ports.in(0x408, 4)).toBe(3_582_124); // the timer is unaffected
  });

  it("strict I/O (bhyve -e, x86.strictio): an unhandled IN or OUT makes the VM exit; 0x408 is still the kernel's", () => {
    const b = strict();
    expect((b.device("inout") as BhyveInout).strictIo).toBe(true);
    const abort = (f: () => unknown) => eio(f).errno;
    expect(abort(() => b.ports.in(0x409, 1))).toBe("VMEXIT_ABORT");
    expect(abort(() => b.ports.in(0x40a, 2))).toBe("VMEXIT_ABORT");
    expect(abort(() => b.ports.in(0x407, 4))).toBe("VMEXIT_ABORT");
    expect(abort(() => b.ports.out(0x80, 1, 0))).toBe("VMEXIT_ABORT");
    expect(eio(() => b.ports.in(0x409, 1)).message).toMatch(/Unhandled inb 0x0409/);
    // The kernel handler answers before user space is asked (vmm_ioport.c): EIO, not the abort.
    expect(abort(() => b.ports.in(0x408, 2))).toBe("EIO");
    expect(b.ports.in(0x408, 4)).toBe(0);
  });

  it("strictIo is a boolean; the default is not strict (bhyve_init_config: x86.strictio false)", () => {
    expect((bench("bhyve").device("inout") as BhyveInout).strictIo).toBe(false);
    const bad = { ...MACHINES.bhyve!, devices: [{ type: "bhyve-inout", id: "inout", config: { strictIo: "yes" } }] };
    expect(() => benchOf(bad)).toThrow(/strictIo must be true or false/);
    const k = BhyveInoutKind;
    expect(k.validate({})).toBeUndefined();
    expect(k.validate({ x: 1 })).toMatch(/no state/);
    expect(k.validate(null)).toMatch(/not an object/);
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
    // baseval 0, baseuptime = the destination VM's creation: nstosbt(now) - nstosbt(now - uptime).
    expect(r.after).toBe(Number(refBhyve(100_000_000_000n, 98_000_000_000n)));
    expect(r.after).toBeLessThan(r.before);
    expect(r.later).toBe(Number(refBhyve(100_001_000_000n, 98_000_000_000n)));
    expect(r.state).toEqual({ baseNs: 100_000_000_000 - 2_000_000_000, baseval: 0 });
  });

  it("monotonic: the counter continues exactly — the saved state is kept, whatever the destination's uptime", () => {
    const r = migrate("monotonic", 100_000_000_000, 2_000_000_000);
    expect(r.after).toBe(r.before);
    expect(r.state).toEqual({ baseNs: 0, baseval: 0 });
    expect(r.later).toBe(Number(refBhyve(100_001_000_000n)));
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
