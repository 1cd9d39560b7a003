// Snapshot throughput: one case call = a full save of a bench with 256 MiB of touched (non-zero)
// guest memory to a temp file plus a restore of that file into a second bench, against the floor
// of the same work: copying the same 256 MiB into a fresh Buffer and writing it to a file.
// Goal: hvsim at least half as fast as the reference.
//
// Run alone (benchmark.js): npx tsx bench/snapshot/save-restore.bench.ts
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Benchmark from "benchmark";
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { DeviceKinds } from "../../sim/machine/device.ts";
import { PAGE_SIZE } from "../../sim/memory/memory.ts";
import { TestdevKind } from "../../sim/devices/testdev/testdev.ts";
import { restoreSnapshotFile, saveSnapshotFile } from "../../sim/snapshot/index.ts";

const TOUCHED = 256 << 20;
const SPEC: MachineSpec = {
  name: "snapbench",
  description: "512 MiB guest, 256 MiB of it touched, one test device",
  memory: 512 << 20,
  devices: [{ type: "testdev", id: "t0", config: { base: 0x700, dma: 0x1000 } }],
};

interface State { dir: string; src: Bench; dst: Bench; flat: Buffer; snapFile: string; refFile: string }
let st: State | undefined;

function setup(): State {
  if (st) return st;
  const kinds = new DeviceKinds();
  kinds.register(TestdevKind);
  const src = new Bench(SPEC, kinds, { seed: 1 });
  const dst = new Bench(SPEC, kinds, { seed: 2 });
  // The same bytes twice: in the bench as 65536 sparse pages, and as one flat buffer for the reference.
  const flat = Buffer.allocUnsafe(TOUCHED);
  for (let i = 0; i < TOUCHED; i += 4) flat.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let p = 0; p < TOUCHED / PAGE_SIZE; p++) {
    // Every other 4 KiB page of the first 512 MiB: sparse, but 256 MiB in total.
    src.memory.setPage(p * 2, Uint8Array.prototype.slice.call(flat, p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
  }
  src.ports.out(0x70c, 4, 1000);
  src.clock.step(10_000);
  const dir = mkdtempSync(join(tmpdir(), "hvsim-bench-snap-"));
  st = { dir, src, dst, flat, snapFile: join(dir, "bench.snap"), refFile: join(dir, "ref.bin") };
  // The harness has no teardown: remove the two 256 MiB files when the process ends.
  process.once("exit", teardown);
  return st;
}

function teardown(): void {
  if (st) rmSync(st.dir, { recursive: true, force: true });
  st = undefined;
}

export const suite = {
  name: "snapshot: save+restore 256 MiB",
  reference: "buffer copy + write",
  goal: 0.5,
  goalNote: "save (gathered write of the live pages, CRC-32 over memory, SHA-256 over the rest) + verified restore of the file, vs one 256 MiB Buffer copy + writeFile",
  setup: (): void => void setup(),
  cases: {
    hvsim: () => {
      const s = setup();
      saveSnapshotFile(s.src, s.snapFile);
      const r = restoreSnapshotFile(s.dst, s.snapFile);
      if (!r.ok) throw new Error(r.error.reason);
    },
    "buffer copy + write": () => {
      const s = setup();
      const copy = Buffer.from(s.flat);
      writeFileSync(s.refFile, copy);
    },
  },
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  setup();
  const b = new Benchmark.Suite(suite.name);
  for (const [name, fn] of Object.entries(suite.cases)) b.add(name, fn, { maxTime: 8, minSamples: 5 });
  const hz: Record<string, number> = {};
  b.on("cycle", (e: Benchmark.Event) => {
    const t = e.target as unknown as Benchmark;
    hz[t.name!] = t.hz;
    process.stdout.write(`${t.name}: ${(1000 / t.hz).toFixed(1)} ms/op ±${t.stats.rme.toFixed(1)}% (${t.stats.sample.length} samples)\n`);
  });
  b.on("complete", () => {
    const ratio = hz.hvsim! / hz[suite.reference]!;
    process.stdout.write(`ratio hvsim / ${suite.reference} = ${ratio.toFixed(2)} (goal >= ${suite.goal})\n`);
    teardown();
  });
  b.run();
}
