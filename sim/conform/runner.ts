// Runs conformance checks on targets and collects outcomes. Checks are declared in
// specs/**/*.check.ts (each file exports `checks: Check[]`); targets are built from names.
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import type { Check, Outcome, Target, TargetOptions } from "./types.ts";
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
  readonly target: string;
  readonly description: string;
  /** undefined when usable, else why the whole target was skipped. */
  readonly unavailable?: string;
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

export function makeTarget(spec: string, seed: number, opts: TargetOptions = {}): Target | undefined {
  for (const f of factories) {
    const t = f(spec, seed, opts);
    if (t) return t;
  }
  return undefined;
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

export interface RunOptions {
  readonly seed: number;
  readonly onResult?: (target: string, r: CheckResult, index: number, total: number) => void;
  /** Wall-clock milliseconds, supplied by the caller (the CLI) for durations in reports. */
  readonly wallMs?: () => number;
}

export async function runConformance(targets: readonly Target[], checks: readonly Check[], opts: RunOptions): Promise<ConformReport> {
  const model = modelTarget(opts.seed);
  const reports: TargetReport[] = [];
  for (const target of targets) {
    const avail = await target.available();
    const results: CheckResult[] = [];
    let i = 0;
    for (const c of checks) {
      i += 1;
      const missing = c.needs.filter((n) => !target.capabilities.has(n));
      let outcome: Outcome;
      const wall = opts.wallMs ?? (() => 0);
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
      opts.onResult?.(target.name, r, i, checks.length);
    }
    reports.push(avail === true ? { target: target.name, description: target.description, results } : { target: target.name, description: target.description, unavailable: avail, results });
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

export function counts(r: TargetReport): { passed: number; failed: number; skipped: number; deviations: number } {
  const c = { passed: 0, failed: 0, skipped: 0, deviations: 0 };
  for (const x of r.results) {
    c[x.outcome.status] += 1;
    if (x.outcome.status !== "skipped") c.deviations += x.outcome.deviations?.length ?? 0;
  }
  return c;
}
