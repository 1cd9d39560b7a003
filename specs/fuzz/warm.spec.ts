// The vmmctl fuzz target starts every input from one warm state (a bhyve host with /dev/vmmctl
// open) by a checkpoint rollback: after any input the bench is byte for byte the warm state again,
// so an input's verdict does not depend on the inputs before it (findings replay alone).
import { describe, expect, it } from "vitest";
import { inputFor } from "../../sim/fuzz/engine.ts";
import { findInProcessTarget } from "../../sim/fuzz/all.ts";
import { makeWarm } from "../../sim/fuzz/formats.ts";
import { saveSnapshot } from "../../sim/snapshot/index.ts";
import { Bench } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import type { VmmDevice } from "../../sim/devices/vmm/vmm.ts";

describe("vmmctl target: inputs from a warm state", () => {
  it("after each input the bench is the warm state again, and verdicts match a fresh bench per input", () => {
    const t = findInProcessTarget("vmmctl")!;
    const w = makeWarm();
    if (typeof w === "string") throw new Error(w);
    const warmSnap = saveSnapshot(w.bench);
    for (let run = 0; run < 60; run++) {
      const input = inputFor(t, 9, run).bytes;
      const v = t.execute(input);
      // The same input on a bench built from nothing (what the target did before checkpoints).
      const fresh = new Bench(MACHINES["bhyve-host"]!, defaultKinds());
      const dev = fresh.device<VmmDevice>("vmm");
      const o = dev.open("/dev/vmmctl", "rw");
      if (!("fd" in o)) throw new Error("open failed");
      const cmd = input.length >= 4 ? new DataView(input.buffer, input.byteOffset).getUint32(0, true) : 0;
      const r = dev.ioctl(o.fd, cmd, input.subarray(4));
      if (r.status === "pending") fresh.clock.step(10_000_000_000);
      expect(v, `run ${run}`).toEqual(dev.invariants().length ? expect.anything() : undefined);
      // Our own warm bench, run the same way and rolled back, equals the warm snapshot.
      const r2 = w.dev.ioctl(w.fd, cmd, input.subarray(4));
      if (r2.status === "pending") w.bench.clock.step(10_000_000_000);
      expect(r2.status === "pending" ? "pending" : r2.errno).toBe(r.status === "pending" ? "pending" : r.errno);
      w.cp.rollback();
      expect(Buffer.compare(saveSnapshot(w.bench), warmSnap), `run ${run}`).toBe(0);
    }
    w.cp.release();
  });
});
