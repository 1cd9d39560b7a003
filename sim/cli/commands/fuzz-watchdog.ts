// A per-input time limit for in-process fuzz targets: the campaign runs in a worker thread that
// stores a heartbeat (a counter bumped before every execution) and the index of the input it is
// on in a SharedArrayBuffer; this thread looks at them a few times per limit. An input that is
// still running after the limit is a "hang" finding: the worker is terminated, the input is
// regenerated from (seed, run) here, and a fresh worker goes on from the next input. The
// wall-clock reading lives here, in the CLI, not in the deterministic engine (sim/fuzz).
import { Worker } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { inputFor, signatureOf, type Finding, type FuzzTarget, type Shard, type Verdict } from "../../fuzz/engine.ts";

export const K_LO = 0, K_HI = 1, BEAT = 2, STOP = 3;

export interface WorkerJob {
  readonly mode: "campaign" | "replay";
  readonly target: string;
  readonly sab: SharedArrayBuffer;
  readonly plugins: readonly string[];
  readonly seed?: number;
  readonly shard?: Shard;
  readonly start?: number;
  readonly runs?: number;
  readonly signatures?: readonly string[];
  readonly input?: Uint8Array;
}

/**
 * Modules that register extra in-process targets, from HVSIM_FUZZ_TARGETS (a path list, ':'
 * separated). A test hook: the specs register a deliberately hanging target this way; nothing
 * shipped uses it.
 */
export function pluginPaths(): string[] {
  const v = process.env.HVSIM_FUZZ_TARGETS;
  return v ? v.split(":").filter(Boolean).map((p) => resolve(p)) : [];
}

export async function loadPlugins(paths: readonly string[]): Promise<void> {
  for (const p of paths) await import(pathToFileURL(p).href);
}

const WORKER = new URL("../fuzz-worker.mjs", import.meta.url);

function spawn(job: WorkerJob): Worker {
  return new Worker(WORKER, { workerData: job, stdout: false, stderr: false });
}

export interface WatchedCampaign {
  readonly target: FuzzTarget;
  readonly seed: number;
  readonly shard: Shard;
  readonly runs: number;
  readonly limitMs: number;
  /** Wall-clock deadline (performance.now() value) or Infinity. */
  readonly deadline: number;
  readonly shouldStop: () => boolean;
  readonly onFinding: (f: Finding) => void;
  /** Called every `everyMs` with the inputs run so far. */
  readonly onProgress: (execs: number) => void;
}

export interface WatchedResult {
  readonly execs: number;
  readonly findings: Finding[];
  readonly restarts: number;
}

/** Runs a campaign in worker threads under the watchdog; resolves when it is done or stopped. */
export function runWatched(c: WatchedCampaign): Promise<WatchedResult> {
  const plugins = pluginPaths();
  const findings: Finding[] = [];
  const signatures = new Set<string>();
  let restarts = 0;
  return new Promise((resolveRun, reject) => {
    const start = (k: number) => {
      const sab = new SharedArrayBuffer(16);
      const hb = new Int32Array(sab);
      hb[K_LO] = k % 2 ** 30;
      hb[K_HI] = Math.floor(k / 2 ** 30);
      const w = spawn({ mode: "campaign", target: c.target.name, sab, plugins, seed: c.seed, shard: c.shard, start: k, runs: c.runs, signatures: [...signatures] });
      let lastBeat = -1;
      let lastChange = performance.now();
      let finished = false;
      const currentK = () => Atomics.load(hb, K_HI) * 2 ** 30 + Atomics.load(hb, K_LO);
      const stopTimer = () => clearInterval(timer);
      const timer = setInterval(() => {
        const now = performance.now();
        const b = Atomics.load(hb, BEAT);
        if (c.shouldStop() || now >= c.deadline) Atomics.store(hb, STOP, 1);
        c.onProgress(currentK());
        if (b !== lastBeat) {
          lastBeat = b;
          lastChange = now;
          return;
        }
        // Startup (module loading) is not an input: the clock starts at the first heartbeat.
        if (b === 0 || now - lastChange <= c.limitMs || finished) return;
        finished = true;
        stopTimer();
        const hk = currentK();
        void w.terminate();
        const run = c.shard.index + hk * c.shard.count;
        const gen = inputFor(c.target, c.seed, run);
        const verdict: Verdict = { kind: "hang", message: `no answer within ${c.limitMs} ms` };
        const sig = signatureOf(verdict);
        if (!signatures.has(sig)) {
          signatures.add(sig);
          const f: Finding = { target: c.target.name, seed: c.seed, run, shard: `${c.shard.index}/${c.shard.count}`, verdict, mode: gen.mode, ops: gen.ops, input: gen.bytes, minimized: gen.bytes };
          findings.push(f);
          c.onFinding(f);
        }
        if (hk + 1 >= c.runs || c.shouldStop() || performance.now() >= c.deadline) resolveRun({ execs: hk + 1, findings, restarts });
        else {
          restarts += 1;
          start(hk + 1);
        }
      }, Math.max(5, Math.min(100, c.limitMs / 4)));
      w.on("message", (m: { type: string; finding?: Finding; signature?: string; k?: number }) => {
        if (m.type === "finding" && m.finding) {
          signatures.add(signatureOf(m.finding.verdict));
          findings.push(m.finding);
          c.onFinding(m.finding);
        } else if (m.type === "done" && !finished) {
          finished = true;
          stopTimer();
          void w.terminate();
          resolveRun({ execs: m.k!, findings, restarts });
        }
      });
      w.on("error", (e) => {
        if (finished) return;
        finished = true;
        stopTimer();
        reject(e);
      });
      w.on("exit", (code) => {
        if (finished) return;
        finished = true;
        stopTimer();
        reject(new Error(`fuzz worker exited with code ${code}`));
      });
    };
    start(0);
  });
}

/** Runs one input in a worker under the same limit: its verdict, or a hang. */
export function executeWatched(target: FuzzTarget, input: Uint8Array, limitMs: number): Promise<Verdict | undefined> {
  const sab = new SharedArrayBuffer(16);
  const hb = new Int32Array(sab);
  const w = spawn({ mode: "replay", target: target.name, sab, plugins: pluginPaths(), input });
  return new Promise((resolveRun, reject) => {
    let since = -1;
    let done = false;
    const finish = (v: Verdict | undefined, e?: unknown) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      void w.terminate();
      if (e) reject(e);
      else resolveRun(v);
    };
    const timer = setInterval(() => {
      if (Atomics.load(hb, BEAT) === 0) return;
      if (since < 0) since = performance.now();
      else if (performance.now() - since > limitMs) finish({ kind: "hang", message: `no answer within ${limitMs} ms` });
    }, Math.max(5, Math.min(100, limitMs / 4)));
    w.on("message", (m: { type: string; verdict?: Verdict | null }) => finish(m.verdict ?? undefined));
    w.on("error", (e) => finish(undefined, e));
    w.on("exit", (code) => finish(undefined, new Error(`fuzz worker exited with code ${code}`)));
  });
}
