// In-process fuzz speed (issue 14 asks >= 2e5 execs/s per target): one case call = one campaign
// input (generate from (seed, run), execute, dedupe), i.e. what `hvsim fuzz TARGET` does per exec
// minus the worker's heartbeat store, after a warm-up (the pool drawn, the decoder compiled). The
// reference is the floor of touching the same inputs: a Buffer copy of pre-generated
// hv_kvp_msg-sized inputs. ops/s of a case is its execs/s.
//
// Run alone: npm run bench -- fuzz
import { Campaign, inputFor } from "../../sim/fuzz/engine.ts";
import { findInProcessTarget } from "../../sim/fuzz/all.ts";
import type { BenchSuite } from "../harness.ts";

const TARGETS = ["hv_kvp_msg", "hv_kvp_ip_msg", "hv_vss_msg", "icmsg_negotiate", "ic-frame", "ic-negotiate", "kvp-pool", "snapshot", "scenario", "vmmctl"];
const campaigns = new Map<string, Campaign>();
let inputs: Uint8Array[] = [];
let i = 0;
export let sink = 0;

export const suite = {
  name: "fuzz: in-process execs/s",
  reference: "Buffer copy of an input",
  setup: () => {
    for (const name of TARGETS) {
      const t = findInProcessTarget(name);
      if (!t) throw new Error(`no fuzz target ${name}`);
      const c = new Campaign(t, 1);
      // The first input of a campaign draws its pool of 64 structured inputs, and the first few
      // thousand run before the JIT has compiled the decoder: done here, not in the calibration of
      // the batch size (a slow first call gives a batch of 1, and one call per timed sample
      // measures the timer and the noise, not the target).
      const t0 = performance.now();
      while (performance.now() - t0 < 100) c.next();
      campaigns.set(name, c);
    }
    const kvp = findInProcessTarget("hv_kvp_msg")!;
    inputs = Array.from({ length: 1024 }, (_, k) => inputFor(kvp, 1, k).bytes);
  },
  cases: {
    "Buffer copy of an input": () => {
      sink += Buffer.from(inputs[i++ & 1023]!).length;
    },
    ...Object.fromEntries(TARGETS.map((name) => [name, () => void campaigns.get(name)!.next()])),
  },
} satisfies BenchSuite;
