// The virtual clock and event scheduler. Pending events are data {at, seq, target, kind,
// payload}, dispatched in (at, seq) order to the handler registered for (target, kind). The clock
// owns the bench's seeded RNG and its trace, so that serialize() captures everything a
// continuation depends on.
//
// Layout (for speed; none of it is visible through the API): the queue keeps no object per event.
// A pending event sits in a slot of a pool: `sd[2 * slot]` is its sequence number and
// `sd[2 * slot + 1]` its "meta", the number of its (target, kind) pair (pairs are numbered on first
// use and cache their handler) shifted left once, with bit 0 set when the payload is not null; only
// such a payload is kept, in `sPayload[slot]`. Freed slots are reused, newest first. A 4-ary
// min-heap orders the slots on (at, seq): position i holds the due time `hAt[i]` next to the slot
// number `hSlot[i]`, so sifting moves plain numbers only, and the positions past the last entry
// hold +Infinity, so choosing among four children needs no bounds checks. Sequence numbers, read
// through the slot, break ties between equal times only. Dispatch leaves a "hole" at the root while
// the handler runs: an event the handler schedules then replaces the root and sifts down once
// (instead of a pop and a push); otherwise the hole is filled before anything else looks at the
// heap. The handler gets a fresh event object built from the slot.
import { addTime, checkTime, MAX_TIME, TimeError } from "./time.ts";
import { Rng, checkRngState, type RngState } from "./rng.ts";
import { Trace, checkTraceState, type TraceState } from "./trace.ts";
import { checkJSONPlain, clonePlain, fromJSONValue, toJSONValue, type Plain } from "./canonical.ts";

export interface ClockEvent<P extends Plain = Plain> {
  readonly at: number;
  readonly seq: number;
  readonly target: string;
  readonly kind: string;
  readonly payload: P;
}

export type Handler = (ev: ClockEvent<any>, clock: Clock) => void;

export interface ClockOptions {
  seed?: number;
  /** Keep a trace (default true). Benchmarks of the bare scheduler turn it off. */
  trace?: boolean;
}

export interface ClockState {
  readonly version: 1;
  readonly now: number;
  readonly seq: number;
  readonly pending: readonly { at: number; seq: number; target: string; kind: string; payload: unknown }[];
  readonly rng: RngState;
  readonly trace: TraceState;
}

export class ClockError extends Error {
  override name = "ClockError";
}

const INITIAL_CAPACITY = 64;
// A module-local copy: tsx runs this file as CommonJS, where every use of an imported binding is a
// getter call, too slow for the schedule fast path.
const LAST_TIME: number = MAX_TIME;
/** Free heap positions past the last entry that stay +Infinity: the four children of any entry. */
const PAD = 4;

function infinities(n: number): Float64Array {
  return new Float64Array(n).fill(Infinity);
}

export class Clock {
  private now_ = 0;
  private seq_ = 0;
  private dispatching = false;
  // 4-ary heap of slots on (at, seq): positions 0..size-1; hAt[size..] is +Infinity and the
  // capacity stays at least size + PAD.
  private hAt = infinities(INITIAL_CAPACITY);
  private hSlot = new Int32Array(INITIAL_CAPACITY);
  private size = 0;
  /** Position 0 holds the event being dispatched, already taken: see the header comment. */
  private hole = false;
  // Slot pool: slots 0..used-1 exist; the free ones are listed in freeSlots[0..nFree-1].
  private sd = new Float64Array(2 * INITIAL_CAPACITY);
  private readonly pairIds = new Map<string, Map<string, number>>();
  private readonly pairTarget: string[] = [];
  private readonly pairKind: string[] = [];
  private readonly pairHandler: (Handler | undefined)[] = [];
  private lastTarget = "";
  private lastKind = "";
  private lastPair = -1;
  private sPayload: Plain[] = new Array<Plain>(INITIAL_CAPACITY).fill(null);
  private used = 0;
  private freeSlots = new Int32Array(INITIAL_CAPACITY);
  private nFree = 0;
  private readonly handlers = new Map<string, Map<string, Handler>>();
  private readonly traceOn: boolean;
  readonly rng: Rng;
  readonly trace: Trace;

  constructor(opts: ClockOptions = {}) {
    this.rng = new Rng(opts.seed ?? 0);
    this.trace = new Trace(opts.trace ?? true);
    this.traceOn = this.trace.enabled;
  }

  /** Current virtual time in nanoseconds. */
  get now(): number {
    return this.now_;
  }

  /** Number of pending events. */
  get pending(): number {
    return this.hole ? this.size - 1 : this.size;
  }

  /** Time of the earliest pending event, or undefined when none is pending. */
  get nextAt(): number | undefined {
    if (this.hole) this.settle();
    return this.size > 0 ? this.hAt[0] : undefined;
  }

  /** Registers the handler for events sent to (target, kind); one handler per pair. */
  on(target: string, kind: string, handler: Handler): void {
    if (typeof handler !== "function") throw new ClockError(`the handler for ${target}/${kind} is not a function`);
    let m = this.handlers.get(target);
    if (!m) this.handlers.set(target, (m = new Map()));
    if (m.has(kind)) throw new ClockError(`a handler for ${target}/${kind} is already registered`);
    m.set(kind, handler);
    this.pairHandler.fill(undefined);
  }

  /** Removes every handler of `target` (a device being detached). */
  off(target: string): void {
    this.handlers.delete(target);
    this.pairHandler.fill(undefined);
  }

  hasHandler(target: string, kind: string): boolean {
    return this.handlers.get(target)?.has(kind) ?? false;
  }

  /** Schedules an event `delay` ns from now; returns its sequence number (its handle). */
  schedule(delay: number, target: string, kind: string, payload: Plain = null): number {
    // Fast path: an integer in [0, 2^32); anything else goes through the full check.
    if (typeof delay !== "number" || delay >>> 0 !== delay) checkTime(delay, "delay");
    const at = this.now_ + delay;
    if (at > LAST_TIME) addTime(this.now_, delay, "event time");
    return this.insert(at, target, kind, payload);
  }

  /** Schedules an event at absolute time `at` (not before now); returns its sequence number. */
  scheduleAt(at: number, target: string, kind: string, payload: Plain = null): number {
    checkTime(at, "event time");
    if (at < this.now_) throw new TimeError(`event time ${at} is before the current time ${this.now_}`);
    return this.insert(at, target, kind, payload);
  }

  /** Cancels the pending event with sequence number `seq`; false if it is not pending. O(pending). */
  cancel(seq: number): boolean {
    if (this.hole) this.settle();
    const sd = this.sd, hSlot = this.hSlot;
    for (let i = 0, n = this.size; i < n; i++) {
      if (sd[2 * hSlot[i]!] === seq) {
        this.removeAt(i);
        return true;
      }
    }
    return false;
  }

  /** The pending events in dispatch order (copies; for inspection and snapshots). */
  pendingEvents(): ClockEvent[] {
    const out = this.sortedPending();
    for (const e of out) (e as { payload: Plain }).payload = clonePlain(e.payload);
    return out;
  }

  /** Advances time by `ns`, dispatching every event due up to and including the new time. */
  step(ns: number): number {
    return this.runUntil(addTime(this.now_, checkTime(ns, "step"), "time"));
  }

  /**
   * Advances time to `t` (not before now), dispatching every event due up to and including t.
   * An event with no handler stops the run with a ClockError and stays pending (the time is then
   * that of the last event dispatched); an event whose handler (or trace listener) throws has been
   * dispatched, and the time is its time.
   */
  runUntil(t: number): number {
    checkTime(t, "time");
    if (t < this.now_) throw new TimeError(`cannot run back to ${t}: the current time is ${this.now_}`);
    if (this.dispatching) throw new ClockError("the clock cannot be advanced from inside an event handler");
    this.dispatching = true;
    try {
      this.dispatchUntil(t);
      this.now_ = t;
    } finally {
      if (this.hole) this.settle();
      this.dispatching = false;
    }
    return this.now_;
  }

  /**
   * Advances to the earliest pending event and dispatches everything due at that time (events a
   * handler schedules for "now" included). Returns the new time, or undefined if nothing is pending.
   */
  runNext(): number | undefined {
    const at = this.nextAt;
    if (at === undefined) return undefined;
    return this.runUntil(at);
  }

  /** The dispatch loop of runUntil (which checks t and restores the invariants afterwards). */
  private dispatchUntil(t: number): void {
    for (;;) {
      if (this.hole) this.settle();
      const at = this.hAt[0]!; // +Infinity when nothing is pending
      if (at > t) return;
      const slot = this.hSlot[0]!;
      const sd = this.sd;
      const meta = sd[2 * slot + 1]!;
      const pair = meta >> 1;
      const h = this.pairHandler[pair] ?? this.lookup(slot, at);
      const target = this.pairTarget[pair]!, kind = this.pairKind[pair]!;
      let payload: Plain = null;
      if (meta & 1) {
        payload = this.sPayload[slot]!;
        this.sPayload[slot] = null;
      }
      const ev: ClockEvent = { at, seq: sd[2 * slot]!, target, kind, payload };
      // Take the event: its slot is free again and the root becomes the hole.
      this.freeSlots[this.nFree++] = slot;
      this.hole = true;
      this.now_ = at;
      if (this.traceOn) this.trace.record(at, "event", target, kind, ev.seq, payload);
      h(ev, this);
    }
  }

  private lookup(slot: number, at: number): Handler {
    const pair = this.sd[2 * slot + 1]! >> 1;
    const target = this.pairTarget[pair]!, kind = this.pairKind[pair]!;
    const h = this.handlers.get(target)?.get(kind);
    if (h === undefined) throw new ClockError(`no handler registered for event ${target}/${kind} (seq ${this.sd[2 * slot]}) at ${at} ns`);
    this.pairHandler[pair] = h;
    return h;
  }

  /** The number of the pair (target, kind), numbering it if it is new. */
  private pairOf(target: string, kind: string): number {
    if (typeof target !== "string" || typeof kind !== "string") {
      throw new ClockError(`event target and kind must be strings, got ${typeof target} and ${typeof kind}`);
    }
    let m = this.pairIds.get(target);
    if (!m) this.pairIds.set(target, (m = new Map()));
    let pair = m.get(kind);
    if (pair === undefined) {
      pair = this.pairTarget.length;
      m.set(kind, pair);
      this.pairTarget.push(target);
      this.pairKind.push(kind);
      this.pairHandler.push(undefined);
    }
    this.lastTarget = target;
    this.lastKind = kind;
    this.lastPair = pair;
    return pair;
  }

  private insert(at: number, target: string, kind: string, payload: Plain): number {
    const pair = target === this.lastTarget && kind === this.lastKind ? this.lastPair : this.pairOf(target, kind);
    const seq = this.seq_++;
    let slot: number;
    if (this.nFree > 0) {
      slot = this.freeSlots[--this.nFree]!;
    } else {
      if (this.size + PAD >= this.hAt.length) this.grow();
      slot = this.used++;
    }
    const sd = this.sd;
    sd[2 * slot] = seq;
    if (payload === null) sd[2 * slot + 1] = pair << 1;
    else {
      sd[2 * slot + 1] = (pair << 1) | 1;
      this.sPayload[slot] = payload;
    }
    const hAt = this.hAt, hSlot = this.hSlot;
    if (this.hole) {
      // Replace the taken root. The new event has the largest seq so far, so among equal times it
      // goes after every other one: on a tie it keeps moving down.
      this.hole = false;
      const n = this.size;
      let i = 0;
      for (;;) {
        const c = 4 * i + 1;
        if (c >= n) break;
        const m = this.minChild(c);
        const am = hAt[m]!;
        if (at < am) break;
        hAt[i] = am;
        hSlot[i] = hSlot[m]!;
        i = m;
      }
      hAt[i] = at;
      hSlot[i] = slot;
    } else {
      // Sift up; again the new event goes after equal times.
      let i = this.size++;
      while (i > 0) {
        const p = (i - 1) >> 2;
        const pa = hAt[p]!;
        if (pa <= at) break;
        hAt[i] = pa;
        hSlot[i] = hSlot[p]!;
        i = p;
      }
      hAt[i] = at;
      hSlot[i] = slot;
    }
    return seq;
  }

  /**
   * The (at, seq)-least of the four positions c..c+3 (c < size; positions past the end hold
   * +Infinity and are never chosen over an entry).
   */
  private minChild(c: number): number {
    const hAt = this.hAt;
    let m = c;
    let am = hAt[c]!;
    const a1 = hAt[c + 1]!, a2 = hAt[c + 2]!, a3 = hAt[c + 3]!;
    if (a1 <= am && (a1 < am || this.seqAt(c + 1) < this.seqAt(m))) {
      m = c + 1;
      am = a1;
    }
    if (a2 <= am && (a2 < am || this.seqAt(c + 2) < this.seqAt(m))) {
      m = c + 2;
      am = a2;
    }
    if (a3 <= am && (a3 < am || this.seqAt(c + 3) < this.seqAt(m))) m = c + 3;
    return m;
  }

  /** The sequence number of the entry at heap position i (i < size). */
  private seqAt(i: number): number {
    return this.sd[2 * this.hSlot[i]!]!;
  }

  private grow(): void {
    const cap = this.hAt.length * 2;
    const hAt = infinities(cap);
    hAt.set(this.hAt);
    this.hAt = hAt;
    const hSlot = new Int32Array(cap);
    hSlot.set(this.hSlot);
    this.hSlot = hSlot;
    const sd = new Float64Array(2 * cap);
    sd.set(this.sd);
    this.sd = sd;
    for (let i = this.sPayload.length; i < cap; i++) this.sPayload.push(null);
    const freeSlots = new Int32Array(cap);
    freeSlots.set(this.freeSlots);
    this.freeSlots = freeSlots;
  }

  /** Fills the hole at the root with the last entry (completes the pop of the dispatched event). */
  private settle(): void {
    this.hole = false;
    const n = --this.size;
    const a = this.hAt[n]!;
    this.hAt[n] = Infinity;
    if (n > 0) this.siftDown(0, a, this.hSlot[n]!, n);
  }

  /** Places (a, slot) at position i or below, in a heap of n entries (general tie-break). */
  private siftDown(i: number, a: number, slot: number, n: number): void {
    const hAt = this.hAt, hSlot = this.hSlot;
    const s = this.sd[2 * slot]!;
    for (;;) {
      const c = 4 * i + 1;
      if (c >= n) break;
      const m = this.minChild(c);
      const am = hAt[m]!;
      if (a < am || (a === am && s < this.seqAt(m))) break;
      hAt[i] = am;
      hSlot[i] = hSlot[m]!;
      i = m;
    }
    hAt[i] = a;
    hSlot[i] = slot;
  }

  /** Places (a, slot) at position i or above (general tie-break); returns where it ended. */
  private siftUp(i: number, a: number, slot: number): number {
    const hAt = this.hAt, hSlot = this.hSlot;
    const s = this.sd[2 * slot]!;
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pa = hAt[p]!;
      if (pa < a || (pa === a && this.seqAt(p) < s)) break;
      hAt[i] = pa;
      hSlot[i] = hSlot[p]!;
      i = p;
    }
    hAt[i] = a;
    hSlot[i] = slot;
    return i;
  }

  /** Removes the entry at heap position i (no hole pending) and frees its slot. */
  private removeAt(i: number): void {
    const slot = this.hSlot[i]!;
    this.sPayload[slot] = null;
    this.freeSlots[this.nFree++] = slot;
    const n = --this.size;
    const a = this.hAt[n]!, s = this.hSlot[n]!;
    this.hAt[n] = Infinity;
    if (i === n) return;
    if (this.siftUp(i, a, s) === i) this.siftDown(i, a, s, n);
  }

  /** The pending events (payloads not copied) in (at, seq) order. */
  private sortedPending(): ClockEvent[] {
    if (this.hole) this.settle();
    const out: ClockEvent[] = [];
    for (let i = 0; i < this.size; i++) {
      const slot = this.hSlot[i]!;
      const meta = this.sd[2 * slot + 1]!;
      const pair = meta >> 1;
      const payload = meta & 1 ? this.sPayload[slot]! : null;
      out.push({ at: this.hAt[i]!, seq: this.sd[2 * slot]!, target: this.pairTarget[pair]!, kind: this.pairKind[pair]!, payload });
    }
    return out.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  // ---- snapshot ----
  serialize(): ClockState {
    if (this.dispatching) throw new ClockError("cannot serialize the clock from inside an event handler");
    return {
      version: 1,
      now: this.now_,
      seq: this.seq_,
      pending: this.sortedPending().map((e) => ({ at: e.at, seq: e.seq, target: e.target, kind: e.kind, payload: toJSONValue(e.payload) })),
      rng: this.rng.getState(),
      trace: this.trace.getState(),
    };
  }

  /**
   * Replaces time, sequence counter, pending events, RNG and trace position with `s`. A state that
   * is not valid throws a ClockError naming the problem and leaves the clock as it was.
   */
  restore(s: ClockState): void {
    if (this.dispatching) throw new ClockError("cannot restore the clock from inside an event handler");
    const problem = validateClockState(s);
    if (problem) throw new ClockError(`invalid clock state: ${problem}`);
    // Everything is converted before anything is replaced.
    const events: ClockEvent[] = s.pending
      .map((p) => ({ at: p.at, seq: p.seq, target: p.target, kind: p.kind, payload: fromJSONValue(p.payload) }))
      .sort((a, b) => a.at - b.at || a.seq - b.seq);
    const n = events.length;
    let cap = INITIAL_CAPACITY;
    while (n + PAD >= cap) cap *= 2;
    // Sorted (at, seq) order is already a valid heap; slot i holds the i-th event.
    this.hAt = infinities(cap);
    this.hSlot = new Int32Array(cap);
    this.sd = new Float64Array(2 * cap);
    this.freeSlots = new Int32Array(cap);
    this.nFree = 0;
    this.sPayload = new Array<Plain>(cap).fill(null);
    for (let i = 0; i < n; i++) {
      const e = events[i]!;
      const pair = this.pairOf(e.target, e.kind);
      this.hAt[i] = e.at;
      this.hSlot[i] = i;
      this.sd[2 * i] = e.seq;
      if (e.payload === null) this.sd[2 * i + 1] = pair << 1;
      else {
        this.sd[2 * i + 1] = (pair << 1) | 1;
        this.sPayload[i] = e.payload;
      }
    }
    this.used = n;
    this.size = n;
    this.hole = false;
    this.now_ = s.now;
    this.seq_ = s.seq;
    this.rng.setState(s.rng);
    this.trace.setState(s.trace);
  }
}

/** Returns a description of what is wrong with a clock state, or undefined when it is valid. */
export function validateClockState(s: unknown): string | undefined {
  if (s === null || typeof s !== "object" || Array.isArray(s)) return "not an object";
  const o = s as Partial<Record<keyof ClockState, unknown>>;
  if (o.version !== 1) return `unknown clock state version ${String(o.version)}`;
  const isTime = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (!isTime(o.now)) return "now is not a valid time";
  if (!isTime(o.seq)) return "seq is not a valid counter";
  if (!Array.isArray(o.pending)) return "pending is not a list";
  const seen = new Set<number>();
  for (const [i, p] of (o.pending as unknown[]).entries()) {
    if (p === null || typeof p !== "object" || Array.isArray(p)) return `pending[${i}] is not an object`;
    const e = p as Record<string, unknown>;
    if (!isTime(e.at) || e.at < o.now) return `pending[${i}].at is not a time at or after now`;
    if (!isTime(e.seq) || e.seq >= o.seq || seen.has(e.seq)) return `pending[${i}].seq is not a unique number below seq`;
    seen.add(e.seq);
    if (typeof e.target !== "string" || typeof e.kind !== "string") return `pending[${i}] has no target/kind`;
    if (!("payload" in e)) return `pending[${i}] has no payload`;
    const bad = checkJSONPlain(e.payload);
    if (bad) return `pending[${i}].payload${bad}`;
  }
  const rng = checkRngState(o.rng);
  if (rng) return `rng state ${rng}`;
  const trace = checkTraceState(o.trace);
  if (trace) return `trace state ${trace}`;
  return undefined;
}
