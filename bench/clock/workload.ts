// The scheduler workload shared by the bench/clock suites: a queue kept at N pending events in
// steady state; each call of a case advances time by a window and dispatches every event due in
// it, each dispatch scheduling one more (delay from a fixed pseudo-random table), about
// CALL_EVENTS schedule+dispatch per call. The same sequence runs through `Clock` (trace off, one
// registered handler, events carry target/kind/payload data) and through each reference heap
// holding only (time, id); every queue lives across calls, so a call measures steady state only.
// Tie order among equal times does not change which times are dispatched (each dispatch at t adds
// t + the next delay), so every side dispatches the same times: setup() checks it.
import FlatQueue from "flatqueue";
import FastPriorityQueue from "fastpriorityqueue";
import { MinQueue } from "heapify";
import { Clock, type ClockEvent } from "../../sim/clock/clock.ts";
import { Rng } from "../../sim/clock/rng.ts";
import type { BenchSuite } from "../harness.ts";

/** schedule+dispatch per call, on average. */
export const CALL_EVENTS = 1_000;
const TABLE = 1 << 16;

export interface Side {
  /** Runs one call; returns the number of events dispatched. */
  call(): number;
  /** XOR and count of dispatched times since creation. */
  readonly digest: () => { count: number; xor: number };
}

interface Params {
  pending: number;
  delays: Int32Array;
  window: number;
}

function params(pending: number): Params {
  const maxDelay = Math.max(64, 4 * pending);
  const rng = new Rng(0x5eed ^ pending);
  const delays = new Int32Array(TABLE);
  for (let i = 0; i < TABLE; i++) delays[i] = rng.int(0, maxDelay);
  // Throughput in steady state is pending / mean delay events per ns.
  const window = Math.max(1, Math.round(((maxDelay / 2) * CALL_EVENTS) / pending));
  return { pending, delays, window };
}

// The Clock handler's state lives in module variables (small integers), so the handler allocates
// nothing itself.
let cDelays: Int32Array = new Int32Array(1);
let cNext = 0;
let cCount = 0;
let cXor = 0;

function tick(ev: ClockEvent, clock: Clock): void {
  cCount++;
  cXor ^= ev.at;
  clock.schedule(cDelays[cNext++ & (TABLE - 1)]!, "dev", "tick");
}

function clockSide(p: Params): Side {
  const clock = new Clock({ trace: false });
  clock.on("dev", "tick", tick);
  let next = 0;
  let count = 0;
  let xor = 0;
  let t = 0;
  const swapIn = () => {
    cDelays = p.delays;
    cNext = next;
    cCount = count;
    cXor = xor;
  };
  const swapOut = () => {
    next = cNext;
    count = cCount;
    xor = cXor;
  };
  swapIn();
  for (let i = 0; i < p.pending; i++) clock.schedule(p.delays[cNext++ & (TABLE - 1)]!, "dev", "tick");
  swapOut();
  return {
    call() {
      const before = count;
      swapIn();
      clock.runUntil((t += p.window));
      swapOut();
      return count - before;
    },
    digest: () => ({ count, xor }),
  };
}

function flatqueueSide(p: Params): Side {
  const q = new FlatQueue<number>();
  const d = p.delays;
  let next = 0, count = 0, xor = 0, t = 0;
  for (; next < p.pending; next++) q.push(next, d[next & (TABLE - 1)]!);
  return {
    call() {
      const before = count;
      t += p.window;
      while (q.length > 0 && q.peekValue()! <= t) {
        const at = q.peekValue()!;
        q.pop();
        count++;
        xor ^= at;
        q.push(next, at + d[next++ & (TABLE - 1)]!);
      }
      return count - before;
    },
    digest: () => ({ count, xor }),
  };
}

function fastpriorityqueueSide(p: Params): Side {
  // Its fastest use: the items are the due times themselves, default comparator.
  const q = new FastPriorityQueue<number>();
  const d = p.delays;
  let next = 0, count = 0, xor = 0, t = 0;
  for (; next < p.pending; next++) q.add(d[next & (TABLE - 1)]!);
  return {
    call() {
      const before = count;
      t += p.window;
      while (q.size > 0 && q.peek()! <= t) {
        const at = q.poll()!;
        count++;
        xor ^= at;
        q.add(at + d[next++ & (TABLE - 1)]!);
      }
      return count - before;
    },
    digest: () => ({ count, xor }),
  };
}

function heapifySide(p: Params): Side {
  // Typed-array heap: Uint32 keys (event ids, wrapped), Float64 priorities (times outgrow 32 bits).
  const q = new MinQueue(p.pending + 1, [], [], Uint32Array, Float64Array as unknown as Uint32ArrayConstructor);
  const d = p.delays;
  let next = 0, count = 0, xor = 0, t = 0;
  for (; next < p.pending; next++) q.push(next >>> 0, d[next & (TABLE - 1)]!);
  return {
    call() {
      const before = count;
      t += p.window;
      while (q.size > 0 && q.peekPriority() <= t) {
        const at = q.peekPriority();
        q.pop();
        count++;
        xor ^= at;
        q.push(next >>> 0, at + d[next++ & (TABLE - 1)]!);
      }
      return count - before;
    },
    digest: () => ({ count, xor }),
  };
}

export const SIDES = { Clock: clockSide, flatqueue: flatqueueSide, fastpriorityqueue: fastpriorityqueueSide, heapify: heapifySide } as const;

/** Runs `calls` calls on a fresh instance of every side; returns each side's digest. */
export function digests(pending: number, calls: number): Record<string, { count: number; xor: number }> {
  const p = params(pending);
  const out: Record<string, { count: number; xor: number }> = {};
  for (const [name, make] of Object.entries(SIDES)) {
    const s = make(p);
    for (let i = 0; i < calls; i++) s.call();
    out[name] = s.digest();
  }
  return out;
}

/** The suite for N pending events: Clock against the fastest of the three references. */
export function schedulerSuite(pending: number, label: string): BenchSuite {
  const p = params(pending);
  const sides: Partial<Record<keyof typeof SIDES, Side>> = {};
  const get = (name: keyof typeof SIDES): Side => (sides[name] ??= SIDES[name](p));
  return {
    name: `clock/scheduler ${label} pending`,
    reference: "flatqueue",
    goal: 1.0,
    goals: [{ of: "fastpriorityqueue", ratio: 1.0 }, { of: "heapify", ratio: 1.0 }],
    goalNote: `~${CALL_EVENTS} schedule+dispatch per op with ${label} pending; Clock keeps (at, seq) order, cancellation and data events, the references only a time (and an id)`,
    setup() {
      const d = digests(pending, 20);
      const want = JSON.stringify(d.Clock);
      for (const [name, v] of Object.entries(d)) {
        if (JSON.stringify(v) !== want || v.count === 0) throw new Error(`workloads differ: ${name} ${JSON.stringify(v)}, Clock ${want}`);
      }
    },
    cases: {
      flatqueue: () => void get("flatqueue").call(),
      fastpriorityqueue: () => void get("fastpriorityqueue").call(),
      heapify: () => void get("heapify").call(),
      Clock: () => void get("Clock").call(),
    },
  };
}
