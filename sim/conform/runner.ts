// Runs conformance checks on targets and collects outcomes. Checks are declared in
// specs/**/*.check.ts (each file exports `checks: Check[]`); targets are built from names.
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import type { Capability, Check, Outcome, QtestMachine, Target, TargetOptions } from "./types.ts";
import { modelTarget } from "./model-target.ts";

export interface CheckResult {
  readonly id: string;
  readonly suite: string;
  readonly title: string;
  readonly outcome: Outcome;
  /** Wall-clock milliseconds the check took (reporting only; not part of the simulation). */
  readonly ms: number;
}

export interface TargetReport {
  /** The target's label: its name in a targets file, else the target as given. */
  readonly target: string;
  /** The target as given ("qtest:./mytimer", "hv-daemon:kvp"); absent in reports from before it. */
  readonly spec?: string;
  readonly description: string;
  /** As declared (targets file or --machine), when declared. */
  readonly machine?: QtestMachine;
  /** Capabilities declared missing (--lacks, `lacks:`), when any. */
  readonly lacks?: readonly Capability[];
  /** undefined when usable, else why the whole target was skipped (or could not start). */
  readonly unavailable?: string;
  /**
   * Set when a target the user named (--target, a targets file) could not start: no check ran and
   * the target counts as one error; never a row of skips.
   */
  readonly startError?: string;
  /** Wall-clock milliseconds spent on the target (reporting only). */
  readonly ms?: number;
  readonly results: CheckResult[];
}

export interface ConformReport {
  readonly seed: number;
  readonly targets: TargetReport[];
}

export type TargetFactory = (spec: string, seed: number, opts: TargetOptions) => Target | undefined;

const factories: TargetFactory[] = [(spec, seed) => (spec === "model" ? modelTarget(seed) : undefined)];

/** Adds a way to build targets from names (qtest:..., hv-daemon:...). */
export function registerTargetFactory(f: TargetFactory): void {
  factories.push(f);
}

/**
 * The target named `spec`, or undefined when no factory knows the name. Capabilities declared in
 * `opts.lacks` are taken away here, whatever the factory, so the checks needing them do not apply.
 */
export function makeTarget(spec: string, seed: number, opts: TargetOptions = {}): Target | undefined {
  for (const f of factories) {
    const t = f(spec, seed, opts);
    if (t) return opts.lacks?.length ? withoutCapabilities(t, opts.lacks) : t;
  }
  return undefined;
}

/** `t` with `lacks` removed from its capabilities; every other member is `t`'s own. */
export function withoutCapabilities(t: Target, lacks: readonly Capability[]): Target {
  const caps: ReadonlySet<Capability> = new Set([...t.capabilities].filter((c) => !lacks.includes(c)));
  return new Proxy(t, {
    get(obj, prop) {
      if (prop === "capabilities") return caps;
      const v: unknown = Reflect.get(obj, prop, obj);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(obj) : v;
    },
  });
}

export const REPO_ROOT = new URL("../../", import.meta.url).pathname;

function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith(".check.ts")) out.push(p);
  }
}

/** Every check declared under specs/, sorted by id. */
export async function loadChecks(root = REPO_ROOT): Promise<Check[]> {
  const files: string[] = [];
  walk(join(root, "specs"), files);
  const all: Check[] = [];
  for (const f of files.sort()) {
    const mod = (await import(pathToFileURL(f).href)) as { checks?: Check[] };
    if (!Array.isArray(mod.checks)) throw new Error(`${relative(root, f)} does not export 'checks'`);
    all.push(...mod.checks);
  }
  const ids = new Set<string>();
  for (const c of all) {
    if (ids.has(c.id)) throw new Error(`two conformance checks are named ${c.id}`);
    ids.add(c.id);
  }
  return all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A target to run, with what the report says about it. */
export interface TargetRun {
  readonly target: Target;
  /** The report's name for it (a targets file's `name`); default the target's own name. */
  readonly label?: string;
  /**
   * Named by the user (--target, a targets file): when it cannot start, the report says so as one
   * error and no check is listed. Otherwise (a default candidate) its checks are skipped with the reason.
   */
  readonly required?: boolean;
  /** What was declared about it (machine, lacks), for the report. */
  readonly options?: TargetOptions;
  /** The result of target.available() when already probed (it is not probed twice). */
  readonly available?: true | string;
}

export interface RunOptions {
  readonly seed: number;
  readonly onResult?: (target: string, r: CheckResult, index: number, total: number) => void;
  /** Wall-clock milliseconds, supplied by the caller (the CLI) for durations in reports. */
  readonly wallMs?: () => number;
}

const isTarget = (x: Target | TargetRun): x is Target => "capabilities" in x;

export async function runConformance(targets: readonly (Target | TargetRun)[], checks: readonly Check[], opts: RunOptions): Promise<ConformReport> {
  const model = modelTarget(opts.seed);
  const reports: TargetReport[] = [];
  const wall = opts.wallMs ?? (() => 0);
  for (const entry of targets) {
    const run: TargetRun = isTarget(entry) ? { target: entry } : entry;
    const target = run.target;
    const tStart = wall();
    const avail = run.available ?? (await target.available());
    const head = {
      target: run.label ?? target.name,
      spec: target.name,
      description: target.description,
      ...(run.options?.machine ? { machine: run.options.machine } : {}),
      ...(run.options?.lacks?.length ? { lacks: [...run.options.lacks] } : {}),
    };
    if (avail !== true && run.required) {
      reports.push({ ...head, unavailable: avail, startError: avail, ms: Math.round(wall() - tStart), results: [] });
      continue;
    }
    const results: CheckResult[] = [];
    let i = 0;
    for (const c of checks) {
      i += 1;
      const missing = c.needs.filter((n) => !target.capabilities.has(n));
      let outcome: Outcome;
      const t0 = wall();
      if (avail !== true) outcome = { status: "skipped", detail: `target unavailable: ${avail}` };
      else if (missing.length) outcome = { status: "skipped", detail: `${target.name} lacks ${missing.join(", ")}`, applicable: false };
      else {
        try {
          outcome = await c.run({ target, model, seed: opts.seed });
        } catch (e) {
          outcome = { status: "failed", detail: `error: ${(e as Error).message}` };
        }
        outcome = withAfterCheck(outcome, target.afterCheck?.());
      }
      const r: CheckResult = { id: c.id, suite: c.suite, title: c.title, outcome, ms: Math.round(wall() - t0) };
      results.push(r);
      opts.onResult?.(head.target, r, i, checks.length);
    }
    const ms = Math.round(wall() - tStart);
    reports.push(avail === true ? { ...head, ms, results } : { ...head, unavailable: avail, ms, results });
  }
  return { seed: opts.seed, targets: reports };
}

/** A check's outcome with what the target reported after it (Target.afterCheck). */
function withAfterCheck(o: Outcome, after: { failures: string[]; notes: string[] } | undefined): Outcome {
  if (!after || o.status === "skipped") return o;
  const deviations = o.deviations ? { deviations: o.deviations } : {};
  if (after.failures.length) {
    const own = o.status === "failed" ? `; the check itself: ${o.detail}` : "";
    return { status: "failed", detail: `${after.failures.join("; ")}${own}`, ...deviations };
  }
  if (!after.notes.length) return o;
  return { ...o, detail: [o.detail, ...after.notes].filter(Boolean).join("; ") };
}

export interface Counts {
  readonly passed: number;
  readonly failed: number;
  /** Checks that apply to the target but did not run, each with its reason. */
  readonly skipped: number;
  /** Checks the target cannot run at all (it lacks a capability they need): not counted elsewhere. */
  readonly notApplicable: number;
  /** 1 when a target the user named could not start (no check ran), else 0. */
  readonly errors: number;
  readonly deviations: number;
}

export function counts(r: TargetReport): Counts {
  const c = { passed: 0, failed: 0, skipped: 0, notApplicable: 0, errors: r.startError !== undefined ? 1 : 0, deviations: 0 };
  for (const x of r.results) {
    if (x.outcome.status === "skipped" && x.outcome.applicable === false) c.notApplicable += 1;
    else c[x.outcome.status] += 1;
    if (x.outcome.status !== "skipped") c.deviations += x.outcome.deviations?.length ?? 0;
  }
  return c;
}

/** True when any check failed or a named target could not start: the run's exit status is 1. */
export function anyFailure(r: ConformReport): boolean {
  return r.targets.some((t) => {
    const c = counts(t);
    return c.failed > 0 || c.errors > 0;
  });
}
