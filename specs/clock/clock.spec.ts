// The virtual clock: time validation, dispatch semantics (step / runUntil / runNext, same-time
// events, re-entrancy, cancel, missing handlers, no advancing from a handler), the trace hash
// (same inputs -> same hash, in one process or two), serialize/restore, and restore's refusals.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Clock, ClockError, validateClockState, type ClockEvent, type ClockState } from "../../sim/clock/clock.ts";
import { MAX_TIME, TimeError, checkTime, addTime } from "../../sim/clock/time.ts";
import { drive, install, STEPS, workloadHash } from "./scenario.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A clock with a recording handler on every (target, kind) in `pairs`. */
function recorder(pairs: [string, string][] = [["a", "x"]], seed = 0) {
  const clock = new Clock({ seed });
  const log: { at: number; seq: number; target: string; kind: string; payload: unknown; now: number }[] = [];
  for (const [t, k] of pairs) {
    clock.on(t, k, (ev, c) => {
      log.push({ at: ev.at, seq: ev.seq, target: ev.target, kind: ev.kind, payload: ev.payload, now: c.now });
    });
  }
  return { clock, log };
}

/** Everything observable about a clock's state, as a JSON string. */
function snapshotOf(c: Clock): string {
  return JSON.stringify({ state: c.serialize(), now: c.now, pending: c.pending, nextAt: c.nextAt ?? null, hash: c.trace.hash() });
}

describe("time validation", () => {
  // What each refusal says after naming the quantity ("time", "delay", "step", "event time").
  const refused: [string, unknown, (what: string) => string][] = [
    ["a fraction", 1.5, (w) => `${w} must be a whole number of nanoseconds, got 1.5`],
    ["a negative number", -1, (w) => `${w} must not be negative, got -1`],
    ["NaN", NaN, (w) => `${w} must be a finite number of nanoseconds, got NaN`],
    ["Infinity", Infinity, (w) => `${w} must be a finite number of nanoseconds, got Infinity`],
    ["-Infinity", -Infinity, (w) => `${w} must be a finite number of nanoseconds, got -Infinity`],
    ["2^53", 2 ** 53, (w) => `${w} 9007199254740992 is past 2^53 - 1 ns, the last exact virtual time`],
    ["a numeric string", "5", (w) => `${w} must be a finite number of nanoseconds, got string 5`],
    ["a bigint", 5n, (w) => `${w} must be a finite number of nanoseconds, got bigint 5`],
    ["undefined", undefined, (w) => `${w} must be a finite number of nanoseconds, got undefined undefined`],
    ["null", null, (w) => `${w} must be a finite number of nanoseconds, got object null`],
  ];

  it.each(refused)("checkTime refuses %s with a TimeError naming the value", (_name, v, message) => {
    let err: unknown;
    try {
      checkTime(v, "time");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TimeError);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).name).toBe("TimeError");
    expect((err as Error).message).toBe(message("time"));
  });

  it("checkTime accepts whole nanoseconds from 0 to 2^53 - 1 and returns them", () => {
    for (const v of [0, 1, 999, 2 ** 32, 2 ** 32 + 1, MAX_TIME]) expect(checkTime(v)).toBe(v);
    expect(MAX_TIME).toBe(2 ** 53 - 1);
  });

  it("addTime refuses a sum past 2^53 - 1", () => {
    expect(addTime(MAX_TIME - 5, 5)).toBe(MAX_TIME);
    expect(() => addTime(MAX_TIME - 5, 6, "event time")).toThrow(/event time 9007199254740986 \+ 6 is past 2\^53 - 1 ns/);
  });

  it.each(refused)("schedule, scheduleAt, step and runUntil refuse %s and leave the clock unchanged", (_name, v, message) => {
    const { clock } = recorder();
    clock.schedule(10, "a", "x");
    clock.step(3);
    const before = snapshotOf(clock);
    const calls: [string, () => unknown][] = [
      ["delay", () => clock.schedule(v as number, "a", "x")],
      ["event time", () => clock.scheduleAt(v as number, "a", "x")],
      ["step", () => clock.step(v as number)],
      ["time", () => clock.runUntil(v as number)],
    ];
    for (const [what, call] of calls) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(TimeError);
      expect((err as Error).message).toBe(message(what));
    }
    expect(snapshotOf(clock)).toBe(before);
  });

  it("refuses an event time past 2^53 - 1 and a step past it, unchanged", () => {
    const { clock } = recorder();
    clock.runUntil(MAX_TIME - 10);
    const before = snapshotOf(clock);
    expect(() => clock.schedule(11, "a", "x")).toThrow(/event time 9007199254740981 \+ 11 is past 2\^53 - 1 ns/);
    expect(() => clock.step(11)).toThrow(/past 2\^53 - 1 ns/);
    expect(snapshotOf(clock)).toBe(before);
    clock.schedule(10, "a", "x");
    expect(clock.nextAt).toBe(MAX_TIME);
  });

  it("refuses scheduling before now and running backwards", () => {
    const { clock } = recorder();
    clock.step(100);
    expect(() => clock.scheduleAt(99, "a", "x")).toThrow(/event time 99 is before the current time 100/);
    expect(() => clock.runUntil(50)).toThrow(/cannot run back to 50: the current time is 100/);
    expect(clock.now).toBe(100);
    expect(clock.pending).toBe(0);
  });

  it("accepts delays of 2^32 ns and more (past the fast path) exactly", () => {
    const { clock, log } = recorder();
    clock.step(7);
    clock.schedule(2 ** 32, "a", "x");
    clock.schedule(2 ** 40 + 3, "a", "x");
    expect(clock.nextAt).toBe(2 ** 32 + 7);
    clock.runUntil(2 ** 41);
    expect(log.map((e) => e.at)).toEqual([2 ** 32 + 7, 2 ** 40 + 10]);
  });

  it("refuses a target or kind that is not a string", () => {
    const { clock } = recorder();
    expect(() => clock.schedule(1, 5 as unknown as string, "x")).toThrow(ClockError);
    expect(() => clock.schedule(1, "a", undefined as unknown as string)).toThrow(/target and kind must be strings/);
    expect(clock.pending).toBe(0);
  });
});

describe("step, runUntil, runNext", () => {
  it("step dispatches everything due up to and including now + ns, and nothing later", () => {
    const { clock, log } = recorder();
    for (const d of [5, 10, 11, 0, 10]) clock.schedule(d, "a", "x");
    expect(clock.step(10)).toBe(10);
    expect(clock.now).toBe(10);
    // (at, seq) order: seq are 0..4 in scheduling order.
    expect(log.map((e) => [e.at, e.seq])).toEqual([[0, 3], [5, 0], [10, 1], [10, 4]]);
    expect(clock.pending).toBe(1);
    expect(clock.nextAt).toBe(11);
    expect(clock.step(0)).toBe(10);
    expect(log).toHaveLength(4);
    expect(clock.step(1)).toBe(11);
    expect(log).toHaveLength(5);
    expect(clock.nextAt).toBeUndefined();
  });

  it("delivers the event as data with the clock at its time", () => {
    const { clock, log } = recorder([["dev", "irq"]]);
    const seq = clock.schedule(42, "dev", "irq", { line: 5, data: [1, 2] });
    clock.runUntil(1000);
    expect(log).toEqual([{ at: 42, seq, target: "dev", kind: "irq", payload: { line: 5, data: [1, 2] }, now: 42 }]);
    expect(clock.now).toBe(1000);
  });

  it("runUntil lands exactly on t even when no event is due, and dispatches events at t", () => {
    const { clock, log } = recorder();
    clock.scheduleAt(500, "a", "x");
    expect(clock.runUntil(499)).toBe(499);
    expect(log).toHaveLength(0);
    expect(clock.runUntil(500)).toBe(500);
    expect(log.map((e) => e.at)).toEqual([500]);
    expect(clock.runUntil(500)).toBe(500);
    expect(log).toHaveLength(1);
  });

  it("dispatch order is the (at, seq) sort of what was scheduled", () => {
    const { clock, log } = recorder();
    const times = [30, 10, 20, 10, 0, 30, 20, 10, 5, 0];
    const seqs = times.map((t) => clock.scheduleAt(t, "a", "x"));
    const expected = times.map((t, i) => [t, seqs[i]!]).sort((p, q) => p[0]! - q[0]! || p[1]! - q[1]!);
    clock.runUntil(100);
    expect(log.map((e) => [e.at, e.seq])).toEqual(expected);
  });

  it("runNext advances to the earliest event and dispatches everything due then, including events for now", () => {
    const { clock, log } = recorder([["a", "x"], ["a", "now"]]);
    clock.on("a", "spawn", (_ev, c) => {
      log.push({ at: c.now, seq: -1, target: "a", kind: "spawn", payload: null, now: c.now });
      c.schedule(0, "a", "now");
      c.schedule(1, "a", "x");
    });
    clock.scheduleAt(20, "a", "x");
    clock.scheduleAt(7, "a", "spawn");
    clock.scheduleAt(7, "a", "x");
    expect(clock.runNext()).toBe(7);
    expect(log.map((e) => `${e.at}:${e.kind}`)).toEqual(["7:spawn", "7:x", "7:now"]);
    expect(clock.runNext()).toBe(8);
    expect(clock.runNext()).toBe(20);
    expect(clock.runNext()).toBeUndefined();
    expect(clock.now).toBe(20);
  });
});

describe("events for now, re-entrancy", () => {
  it("an event a handler schedules for now runs in the same step, after the current one and after earlier same-time events", () => {
    const order: string[] = [];
    const clock = new Clock();
    clock.on("d", "first", (_ev, c) => {
      order.push("first");
      c.schedule(0, "d", "echo", "from-first");
    });
    clock.on("d", "echo", (ev) => order.push(`echo:${String(ev.payload)}`));
    clock.on("d", "other", () => order.push("other"));
    clock.on("d", "later", () => order.push("later"));
    clock.scheduleAt(100, "d", "first");
    clock.scheduleAt(100, "d", "other"); // scheduled before the echo exists: lower seq
    clock.scheduleAt(101, "d", "later");
    clock.step(100);
    expect(order).toEqual(["first", "other", "echo:from-first"]);
    clock.step(1);
    expect(order).toEqual(["first", "other", "echo:from-first", "later"]);
  });

  it("a self-re-arming timer ticks in one runUntil exactly as often as its period fits", () => {
    const clock = new Clock();
    const ticks: number[] = [];
    clock.on("t", "tick", (ev, c) => {
      ticks.push(ev.at);
      c.schedule(250, "t", "tick");
    });
    clock.schedule(0, "t", "tick");
    clock.runUntil(10_000);
    // 0, 250, ..., 10000: 41 ticks, the next one pending at 10250.
    expect(ticks).toEqual(Array.from({ length: 41 }, (_, i) => i * 250));
    expect(clock.nextAt).toBe(10_250);
    expect(clock.pending).toBe(1);
  });

  it("handlers scheduling several events (some for now) keep (at, seq) order across a cascade", () => {
    const clock = new Clock();
    const seen: [number, number, string][] = [];
    const scheduled: [number, number, string][] = [];
    const sched = (c: Clock, d: number, name: string) => scheduled.push([c.now + d, c.schedule(d, "n", "node", name), name]);
    clock.on("n", "node", (ev, c) => {
      const name = ev.payload as string;
      seen.push([ev.at, ev.seq, name]);
      if (name.length < 4) {
        sched(c, 0, `${name}a`);
        sched(c, 3, `${name}b`);
        sched(c, 0, `${name}c`);
      }
    });
    sched(clock, 0, "r");
    sched(clock, 3, "s");
    clock.runUntil(1000);
    const expected = [...scheduled].sort((p, q) => p[0] - q[0] || p[1] - q[1]);
    expect(seen).toEqual(expected);
    expect(seen).toHaveLength(2 + 3 + 9 + 27 + 3 + 9 + 27);
  });

  it("pending, nextAt and pendingEvents are right when read from inside a handler", () => {
    const clock = new Clock();
    const views: unknown[] = [];
    clock.on("a", "x", (ev, c) => {
      if (ev.payload === "look") {
        c.schedule(5, "a", "x", "new");
        views.push({ pending: c.pending, nextAt: c.nextAt, events: c.pendingEvents().map((e) => [e.at, e.payload]) });
      }
    });
    clock.scheduleAt(10, "a", "x", "look");
    clock.scheduleAt(12, "a", "x", "other");
    clock.step(10);
    expect(views).toEqual([{ pending: 2, nextAt: 12, events: [[12, "other"], [15, "new"]] }]);
  });
});

describe("cancel", () => {
  it("a pending event is cancelled once; unknown, dispatched and repeated cancels return false", () => {
    const { clock, log } = recorder();
    const a = clock.schedule(10, "a", "x", "a");
    const b = clock.schedule(20, "a", "x", "b");
    const c = clock.schedule(30, "a", "x", "c");
    expect(clock.cancel(b)).toBe(true);
    expect(clock.pending).toBe(2);
    expect(clock.cancel(b)).toBe(false);
    expect(clock.cancel(12345)).toBe(false);
    clock.step(15);
    expect(clock.cancel(a)).toBe(false);
    clock.step(100);
    expect(log.map((e) => e.payload)).toEqual(["a", "c"]);
    expect(clock.cancel(c)).toBe(false);
  });

  it("cancelling arbitrary events out of many leaves exactly the others, in (at, seq) order", () => {
    const { clock, log } = recorder();
    const all: [number, number][] = [];
    // Deterministic pseudo-random times with many duplicates.
    let x = 12345;
    for (let i = 0; i < 300; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const at = x % 97;
      all.push([at, clock.scheduleAt(at, "a", "x")]);
    }
    const cancelled = new Set(all.filter((_, i) => i % 3 === 1 || i % 7 === 0).map(([, s]) => s));
    for (const s of cancelled) expect(clock.cancel(s)).toBe(true);
    expect(clock.pending).toBe(300 - cancelled.size);
    clock.runUntil(100);
    const expected = all.filter(([, s]) => !cancelled.has(s)).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
    expect(log.map((e) => [e.at, e.seq])).toEqual(expected);
  });

  it("a handler can cancel a later event due at the same time; its own seq is no longer pending", () => {
    const clock = new Clock();
    const ran: string[] = [];
    let victim = -1;
    let self = -1;
    let selfCancel: boolean | undefined;
    clock.on("a", "killer", (ev, c) => {
      ran.push("killer");
      selfCancel = c.cancel(ev.seq);
      expect(c.cancel(victim)).toBe(true);
    });
    clock.on("a", "victim", () => ran.push("victim"));
    clock.on("a", "bystander", () => ran.push("bystander"));
    self = clock.scheduleAt(5, "a", "killer");
    victim = clock.scheduleAt(5, "a", "victim");
    clock.scheduleAt(5, "a", "bystander");
    clock.step(5);
    expect(self).toBe(0);
    expect(selfCancel).toBe(false);
    expect(ran).toEqual(["killer", "bystander"]);
  });
});

describe("handlers", () => {
  it("an event without a handler stops the run with a ClockError naming it, and stays pending", () => {
    const { clock, log } = recorder();
    clock.schedule(5, "a", "x");
    clock.schedule(10, "ghost", "boo", { k: 1 });
    clock.schedule(15, "a", "x");
    let err: unknown;
    try {
      clock.runUntil(100);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ClockError);
    expect((err as Error).message).toBe("no handler registered for event ghost/boo (seq 1) at 10 ns");
    expect(log.map((e) => e.at)).toEqual([5]);
    expect(clock.now).toBe(5);
    expect(clock.pending).toBe(2);
    expect(clock.nextAt).toBe(10);
    // Registering the handler lets the run continue where it stopped.
    const late: unknown[] = [];
    clock.on("ghost", "boo", (ev) => late.push(ev.payload));
    expect(clock.runUntil(100)).toBe(100);
    expect(late).toEqual([{ k: 1 }]);
    expect(log.map((e) => e.at)).toEqual([5, 15]);
  });

  it("one handler per (target, kind); off removes a target's handlers and a new one takes over", () => {
    const clock = new Clock();
    const calls: string[] = [];
    clock.on("d", "x", () => calls.push("old"));
    expect(() => clock.on("d", "x", () => {})).toThrow(/a handler for d\/x is already registered/);
    expect(clock.hasHandler("d", "x")).toBe(true);
    expect(clock.hasHandler("d", "y")).toBe(false);
    clock.schedule(1, "d", "x");
    clock.step(1); // warms any lookup cache with the old handler
    clock.off("d");
    expect(clock.hasHandler("d", "x")).toBe(false);
    clock.schedule(1, "d", "x");
    expect(() => clock.step(1)).toThrow(/no handler registered for event d\/x/);
    clock.on("d", "x", () => calls.push("new"));
    clock.step(1);
    expect(calls).toEqual(["old", "new"]);
  });

  it("alternating targets each reach their own handler", () => {
    const clock = new Clock();
    const calls: string[] = [];
    for (const t of ["p", "q"]) for (const k of ["x", "y"]) clock.on(t, k, (ev) => calls.push(`${ev.target}${ev.kind}`));
    for (const [i, [t, k]] of [["p", "x"], ["p", "y"], ["q", "x"], ["p", "x"], ["q", "y"]].entries()) clock.scheduleAt(i, t!, k!);
    clock.runUntil(10);
    expect(calls).toEqual(["px", "py", "qx", "px", "qy"]);
  });

  it("a handler cannot advance, serialize or restore the clock", () => {
    const clock = new Clock();
    const errors: string[] = [];
    const state = clock.serialize();
    clock.on("a", "x", (_ev, c) => {
      for (const f of [() => c.step(1), () => c.runUntil(c.now + 5), () => c.runNext(), () => c.serialize(), () => c.restore(state)]) {
        try {
          f();
          errors.push("no error");
        } catch (e) {
          errors.push(`${(e as Error).name}: ${(e as Error).message}`);
        }
      }
    });
    clock.schedule(3, "a", "x");
    clock.schedule(4, "a", "x");
    clock.step(3);
    expect(errors).toEqual([
      "ClockError: the clock cannot be advanced from inside an event handler",
      "ClockError: the clock cannot be advanced from inside an event handler",
      "ClockError: the clock cannot be advanced from inside an event handler",
      "ClockError: cannot serialize the clock from inside an event handler",
      "ClockError: cannot restore the clock from inside an event handler",
    ]);
    expect(clock.now).toBe(3);
    expect(clock.pending).toBe(1);
  });

  it("a handler that throws: the error comes out, its event was dispatched, the clock keeps working", () => {
    const { clock, log } = recorder();
    clock.on("a", "boom", () => {
      throw new Error("device fault");
    });
    clock.schedule(5, "a", "x");
    clock.schedule(7, "a", "boom");
    clock.schedule(9, "a", "x");
    expect(() => clock.runUntil(20)).toThrow("device fault");
    expect(clock.now).toBe(7);
    expect(clock.pending).toBe(1);
    expect(clock.runUntil(20)).toBe(20);
    expect(log.map((e) => e.at)).toEqual([5, 9]);
  });
});

describe("trace hash", () => {
  it("the same seed and inputs give the same hash; a different seed or input gives a different one", () => {
    const h1 = workloadHash(1);
    expect(h1).toMatch(/^[0-9a-f]{64}$/);
    expect(workloadHash(1)).toBe(h1);
    expect(workloadHash(2)).not.toBe(h1);
    const c = install(new Clock({ seed: 1 }));
    drive(c, [...STEPS, 5000]); // running on dispatches more events
    expect(c.trace.hash()).not.toBe(h1);
    const d = install(new Clock({ seed: 1 }));
    drive(d, STEPS.slice(0, 6));
    d.schedule(1, "dev", "done", { extra: true }); // one more input event
    drive(d, STEPS.slice(6));
    expect(d.trace.hash()).not.toBe(h1);
  });

  it("a different payload changes the hash; records are canonical text", () => {
    const run = (payload: Record<string, unknown>) => {
      const { clock } = recorder([["dev", "irq"]]);
      const lines: string[] = [];
      clock.trace.listen((_r, line) => lines.push(line));
      clock.schedule(3, "dev", "irq", payload as never);
      clock.step(3);
      return { hash: clock.trace.hash(), lines };
    };
    const a = run({ b: 2, a: [1, "x"] });
    expect(a.lines).toEqual(['[3,"event","dev","irq",0,{"a":[1,"x"],"b":2}]']);
    // Key order does not matter; values do.
    expect(run({ a: [1, "x"], b: 2 }).hash).toBe(a.hash);
    expect(run({ a: [1, "x"], b: 3 }).hash).not.toBe(a.hash);
  });

  it("the hash is SHA-256 over the chain, the records' binary encoding and the count, as documented", () => {
    const { clock } = recorder([["dev", "irq"]]);
    clock.schedule(3, "dev", "irq", { v: 1n });
    clock.schedule(4, "dev", "irq", new Uint8Array([0xab]));
    clock.step(10);
    // The encoding documented in sim/clock/trace.ts, spelled out by hand: tag bytes, u32 LE
    // lengths and counts, numbers as f64 LE.
    const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
    const f64 = (n: number) => { const b = Buffer.alloc(8); b.writeDoubleLE(n); return b; };
    const str = (x: string) => Buffer.concat([Buffer.from([4]), u32(x.length), Buffer.from(x, "latin1")]);
    const num = (n: number) => Buffer.concat([Buffer.from([3]), f64(n)]);
    const rec = (at: number, ...fields: Buffer[]) => Buffer.concat([Buffer.from([9]), u32(fields.length), f64(at), str("event"), ...fields]);
    const bytes = Buffer.concat([
      rec(3, str("dev"), str("irq"), num(0), Buffer.concat([Buffer.from([8]), u32(1), str("v"), Buffer.from([5]), u32(1), Buffer.from("1")])),
      rec(4, str("dev"), str("irq"), num(1), Buffer.concat([Buffer.from([6]), u32(1), Buffer.from([0xab])])),
    ]);
    const expected = createHash("sha256").update("0".repeat(64)).update(bytes).update("#2").digest("hex");
    expect(clock.trace.hash()).toBe(expected);
    expect(clock.trace.count).toBe(2);
  });

  it("a clock without a trace records nothing", () => {
    const clock = install(new Clock({ seed: 1, trace: false }));
    drive(clock);
    const empty = createHash("sha256").update("0".repeat(64)).update("").update("#0").digest("hex");
    expect(clock.trace.count).toBe(0);
    expect(clock.trace.hash()).toBe(empty);
  });

  it("two separate processes compute the same hash as this one", () => {
    const script = fileURLToPath(new URL("./fixtures/hash-run.ts", import.meta.url));
    const run = () => {
      const r = spawnSync(process.execPath, ["--import", "tsx", script, "11"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    const here = workloadHash(11);
    const first = run();
    const second = run();
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(first).toBe(second);
    expect(first).toBe(here);
  });
});

describe("serialize / restore", () => {
  const split = 6;

  function uninterrupted(seed: number) {
    const c = install(new Clock({ seed }));
    drive(c);
    return c;
  }

  it("a clock serialized mid-run and restored into a fresh clock continues to the same trace hash (through JSON)", () => {
    const full = uninterrupted(3);
    const a = install(new Clock({ seed: 3 }));
    drive(a, STEPS.slice(0, split));
    const json = JSON.stringify(a.serialize());
    const b = install(new Clock({ seed: 999 }), false); // other seed, nothing armed: all comes from the state
    b.restore(JSON.parse(json) as ClockState);
    expect(b.now).toBe(a.now);
    expect(b.pending).toBe(a.pending);
    drive(b, STEPS.slice(split));
    expect(b.trace.hash()).toBe(full.trace.hash());
    expect(b.now).toBe(full.now);
    expect(JSON.stringify(b.serialize())).toBe(JSON.stringify(full.serialize()));
    // The original, continuing after serialize, is not disturbed by it.
    drive(a, STEPS.slice(split));
    expect(a.trace.hash()).toBe(full.trace.hash());
  });

  it("restoring at every split point gives the same hash", () => {
    const full = uninterrupted(4).trace.hash();
    for (let k = 0; k <= STEPS.length; k++) {
      const a = install(new Clock({ seed: 4 }));
      drive(a, STEPS.slice(0, k));
      const b = install(new Clock(), false);
      b.restore(JSON.parse(JSON.stringify(a.serialize())) as ClockState);
      drive(b, STEPS.slice(k));
      expect(b.trace.hash(), `split after ${k} steps`).toBe(full);
    }
  });

  it("restore rewinds a clock that ran on", () => {
    const c = install(new Clock({ seed: 5 }));
    drive(c, STEPS.slice(0, split));
    const s = c.serialize();
    const before = JSON.stringify(s);
    drive(c, STEPS.slice(split));
    c.restore(s);
    expect(JSON.stringify(c.serialize())).toBe(before);
  });

  it("the state carries bigint and byte payloads, the RNG and a trace past one hash block", () => {
    const mk = () => {
      const c = new Clock({ seed: 8 });
      c.on("d", "blob", (ev, cl) => {
        const n = (ev.payload as { n: number }).n;
        if (n < 400) cl.schedule(cl.rng.int(1, 50), "d", "blob", { n: n + 1, big: -(2n ** 70n) + BigInt(n), bytes: cl.rng.bytes(200) });
      });
      c.schedule(0, "d", "blob", { n: 0, big: 0n, bytes: new Uint8Array(0) });
      return c;
    };
    const full = mk();
    full.runUntil(100_000);
    const a = mk();
    a.runUntil(7_000);
    expect(a.trace.count).toBeGreaterThan(200); // > 64 KiB of record text: at least one block folded
    const state = JSON.parse(JSON.stringify(a.serialize())) as ClockState;
    expect(state.trace.chain).not.toBe("0".repeat(64));
    const b = mk();
    b.restore(state);
    b.runUntil(100_000);
    expect(b.trace.hash()).toBe(full.trace.hash());
    expect(b.rng.getState()).toEqual(full.rng.getState());
  });

  it("pendingEvents are copies in (at, seq) order", () => {
    const clock = new Clock();
    clock.scheduleAt(9, "a", "x", { v: new Uint8Array([1]) });
    clock.scheduleAt(3, "a", "x", null);
    clock.scheduleAt(9, "a", "y", null);
    const list = clock.pendingEvents();
    expect(list.map((e) => [e.at, e.seq, e.kind])).toEqual([[3, 1, "x"], [9, 0, "x"], [9, 2, "y"]]);
    ((list[1]!.payload as { v: Uint8Array }).v)[0] = 99;
    expect(((clock.pendingEvents()[1]!.payload as { v: Uint8Array }).v)[0]).toBe(1);
  });

  describe("restore refuses malformed states with a clear message and changes nothing", () => {
    function base(): ClockState {
      const c = install(new Clock({ seed: 6 }));
      drive(c, STEPS.slice(0, split));
      return JSON.parse(JSON.stringify(c.serialize())) as ClockState;
    }
    type Mut = (s: any) => unknown;
    const cases: [string, Mut, RegExp][] = [
      ["not an object", () => 42, /invalid clock state: not an object/],
      ["null", () => null, /invalid clock state: not an object/],
      ["an array", () => [], /invalid clock state: not an object/],
      ["an unknown version", (s) => void (s.version = 2), /unknown clock state version 2/],
      ["a negative now", (s) => void (s.now = -1), /now is not a valid time/],
      ["a fractional now", (s) => void (s.now = 1.5), /now is not a valid time/],
      ["now past 2^53 - 1", (s) => void (s.now = 2 ** 53), /now is not a valid time/],
      ["a missing seq", (s) => void delete s.seq, /seq is not a valid counter/],
      ["pending not a list", (s) => void (s.pending = {}), /pending is not a list/],
      ["a pending entry that is not an object", (s) => void (s.pending[0] = "x"), /pending\[0\] is not an object/],
      ["an event before now", (s) => void (s.pending[0].at = s.now - 1), /pending\[0\]\.at is not a time at or after now/],
      ["a duplicate seq", (s) => void (s.pending[1].seq = s.pending[0].seq), /pending\[1\]\.seq is not a unique number below seq/],
      ["a seq not below the counter", (s) => void (s.pending[0].seq = s.seq), /pending\[0\]\.seq is not a unique number below seq/],
      ["a missing target", (s) => void delete s.pending[0].target, /pending\[0\] has no target\/kind/],
      ["a missing payload", (s) => void delete s.pending[0].payload, /pending\[0\] has no payload/],
      ["a bigint tag that is not a number", (s) => void (s.pending[0].payload = { n: { $big: "12x" } }), /pending\[0\]\.payload\.n\.\$big: "12x" is not a decimal integer/],
      ["a payload with a non-finite number", (s) => void (s.pending[0].payload = [1, Infinity]), /pending\[0\]\.payload\[1\]: Infinity is not a finite number/],
      ["an RNG state of 3 numbers", (s) => void (s.rng = [1, 2, 3]), /rng state has 3 numbers, not 4/],
      ["an RNG state past 32 bits", (s) => void (s.rng = [1, 2, 3, 2 ** 40]), /rng state \[3\] is not a 32-bit signed integer/],
      ["an RNG state that is not a list", (s) => void (s.rng = "abc"), /rng state is not a list/],
      ["no trace", (s) => void delete s.trace, /trace state is not an object/],
      ["a bad trace chain", (s) => void (s.trace.chain = "xyz"), /trace state chain is not 64 lowercase hex digits/],
      ["a trace tail that is neither hex bytes nor text lines", (s) => void (s.trace.tail = '[1,"event"]'), /trace state tail is neither lowercase hex bytes nor text lines ending in a newline/],
      ["a trace tail longer than a block", (s) => void (s.trace.tail = "00".repeat(70_000)), /trace state tail is 70000 bytes, not less than one block/],
      ["a trace tail that is not whole records", (s) => void (s.trace.tail = "0900"), /trace state tail byte 0 does not start a record/],
      ["a trace tail with more records than the count", (s) => void (s.trace.count = 0), /trace state tail holds \d+ records but count is 0/],
    ];

    it.each(cases)("%s", (_name, mutate, message) => {
      const s = base();
      const replaced = mutate(s);
      const bad = replaced === undefined ? s : replaced;
      expect(validateClockState(bad)).toMatch(new RegExp(message.source.replace(/^invalid clock state: /, "")));
      // The target clock is in the middle of its own run.
      const target = install(new Clock({ seed: 77 }));
      drive(target, STEPS.slice(0, 4));
      const before = snapshotOf(target);
      let err: unknown;
      try {
        target.restore(bad as ClockState);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ClockError);
      expect((err as Error).message).toMatch(/^invalid clock state: /);
      expect((err as Error).message).toMatch(message);
      expect(snapshotOf(target)).toBe(before);
      // ... and it continues exactly like a twin that never saw the bad state.
      const twin = install(new Clock({ seed: 77 }));
      drive(twin, STEPS.slice(0, 4));
      drive(target, STEPS.slice(4));
      drive(twin, STEPS.slice(4));
      expect(target.trace.hash()).toBe(twin.trace.hash());
    });

    it("the unchanged base state is accepted", () => {
      const s = base();
      expect(validateClockState(s)).toBeUndefined();
      const c = install(new Clock(), false);
      c.restore(s);
      expect(c.now).toBe(s.now);
    });
  });
});

describe("events are data", () => {
  it("a handler receives the same fields the clock reports as pending", () => {
    const clock = new Clock();
    const got: ClockEvent[] = [];
    clock.on("a", "x", (ev) => got.push({ ...ev }));
    clock.schedule(4, "a", "x", { q: [true, null, "s"] });
    const [pending] = clock.pendingEvents();
    clock.step(4);
    expect(got).toEqual([pending]);
  });
});
