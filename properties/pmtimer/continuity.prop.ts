// Save/restore = uninterrupted, on every machine and for every PM timer profile whose restore
// policy promises it (issue 16), through the real snapshot module (saveSnapshot/restoreSnapshot):
// run a random sequence of port I/O, clock steps and memory writes, save at an arbitrary point,
// restore into a fresh bench of the same machine and replay the rest — the trace hash (every
// port read, the PM timer's included) and the whole state must equal the uninterrupted run's.
// Steps include single nanoseconds, so a restore that re-based the counter and dropped its
// sub-tick remainder would be caught (the shape of issue 16: until 1, save, restore, until 280).
//
// bhyve-upstream does not promise continuity (vpmtmr_snapshot saves only baseval, baseuptime is
// the destination VM's creation): there the property is instead that every read after the restore
// is vpmtmr_handler's value baseval + (nstosbt(now) - nstosbt(now_restore - uptime)) / 1199
// (reference.ts restates sys/amd64/vmm/io/vpmtmr.c and FreeBSD main's sys/sys/time.h).
import { describe, expect } from "vitest";
import { test, fc } from "@fast-check/vitest";
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { scenarioKinds, resolveMachine } from "../../sim/scenario/machines.ts";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";
import { IoFault } from "../../sim/bus/portio.ts";
import { benchState } from "../../specs/snapshot/helpers.ts";
import { refBhyve } from "../../specs/pmtimer/reference.ts";
import type { PmTimer } from "../../sim/devices/pmtimer/pmtimer.ts";

type Op = { op: "out"; port: number; size: 1 | 2 | 4; value: number } | { op: "in"; port: number; size: 1 | 2 | 4 } | { op: "step"; ns: number } | { op: "mem"; addr: number; bytes: Uint8Array };

const size = fc.constantFrom(1 as const, 2 as const, 4 as const);
// The PM timer ports of every machine (0x408 stand-alone; q35's block at 0x600 once mapped), the
// PCI config ports, the testdev ports, and anything else.
const port = fc.oneof(fc.integer({ min: 0x404, max: 0x40c }), fc.integer({ min: 0x600, max: 0x62f }), fc.constantFrom(0xcf8, 0xcfc, 0xcfd), fc.integer({ min: 0x700, max: 0x71f }), fc.integer({ min: 0, max: 0xffff }));
const step = fc.oneof(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 3_000_000_000 }), fc.integer({ min: 0, max: 2 ** 42 }));
/**
 * Writes go anywhere but to 0xCF9 (q35 reset control) and the testdev registers (a testdev timer
 * with a period of a few ns and a step of 2^42 ns would be billions of events); reads go anywhere.
 */
const outAllowed = (p: number) => p !== 0xcf9 && (p < 0x6fd || p > 0x71f);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("in" as const), port, size }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("out" as const), port: port.filter(outAllowed), size, value: fc.integer({ min: 0, max: 0xff }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("step" as const), ns: step }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("mem" as const), addr: fc.integer({ min: 0, max: 4096 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
);
/** q35: map the PM block at 0x600 (PMBASE 0x601, ACPI_EN), as firmware does, so reads reach the timer. */
const Q35_ENABLE: Op[] = [
  { op: "out", port: 0xcf8, size: 4, value: 0x8000f840 },
  { op: "out", port: 0xcfc, size: 4, value: 0x601 },
  { op: "out", port: 0xcf8, size: 4, value: 0x8000f844 },
  { op: "out", port: 0xcfc, size: 1, value: 0x80 },
];

function apply(b: Bench, o: Op): void {
  try {
    if (o.op === "in") b.ports.in(o.port, o.size);
    else if (o.op === "out") b.ports.out(o.port, o.size, o.value);
    else if (o.op === "step") b.clock.step(o.ns);
    else if (o.addr + o.bytes.length <= b.memory.size) b.memory.write(o.addr, o.bytes);
  } catch (e) {
    if (!(e instanceof IoFault)) throw e; // a refused access is part of the run (and of its trace)
  }
}

const pmMachine = (name: string, config: Record<string, unknown>): MachineSpec => ({ name, description: "", memory: 1 << 20, devices: [{ type: "pmtimer", id: "pmtimer", config }] });
const bhyveWith = (restore: string, restoreUptimeNs = 0): MachineSpec => ({ ...MACHINES.bhyve!, devices: MACHINES.bhyve!.devices.map((d) => (d.id === "pmtimer" ? { ...d, config: { ...d.config, restore, restoreUptimeNs } } : d)) });

/**
 * q35 without vmgenid: a restore deliberately gives vmgenid a new generation ID and notifies the
 * guest (that is its purpose), so the whole q35 bench does not continue unchanged — its PCI host,
 * ICH9 LPC and ACPI PM block (the PM timer) must.
 */
const Q35_PM: MachineSpec = { ...MACHINES.q35!, devices: MACHINES.q35!.devices.filter((d) => ["pci-host", "acpi-pm", "ich9-lpc"].includes(d.type)) };

/** Every machine a scenario can name whose restore promises continuity, plus every PM timer profile under the monotonic policy. */
const CONTINUOUS: [string, MachineSpec][] = [
  ["q35 (PCI host, LPC, ACPI PM block; vmgenid renews on restore by design)", Q35_PM],
  ...["acpi", "acpi24", "testbox", "hyperv", "bhyve-host"].map((n): [string, MachineSpec] => [n, resolveMachine(n)!]),
  ["bhyve (restore: monotonic)", bhyveWith("monotonic", 5_000_000_000)],
  ["pmtimer bhyve / monotonic", pmMachine("pm-bhyve", { profile: "bhyve", restore: "monotonic" })],
  ["pmtimer acpi 32-bit / monotonic", pmMachine("pm-acpi32", { profile: "acpi", tmrValExt: true })],
  ["pmtimer acpi 24-bit / monotonic", pmMachine("pm-acpi24", { profile: "acpi", tmrValExt: false })],
  ["pmtimer qemu / monotonic", pmMachine("pm-qemu", { profile: "qemu" })],
];

describe("PM timer: save/restore equals the uninterrupted run where the restore policy promises it", () => {
  test("every machine a scenario can name is covered here or below", () => {
    const covered = new Set(CONTINUOUS.map(([, m]) => m.name).concat("bhyve"));
    const all = ["q35", "acpi", "testbox", "hyperv", "bhyve-host", ...Object.keys(MACHINES)];
    for (const n of all) expect(covered.has(n)).toBe(true);
  });

  for (const [label, spec] of CONTINUOUS) {
    test.prop([fc.array(opArb, { maxLength: 30 }), fc.nat(), fc.integer({ min: 0, max: 2 ** 31 })], { numRuns: 60 })(`${label}: save anywhere + restore into a fresh bench = uninterrupted`, (ops, cutAt, seed) => {
      const all = spec.name === "q35" ? [...Q35_ENABLE, ...ops] : ops;
      const cut = cutAt % (all.length + 1);
      const a = new Bench(spec, scenarioKinds(), { seed });
      for (const o of all.slice(0, cut)) apply(a, o);
      const snap = saveSnapshot(a);
      for (const o of all.slice(cut)) apply(a, o);
      const b = new Bench(spec, scenarioKinds(), { seed: seed + 1 });
      const r = restoreSnapshot(b, snap);
      expect(r.ok).toBe(true);
      for (const o of all.slice(cut)) apply(b, o);
      expect(b.traceHash()).toBe(a.traceHash());
      expect(benchState(b)).toBe(benchState(a));
    });
  }

  test("issue 16 on every PM timer profile: until 1, save, restore, until 280 reads what the uninterrupted run reads", () => {
    for (const [label, spec] of CONTINUOUS.filter(([, m]) => m.devices.some((d) => d.type === "pmtimer"))) {
      const plain = new Bench(spec, scenarioKinds());
      plain.clock.runUntil(280);
      const a = new Bench(spec, scenarioKinds());
      a.clock.runUntil(1);
      const b = new Bench(spec, scenarioKinds());
      expect(restoreSnapshot(b, saveSnapshot(a)).ok).toBe(true);
      b.clock.runUntil(280);
      expect([label, b.ports.in(0x408, 4)]).toEqual([label, plain.ports.in(0x408, 4)]);
    }
  });

  test.prop([fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 40 }), fc.array(fc.oneof(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 2 ** 36 })), { minLength: 1, maxLength: 20 })], { numRuns: 300 })(
    "bhyve / bhyve-upstream (no continuity promised): every read after a restore is vpmtmr's formula with baseuptime = the destination VM's creation",
    (tSave, uptime, steps) => {
      const spec = bhyveWith("bhyve-upstream", uptime);
      const a = new Bench(spec, scenarioKinds());
      a.clock.runUntil(tSave);
      const saved = a.device<PmTimer>("pmtimer").state.baseval;
      const b = new Bench(spec, scenarioKinds());
      expect(restoreSnapshot(b, saveSnapshot(a)).ok).toBe(true);
      for (const d of steps) {
        b.clock.step(d);
        expect(BigInt(b.ports.in(0x408, 4))).toBe(refBhyve(BigInt(b.now), BigInt(tSave - uptime), BigInt(saved)));
      }
    },
  );
});
