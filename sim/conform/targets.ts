// Which targets exist on this machine. Real-target factories register themselves here.
import { makeTarget } from "./runner.ts";

/** Candidate real targets, tried in order; each is kept when available(). */
const candidates: (() => Promise<string | undefined>)[] = [];

export function registerDefaultCandidate(probe: () => Promise<string | undefined>): void {
  candidates.push(probe);
}

/** "model" plus every real target whose programs are installed here. */
export async function defaultTargetNames(): Promise<string[]> {
  const names = ["model"];
  for (const p of candidates) {
    const n = await p();
    if (n && makeTarget(n, 0)) names.push(n);
  }
  return names;
}
