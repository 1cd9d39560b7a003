// Hyper-V KVP throughput on the virtual clock: one case call = a host KVP SET followed by a GET of
// the same key, each a full round trip host -> hv_utils (IC framing, UTF-16 -> UTF-8) -> the
// hv_kvp_daemon model (pool file update / lookup) -> hv_utils (UTF-8 -> UTF-16) -> host, every hop
// a clock event. The reference is the bare wire codec doing decode + encode of the same two
// 7432-byte hv_kvp_msg payloads, i.e. the floor of any work on these messages.
//
// Run alone: npm run bench -- hyperv
import { Bench } from "../../sim/machine/bench.ts";
import { codec } from "../../sim/wire/codec.ts";
import { hv_kvp_msg } from "../../sim/wire/hyperv.ts";
import { KVP_OP_GET, KVP_OP_SET } from "../../sim/wire/hyperv-constants.ts";
import { buildHostKvp, hypervKinds, hypervMachine, type HypervHost } from "../../sim/devices/hyperv/index.ts";
import type { BenchSuite } from "../harness.ts";

const KEY = "VirtualMachineName";
const VALUE = "hvsim-guest-01.example.internal";

interface Rig {
  bench: Bench;
  host: HypervHost;
}

export function makeRig(trace: boolean): Rig {
  const bench = new Bench(hypervMachine({ vssDaemon: false, host: { keepAnswers: 8 }, profile: "spec" }), hypervKinds(), { seed: 1, trace });
  const host = bench.device<HypervHost>("host");
  host.negotiate("kvp");
  while (bench.clock.nextAt !== undefined) bench.clock.runNext();
  return { bench, host };
}

let quiet: Rig | undefined;
let traced: Rig | undefined;
export let lastValue: unknown;

export function roundTrip(r: Rig): void {
  r.host.kvpSet(0, KEY, VALUE);
  const get = r.host.kvpGet(0, KEY);
  const c = r.bench.clock;
  while (!r.host.idle("kvp")) c.runNext();
  lastValue = r.host.answer("kvp", get)?.result.value;
}

const kvp = codec(hv_kvp_msg);
const setMsg = buildHostKvp({ op: "set", pool: 0, key: KEY, value: VALUE }, KVP_OP_SET);
const getMsg = buildHostKvp({ op: "get", pool: 0, key: KEY }, KVP_OP_GET);
let sink: Uint8Array = new Uint8Array(0);

function codecCase(): void {
  for (const m of [setMsg, getMsg]) {
    const d = kvp.decode(m);
    if (!d.ok) throw new Error("decode failed");
    sink = kvp.encode(d.value);
  }
}

export const suite = {
  name: "hyperv: KVP SET+GET round trip",
  reference: "codec decode+encode of the two messages",
  setup: () => {
    quiet = makeRig(false);
    traced = makeRig(true);
    roundTrip(quiet);
    if (lastValue !== VALUE) throw new Error(`the GET read ${JSON.stringify(lastValue)}, not the value SET`);
    codecCase();
    if (sink.length !== 7432) throw new Error("codec round trip lost bytes");
  },
  cases: {
    "three actors, trace off": () => roundTrip(quiet!),
    "three actors, trace on": () => roundTrip(traced!),
    "codec decode+encode of the two messages": codecCase,
  },
} satisfies BenchSuite;
