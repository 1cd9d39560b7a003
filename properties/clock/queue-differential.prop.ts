// The clock's event queue against a sorted-array reference, at sizes the small model property
// (scheduler.prop.ts) does not reach: hundreds to thousands of pending events, so the pool and the
// heap grow several times and sift through several levels, with freed slots reused, payloads null
// and not, several (target, kind) pairs, cancels of pending, dispatched and cancelled events, and
// handlers that schedule (the dispatched event's root is then replaced) or cancel. The reference
// keeps the pending events in one array sorted on (at, seq) (binary-search insertion, removal by
// splice) and dispatches from its front. After every operation both agree on pending, nextAt and,
// now and then, the whole pendingEvents() list; at the end, on the dispatch log and on
// serialize(), which also goes through a JSON round trip and restore() in the middle of a run.
import { describe, expect } from "vitest";
import { test, fc } from "@fast-check/vitest";
import { Clock, type ClockState } from "../../sim/clock/clock.ts";
import type { Plain } from "../../sim/clock/canonical.ts";

const RUNS = process.env.HVSIM_LONG ? 200 : 25;

interface REvent {
  at: number;
  seq: number;
  target: string;
  kind: string;
  payload: Plain;
}

/** What a dispatched event's handler does, carried in its payload (null: nothing). */
type Act = { readonly child?: number; readonly victim?: number } | null;

class SortedReference {
  now = 0;
  seq = 0;
  readonly pending: REvent[] = [];
  readonly log: string[] = [];

  schedule(delay: number, target: string, kind: string, payload: Plain): number {
    const e: REvent = { at: this.now + delay, seq: this.seq++, target, kind, payload };
    // After every event with at <= e.at: e has the largest seq so far.
    let lo = 0, hi = this.pending.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.pending[mid]!.at <= e.at) lo = mid + 1;
      else hi = mid;
    }
    this.pending.splice(lo, 0, e);
    return e.seq;
  }

  cancel(seq: number): boolean {
    const i = this.pending.findIndex((e) => e.seq === seq);
    if (i < 0) return false;
    this.pending.splice(i, 1);
    return true;
  }

  runUntil(t: number): void {
    while (this.pending.length > 0 && this.pending[0]!.at <= t) {
      const e = this.pending.shift()!;
      this.now = e.at;
      const act = e.payload as Act;
      let extra = "";
      if (act?.child !== undefined) extra = ` +${this.schedule(act.child, e.target, "child", null)}`;
      if (act?.victim !== undefined) extra += ` x${this.cancel(act.victim)}`;
      this.log.push(`${e.at}/${e.seq}/${e.target}/${e.kind}${extra}`);
    }
    this.now = t;
  }
}

const TARGETS = ["a", "b", "c"] as const;
const KINDS = ["tick", "rx", "child"] as const;

function makeClock(): { clock: Clock; log: string[] } {
  const clock = new Clock({ trace: true });
  const log: string[] = [];
  for (const target of TARGETS) {
    for (const kind of KINDS) {
      clock.on(target, kind, (ev, c) => {
        const act = ev.payload as Act;
        let extra = "";
        if (act?.child !== undefined) extra = ` +${c.schedule(act.child, ev.target, "child", null)}`;
        if (act?.victim !== undefined) extra += ` x${c.cancel(act.victim)}`;
        log.push(`${ev.at}/${ev.seq}/${ev.target}/${ev.kind}${extra}`);
      });
    }
  }
  return { clock, log };
}

type Op =
  | { readonly op: "schedule"; readonly delay: number; readonly target: number; readonly kind: number; readonly act: number; readonly arg: number }
  | { readonly op: "burst"; readonly n: number; readonly spread: number }
  | { readonly op: "cancel"; readonly pick: number }
  | { readonly op: "run"; readonly ns: number }
  | { readonly op: "runNext" }
  | { readonly op: "check" };

// Delays from several scales: 0 (now), a few ns (many equal times), up to 2^20 and one past 2^32.
const delayArb = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 1 << 20 }), fc.constant(2 ** 32 + 5));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant("schedule" as const), delay: delayArb, target: fc.nat(2), kind: fc.nat(1), act: fc.nat(5), arg: fc.nat(1 << 20) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("burst" as const), n: fc.integer({ min: 50, max: 400 }), spread: fc.constantFrom(1, 16, 1 << 16) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("cancel" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("run" as const), ns: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 1 << 18 })) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("runNext" as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("check" as const) }) },
);

/** The payload for act 0..5: null, plain data, a child, a cancel, both. */
function payloadFor(act: number, arg: number, seqs: readonly number[]): Plain {
  const victim = seqs.length ? seqs[arg % seqs.length]! : arg;
  switch (act) {
    case 0:
    case 1:
      return null;
    case 2:
      return { n: arg, s: "x" };
    case 3:
      return { child: arg % 64 };
    case 4:
      return { victim };
    default:
      return { child: arg % 3, victim };
  }
}

function samePending(clock: Clock, ref: SortedReference): void {
  expect(clock.pendingEvents()).toEqual(ref.pending.map((e) => ({ ...e })));
}

describe("event queue vs a sorted-array reference", () => {
  test.prop([fc.array(opArb, { minLength: 1, maxLength: 300 }), fc.nat()], { numRuns: RUNS })(
    "same dispatch log, cancel results, pending list and state, with a restore in the middle",
    (ops, splitPick) => {
      let { clock, log } = makeClock();
      const ref = new SortedReference();
      const seqs: number[] = [];
      const split = splitPick % ops.length;
      let burstSeed = 1;
      for (const [i, op] of ops.entries()) {
        if (i === split) {
          // Continue on a fresh clock restored from a JSON copy of the state.
          const state = JSON.parse(JSON.stringify(clock.serialize())) as ClockState;
          const fresh = makeClock();
          fresh.clock.restore(state);
          fresh.log.push(...log);
          ({ clock, log } = fresh);
        }
        switch (op.op) {
          case "schedule": {
            const p = payloadFor(op.act, op.arg, seqs);
            const s = clock.schedule(op.delay, TARGETS[op.target]!, KINDS[op.kind]!, p);
            expect(ref.schedule(op.delay, TARGETS[op.target]!, KINDS[op.kind]!, p)).toBe(s);
            seqs.push(s);
            break;
          }
          case "burst":
            for (let k = 0; k < op.n; k++) {
              burstSeed = (burstSeed * 1103515245 + 12345) % 2 ** 31;
              const delay = burstSeed % op.spread;
              const payload = k % 3 === 0 ? { k } : null;
              const s = clock.schedule(delay, TARGETS[k % 3]!, "tick", payload);
              expect(ref.schedule(delay, TARGETS[k % 3]!, "tick", payload)).toBe(s);
              seqs.push(s);
            }
            break;
          case "cancel": {
            const victim = seqs.length ? seqs[op.pick % seqs.length]! : op.pick;
            expect(clock.cancel(victim)).toBe(ref.cancel(victim));
            break;
          }
          case "run":
            clock.step(op.ns);
            ref.runUntil(ref.now + op.ns);
            break;
          case "runNext": {
            const at = ref.pending[0]?.at;
            expect(clock.runNext()).toBe(at);
            if (at !== undefined) ref.runUntil(at);
            break;
          }
          case "check":
            samePending(clock, ref);
            break;
        }
        expect(clock.pending).toBe(ref.pending.length);
        expect(clock.nextAt).toBe(ref.pending[0]?.at);
        expect(clock.now).toBe(ref.now);
      }
      samePending(clock, ref);
      clock.runUntil(clock.now + 2 ** 33);
      ref.runUntil(ref.now + 2 ** 33);
      expect(log).toEqual(ref.log);
      expect(clock.pending).toBe(0);
      expect(clock.serialize().seq).toBe(ref.seq);
    },
  );
});
