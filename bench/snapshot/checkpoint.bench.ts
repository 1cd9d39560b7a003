// Checkpoint rollback vs full snapshot restore (issue 14): a bench with 256 MiB of touched guest
// RAM and a test device; each case call changes one guest page and one device (a register write)
// and then returns to the checkpointed moment, either by a checkpoint rollback (dirty pages,
// device states, clock) or by a full restore of a snapshot of the same moment from memory.
// Goal: rollback >= 100x the full restore. (That the two give byte-identical benches is proven by
// properties/snapshot/checkpoint.prop.ts, not here.)
//
// Run alone: npm run bench -- checkpoint
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { DeviceKinds } from "../../sim/machine/device.ts";
import { PAGE_SIZE } from "../../sim/memory/memory.ts";
import { TestdevKind } from "../../sim/devices/testdev/testdev.ts";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";
import { Checkpoint } from "../../sim/snapshot/checkpoint.ts";
import type { BenchSuite } from "../harness.ts";

const RAM = 256 << 20;
const SPEC: MachineSpec = {
  name: "cpbench",
  description: "256 MiB guest, all of it touched, one test device",
  memory: RAM,
  devices: [{ type: "testdev", id: "t0", config: { base: 0x700, dma: 0x1000 } }],
};

interface Rig {
  bench: Bench;
  snap: Uint8Array;
  cp?: Checkpoint;
}

function makeRig(): Rig {
  const kinds = new DeviceKinds();
  kinds.register(TestdevKind);
  const bench = new Bench(SPEC, kinds, { seed: 1 });
  for (let p = 0; p < RAM / PAGE_SIZE; p++) bench.memory.setPage(p, new Uint8Array(PAGE_SIZE).fill((p % 251) + 1));
  bench.ports.out(0x70c, 4, 1000);
  bench.clock.step(10_000);
  return { bench, snap: saveSnapshot(bench) };
}

let full: Rig | undefined;
let roll: Rig | undefined;
let n = 0;

/** One page and one device changed since the checkpoint. */
function change(b: Bench): void {
  n += 1;
  b.memory.writeUint(0x4000 + ((n * 8) % PAGE_SIZE), 4, n);
  b.ports.out(0x700, 4, n);
}

export const suite = {
  name: "snapshot: checkpoint rollback vs full restore, 256 MiB",
  reference: "full snapshot restore",
  goal: 100,
  goalNote: "issue 14: with one page and one device changed, rollback >= 100x a full restore of the same bench",
  setup: () => {
    full = makeRig();
    roll = makeRig();
    roll.cp = Checkpoint.take(roll.bench);
    const before = roll.bench.traceHash();
    change(roll.bench);
    const s = roll.cp.rollback();
    if (s.pages !== 1 || roll.bench.traceHash() !== before) throw new Error(`rollback put back ${s.pages} pages`);
  },
  cases: {
    "full snapshot restore": () => {
      change(full!.bench);
      const r = restoreSnapshot(full!.bench, full!.snap);
      if (!r.ok) throw new Error(r.error.reason);
    },
    "checkpoint rollback": () => {
      change(roll!.bench);
      roll!.cp!.rollback();
    },
  },
} satisfies BenchSuite;
