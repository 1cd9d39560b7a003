// The trace: every dispatched event and every device access appends one record. Records are
// hashed as they come, in a SHA-256 chain over blocks of their canonical *binary* encoding (see
// `Sink.record`): byte arrays go in as they are, not as hex text, so a 7.4 KB message payload
// costs 7.4 KB of hashing and a memcpy. The whole trace position (record count, chain value,
// unhashed tail) is plain data that a snapshot can carry: restore-then-continue yields the same
// hash as an uninterrupted run. The readable text of a record (`canonical`) is built only when a
// listener asks for it (trace files, `hvsim run`).
//
// The hash is a pure function of the sequence of records: the encoding is self-delimiting and a
// block is folded after the first record that brings the tail to BLOCK_BYTES, so where a fold
// happens depends on the records alone, never on how or when they were appended.
import { createHash } from "node:crypto";
import { canonical, fromJSONValue, type Plain } from "./canonical.ts";

/** One trace record: virtual time, a record type ("event", "io", ...), then its fields. */
export interface TraceRecord {
  readonly at: number;
  readonly type: string;
  readonly fields: readonly Plain[];
}

export interface TraceState {
  readonly count: number;
  readonly chain: string;
  /**
   * The records not yet folded into the chain: their binary encoding as lowercase hex. (A tail of
   * canonical text lines ending in "\n", written by hvsim before the binary trace, is accepted by
   * setState and converted.)
   */
  readonly tail: string;
}

/** A block is folded into the chain once this many bytes of encoded records are pending. */
export const BLOCK_BYTES = 1 << 16;
const ZERO_CHAIN = "0".repeat(64);
/** Old text tails were folded at this many characters. */
const LEGACY_BLOCK_CHARS = 1 << 16;

// ---- the binary encoding ----
// null 0x00 | false 0x01 | true 0x02 | number 0x03 f64 | string 0x04 u32 len utf8 | bigint 0x05
// u32 len decimal | bytes 0x06 u32 len bytes | list 0x07 u32 n items | object 0x08 u32 n (key
// string, value)* sorted by key, undefined members left out | record 0x09 u32 n(fields) f64 at,
// string type, fields | string with lone surrogates 0x0a u32 len utf16le. Lengths are little-endian u32.
const T_NULL = 0, T_FALSE = 1, T_TRUE = 2, T_NUM = 3, T_STR = 4, T_BIG = 5, T_BYTES = 6, T_LIST = 7, T_OBJ = 8, T_REC = 9, T_STR16 = 10;

/**
 * An object shape seen before: its keys in Object.keys order, where each key of the sorted order
 * (the encoding's) sits in that list, and each sorted key already encoded as a string value (the
 * bytes `str` would write).
 */
interface Shape {
  readonly keys: readonly string[];
  /** order[i]: the position in `keys` (and in Object.values) of the i-th key in sorted order. */
  readonly order: readonly number[];
  readonly encoded: readonly Uint8Array[];
}

/** Object shapes remembered per sink (device payloads use a handful; more fall back to sorting). */
const MAX_SHAPES = 64;

class Sink {
  buf: Uint8Array;
  dv: DataView;
  n = 0;
  private shapes: Shape[] = [];

  constructor(capacity = BLOCK_BYTES * 2) {
    this.buf = new Uint8Array(capacity);
    this.dv = new DataView(this.buf.buffer);
  }

  ensure(k: number): void {
    if (this.n + k <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.n + k) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }

  u8(x: number): void {
    this.ensure(1);
    this.buf[this.n++] = x;
  }

  u32(x: number): void {
    this.ensure(4);
    this.dv.setUint32(this.n, x, true);
    this.n += 4;
  }

  f64(x: number): void {
    if (!Number.isFinite(x)) throw new TypeError(`not plain data: ${x}`);
    this.ensure(8);
    this.dv.setFloat64(this.n, x === 0 ? 0 : x, true);
    this.n += 8;
  }

  str(s: string): void {
    const len = s.length;
    this.ensure(5 + len * 3);
    const b = this.buf;
    b[this.n] = T_STR;
    const at = this.n + 5;
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[at + i] = c;
    }
    let bytes = len;
    if (i < len) {
      // Not ASCII: UTF-8, or UTF-16LE under its own tag when the string has lone surrogates
      // (which UTF-8 cannot carry), so that different strings never encode alike.
      const rest = s.slice(i);
      if ((rest as unknown as { isWellFormed(): boolean }).isWellFormed()) bytes = i + Buffer.from(b.buffer, b.byteOffset + at + i, (len - i) * 3).write(rest, "utf8");
      else {
        b[this.n] = T_STR16;
        bytes = Buffer.from(b.buffer, b.byteOffset + at, len * 3).write(s, "utf16le");
      }
    }
    this.dv.setUint32(this.n + 1, bytes, true);
    this.n = at + bytes;
  }

  bytes(tag: number, v: Uint8Array): void {
    const len = v.length;
    this.ensure(5 + len);
    this.buf[this.n] = tag;
    this.dv.setUint32(this.n + 1, len, true);
    if (len <= 32) for (let i = 0; i < len; i++) this.buf[this.n + 5 + i] = v[i]!;
    else this.buf.set(v, this.n + 5);
    this.n += 5 + len;
  }

  value(v: Plain | undefined): void {
    switch (typeof v) {
      case "number":
        this.u8(T_NUM);
        this.f64(v);
        return;
      case "string":
        this.str(v);
        return;
      case "boolean":
        this.u8(v ? T_TRUE : T_FALSE);
        return;
      case "bigint":
        this.bytes(T_BIG, Buffer.from(v.toString(), "latin1"));
        return;
      case "undefined":
        this.u8(T_NULL);
        return;
      case "object": {
        if (v === null) return this.u8(T_NULL);
        if (v instanceof Uint8Array) return this.bytes(T_BYTES, v);
        if (Array.isArray(v)) {
          const a = v as readonly Plain[];
          this.u8(T_LIST);
          this.u32(a.length);
          for (let i = 0; i < a.length; i++) this.value(a[i]);
          return;
        }
        this.object(v as { readonly [key: string]: Plain | undefined });
        return;
      }
      default:
        throw new TypeError(`not plain data: ${typeof v}`);
    }
  }

  /**
   * An object: T_OBJ, the number of members that are not undefined, then (key, value) by key. The
   * sorted keys and their encodings are looked up by the object's key list (same keys in the same
   * order: the same shape), so a payload of a known shape costs no sort, no key encoding and no
   * lookup by key name (the values come from Object.values, in Object.keys order). The count is
   * written after the members.
   */
  private object(o: { readonly [key: string]: Plain | undefined }): void {
    const keys = Object.keys(o);
    const { order, encoded } = this.shape(keys);
    const vals = Object.values(o);
    this.ensure(5);
    const head = this.n;
    this.buf[head] = T_OBJ;
    this.n = head + 5;
    let count = 0;
    for (let i = 0; i < order.length; i++) {
      const x = vals[order[i]!];
      if (x === undefined) continue;
      count++;
      const e = encoded[i]!;
      this.ensure(e.length);
      const b = this.buf;
      const at = this.n;
      for (let j = 0; j < e.length; j++) b[at + j] = e[j]!;
      this.n = at + e.length;
      this.value(x);
    }
    this.dv.setUint32(head + 1, count, true);
  }

  private shape(keys: readonly string[]): Shape {
    const shapes = this.shapes;
    for (let s = 0; s < shapes.length; s++) {
      const k = shapes[s]!.keys;
      if (k.length !== keys.length) continue;
      let i = 0;
      while (i < k.length && k[i] === keys[i]) i++;
      if (i === k.length) return shapes[s]!;
    }
    const sorted = [...keys].sort();
    const scratch = new Sink(64);
    const encoded = sorted.map((k) => {
      scratch.n = 0;
      scratch.str(k);
      return scratch.buf.slice(0, scratch.n);
    });
    const shape: Shape = { keys: [...keys], order: sorted.map((k) => keys.indexOf(k)), encoded };
    if (shapes.length < MAX_SHAPES) shapes.push(shape);
    return shape;
  }

  record(at: number, type: string, fields: readonly Plain[]): void {
    this.u8(T_REC);
    this.u32(fields.length);
    this.f64(at);
    this.str(type);
    for (let i = 0; i < fields.length; i++) this.value(fields[i]);
  }
}

/** Skips one encoded value at `i`; returns the offset after it, or -1 when the bytes are not one. */
function skipValue(b: Uint8Array, dv: DataView, i: number, depth: number): number {
  if (i >= b.length || depth > 256) return -1;
  const tag = b[i]!;
  switch (tag) {
    case T_NULL:
    case T_FALSE:
    case T_TRUE:
      return i + 1;
    case T_NUM:
      return i + 9 <= b.length && Number.isFinite(dv.getFloat64(i + 1, true)) ? i + 9 : -1;
    case T_STR:
    case T_STR16:
    case T_BIG:
    case T_BYTES: {
      if (i + 5 > b.length) return -1;
      const end = i + 5 + dv.getUint32(i + 1, true);
      return end <= b.length ? end : -1;
    }
    case T_LIST:
    case T_OBJ: {
      if (i + 5 > b.length) return -1;
      const n = dv.getUint32(i + 1, true);
      let j = i + 5;
      for (let k = 0; k < n && j >= 0; k++) {
        if (tag === T_OBJ) j = b[j] === T_STR || b[j] === T_STR16 ? skipValue(b, dv, j, depth + 1) : -1;
        if (j >= 0) j = skipValue(b, dv, j, depth + 1);
      }
      return j;
    }
    default:
      return -1;
  }
}

/** Number of whole records in `b`, or a reason why `b` is not a sequence of encoded records. */
function countRecords(b: Uint8Array): number | string {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let i = 0, n = 0;
  while (i < b.length) {
    if (b[i] !== T_REC || i + 14 > b.length) return `tail byte ${i} does not start a record`;
    const fields = dv.getUint32(i + 1, true);
    let j = i + 13 <= b.length && (b[i + 13] === T_STR || b[i + 13] === T_STR16) ? skipValue(b, dv, i + 13, 0) : -1;
    for (let k = 0; k < fields && j >= 0; k++) j = skipValue(b, dv, j, 0);
    if (j < 0) return `tail record ${n} (at byte ${i}) is malformed`;
    i = j;
    n += 1;
  }
  return n;
}

function isLegacyTail(tail: string): boolean {
  return tail.endsWith("\n");
}

/** Returns what is wrong with a trace state, or undefined when setState accepts it. */
export function checkTraceState(s: unknown): string | undefined {
  if (s === null || typeof s !== "object" || Array.isArray(s)) return "is not an object";
  const o = s as Record<string, unknown>;
  if (typeof o.count !== "number" || !Number.isSafeInteger(o.count) || o.count < 0) return "count is not a record count";
  if (typeof o.chain !== "string" || !/^[0-9a-f]{64}$/.test(o.chain)) return "chain is not 64 lowercase hex digits";
  if (typeof o.tail !== "string") return "tail is not a string";
  if (isLegacyTail(o.tail)) {
    if (o.tail.length >= LEGACY_BLOCK_CHARS) return `tail is ${o.tail.length} characters, not less than one block (${LEGACY_BLOCK_CHARS})`;
    const lines = o.tail.split("\n").length - 1;
    if (lines > o.count) return `tail holds ${lines} records but count is ${o.count}`;
    if (o.tail.includes("\n\n") || o.tail.startsWith("\n")) return "tail has an empty record";
    for (const line of o.tail.slice(0, -1).split("\n")) {
      try {
        const r = JSON.parse(line) as unknown;
        if (!Array.isArray(r) || r.length < 2 || typeof r[0] !== "number" || typeof r[1] !== "string") return "tail has a line that is not a record";
      } catch {
        return "tail has a line that is not JSON";
      }
    }
    return undefined;
  }
  if (!/^(?:[0-9a-f]{2})*$/.test(o.tail)) return "tail is neither lowercase hex bytes nor text lines ending in a newline";
  const bytes = o.tail.length / 2;
  if (bytes >= BLOCK_BYTES) return `tail is ${bytes} bytes, not less than one block (${BLOCK_BYTES})`;
  const n = countRecords(Buffer.from(o.tail, "hex"));
  if (typeof n === "string") return n;
  if (n > o.count) return `tail holds ${n} records but count is ${o.count}`;
  return undefined;
}

export type TraceListener = (record: TraceRecord, line: string) => void;

export class Trace {
  private count_ = 0;
  private chain = ZERO_CHAIN;
  private sink = new Sink();
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
    const s = this.sink;
    const before = s.n;
    try {
      s.record(at, type, fields);
    } catch (e) {
      s.n = before; // a record that is not plain data leaves the trace as it was
      throw e;
    }
    this.count_ += 1;
    if (s.n >= BLOCK_BYTES) this.fold();
    if (this.listeners.length) {
      const line = canonical([at, type, ...fields]);
      const rec: TraceRecord = { at, type, fields };
      for (const l of this.listeners) l(rec, line);
    }
  }

  private fold(): void {
    const s = this.sink;
    this.chain = createHash("sha256").update(this.chain).update(s.buf.subarray(0, s.n)).digest("hex");
    s.n = 0;
  }

  /** SHA-256 (hex) of everything recorded so far, with the record count folded in. */
  hash(): string {
    const s = this.sink;
    return createHash("sha256").update(this.chain).update(s.buf.subarray(0, s.n)).update(`#${this.count_}`).digest("hex");
  }

  getState(): TraceState {
    const s = this.sink;
    return { count: this.count_, chain: this.chain, tail: Buffer.from(s.buf.buffer, s.buf.byteOffset, s.n).toString("hex") };
  }

  /** Replaces the trace position; an invalid state throws a TypeError and changes nothing. */
  setState(st: TraceState): void {
    const problem = checkTraceState(st);
    if (problem) throw new TypeError(`invalid trace state: ${problem}`);
    let tail: Uint8Array;
    if (isLegacyTail(st.tail)) {
      // Canonical text lines: the same records, encoded again in binary.
      const s = new Sink();
      for (const line of st.tail.slice(0, -1).split("\n")) {
        const r = fromJSONValue(JSON.parse(line)) as Plain[];
        s.record(r[0] as number, r[1] as string, r.slice(2));
      }
      tail = s.buf.subarray(0, s.n);
    } else tail = Buffer.from(st.tail, "hex");
    this.restoreTail(st.count, st.chain, tail);
    if (this.sink.n >= BLOCK_BYTES) this.fold();
  }

  private restoreTail(count: number, chain: string, tail: Uint8Array): void {
    const s = this.sink;
    s.n = 0;
    s.ensure(tail.length);
    s.buf.set(tail, 0);
    s.n = tail.length;
    this.count_ = count;
    this.chain = chain;
  }
}
