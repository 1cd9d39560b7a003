// The scenario step registry. A step in a scenario is a mapping with exactly one key naming its
// type (`in: 0x608`, `step: 1000`, `kvp: {...}`) plus that type's parameters, and optionally the
// keys every step takes (`at: NS` — run the clock to NS first; `note: TEXT`). Each step type
// registers a zod schema for its mapping (without the common keys) and an executor:
//
//   registerStep("kvp", z.strictObject({ kvp: z.literal("get"), key: z.string(), expect: z.string().optional() }),
//     (args, ctx) => {
//       const v = ctx.bench.device<KvpDevice>("kvp").get(args.key);
//       if (args.expect !== undefined && v !== args.expect) throw new StepAssertion(args.expect, v);
//     });
//
// Modules that register steps are listed in plugins.ts (one import each), so new step types need
// no change to the loader or the runner.
import type { z } from "zod";
import type { Bench } from "../machine/bench.ts";

export interface StepContext {
  readonly bench: Bench;
  /** 0-based index of the step in the scenario. */
  readonly index: number;
  /** 1-based line of the step in the scenario file. */
  readonly line: number;
  /** Values stored by steps (`as: NAME`) for later `assert` steps. */
  readonly vars: Map<string, number | bigint | string>;
  /** Resolves a file name given in the scenario (snapshots) against the run's directory. */
  resolvePath(file: string): string;
  /** A line of commentary for the readable output (not part of the trace). */
  note(text: string): void;
}

/** An assertion on a step did not hold: the run fails naming the step, expected and actual. */
export class StepAssertion extends Error {
  override name = "StepAssertion";
  constructor(readonly expected: string, readonly actual: string, message?: string) {
    super(message ?? `expected ${expected}, got ${actual}`);
  }
}

/** A step could not be carried out (not an assertion): e.g. a snapshot that does not restore. */
export class StepError extends Error {
  override name = "StepError";
}

export interface StepType<A = any> {
  readonly name: string;
  readonly schema: z.ZodType<A>;
  readonly execute: (args: A, ctx: StepContext) => void;
  /** Short text for messages, e.g. "inl 0x608"; defaults to the step type's name. */
  readonly describe?: (args: A) => string;
}

const STEPS = new Map<string, StepType>();

/** Keys any step may carry besides its own; a step type cannot be named after them. */
export const COMMON_STEP_KEYS = ["at", "note"] as const;

/**
 * Registers a step type. `schema` validates the step's mapping (its own key included, the common
 * keys `at`/`note` removed); `execute` runs it, throwing StepAssertion for a failed expectation.
 */
export function registerStep<S extends z.ZodType>(
  name: string,
  schema: S,
  execute: (args: z.output<S>, ctx: StepContext) => void,
  opts: { describe?: (args: z.output<S>) => string } = {},
): void {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`step type name ${JSON.stringify(name)} must be lowercase letters, digits and dashes`);
  if ((COMMON_STEP_KEYS as readonly string[]).includes(name)) throw new Error(`${name} is a common step key, not a step type`);
  if (STEPS.has(name)) throw new Error(`step type ${name} is registered twice`);
  STEPS.set(name, { name, schema, execute, describe: opts.describe });
}

export function getStepType(name: string): StepType | undefined {
  return STEPS.get(name);
}

export function stepTypeNames(): string[] {
  return [...STEPS.keys()].sort();
}
