// The virtual clock and event scheduler. Pending events are data {at, seq, target, kind,
// payload}, dispatched in (at, seq) order to the handler registered for (target, kind). The clock
// owns the bench's seeded RNG and its trace, so that serialize() captures everything a
// continuation depends on.
import { addTime, checkTime, TimeError } from "./time.ts";
import { Rng, type RngState } from "./rng.ts";
import { Trace, type TraceState } from "./trace.ts";
import { fromJSONValue, toJSONValue, type Plain } from "./canonical.ts";

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

export class Clock {
  private now_ = 0;
  private seq_ = 0;
  private dispatching = false;
  // Binary min-heap on (at, seq) kept in parallel arrays: the keys as packed doubles.
  private hAt: number[] = [];
  private hSeq: number[] = [];
  private hEv: ClockEvent[] = [];
  private readonly handlers = new Map<string, Map<string, Handler>>();
  private cacheTarget = "";
  private cacheKind = "";
  private cacheHandler: Handler | undefined;
  readonly rng: Rng;
  readonly trace: Trace;

  constructor(opts: ClockOptions = {}) {
    this.rng = new Rng(opts.seed ?? 0);
    this.trace = new Trace(opts.trace ?? true);
  }

  /** Current virtual time in nanoseconds. */
  get now(): number {
    return this.now_;
  }

  /** Number of pending events. */
  get pending(): number {
    return this.hEv.length;
  }

  /** Time of the earliest pending event, or undefined when none is pending. */
  get nextAt(): number | undefined {
    return this.hAt[0];
  }

  /** Registers the handler for events sent to (target, kind); one handler per pair. */
  on(target: string, kind: string, handler: Handler): void {
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
    return this.scheduleAt(addTime(this.now_, checkTime(delay, "delay"), "event time"), target, kind, payload);
  }

  /** Schedules an event at absolute time `at` (not before now); returns its sequence number. */
  scheduleAt(at: number, target: string, kind: string, payload: Plain = null): number {
    checkTime(at, "event time");
    if (at < this.now_) throw new TimeError(`event time ${at} is before the current time ${this.now_}`);
    const seq = this.seq_++;
    this.push({ at, seq, target, kind, payload });
    return seq;
  }

  /** Cancels the pending event with sequence number `seq`; false if it is not pending. O(pending). */
  cancel(seq: number): boolean {
    const i = this.hSeq.indexOf(seq);
    if (i < 0) return false;
    this.removeAt(i);
    return true;
  }

  /** The pending events in dispatch order (copies; for inspection and snapshots). */
  pendingEvents(): ClockEvent[] {
    return this.hEv.slice().sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  /** Advances time by `ns`, dispatching every event due up to and including the new time. */
  step(ns: number): number {
    return this.runUntil(addTime(this.now_, checkTime(ns, "step"), "time"));
  }

  /** Advances time to `t` (not before now), dispatching every event due up to and including t. */
  runUntil(t: number): number {
    checkTime(t, "time");
    if (t < this.now_) throw new TimeError(`cannot run back to ${t}: the current time is ${this.now_}`);
    this.enter();
    try {
      while (this.hEv.length && this.hAt[0]! <= t) this.dispatchTop();
      this.now_ = t;
    } finally {
      this.dispatching = false;
    }
    return this.now_;
  }

  /**
   * Advances to the earliest pending event and dispatches everything due at that time (events a
   * handler schedules for "now" included). Returns the new time, or undefined if nothing is pending.
   */
  runNext(): number | undefined {
    const at = this.hAt[0];
    if (at === undefined) return undefined;
    return this.runUntil(at);
  }

  private enter(): void {
    if (this.dispatching) throw new ClockError("the clock cannot be advanced from inside an event handler");
    this.dispatching = true;
  }

  private dispatchTop(): void {
    const ev = this.pop();
    this.now_ = ev.at;
    let h: Handler | undefined;
    if (this.cacheHandler !== undefined && ev.target === this.cacheTarget && ev.kind === this.cacheKind) {
      h = this.cacheHandler;
    } else {
      h = this.handlers.get(ev.target)?.get(ev.kind);
      if (h === undefined) throw new ClockError(`no handler registered for event ${ev.target}/${ev.kind} (seq ${ev.seq})`);
      this.cacheTarget = ev.target;
      this.cacheKind = ev.kind;
      this.cacheHandler = h;
    }
    if (this.trace.enabled) this.trace.record(ev.at, "event", ev.target, ev.kind, ev.seq, ev.payload);
    h(ev, this);
  }

  // ---- heap on (at, seq) ----
  private push(ev: ClockEvent): void {
    const at = this.hAt, sq = this.hSeq, es = this.hEv;
    let i = es.length;
    at.push(ev.at);
    sq.push(ev.seq);
    es.push(ev);
    const a = ev.at, s = ev.seq;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pa = at[p]!;
      if (pa < a || (pa === a && sq[p]! < s)) break;
      at[i] = pa;
      sq[i] = sq[p]!;
      es[i] = es[p]!;
      i = p;
    }
    at[i] = a;
    sq[i] = s;
    es[i] = ev;
  }

  private pop(): ClockEvent {
    const top = this.hEv[0]!;
    this.removeAt(0);
    return top;
  }

  private removeAt(i: number): void {
    const at = this.hAt, sq = this.hSeq, es = this.hEv;
    const lastA = at.pop()!, lastS = sq.pop()!, lastE = es.pop()!;
    const n = es.length;
    if (i === n) return;
    // Sift the former last element up from i, then down.
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pa = at[p]!;
      if (pa < lastA || (pa === lastA && sq[p]! < lastS)) break;
      at[i] = pa;
      sq[i] = sq[p]!;
      es[i] = es[p]!;
      i = p;
    }
    const half = n >> 1;
    while (i < half) {
      let c = 2 * i + 1;
      let ca = at[c]!, cs = sq[c]!;
      const r = c + 1;
      if (r < n) {
        const ra = at[r]!, rs = sq[r]!;
        if (ra < ca || (ra === ca && rs < cs)) {
          c = r;
          ca = ra;
          cs = rs;
        }
      }
      if (lastA < ca || (lastA === ca && lastS < cs)) break;
      at[i] = ca;
      sq[i] = cs;
      es[i] = es[c]!;
      i = c;
    }
    at[i] = lastA;
    sq[i] = lastS;
    es[i] = lastE;
  }

  // ---- snapshot ----
  serialize(): ClockState {
    if (this.dispatching) throw new ClockError("cannot serialize the clock from inside an event handler");
    return {
      version: 1,
      now: this.now_,
      seq: this.seq_,
      pending: this.pendingEvents().map((e) => ({ at: e.at, seq: e.seq, target: e.target, kind: e.kind, payload: toJSONValue(e.payload) })),
      rng: this.rng.getState(),
      trace: this.trace.getState(),
    };
  }

  /** Replaces time, sequence counter, pending events, RNG and trace position with `s`. */
  restore(s: ClockState): void {
    if (this.dispatching) throw new ClockError("cannot restore the clock from inside an event handler");
    const problem = validateClockState(s);
    if (problem) throw new ClockError(`invalid clock state: ${problem}`);
    this.hAt = [];
    this.hSeq = [];
    this.hEv = [];
    for (const p of s.pending) this.push({ at: p.at, seq: p.seq, target: p.target, kind: p.kind, payload: fromJSONValue(p.payload) });
    this.now_ = s.now;
    this.seq_ = s.seq;
    this.rng.setState(s.rng);
    this.trace.setState(s.trace);
  }
}

/** Returns a description of what is wrong with a clock state, or undefined when it is valid. */
export function validateClockState(s: unknown): string | undefined {
  if (s === null || typeof s !== "object") return "not an object";
  const o = s as Partial<ClockState>;
  if (o.version !== 1) return `unknown clock state version ${String(o.version)}`;
  const isTime = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (!isTime(o.now)) return "now is not a valid time";
  if (!isTime(o.seq)) return "seq is not a valid counter";
  if (!Array.isArray(o.pending)) return "pending is not a list";
  const seen = new Set<number>();
  for (const [i, p] of o.pending.entries()) {
    if (p === null || typeof p !== "object") return `pending[${i}] is not an object`;
    if (!isTime(p.at) || p.at < o.now!) return `pending[${i}].at is not a time at or after now`;
    if (!isTime(p.seq) || p.seq >= o.seq! || seen.has(p.seq)) return `pending[${i}].seq is not a unique number below seq`;
    seen.add(p.seq);
    if (typeof p.target !== "string" || typeof p.kind !== "string") return `pending[${i}] has no target/kind`;
  }
  if (!Array.isArray(o.rng) || o.rng.length === 0 || !o.rng.every((x) => Number.isInteger(x))) return "rng state is not a list of integers";
  const t = o.trace;
  if (!t || !isTime(t.count) || typeof t.chain !== "string" || !/^[0-9a-f]{64}$/.test(t.chain) || typeof t.tail !== "string") return "trace state is malformed";
  return undefined;
}
