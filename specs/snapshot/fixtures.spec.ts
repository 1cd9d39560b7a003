// Snapshot files written with older testdev state layouts (checked in, see fixtures/make-fixtures.ts)
// still restore: each device state is upgraded 1 -> 2 -> 3, and the restored bench continues exactly
// as the bench that was saved.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { inspectContainer, parseSnapshot, restoreSnapshot, restoreSnapshotFile } from "../../sim/snapshot/index.ts";
import { Bench } from "../../sim/machine/bench.ts";
import { scenarioKinds } from "../../sim/scenario/machines.ts";
import { fixtureBench, FIXTURE_TIME } from "./fixtures/make-fixtures.ts";
import { testbox } from "./helpers.ts";

const dir = join(import.meta.dirname, "fixtures");

function continueRun(b: ReturnType<typeof testbox>): number[] {
  const out: number[] = [];
  b.clock.step(4000);
  out.push(b.ports.in(0x70c, 4), b.ports.in(0x71c, 4), b.ports.in(0x708, 4));
  b.ports.out(0x71c, 4, 600);
  b.clock.step(2000);
  out.push(b.ports.in(0x71c, 4), b.memory.readUint(0x1000, 4));
  return out;
}

describe("snapshot fixtures of older device state versions", () => {
  for (const v of [1, 2, 3]) {
    it(`testbox-v${v}.snap restores with testdev state upgraded from v${v} to v3`, () => {
      const file = join(dir, `testbox-v${v}.snap`);
      const rep = inspectContainer(readFileSync(file));
      expect(rep.ok).toBe(true);
      expect(rep.chunks.filter((c) => c.type === "testdev").map((c) => c.version)).toEqual([v, v]);

      const b = testbox(5);
      const r = restoreSnapshotFile(b, file);
      if (!r.ok) throw new Error(r.error.reason);
      expect(r.value.time).toBe(FIXTURE_TIME);
      expect([...r.value.upgraded]).toEqual(v === 3 ? [] : [["t0", [v, 3]], ["t1", [v, 3]]]);

      const t0 = b.device("t0").state;
      const t1 = b.device("t1").state;
      expect(t0.regs.slice(0, 2)).toEqual([0xa1b2c3d4, 0x00c0ffee]);
      expect(t1.regs.slice(0, 2)).toEqual([0, 0x77]);
      expect(t0.ticks).toBe(7n);
      expect(t1.ticks).toBe(2n);
      expect(t0.timer.period).toBe(1000);
      expect(t1.timer.period).toBe(2500);
      expect(t0.label).toBe(v === 3 ? "t0" : "upgraded");
      // The timer handle: kept since v2, found again among the pending events for v1.
      const pending = b.clock.pendingEvents();
      expect(pending.find((e) => e.target === "t0")!.seq).toBe(t0.timer.seq);
      expect(pending.find((e) => e.target === "t1")!.seq).toBe(t1.timer.seq);
      expect(Buffer.from(b.memory.read(0x5000, 13)).toString("latin1")).toBe("hvsim fixture");

      // Continues exactly as the bench that was saved (the label does not affect the trace).
      const orig = fixtureBench();
      expect(continueRun(b)).toEqual(continueRun(orig));
      expect(b.traceHash()).toBe(orig.traceHash());
    });
  }

  it("a fixture with a device state newer than this code is refused naming the chunk", () => {
    const bytes = readFileSync(join(dir, "testbox-v3.snap"));
    const b = testbox();
    const kinds = b.kinds;
    const kind = kinds.get("testdev")!;
    // Pretend this build only knows testdev v2: the v3 file is newer.
    const older = { ...kind, stateVersion: 2 };
    (b.device("t0") as { kind: unknown }).kind = older;
    const r = restoreSnapshot(b, bytes);
    expect(r).toMatchObject({ ok: false, error: { where: "device:t0", reason: "state version 3 is newer than this hvsim understands (testdev v2)" } });
  });

  it("q35-pm.snap (PMBASE 0x600 + ACPI_EN, saved at 1 s) restores and the PM timer reads QEMU's values", () => {
    const bytes = readFileSync(join(dir, "q35-pm.snap"));
    const parsed = parseSnapshot(bytes);
    if (!parsed.ok) throw new Error(parsed.error.reason);
    // A bench of the machine as it was when the fixture was written (stored in the snapshot).
    const b = new Bench(parsed.value.machine.spec, scenarioKinds(), { seed: 77 });
    expect(b.ports.in(0x608, 4)).toBe(0xffffffff); // a fresh bench: PM block not mapped
    const r = restoreSnapshot(b, bytes);
    if (!r.ok) throw new Error(r.error.reason);
    expect(b.clock.now).toBe(1_000_000_000);
    // Golden values from QEMU 7.2 via qtest.
    expect(b.ports.in(0x608, 4)).toBe(0x369e99);
    b.clock.runUntil(1_000_000_279);
    expect(b.ports.in(0x608, 4)).toBe(0x369e99);
    b.clock.runUntil(1_000_000_280);
    expect(b.ports.in(0x608, 4)).toBe(0x369e9a);
    b.clock.runUntil(5_686_000_280);
    expect(b.ports.in(0x608, 4)).toBe(0x36910d);
  });
});
