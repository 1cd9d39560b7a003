// Human-readable and JSONL renderings of trace records for `hvsim run`.
import { canonical, toJSONValue, toHex, type Plain } from "../clock/canonical.ts";
import type { TraceRecord } from "../clock/trace.ts";

const hx = (v: Plain | undefined, w: number) => (typeof v === "number" ? `0x${v.toString(16).padStart(w, "0")}` : canonical(v));

function field(v: Plain | undefined): string {
  if (typeof v === "string") return /^[\w./:-]+$/.test(v) ? v : JSON.stringify(v);
  if (v instanceof Uint8Array) return toHex(v);
  return canonical(v);
}

/** "12.000001000 s" style time: seconds with nanosecond digits, right-aligned. */
export function formatTime(ns: number): string {
  const s = Math.floor(ns / 1e9);
  return `${String(s).padStart(4)}.${String(ns % 1e9).padStart(9, "0")} s`;
}

/** One line per record: time, type, fields (port I/O and memory records get named fields). */
export function formatRecord(r: TraceRecord): string {
  const f = r.fields;
  let body: string;
  if ((r.type === "io" || r.type === "io-fault") && f.length >= 5 && typeof f[2] === "number") {
    const [dir, port, size, value, owner] = f;
    const w = (size as number) * 2;
    const arrow = r.type === "io-fault" ? `fault ${field(value)}` : dir === "in" ? `-> ${hx(value, w)}` : `<- ${hx(value, w)}`;
    body = `${String(dir).padEnd(3)} port=${hx(port, 4)} size=${size} ${arrow}${owner === null ? " (unclaimed)" : ` [${field(owner)}]`}`;
  } else if (r.type === "mem" && f.length >= 3) {
    const [op, addr, ...rest] = f;
    body = `${String(op).padEnd(5)} addr=${hx(addr, 0)} ${rest.length === 2 ? `size=${rest[0]} value=${hx(rest[1], 0)}` : `bytes=${field(rest[0])}`}`;
  } else if (r.type === "event" && f.length >= 4) {
    const [target, kind, seq, payload] = f;
    body = `${field(target)}/${field(kind)} seq=${seq}${payload === null || payload === undefined ? "" : ` ${field(payload)}`}`;
  } else {
    body = f.map(field).join(" ");
  }
  return `${formatTime(r.at)}  ${r.type.padEnd(6)} ${body}`;
}

/** One JSON object per record: {"at", "type", "fields"} with bigint and bytes tagged. */
export function jsonlRecord(r: TraceRecord): string {
  return JSON.stringify({ at: r.at, type: r.type, fields: toJSONValue(r.fields as Plain) });
}
