// Real-daemon fuzzing against the physical limit of the device bridge (issue 14): execs/s of the
// harness `hvsim fuzz hv-daemon:kvp` uses (DaemonFuzzer, sim/targets/hvdaemon/fuzz.ts) on Debian's
// hv_kvp_daemon, against the same harness, inputs and bridge (shim, relay, sandbox) with a
// trivial C daemon in the daemon's place (bench/hyperv/kvp-echo-daemon.c, compiled here into the
// hvsim cache): it registers as hv_kvp_daemon does and answers every message with one fixed
// 7432-byte write, so an exec there is exactly the bridge's round trip (deliver, poll, read,
// write, the write's result) and nothing of a daemon. Goal: the real daemon >= 0.5x of it. The
// real daemon's rate includes what a campaign pays for its findings: a daemon that exits on a
// message is restarted and registered again before the next input.
//
// The harness runs synchronous cases; the bridge is event-driven. So both fuzzers live in a
// worker thread (daemon-fuzz-worker.ts) and one case call posts one exec to it and Atomics.waits
// for the answer: the same constant hand-off (tens of microseconds) is in both cases.
//
// Run alone: node sim/cli/bin.mjs bench daemon-fuzz
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { compileCProgram } from "../../sim/targets/hvdaemon/build.ts";
import { DaemonBridge } from "../../sim/targets/hvdaemon/bridge.ts";
import type { BenchSuite } from "../harness.ts";

const SEED = 1;
const WAIT_MS = 60_000;
const shared = new SharedArrayBuffer(8 + 4096);
const status = new Int32Array(shared, 0, 2);
const text = new Uint8Array(shared, 8);
let worker: Worker | undefined;
export let lastKind = "";

/** Posts one request to the worker and waits for its answer; returns the answer's text. */
function call(message: object): string {
  if (!worker) throw new Error("the daemon-fuzz worker is not running");
  Atomics.store(status, 0, 0);
  worker.postMessage(message);
  if (Atomics.wait(status, 0, 0, WAIT_MS) === "timed-out") throw new Error(`the daemon-fuzz worker did not answer ${JSON.stringify(message)} within ${WAIT_MS} ms`);
  const out = new TextDecoder().decode(text.slice(0, Atomics.load(status, 1)));
  if (Atomics.load(status, 0) !== 1) throw new Error(`daemon-fuzz worker: ${out}`);
  return out;
}

function stop(): void {
  if (!worker) return;
  try {
    call({ close: true });
  } catch {
    // the worker is gone: its daemons die with their relay's EOF
  }
  void worker.terminate();
  worker = undefined;
}

/** The campaign counters so far (inputs per fuzzer, restarts, findings), for a look after a run. */
export function stats(): string {
  return call({ stats: true });
}

export const suite = {
  name: "hyperv: real-daemon fuzz execs/s vs the bridge's round trip",
  reference: "echo daemon (bridge round trip)",
  goal: 0.5,
  goalNote: "hv_kvp_daemon fuzz execs/s >= 0.5x the same bridge with a trivial echo daemon (issue 14)",
  available(): true | string {
    const a = DaemonBridge.available();
    return a.ok ? true : a.reason;
  },
  setup(): void {
    const echo = compileCProgram("kvp-echo-daemon", readFileSync(new URL("./kvp-echo-daemon.c", import.meta.url), "utf8"));
    worker = new Worker(new URL("./daemon-fuzz-worker.mjs", import.meta.url), { workerData: { echo, shared, seed: SEED } });
    worker.unref();
    process.once("exit", stop);
    // Start and register both daemons before anything is timed.
    call({ which: "echo" });
    call({ which: "real" });
  },
  cases: {
    "echo daemon (bridge round trip)": () => void (lastKind = call({ which: "echo" })),
    "hv_kvp_daemon fuzz exec (real daemon)": () => void (lastKind = call({ which: "real" })),
  },
} satisfies BenchSuite;
