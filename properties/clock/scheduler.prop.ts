// The scheduler against a reference model. For arbitrary programs of schedule (delays from a tiny
// range, so many events share a time, including 0 = "now"), cancel (pending or not), step and
// runNext, with handlers that schedule children (some for "now") and cancel other events, the clock
// dispatches exactly what the model does: the model keeps a plain list and repeatedly takes the
// (at, seq)-least event due; seq numbers are handed out in scheduling order.
// Second property: serialize + JSON + restore at an arbitrary point of such a run, with handlers
// that also draw from the RNG, continues to the same trace hash and state as the uninterrupted run.
import { describe, expect } from "vitest";
import { test, fc } from "@fast-check/vitest";
import { Clock, type ClockState } from "../../sim/clock/clock.ts";

const RUNS = process.env.HVSIM_LONG ? 1000 : 150;

type Payload = { readonly child?: number; readonly grand?: number; readonly victim?: number };

type Op =
  | { readonly op: "schedule"; readonly delay: number; readonly kind: "plain" | "spawn" | "kill"; readonly arg: number }
  | { readonly op: "cancel"; readonly pick: number }
  | { readonly op: "step"; readonly ns: number }
  | { readonly op: "runNext" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("schedule" as const), delay: fc.integer({ min: 0, max: 12 }), kind: fc.constantFrom("plain" as const, "spawn" as const, "kill" as const), arg: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("cancel" as const), pick: fc.nat(60) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("step" as const), ns: fc.integer({ min: 0, max: 15 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("runNext" as const) }) },
);

/** The payload an op's event carries: what its handler will do. */
function payloadOf(op: Extract<Op, { op: "schedule" }>, seqs: readonly number[]): Payload {
  if (op.kind === "spawn") return { child: op.arg % 4, grand: op.arg % 3 === 0 ? 0 : 5 };
  // "kill" targets an event scheduled earlier (by index), which may be pending, done or cancelled.
  if (op.kind === "kill") return { victim: seqs.length ? seqs[op.arg % seqs.length]! : 12345 };
  return {};
}

type Record_ = [at: number, seq: number, kind: string, extra: boolean | null];

// ---- reference model: a plain list, linear scans ----
interface MEvent { at: number; seq: number; kind: string; payload: Payload }

class Model {
  now = 0;
  seq = 0;
  pending: MEvent[] = [];
  log: Record_[] = [];

  schedule(delay: number, kind: string, payload: Payload): number {
    const seq = this.seq++;
    this.pending.push({ at: this.now + delay, seq, kind, payload });
    return seq;
  }

  cancel(seq: number): boolean {
    const i = this.pending.findIndex((e) => e.seq === seq);
    if (i < 0) return false;
    this.pending.splice(i, 1);
    return true;
  }

  private least(): MEvent | undefined {
    let best: MEvent | undefined;
    for (const e of this.pending) if (!best || e.at < best.at || (e.at === best.at && e.seq < best.seq)) best = e;
    return best;
  }

  runUntil(t: number): void {
    for (;;) {
      const e = this.least();
      if (!e || e.at > t) break;
      this.pending.splice(this.pending.indexOf(e), 1);
      this.now = e.at;
      this.dispatch(e);
    }
    this.now = t;
  }

  private dispatch(e: MEvent): void {
    if (e.kind === "spawn") {
      this.log.push([e.at, e.seq, e.kind, null]);
      this.schedule(e.payload.child!, "plain", {});
      if (e.payload.grand !== undefined) this.schedule(e.payload.grand, "spawn", { child: 0 });
    } else if (e.kind === "kill") {
      this.log.push([e.at, e.seq, e.kind, this.cancel(e.payload.victim!)]);
    } else {
      this.log.push([e.at, e.seq, e.kind, null]);
    }
  }

  runNext(): number | undefined {
    const e = this.least();
    if (!e) return undefined;
    this.runUntil(e.at);
    return e.at;
  }
}

// ---- the clock, with handlers doing what the model's dispatch does ----
function realClock(seed = 0): { clock: Clock; log: Record_[] } {
  const clock = new Clock({ seed });
  const log: Record_[] = [];
  clock.on("t", "plain", (ev) => void log.push([ev.at, ev.seq, ev.kind, null]));
  clock.on("t", "spawn", (ev, c) => {
    log.push([ev.at, ev.seq, ev.kind, null]);
    const p = ev.payload as Payload;
    c.schedule(p.child!, "t", "plain", {});
    if (p.grand !== undefined) c.schedule(p.grand, "t", "spawn", { child: 0 });
  });
  clock.on("t", "kill", (ev, c) => void log.push([ev.at, ev.seq, ev.kind, c.cancel((ev.payload as Payload).victim!)]));
  return { clock, log };
}

describe("scheduler vs reference model", () => {
  test.prop([fc.array(opArb, { maxLength: 80 })], { numRuns: RUNS })(
    "dispatch order, cancel results, time and pending agree with the model",
    (ops) => {
      const model = new Model();
      const { clock, log } = realClock();
      const seqs: number[] = [];
      const cancels: [boolean, boolean][] = [];
      const times: [number | undefined, number | undefined][] = [];
      for (const op of ops) {
        switch (op.op) {
          case "schedule": {
            const p = payloadOf(op, seqs);
            const s = clock.schedule(op.delay, "t", op.kind, p);
            expect(model.schedule(op.delay, op.kind, p)).toBe(s);
            seqs.push(s);
            break;
          }
          case "cancel": {
            const victim = seqs.length ? seqs[op.pick % seqs.length]! : op.pick;
            cancels.push([clock.cancel(victim), model.cancel(victim)]);
            break;
          }
          case "step":
            clock.step(op.ns);
            model.runUntil(model.now + op.ns);
            break;
          case "runNext":
            times.push([clock.runNext(), model.runNext()]);
            break;
        }
        expect(clock.pending).toBe(model.pending.length);
      }
      // Drain what is left, then compare everything.
      clock.runUntil(clock.now + 1000);
      model.runUntil(model.now + 1000);
      expect(log).toEqual(model.log);
      for (const [a, b] of cancels) expect(a).toBe(b);
      for (const [a, b] of times) expect(a).toBe(b);
      expect(clock.now).toBe(model.now);
      expect(clock.pending).toBe(0);
      // The dispatched (at, seq) pairs are in sorted order.
      const pairs = log.map(([at, seq]) => [at, seq] as const);
      const sorted = [...pairs].sort((p, q) => p[0] - q[0] || p[1] - q[1]);
      expect(pairs).toEqual(sorted);
    },
  );

  test.prop([fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.boolean()), { minLength: 1, maxLength: 400 })], { numRuns: RUNS })(
    "bulk: many events at few distinct times, every other one cancelled, come out in (at, seq) order",
    (items) => {
      const { clock, log } = realClock();
      const kept: [number, number][] = [];
      const toCancel: number[] = [];
      for (const [at, cancel] of items) {
        const s = clock.scheduleAt(at, "t", "plain", {});
        if (cancel) toCancel.push(s);
        else kept.push([at, s]);
      }
      for (const s of toCancel) expect(clock.cancel(s)).toBe(true);
      clock.runUntil(10);
      kept.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
      expect(log.map(([at, seq]) => [at, seq])).toEqual(kept);
    },
  );
});

// ---- serialize / restore ----
type Input = { readonly op: "schedule"; readonly delay: number; readonly kind: "plain" | "spawn" | "rand"; readonly arg: number } | { readonly op: "step"; readonly ns: number };

const inputArb: fc.Arbitrary<Input> = fc.oneof(
  fc.record({ op: fc.constant("schedule" as const), delay: fc.integer({ min: 0, max: 30 }), kind: fc.constantFrom("plain" as const, "spawn" as const, "rand" as const), arg: fc.nat(6) }),
  fc.record({ op: fc.constant("step" as const), ns: fc.integer({ min: 0, max: 40 }) }),
);

/** A clock whose handlers schedule more events, cancel, and draw from the RNG (state only in payloads). */
function busyClock(seed: number): Clock {
  const clock = new Clock({ seed });
  clock.on("t", "plain", () => {});
  clock.on("t", "spawn", (ev, c) => {
    const left = (ev.payload as { left: number }).left;
    if (left > 0) {
      c.schedule(0, "t", "plain", { from: ev.seq });
      c.schedule(left * 3, "t", "spawn", { left: left - 1 });
    }
  });
  clock.on("t", "rand", (ev, c) => {
    const left = (ev.payload as { left: number }).left;
    const bytes = c.rng.bytes(c.rng.int(0, 6));
    const big = BigInt(c.rng.u32()) << 40n;
    if (left > 0) {
      const s = c.schedule(c.rng.int(0, 25), "t", "rand", { left: left - 1, bytes, big });
      // Sometimes cancel what was just scheduled and schedule something else.
      if (c.rng.int(0, 3) === 0) {
        c.cancel(s);
        c.schedule(c.rng.int(0, 5), "t", "plain", { instead: s });
      }
    }
  });
  return clock;
}

function apply(clock: Clock, inputs: readonly Input[]): void {
  for (const i of inputs) {
    if (i.op === "step") clock.step(i.ns);
    else clock.schedule(i.delay, "t", i.kind, { left: i.arg });
  }
}

describe("serialize / restore at an arbitrary point", () => {
  test.prop([fc.array(inputArb, { maxLength: 60 }), fc.nat(), fc.integer({ min: 0, max: 2 ** 31 - 1 })], { numRuns: RUNS })(
    "restoring a JSON copy of the state continues to the same trace hash and state",
    (inputs, splitPick, seed) => {
      const split = splitPick % (inputs.length + 1);
      const whole = busyClock(seed);
      apply(whole, inputs);
      whole.runUntil(whole.now + 500);

      const first = busyClock(seed);
      apply(first, inputs.slice(0, split));
      const state = JSON.parse(JSON.stringify(first.serialize())) as ClockState;
      const second = busyClock(seed ^ 0x5a5a); // the seed must not matter: the RNG comes from the state
      second.restore(state);
      apply(second, inputs.slice(split));
      second.runUntil(second.now + 500);

      expect(second.trace.hash()).toBe(whole.trace.hash());
      expect(second.trace.count).toBe(whole.trace.count);
      expect(JSON.stringify(second.serialize())).toBe(JSON.stringify(whole.serialize()));
    },
  );
});
