// The event scheduler: 1e6 schedule + dispatch with about 1e3 events pending, through `Clock`
// (trace off, one registered handler) and, as the in-run reference, through `flatqueue` doing the
// same workload (push with the same priorities, pop). Each case runs the whole workload once, so
// hz is workloads per second; the pseudo-random delays are computed once, up front.
import FlatQueue from "flatqueue";
import { Clock, type ClockEvent } from "../../sim/clock/clock.ts";
import { Rng } from "../../sim/clock/rng.ts";
import type { BenchSuite } from "../harness.ts";

/** Events scheduled (and dispatched) per workload. */
export const EVENTS = 1_000_000;
/** Events pending at any time: scheduled up front, then every dispatch schedules one more. */
export const PENDING = 1_000;
/** Delays in [0, MAX_DELAY] ns: small enough that many events share a time (ties on seq). */
export const MAX_DELAY = 4_095;

const delays: number[] = [];
{
  const rng = new Rng(0x5eed);
  for (let i = 0; i < EVENTS; i++) delays.push(rng.int(0, MAX_DELAY));
}

export interface WorkloadResult {
  dispatched: number;
  /** Time of the last event dispatched. */
  lastAt: number;
  /** XOR of every dispatched event's time: equal multisets of times give equal values. */
  xorAt: number;
}

// The handler's state lives in module variables holding small integers, so that the handler
// itself allocates nothing (a captured double would allocate a number per update).
let next = 0;
let dispatched = 0;
let lastAt = 0;
let xorAt = 0;

function tick(ev: ClockEvent, clock: Clock): void {
  dispatched++;
  lastAt = ev.at;
  xorAt ^= ev.at;
  if (next < EVENTS) clock.schedule(delays[next++]!, "dev", "tick");
}

/** The workload through the virtual clock. */
export function clockWorkload(): WorkloadResult {
  const clock = new Clock({ trace: false });
  next = 0;
  dispatched = 0;
  lastAt = 0;
  xorAt = 0;
  clock.on("dev", "tick", tick);
  while (next < PENDING) clock.schedule(delays[next++]!, "dev", "tick");
  clock.runUntil(Number.MAX_SAFE_INTEGER);
  return { dispatched, lastAt, xorAt };
}

/** The same workload through flatqueue: priority = due time, item = sequence number. */
export function flatqueueWorkload(): WorkloadResult {
  const q = new FlatQueue<number>();
  let now = 0;
  let n = 0;
  let count = 0;
  let x = 0;
  while (n < PENDING) {
    q.push(n, now + delays[n]!);
    n++;
  }
  while (q.length > 0) {
    now = q.peekValue()!;
    q.pop();
    count++;
    x ^= now;
    if (n < EVENTS) {
      q.push(n, now + delays[n]!);
      n++;
    }
  }
  return { dispatched: count, lastAt: now, xorAt: x };
}

export const suite: BenchSuite = {
  name: "clock/scheduler",
  reference: "flatqueue",
  goal: 1.0,
  goalNote: "1e6 schedule+dispatch, ~1e3 pending; Clock keeps (at, seq) order, flatqueue only at",
  setup() {
    // Both sides must do the same work: same count, same due times.
    const a = clockWorkload();
    const b = flatqueueWorkload();
    if (a.dispatched !== EVENTS || b.dispatched !== EVENTS || a.lastAt !== b.lastAt || a.xorAt !== b.xorAt) {
      throw new Error(`workloads differ: clock ${JSON.stringify(a)}, flatqueue ${JSON.stringify(b)}`);
    }
  },
  cases: {
    flatqueue: () => void flatqueueWorkload(),
    Clock: () => void clockWorkload(),
  },
};
