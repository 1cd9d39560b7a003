// Property: a checkpoint rollback is a full snapshot restore, cheaper. For any run with a
// checkpoint (and a snapshot saved) at an arbitrary point, then more operations, rolling back
// gives byte-for-byte the bench that restoring the snapshot gives (trace hash, clock, pending
// events, RNG, memory, interrupt lines, device states), and both continue identically; rolling
// back again after other operations gives it again.
import { describe, expect } from "vitest";
import { test, fc } from "@fast-check/vitest";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";
import { Checkpoint } from "../../sim/snapshot/checkpoint.ts";
import { benchState, testbox } from "../../specs/snapshot/helpers.ts";
import type { Bench } from "../../sim/machine/bench.ts";
import { IoFault } from "../../sim/bus/portio.ts";

type Op =
  | { op: "out"; port: number; size: 1 | 2 | 4; value: number }
  | { op: "in"; port: number; size: 1 | 2 | 4 }
  | { op: "step"; ns: number }
  | { op: "mem"; addr: number; bytes: Uint8Array }
  | { op: "fill"; addr: number; len: number; value: number }
  | { op: "timer"; dev: 0 | 1; period: number };

const size = fc.constantFrom(1 as const, 2 as const, 4 as const);
const port = fc.oneof(fc.integer({ min: 0x700, max: 0x71f }), fc.integer({ min: 0, max: 0xffff }));
// Addresses concentrated on a few pages (so runs rewrite pages the checkpoint holds) and the DMA page.
const addr = fc.oneof(fc.integer({ min: 0, max: 4 * 4096 }), fc.integer({ min: 0, max: (16 << 20) - 9000 }), fc.constant(0x1000));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("out" as const), port, size, value: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ op: fc.constant("in" as const), port, size }),
  fc.record({ op: fc.constant("step" as const), ns: fc.integer({ min: 0, max: 5000 }) }),
  fc.record({ op: fc.constant("mem" as const), addr, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ op: fc.constant("fill" as const), addr, len: fc.integer({ min: 1, max: 8192 }), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant("timer" as const), dev: fc.constantFrom(0 as const, 1 as const), period: fc.integer({ min: 0, max: 3000 }) }),
);

function apply(b: Bench, o: Op): void {
  try {
    switch (o.op) {
      case "out": b.ports.out(o.port, o.size, o.value); break;
      case "in": b.ports.in(o.port, o.size); break;
      case "step": b.clock.step(o.ns); break;
      case "mem": b.memory.write(o.addr, o.bytes); break;
      case "fill": b.memory.fill(o.addr, o.len, o.value); break;
      case "timer": b.ports.out(o.dev ? 0x71c : 0x70c, 4, o.period); break;
    }
  } catch (e) {
    if (!(e instanceof IoFault)) throw e; // a refused access is part of the run (and of its trace)
  }
}

describe("checkpoint rollback = full snapshot restore", () => {
  test.prop([fc.array(opArb, { maxLength: 30 }), fc.array(opArb, { maxLength: 30 }), fc.array(opArb, { maxLength: 15 }), fc.array(opArb, { maxLength: 15 }), fc.integer({ min: 0, max: 2 ** 31 })], { numRuns: 150 })(
    "trace and state byte-identical, and both continue alike",
    (before, after, again, tail, seed) => {
      const a = testbox(seed);
      for (const o of before) apply(a, o);
      const snap = saveSnapshot(a);
      const cp = Checkpoint.take(a);
      for (const o of after) apply(a, o);
      cp.rollback();

      // The reference: a bench of another seed that ran other things, then a full restore.
      const b = testbox(seed + 1);
      for (const o of [...after, ...before]) apply(b, o);
      const r = restoreSnapshot(b, snap);
      expect(r.ok).toBe(true);
      expect(benchState(a)).toBe(benchState(b));
      expect(Buffer.compare(saveSnapshot(a), saveSnapshot(b))).toBe(0);

      // Roll back a second time after other operations (the checkpoint stays valid).
      for (const o of again) apply(a, o);
      cp.rollback();
      expect(benchState(a)).toBe(benchState(b));

      for (const o of tail) {
        apply(a, o);
        apply(b, o);
      }
      expect(a.traceHash()).toBe(b.traceHash());
      expect(benchState(a)).toBe(benchState(b));
      cp.release();
    },
  );
});
