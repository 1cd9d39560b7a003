// Property: for any sequence of bench operations with a save at an arbitrary point, restoring that
// snapshot into a fresh bench (of another seed) and replaying the rest gives the same final trace
// hash and state as the uninterrupted run.
import { describe, expect } from "vitest";
import { test, fc } from "@fast-check/vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { restoreSnapshot, restoreSnapshotFile, saveSnapshot, saveSnapshotFile } from "../../sim/snapshot/index.ts";
import { benchState, testbox } from "../../specs/snapshot/helpers.ts";
import type { Bench } from "../../sim/machine/bench.ts";
import { IoFault } from "../../sim/bus/portio.ts";

type Op =
  | { op: "out"; port: number; size: 1 | 2 | 4; value: number }
  | { op: "in"; port: number; size: 1 | 2 | 4 }
  | { op: "step"; ns: number }
  | { op: "mem"; addr: number; bytes: Uint8Array }
  | { op: "timer"; dev: 0 | 1; period: number };

const size = fc.constantFrom(1 as const, 2 as const, 4 as const);
const port = fc.oneof(fc.integer({ min: 0x700, max: 0x71f }), fc.integer({ min: 0, max: 0xffff }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("out" as const), port, size, value: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ op: fc.constant("in" as const), port, size }),
  fc.record({ op: fc.constant("step" as const), ns: fc.integer({ min: 0, max: 5000 }) }),
  fc.record({ op: fc.constant("mem" as const), addr: fc.integer({ min: 0, max: (16 << 20) - 64 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ op: fc.constant("timer" as const), dev: fc.constantFrom(0 as const, 1 as const), period: fc.integer({ min: 0, max: 3000 }) }),
);

function apply(b: Bench, o: Op): void {
  try {
    applyOp(b, o);
  } catch (e) {
    if (!(e instanceof IoFault)) throw e; // a refused access is part of the run (and of its trace)
  }
}

function applyOp(b: Bench, o: Op): void {
  switch (o.op) {
    case "out": b.ports.out(o.port, o.size, o.value); break;
    case "in": b.ports.in(o.port, o.size); break;
    case "step": b.clock.step(o.ns); break;
    case "mem": b.memory.write(o.addr, o.bytes); break;
    case "timer": b.ports.out(o.dev ? 0x71c : 0x70c, 4, o.period); break;
  }
}

const dir = mkdtempSync(join(tmpdir(), "hvsim-prop-snap-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("snapshot round-trip property", () => {
  test.prop([fc.array(opArb, { maxLength: 40 }), fc.nat(), fc.integer({ min: 0, max: 2 ** 31 }), fc.boolean(), fc.array(opArb, { maxLength: 8 })], { numRuns: 150 })(
    "save at any point + restore into another bench (fresh or busy, from bytes or a file) = the uninterrupted run",
    (ops, cutAt, seed, viaFile, noise) => {
      const cut = ops.length ? cutAt % (ops.length + 1) : 0;
      const a = testbox(seed);
      for (const o of ops.slice(0, cut)) apply(a, o);
      const file = join(dir, "p.snap");
      const snap = viaFile ? (saveSnapshotFile(a, file), undefined) : saveSnapshot(a);
      for (const o of ops.slice(cut)) apply(a, o);

      // The target bench has a different seed and has already run the whole sequence and some
      // more (so it has pages at the same addresses, with other contents, and pages of its own).
      const b = testbox(seed + 1);
      for (const o of [...ops, ...noise]) apply(b, o);
      const r = snap ? restoreSnapshot(b, snap) : restoreSnapshotFile(b, file);
      expect(r.ok).toBe(true);
      for (const o of ops.slice(cut)) apply(b, o);
      expect(b.traceHash()).toBe(a.traceHash());
      expect(benchState(b)).toBe(benchState(a));
    },
  );
});
