// The trace: every dispatched event and every device access appends one record. Records are
// hashed as they come, in a SHA-256 chain over fixed-size blocks of their canonical text, so the
// whole trace position (record count, chain value, unhashed tail) is plain data that a snapshot
// can carry: restore-then-continue yields the same hash as an uninterrupted run.
import { createHash } from "node:crypto";
import { canonical, type Plain } from "./canonical.ts";

/** One trace record: virtual time, a record type ("event", "io", ...), then its fields. */
export interface TraceRecord {
  readonly at: number;
  readonly type: string;
  readonly fields: readonly Plain[];
}

export interface TraceState {
  readonly count: number;
  readonly chain: string;
  readonly tail: string;
}

/** Records are folded into the chain once this many characters of canonical text are pending. */
const BLOCK_CHARS = 1 << 16;
const ZERO_CHAIN = "0".repeat(64);

/** Returns what is wrong with a trace state, or undefined when it is one getState() can return. */
export function checkTraceState(s: unknown): string | undefined {
  if (s === null || typeof s !== "object" || Array.isArray(s)) return "is not an object";
  const o = s as Record<string, unknown>;
  if (typeof o.count !== "number" || !Number.isSafeInteger(o.count) || o.count < 0) return "count is not a record count";
  if (typeof o.chain !== "string" || !/^[0-9a-f]{64}$/.test(o.chain)) return "chain is not 64 lowercase hex digits";
  if (typeof o.tail !== "string") return "tail is not a string";
  if (o.tail !== "" && !o.tail.endsWith("\n")) return "tail does not end with a newline";
  if (o.tail.length >= BLOCK_CHARS) return `tail is ${o.tail.length} characters, not less than one block (${BLOCK_CHARS})`;
  const lines = o.tail === "" ? 0 : o.tail.split("\n").length - 1;
  if (lines > o.count) return `tail holds ${lines} records but count is ${o.count}`;
  if (o.tail.includes("\n\n") || o.tail.startsWith("\n")) return "tail has an empty record";
  return undefined;
}

export type TraceListener = (record: TraceRecord, line: string) => void;

export class Trace {
  private count_ = 0;
  private chain = ZERO_CHAIN;
  private tail: string[] = [];
  private tailChars = 0;
  private readonly listeners: TraceListener[] = [];

  /** When false, records are neither hashed nor passed on (benchmarks of the bare machinery). */
  constructor(readonly enabled = true) {}

  /** Number of records appended so far: the trace position. */
  get count(): number {
    return this.count_;
  }

  /** Calls `fn` with every record appended from now on (for readable traces and JSONL files). */
  listen(fn: TraceListener): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  record(at: number, type: string, ...fields: Plain[]): void {
    if (!this.enabled) return;
    const line = canonical([at, type, ...fields]);
    this.count_ += 1;
    this.tail.push(line);
    this.tailChars += line.length + 1;
    if (this.tailChars >= BLOCK_CHARS) this.fold();
    if (this.listeners.length) {
      const rec: TraceRecord = { at, type, fields };
      for (const l of this.listeners) l(rec, line);
    }
  }

  private tailText(): string {
    return this.tail.length ? this.tail.join("\n") + "\n" : "";
  }

  private fold(): void {
    this.chain = createHash("sha256").update(this.chain).update(this.tailText()).digest("hex");
    this.tail = [];
    this.tailChars = 0;
  }

  /** SHA-256 (hex) of everything recorded so far, with the record count folded in. */
  hash(): string {
    return createHash("sha256").update(this.chain).update(this.tailText()).update(`#${this.count_}`).digest("hex");
  }

  getState(): TraceState {
    return { count: this.count_, chain: this.chain, tail: this.tailText() };
  }

  /** Replaces the trace position; an invalid state throws a TypeError and changes nothing. */
  setState(s: TraceState): void {
    const problem = checkTraceState(s);
    if (problem) throw new TypeError(`invalid trace state: ${problem}`);
    this.count_ = s.count;
    this.chain = s.chain;
    this.tail = s.tail ? s.tail.slice(0, -1).split("\n") : [];
    this.tailChars = s.tail.length;
  }
}
