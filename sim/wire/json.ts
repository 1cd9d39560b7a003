// A decoded wire value as plain JSON, driven by its declaration: 64-bit integers as decimal
// strings, byte arrays (u8/char/i8) and __u16 arrays as { hex } (the little-endian bytes), with a
// readable `text` beside the hex when the array holds NUL-terminated UTF-8 (bytes) or UTF-16
// (__u16) text. Used by `hvsim decode` and by reports.
import type { FlexType, ArrayType, StructType, UnionType, WireType } from "./types.ts";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += HEX[b];
  return s;
}

/** Control characters other than tab, newline and carriage return make text unreadable. */
const isControl = (c: number) => (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f;

/** The text before the first NUL when it is non-empty, valid UTF-8 and free of control characters. */
export function cText(bytes: Uint8Array): string | undefined {
  const nul = bytes.indexOf(0);
  if (nul <= 0) return undefined;
  for (let i = 0; i < nul; i++) if (isControl(bytes[i]!)) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, nul));
  } catch {
    return undefined;
  }
}

/** The UTF-16 text before the first U+0000 unit when it is non-empty, well formed and free of control characters. */
export function utf16Text(units: readonly number[]): string | undefined {
  const nul = units.indexOf(0);
  if (nul <= 0) return undefined;
  let s = "";
  for (let i = 0; i < nul; i++) {
    const u = units[i]!;
    if (isControl(u)) return undefined;
    if (u >= 0xd800 && u <= 0xdbff) {
      const lo = units[i + 1];
      if (lo === undefined || lo < 0xdc00 || lo > 0xdfff || i + 1 >= nul) return undefined;
      s += String.fromCharCode(u, lo);
      i++;
      continue;
    }
    if (u >= 0xdc00 && u <= 0xdfff) return undefined;
    s += String.fromCharCode(u);
  }
  return s;
}

function u16Bytes(units: readonly number[]): Uint8Array {
  const out = new Uint8Array(units.length * 2);
  units.forEach((u, i) => {
    out[2 * i] = u & 0xff;
    out[2 * i + 1] = u >>> 8;
  });
  return out;
}

const isByteElem = (t: WireType) => t.kind === "prim" && (t.name === "u8" || t.name === "char" || t.name === "i8");
const isU16Elem = (t: WireType) => t.kind === "prim" && t.name === "u16";

function arrayJson(t: ArrayType | FlexType, v: unknown): Json {
  if (isByteElem(t.elem) && v instanceof Uint8Array) {
    const text = cText(v);
    return text === undefined ? { hex: hex(v) } : { text, hex: hex(v) };
  }
  if (v instanceof Uint16Array) v = Array.from(v);
  if (!Array.isArray(v)) return null;
  if (isU16Elem(t.elem) && v.every((x) => typeof x === "number")) {
    const text = utf16Text(v as number[]);
    const h = hex(u16Bytes(v as number[]));
    return text === undefined ? { hex: h } : { text, hex: h };
  }
  return v.map((x) => toJson(t.elem, x));
}

function membersJson(members: StructType["fields"], v: Record<string, unknown>, out: { [k: string]: Json }): void {
  for (const m of members) {
    if (m.name === undefined) {
      const inner = m.type as StructType | UnionType;
      membersJson(inner.kind === "struct" ? inner.fields : inner.members, v, out);
      continue;
    }
    if (m.name in v) out[m.name] = toJson(m.type, v[m.name]);
  }
}

/** `value` (decoded as `type`) as JSON. */
export function toJson(type: WireType, value: unknown): Json {
  switch (type.kind) {
    case "prim":
      if (typeof value === "bigint") return value.toString();
      return typeof value === "number" ? value : null;
    case "array":
    case "flex":
      return arrayJson(type, value);
    case "struct":
    case "union": {
      if (value === null || typeof value !== "object") return null;
      const out: { [k: string]: Json } = {};
      membersJson(type.kind === "struct" ? type.fields : type.members, value as Record<string, unknown>, out);
      return out;
    }
  }
}
