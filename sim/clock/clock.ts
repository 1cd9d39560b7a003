// The virtual clock and event scheduler. Pending events are data {at, seq, target, kind,
// payload}, dispatched in (at, seq) order to the handler registered for (target, kind). The clock
// owns the bench's seeded RNG and its trace, so that serialize() captures everything a
// continuation depends on.
//
// Layout (for speed; none of it is visible through the API): every pending event sits in a slot of
// a pool (`evs[slot]`, its sequence number in `slotSeq[slot]`), and the binary min-heap orders
// slots, keeping the due time next to the slot number in typed arrays (`hAt`, `hSlot`), so
// sifting moves plain numbers only. Sequence numbers, read through the slot, break ties between
// equal times. Dispatch leaves a "hole" at the root while the handler runs: an event the handler
// schedules then replaces the root and sifts down once (instead of a pop and a push); otherwise the
// hole is filled before anything else looks at the heap.
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

export class Clock {
  private now_ = 0;
  private seq_ = 0;
  private dispatching = false;
  // Heap of slots on (at, seq): positions 0..size-1. Capacity is kept above the slot count, so
  // that reading one position past the end (a missing right child) stays in bounds.
  private hAt = new Float64Array(INITIAL_CAPACITY);
  private hSlot = new Int32Array(INITIAL_CAPACITY);
  private size = 0;
  /** Position 0 holds the event being dispatched, already taken: see the header comment. */
  private hole = false;
  // Slot pool.
  private evs: (ClockEvent | undefined)[] = [];
  private slotSeq = new Float64Array(INITIAL_CAPACITY);
  private freeSlots = new Int32Array(INITIAL_CAPACITY);
  private nFree = 0;
  private readonly handlers = new Map<string, Map<string, Handler>>();
  private cacheTarget = "";
  private cacheKind = "";
  private cacheHandler: Handler | undefined;
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
    this.cacheHandler = undefined;
  }

  /** Removes every handler of `target` (a device being detached). */
  off(target: string): void {
    this.handlers.delete(target);
    this.cacheHandler = undefined;
  }

  hasHandler(target: string, kind: string): boolean {
    return this.handlers.get(target)?.has(kind) ?? false;
  }

  /** Schedules an event `delay` ns from now; returns its sequence number (its handle). */
  schedule(delay: number, target: string, kind: string, payload: Plain = null): number {
    // Fast path: an integer in [0, 2^32); anything else goes through the full check.
    if (typeof delay !== "number" || delay >>> 0 !== delay) checkTime(delay, "delay");
    const at = this.now_ + delay;
    if (at > MAX_TIME) addTime(this.now_, delay, "event time");
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
    const slotSeq = this.slotSeq, hSlot = this.hSlot;
    for (let i = 0, n = this.size; i < n; i++) {
      if (slotSeq[hSlot[i]!] === seq) {
        this.removeAt(i);
        return true;
      }
    }
    return false;
  }

  /** The pending events in dispatch order (copies; for inspection and snapshots). */
  pendingEvents(): ClockEvent[] {
    return this.sortedPending().map((e) => ({ at: e.at, seq: e.seq, target: e.target, kind: e.kind, payload: clonePlain(e.payload) }));
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
      for (;;) {
        if (this.hole) this.settle();
        if (this.size === 0) break;
        const at = this.hAt[0]!;
        if (at > t) break;
        const slot = this.hSlot[0]!;
        const ev = this.evs[slot]!;
        let h = this.cacheHandler;
        if (h === undefined || ev.target !== this.cacheTarget || ev.kind !== this.cacheKind) h = this.lookup(ev);
        // Take the event: its slot is free again and the root becomes the hole.
        this.evs[slot] = undefined;
        this.freeSlots[this.nFree++] = slot;
        this.hole = true;
        this.now_ = at;
        if (this.traceOn) this.trace.record(at, "event", ev.target, ev.kind, ev.seq, ev.payload);
        h(ev, this);
      }
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

  private lookup(ev: ClockEvent): Handler {
    const h = this.handlers.get(ev.target)?.get(ev.kind);
    if (h === undefined) throw new ClockError(`no handler registered for event ${ev.target}/${ev.kind} (seq ${ev.seq}) at ${ev.at} ns`);
    this.cacheTarget = ev.target;
    this.cacheKind = ev.kind;
    this.cacheHandler = h;
    return h;
  }

  private insert(at: number, target: string, kind: string, payload: Plain): number {
    if (typeof target !== "string" || typeof kind !== "string") {
      throw new ClockError(`event target and kind must be strings, got ${typeof target} and ${typeof kind}`);
    }
    const seq = this.seq_++;
    const ev: ClockEvent = { at, seq, target, kind, payload };
    let slot: number;
    if (this.nFree > 0) {
      slot = this.freeSlots[--this.nFree]!;
      this.evs[slot] = ev;
    } else {
      slot = this.evs.length;
      if (slot + 2 >= this.slotSeq.length) this.grow();
      this.evs.push(ev);
    }
    this.slotSeq[slot] = seq;
    if (this.hole) {
      // Replace the taken root. The new event has the largest seq so far, so among equal times it
      // goes after every other one: on a tie it keeps moving down.
      this.hole = false;
      const hAt = this.hAt, hSlot = this.hSlot, slotSeq = this.slotSeq;
      const n = this.size;
      const half = n >> 1;
      let i = 0;
      while (i < half) {
        const l = 2 * i + 1;
        const r = l + 1;
        const al = hAt[l]!;
        const ar = hAt[r]!;
        let c = l + (+(r < n) & +(ar < al));
        if (ar === al && r < n && slotSeq[hSlot[r]!]! < slotSeq[hSlot[l]!]!) c = r;
        const ca = hAt[c]!;
        if (at < ca) break;
        hAt[i] = ca;
        hSlot[i] = hSlot[c]!;
        i = c;
      }
      hAt[i] = at;
      hSlot[i] = slot;
    } else {
      // Sift up; again the new event goes after equal times.
      const hAt = this.hAt, hSlot = this.hSlot;
      let i = this.size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
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

  private grow(): void {
    const cap = this.slotSeq.length * 2;
    const hAt = new Float64Array(cap);
    hAt.set(this.hAt);
    this.hAt = hAt;
    const hSlot = new Int32Array(cap);
    hSlot.set(this.hSlot);
    this.hSlot = hSlot;
    const slotSeq = new Float64Array(cap);
    slotSeq.set(this.slotSeq);
    this.slotSeq = slotSeq;
    const freeSlots = new Int32Array(cap);
    freeSlots.set(this.freeSlots);
    this.freeSlots = freeSlots;
  }

  /** Fills the hole at the root with the last entry (completes the pop of the dispatched event). */
  private settle(): void {
    this.hole = false;
    const n = --this.size;
    if (n > 0) this.siftDown(0, this.hAt[n]!, this.hSlot[n]!, n);
  }

  /** Places (a, slot) at position i or below, in a heap of n entries (general tie-break). */
  private siftDown(i: number, a: number, slot: number, n: number): void {
    const hAt = this.hAt, hSlot = this.hSlot, slotSeq = this.slotSeq;
    const s = slotSeq[slot]!;
    const half = n >> 1;
    while (i < half) {
      const l = 2 * i + 1;
      const r = l + 1;
      const al = hAt[l]!;
      const ar = hAt[r]!;
      let c = l + (+(r < n) & +(ar < al));
      if (ar === al && r < n && slotSeq[hSlot[r]!]! < slotSeq[hSlot[l]!]!) c = r;
      const ca = hAt[c]!;
      if (a < ca || (a === ca && s < slotSeq[hSlot[c]!]!)) break;
      hAt[i] = ca;
      hSlot[i] = hSlot[c]!;
      i = c;
    }
    hAt[i] = a;
    hSlot[i] = slot;
  }

  /** Places (a, slot) at position i or above (general tie-break); returns where it ended. */
  private siftUp(i: number, a: number, slot: number): number {
    const hAt = this.hAt, hSlot = this.hSlot, slotSeq = this.slotSeq;
    const s = slotSeq[slot]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pa = hAt[p]!;
      if (pa < a || (pa === a && slotSeq[hSlot[p]!]! < s)) break;
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
    this.evs[slot] = undefined;
    this.freeSlots[this.nFree++] = slot;
    const n = --this.size;
    if (i === n) return;
    const a = this.hAt[n]!, s = this.hSlot[n]!;
    if (this.siftUp(i, a, s) === i) this.siftDown(i, a, s, n);
  }

  /** The pending events (the pool's own objects) in (at, seq) order. */
  private sortedPending(): ClockEvent[] {
    if (this.hole) this.settle();
    const out: ClockEvent[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.evs[this.hSlot[i]!]!);
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
    let cap = INITIAL_CAPACITY;
    while (events.length + 2 >= cap) cap *= 2;
    // Sorted (at, seq) order is already a valid heap.
    this.hAt = new Float64Array(cap);
    this.hSlot = new Int32Array(cap);
    this.slotSeq = new Float64Array(cap);
    this.freeSlots = new Int32Array(cap);
    this.nFree = 0;
    this.evs = events;
    for (let i = 0; i < events.length; i++) {
      this.hAt[i] = events[i]!.at;
      this.hSlot[i] = i;
      this.slotSeq[i] = events[i]!.seq;
    }
    this.size = events.length;
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
