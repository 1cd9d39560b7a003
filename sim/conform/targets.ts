// Which targets exist on this machine. Real-target factories register their default candidates
// here (sim/targets/index.ts, sim/targets/hvdaemon/target.ts); this module itself spawns nothing.
import { makeTarget } from "./runner.ts";
import type { Target } from "./types.ts";

/**
 * A default candidate: a target name (its target's available() says whether it is usable here and
 * why not), or an older-style probe that returns the name when usable and undefined otherwise.
 */
export type DefaultCandidate = string | (() => Promise<string | undefined>);

const candidates: DefaultCandidate[] = [];

export function registerDefaultCandidate(c: DefaultCandidate): void {
  candidates.push(c);
}

export interface CandidateStatus {
  readonly name: string;
  /** Undefined when no factory knows the name (a registration error). */
  readonly target: Target | undefined;
  /** True when usable here, else why it is left out of a run without --target. */
  readonly available: true | string;
}

/** Every default candidate, "model" first, with whether it is usable here and why not. */
export async function defaultCandidates(seed = 0): Promise<CandidateStatus[]> {
  const out: CandidateStatus[] = [{ name: "model", target: makeTarget("model", seed), available: true }];
  for (const c of candidates) {
    if (typeof c === "string") {
      const target = makeTarget(c, seed);
      out.push({ name: c, target, available: target ? await target.available() : "no target factory knows this name" });
    } else {
      const n = await c();
      if (n) {
        const target = makeTarget(n, seed);
        out.push({ name: n, target, available: target ? await target.available() : "no target factory knows this name" });
      } else {
        out.push({ name: "(unnamed candidate)", target: undefined, available: "its probe found nothing usable here" });
      }
    }
  }
  return out;
}

/** "model" plus every real target whose programs are installed here. */
export async function defaultTargetNames(): Promise<string[]> {
  return (await defaultCandidates()).filter((c) => c.available === true && c.target).map((c) => c.name);
}
