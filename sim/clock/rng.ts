// The bench's one seeded random number generator (xoroshiro128+ from pure-rand). Nothing else
// in the simulation makes randomness; its state is plain data and goes into snapshots.
import { xoroshiro128plus, unsafeUniformIntDistribution, type RandomGenerator } from "pure-rand";

export type RngState = readonly number[];

/** Returns what is wrong with an RNG state (xoroshiro128+: four 32-bit signed integers), or undefined. */
export function checkRngState(state: unknown): string | undefined {
  if (!Array.isArray(state)) return "is not a list";
  if (state.length !== 4) return `has ${state.length} numbers, not 4`;
  for (const [i, x] of state.entries()) {
    if (typeof x !== "number" || !Number.isInteger(x) || x < -0x80000000 || x > 0x7fffffff) return `[${i}] is not a 32-bit signed integer`;
  }
  return undefined;
}

export class Rng {
  private gen: RandomGenerator;

  /** `seed` is any safe integer; it is folded to 32 bits the way pure-rand takes it. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    this.gen = xoroshiro128plus((seed | 0) ^ (Math.floor(seed / 2 ** 32) | 0));
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  getState(): RngState {
    return [...this.gen.getState()];
  }

  /** Replaces the state; an invalid one throws a RangeError and changes nothing. */
  setState(state: RngState): void {
    const problem = checkRngState(state);
    if (problem) throw new RangeError(`invalid RNG state: it ${problem}`);
    this.gen = xoroshiro128plus.fromState([...state]);
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    return this.gen.unsafeNext() >>> 0;
  }

  /** A uniform integer in [min, max] (both inclusive, safe integers). */
  int(min: number, max: number): number {
    return unsafeUniformIntDistribution(min, max, this.gen);
  }

  /** `n` uniform random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let w = this.u32();
      for (let j = i; j < Math.min(n, i + 4); j++) {
        out[j] = w & 0xff;
        w >>>= 8;
      }
    }
    return out;
  }
}
