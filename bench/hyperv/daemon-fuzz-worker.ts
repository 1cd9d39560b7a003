// The asynchronous side of bench/hyperv/daemon-fuzz.bench.ts, in a worker thread: it owns two
// DaemonFuzzers (sim/targets/hvdaemon/fuzz.ts, the harness of `hvsim fuzz hv-daemon:kvp`) — one
// on Debian's hv_kvp_daemon, one on the trivial echo daemon — and runs one campaign exec per
// request: the input of (seed, run) from the hv_kvp_msg generator, execute (restarting the daemon
// after a finding, as the campaign does), and the campaign's de-duplication key. Findings are
// not shrunk here (a campaign shrinks at most 5 of them). Requests arrive by postMessage; the
// answer is a status word in shared memory, so the bench's synchronous case can Atomics.wait.
import { parentPort, workerData } from "node:worker_threads";
import { inputFor } from "../../sim/fuzz/engine.ts";
import { DaemonFuzzer } from "../../sim/targets/hvdaemon/fuzz.ts";

interface Data {
  readonly echo: string;
  readonly shared: SharedArrayBuffer;
  readonly seed: number;
}

const { echo, shared, seed } = workerData as Data;
const status = new Int32Array(shared, 0, 2);
const text = new Uint8Array(shared, 8);
const fuzzers = { real: new DaemonFuzzer("kvp", 2000), echo: new DaemonFuzzer("kvp", 2000, echo) };
const gen = fuzzers.real.generatorTarget();
const runs = { real: 0, echo: 0 };
const seen = new Set<string>();
let findings = 0;

function answer(code: number, message = ""): void {
  const bytes = new TextEncoder().encode(message).subarray(0, text.length);
  text.set(bytes);
  Atomics.store(status, 1, bytes.length);
  Atomics.store(status, 0, code);
  Atomics.notify(status, 0);
}

async function step(which: "real" | "echo"): Promise<string> {
  const fz = fuzzers[which];
  const g = inputFor(gen, seed, runs[which]++);
  const v = await fz.execute(g.bytes);
  if (!v) return "";
  if (which === "echo") throw new Error(`the echo daemon gave a verdict: ${v.kind}: ${v.message}`);
  // The campaign's de-duplication key (runDaemonCampaign).
  const key = `${v.kind}:${v.message.replace(/op \d+ pool \d+/, "").replace(/\bindex \d+/, "index N").replace(/size=-?\d+/, "size=N")}`;
  if (!seen.has(key)) seen.add(key);
  findings++;
  return v.kind;
}

parentPort!.on("message", (m: { which?: "real" | "echo"; stats?: true; close?: true }) => {
  if (m.close) {
    void Promise.all([fuzzers.real.close(), fuzzers.echo.close()]).then(() => answer(1));
    return;
  }
  if (m.stats) {
    answer(1, JSON.stringify({ runs, restarts: { real: fuzzers.real.restarts, echo: fuzzers.echo.restarts }, findings, distinct: seen.size }));
    return;
  }
  step(m.which!).then(
    (kind) => answer(1, kind),
    (e: unknown) => answer(2, e instanceof Error ? (e.stack ?? e.message) : String(e)),
  );
});
