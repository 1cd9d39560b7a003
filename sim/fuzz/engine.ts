// The fuzzing engine: deterministic inputs by (seed, run index), a target's verdict per input,
// shrinking of failing inputs, and sharding (`--shard I/N` runs indices I, I+N, I+2N, ...), so a
// campaign spread over a CI matrix covers disjoint inputs and any finding replays from its seed
// and run index alone.
import { Rng } from "../clock/rng.ts";
import { mutate, mutateInto, mutationRoom, randomBytes, randomInto, type FieldHint, type MutationName } from "./mutate.ts";

export type FindingKind = "crash" | "invariant" | "hang" | "sanitizer" | "signal";

export interface Verdict {
  readonly kind: FindingKind;
  /** One line: what went wrong. */
  readonly message: string;
}

export interface FuzzTarget {
  readonly name: string;
  readonly description: string;
  /** Largest input worth generating (bytes). */
  readonly maxLen: number;
  /** A valid (or nearly valid) structured input drawn from `rng`. */
  generate(rng: Rng): Uint8Array;
  /** Mutation hints: where the integers and strings of the structure are. */
  readonly hints: readonly FieldHint[];
  /** Runs one input; undefined when it was handled correctly. Must not throw. */
  execute(input: Uint8Array): Verdict | undefined;
  /** Releases processes and files (external targets). */
  close?(): void;
}

export interface GeneratedInput {
  readonly run: number;
  readonly mode: "structured" | "mutated" | "random";
  readonly ops: readonly MutationName[];
  readonly bytes: Uint8Array;
}

/** The seed of run `run` of a campaign seeded with `seed` (splitmix32-style mixing). */
export function runSeed(seed: number, run: number): number {
  let z = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(run | 0, 0x85ebca6b) ^ (Math.floor(run / 2 ** 32) | 0)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97) >>> 0;
  return (z ^ (z >>> 15)) >>> 0;
}

/** Structured inputs are drawn once per (target, seed) into a pool that runs then mutate. */
const POOL_SIZE = 64;
const pools = new WeakMap<FuzzTarget, Map<number, Uint8Array[]>>();

function pool(target: FuzzTarget, seed: number): Uint8Array[] {
  let bySeed = pools.get(target);
  if (!bySeed) pools.set(target, (bySeed = new Map()));
  let p = bySeed.get(seed);
  if (!p) {
    const rng = new Rng(runSeed(seed, -1));
    // Plain copies: a generator may return a Buffer, whose slice() is a view, not a copy.
    p = Array.from({ length: POOL_SIZE }, () => new Uint8Array(target.generate(rng)));
    bySeed.set(seed, p);
  }
  return p;
}

/** The input of run `run`: a structured value, usually mutated, sometimes plain random bytes. */
export function inputFor(target: FuzzTarget, seed: number, run: number): GeneratedInput {
  const rng = new Rng(runSeed(seed, run));
  const roll = rng.int(0, 99);
  if (roll < 10) return { run, mode: "random", ops: [], bytes: randomBytes(rng, rng.int(0, target.maxLen)) };
  const base = pool(target, seed)[rng.int(0, POOL_SIZE - 1)]!;
  if (roll < 25) return { run, mode: "structured", ops: [], bytes: base.slice() };
  const m = mutate(base, target.hints, rng, target.maxLen);
  return { run, mode: "mutated", ops: m.ops, bytes: m.bytes };
}

/** A buffer inputs are built in, grown as needed and reused from run to run. */
interface Scratch {
  buf: Uint8Array;
}

/**
 * The bytes of inputFor(target, seed, run) — the same draws from the same RNG, so the same bytes —
 * built in `s` instead of fresh arrays: a view of `s.buf`, valid until the next call. `p` is
 * pool(target, seed). The campaign's hot path; inputFor gives the mode and operators when needed.
 */
function inputInto(target: FuzzTarget, p: readonly Uint8Array[], seed: number, run: number, s: Scratch): Uint8Array {
  const rng = new Rng(runSeed(seed, run));
  const roll = rng.int(0, 99);
  if (roll < 10) {
    const n = rng.int(0, target.maxLen);
    if (s.buf.length < n) s.buf = new Uint8Array(mutationRoom(n, target.maxLen));
    randomInto(rng, s.buf, 0, n);
    return s.buf.subarray(0, n);
  }
  const base = p[rng.int(0, POOL_SIZE - 1)]!;
  const need = mutationRoom(base.length, target.maxLen);
  if (s.buf.length < need) s.buf = new Uint8Array(need);
  s.buf.set(base);
  if (roll < 25) return s.buf.subarray(0, base.length);
  return s.buf.subarray(0, mutateInto(s.buf, base.length, target.hints, rng, target.maxLen));
}

/**
 * Shrinks a failing input while the target still fails the same way (same finding kind): drops
 * chunks from large to single bytes, then zeroes bytes. Bounded by `budget` executions.
 */
export function minimize(target: FuzzTarget, input: Uint8Array, kind: FindingKind, budget = 2000): Uint8Array {
  let best = input;
  let left = budget;
  const fails = (b: Uint8Array) => {
    left -= 1;
    return target.execute(b)?.kind === kind;
  };
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && left > 0; chunk = chunk >> 1) {
    let i = 0;
    while (i < best.length && left > 0) {
      const cand = new Uint8Array(best.length - Math.min(chunk, best.length - i));
      cand.set(best.subarray(0, i));
      cand.set(best.subarray(i + chunk), i);
      if (fails(cand)) best = cand;
      else i += chunk;
    }
    if (chunk === 1) break;
  }
  for (let i = 0; i < best.length && left > 0; i++) {
    if (best[i] === 0) continue;
    const cand = best.slice();
    cand[i] = 0;
    if (fails(cand)) best = cand;
  }
  return best;
}

export interface Finding {
  readonly target: string;
  readonly seed: number;
  readonly run: number;
  readonly shard: string;
  readonly verdict: Verdict;
  readonly mode: GeneratedInput["mode"];
  readonly ops: readonly MutationName[];
  readonly input: Uint8Array;
  readonly minimized: Uint8Array;
}

export interface Shard {
  readonly index: number;
  readonly count: number;
}

export function parseShard(text: string): Shard | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m) return undefined;
  const index = Number(m[1]), count = Number(m[2]);
  if (count < 1 || index >= count) return undefined;
  return { index, count };
}

/** Findings with the same signature are one finding (numbers in the message do not count). */
export function signatureOf(v: Verdict): string {
  return `${v.kind}:${v.message.replace(/\d+/g, "N")}`;
}

/** The message of anything thrown, never throwing itself (a getter may throw, null has none). */
export function thrownMessage(e: unknown): string {
  try {
    if (e instanceof Error) return String(e.message);
    return `non-error thrown: ${String(e)}`;
  } catch {
    return "a value that cannot be printed was thrown";
  }
}

export interface CampaignOptions {
  /** Start at the k-th input of the shard (a campaign resumed after a hang). */
  readonly start?: number;
  /** Signatures of findings already reported (not reported again). */
  readonly signatures?: Iterable<string>;
  /** Called before every execution of the target, minimizing included (a watchdog's heartbeat). */
  readonly beat?: () => void;
}

/** One campaign on one target: call `next()` until satisfied; everything it does is deterministic. */
export class Campaign {
  execs = 0;
  /** Run index of the last input executed. */
  lastRun = -1;
  readonly findings: Finding[] = [];
  readonly signatures: Set<string>;
  private k_: number;
  private readonly exec: FuzzTarget;
  private readonly scratch: Scratch = { buf: new Uint8Array(0) };
  private pool_: readonly Uint8Array[] | undefined;

  constructor(
    readonly target: FuzzTarget,
    readonly seed: number,
    readonly shard: Shard = { index: 0, count: 1 },
    opts: CampaignOptions = {},
  ) {
    this.k_ = opts.start ?? 0;
    this.signatures = new Set(opts.signatures ?? []);
    const beat = opts.beat;
    // A target that throws breaks its contract; the campaign records that as a crash and goes on.
    const guarded = (b: Uint8Array): Verdict | undefined => {
      try {
        return target.execute(b);
      } catch (e) {
        return { kind: "crash", message: `target threw: ${thrownMessage(e)}` };
      }
    };
    this.exec = { ...target, execute: beat ? (b) => (beat(), guarded(b)) : guarded };
  }

  /** Index (within the shard) of the next input next() runs. */
  get k(): number {
    return this.k_;
  }

  /** Run index of the shard's k-th input. */
  runOf(k: number): number {
    return this.shard.index + k * this.shard.count;
  }

  /** Runs the next input of this shard; returns a new (deduplicated) finding, if any. */
  next(): Finding | undefined {
    const run = this.runOf(this.k_);
    this.k_ += 1;
    this.lastRun = run;
    const p = (this.pool_ ??= pool(this.target, this.seed));
    this.execs += 1;
    const v = this.exec.execute(inputInto(this.target, p, this.seed, run, this.scratch));
    if (!v) return undefined;
    const sig = signatureOf(v);
    if (this.signatures.has(sig)) return undefined;
    this.signatures.add(sig);
    // A new finding: the input again, as arrays of its own, with its mode and operators.
    const gen = inputFor(this.target, this.seed, run);
    const minimized = minimize(this.exec, gen.bytes, v.kind);
    const f: Finding = {
      target: this.target.name,
      seed: this.seed,
      run,
      shard: `${this.shard.index}/${this.shard.count}`,
      verdict: v,
      mode: gen.mode,
      ops: gen.ops,
      input: gen.bytes,
      minimized,
    };
    this.findings.push(f);
    return f;
  }
}
