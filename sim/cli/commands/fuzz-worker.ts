// The body of a fuzz worker thread: runs a campaign (or one replayed input) on an in-process
// target and tells the main thread how far it is through a SharedArrayBuffer heartbeat, one
// Atomics.store per execution, so that the main thread can notice an input that never returns
// (see fuzz-watchdog.ts). Everything deterministic stays in sim/fuzz; this file only moves data.
import { parentPort, workerData } from "node:worker_threads";
import { Campaign, type Finding, type Shard } from "../../fuzz/engine.ts";
import { findInProcessTarget } from "../../fuzz/all.ts";
import { BEAT, K_HI, K_LO, STOP, loadPlugins, type WorkerJob } from "./fuzz-watchdog.ts";

const job = workerData as WorkerJob;
const hb = new Int32Array(job.sab);
await loadPlugins(job.plugins);
const target = findInProcessTarget(job.target);
if (!target) throw new Error(`unknown fuzz target '${job.target}'`);
let beats = 0;
const beat = () => void Atomics.store(hb, BEAT, ++beats);
const post = (m: unknown) => parentPort!.postMessage(m);

if (job.mode === "replay") {
  beat();
  const v = target.execute(job.input!);
  post({ type: "verdict", verdict: v ?? null });
} else {
  const shard: Shard = job.shard!;
  const c = new Campaign(target, job.seed!, shard, { start: job.start!, signatures: job.signatures!, beat });
  const runs = job.runs!;
  const LO = 2 ** 30;
  while (c.k < runs) {
    const k = c.k;
    const lo = k % LO;
    if (lo === 0) Atomics.store(hb, K_HI, k / LO);
    Atomics.store(hb, K_LO, lo);
    if ((k & 255) === 0 && Atomics.load(hb, STOP)) break;
    const f: Finding | undefined = c.next();
    if (f) post({ type: "finding", finding: f, signature: [...c.signatures].pop() });
  }
  post({ type: "done", k: c.k });
}
