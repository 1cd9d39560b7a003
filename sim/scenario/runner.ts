// Running a scenario: build the bench from the scenario's machine and seed, run the steps in order
// (running the clock to a step's `at` first), stop at the first failed assertion or error.
import { dirname, isAbsolute, resolve as resolvePath } from "node:path";
import { Bench } from "../machine/bench.ts";
import type { DeviceKinds } from "../machine/device.ts";
import type { TraceListener } from "../clock/trace.ts";
import { loadScenarioFile, type Scenario, type ScenarioIssue } from "./loader.ts";
import { StepAssertion, getStepType, type StepContext } from "./registry.ts";
import { scenarioKinds } from "./machines.ts";

export interface RunOptions {
  /** Overrides the scenario's seed. */
  seed?: number;
  /**
   * Directory that relative snapshot file names resolve against (default: the scenario file's own
   * folder; the current directory for a scenario read from standard input, file "-").
   */
  snapshotDir?: string;
  /** Called once the bench is built, before the first step (nothing is written before it). */
  onStart?: () => void;
  /** Receives every trace record as it is appended. */
  onTrace?: TraceListener;
  /** Receives commentary lines (snapshot saved/restored, notes). */
  onNote?: (text: string) => void;
  kinds?: DeviceKinds;
}

export interface StepFailure {
  /** 1-based step number, as people count. */
  readonly step: number;
  readonly line: number;
  readonly column: number;
  /** e.g. "inl 0x608". */
  readonly text: string;
  readonly message: string;
  /** Set for a failed assertion. */
  readonly expected?: string;
  readonly actual?: string;
  /** Virtual time when the step failed. */
  readonly time: number;
}

export function formatFailure(file: string, f: StepFailure): string {
  const head = `${file}:${f.line}:${f.column}: step ${f.step} (${f.text}) at t=${f.time} ns`;
  return f.expected !== undefined ? `${head}: assertion failed: expected ${f.expected}, actual ${f.actual}` : `${head}: ${f.message}`;
}

export type RunResult =
  | { readonly status: "ok"; readonly traceHash: string; readonly bench: Bench; readonly vars: ReadonlyMap<string, number | bigint | string> }
  | { readonly status: "failed"; readonly traceHash: string; readonly bench: Bench; readonly failure: StepFailure }
  | { readonly status: "invalid"; readonly issues: readonly ScenarioIssue[] };

export function runScenario(scn: Scenario, opts: RunOptions = {}): RunResult {
  let bench: Bench;
  try {
    bench = new Bench(scn.machine, opts.kinds ?? scenarioKinds(), { seed: opts.seed ?? scn.seed });
  } catch (e) {
    const at = scn.devicesAt ?? scn.machineAt;
    return { status: "invalid", issues: [{ file: scn.file, ...at, message: `cannot build machine ${scn.machine.name}: ${(e as Error).message}` }] };
  }
  opts.onStart?.();
  const unlisten = opts.onTrace ? bench.clock.trace.listen(opts.onTrace) : undefined;
  const vars = new Map<string, number | bigint | string>();
  const dir = opts.snapshotDir ?? (scn.file === "-" ? process.cwd() : dirname(resolvePath(scn.file)));
  try {
    for (const s of scn.steps) {
      const ctx: StepContext = {
        bench,
        index: s.index,
        line: s.line,
        vars,
        resolvePath: (f) => (isAbsolute(f) ? f : resolvePath(dir, f)),
        note: (text) => opts.onNote?.(`step ${s.index + 1} (line ${s.line}): ${text}`),
      };
      try {
        if (s.note) ctx.note(s.note);
        if (s.at !== undefined) {
          if (s.at < bench.clock.now) throw new Error(`at: ${s.at} ns is before the current time ${bench.clock.now} ns`);
          bench.clock.runUntil(s.at);
        }
        getStepType(s.type)!.execute(s.args, ctx);
      } catch (e) {
        const base = { step: s.index + 1, line: s.line, column: s.column, text: s.text, time: bench.clock.now };
        const failure: StepFailure = e instanceof StepAssertion
          ? { ...base, message: e.message, expected: e.expected, actual: e.actual }
          : { ...base, message: `${(e as Error).name && (e as Error).name !== "Error" && (e as Error).name !== "StepError" ? `${(e as Error).name}: ` : ""}${(e as Error).message ?? String(e)}` };
        return { status: "failed", traceHash: bench.traceHash(), bench, failure };
      }
    }
  } finally {
    unlisten?.();
  }
  return { status: "ok", traceHash: bench.traceHash(), bench, vars };
}

export function runScenarioFile(file: string, opts: RunOptions = {}): RunResult {
  const r = loadScenarioFile(file);
  if (!r.ok) return { status: "invalid", issues: r.issues };
  return runScenario(r.scenario, opts);
}
