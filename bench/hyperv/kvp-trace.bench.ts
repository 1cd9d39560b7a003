// The cost of the trace on the KVP SET+GET round trip (issue 14): the same round trip with the
// trace on (every record encoded and hashed; ~60 KB of message payloads per round trip) against
// the trace off. Goal: trace on >= 0.5x trace off.
//
// Run alone: npm run bench -- kvp-trace
import type { BenchSuite } from "../harness.ts";
import { lastValue, makeRig, roundTrip } from "./kvp-roundtrip.bench.ts";

let off: ReturnType<typeof makeRig> | undefined;
let on: ReturnType<typeof makeRig> | undefined;

export const suite = {
  name: "hyperv: KVP round trip, trace on vs off",
  reference: "trace off",
  goal: 0.5,
  goalNote: "issue 14: hashing the trace costs at most as much as the round trip itself",
  setup: () => {
    off = makeRig(false);
    on = makeRig(true);
    roundTrip(on);
    if (lastValue === undefined) throw new Error("the GET read nothing");
    if (on.bench.clock.trace.count === 0) throw new Error("the traced rig recorded nothing");
  },
  cases: {
    "trace off": () => roundTrip(off!),
    "trace on": () => roundTrip(on!),
  },
} satisfies BenchSuite;
