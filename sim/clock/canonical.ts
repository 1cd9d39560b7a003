// Plain data: the only values that may sit in device state, event payloads and trace records.
// JSON values plus bigint and Uint8Array. `canonical` gives one byte-exact text per value (object
// keys sorted) for hashing; `toJSONValue`/`fromJSONValue` carry bigint and bytes through JSON
// as {"$big": "..."} and {"$hex": "..."}.

export type Plain =
  | null
  | boolean
  | number
  | string
  | bigint
  | Uint8Array
  | readonly Plain[]
  | { readonly [key: string]: Plain | undefined };

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

/** Parses lowercase or uppercase hex with an even number of digits; returns undefined otherwise. */
export function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

/** One canonical text per plain value: sorted keys, no whitespace, bigint and bytes tagged. */
export function canonical(v: Plain | undefined): string {
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) throw new TypeError(`not plain data: ${v}`);
      return Object.is(v, -0) ? "0" : String(v);
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return `{"$big":"${v.toString()}"}`;
    case "undefined":
      return "null";
    case "object": {
      if (v === null) return "null";
      if (v instanceof Uint8Array) return `{"$hex":"${toHex(v)}"}`;
      if (Array.isArray(v)) return `[${(v as readonly Plain[]).map(canonical).join(",")}]`;
      const o = v as { readonly [key: string]: Plain | undefined };
      const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`;
    }
    default:
      throw new TypeError(`not plain data: ${typeof v}`);
  }
}

/** A JSON-serializable copy of a plain value (bigint and bytes tagged). */
export function toJSONValue(v: Plain | undefined): unknown {
  if (typeof v === "bigint") return { $big: v.toString() };
  if (v instanceof Uint8Array) return { $hex: toHex(v) };
  if (Array.isArray(v)) return (v as readonly Plain[]).map(toJSONValue);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJSONValue(x as Plain);
    return out;
  }
  return v;
}

/** Inverse of toJSONValue. */
export function fromJSONValue(v: unknown): Plain {
  if (Array.isArray(v)) return v.map(fromJSONValue);
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.$big === "string") return BigInt(o.$big);
    if (keys.length === 1 && typeof o.$hex === "string") {
      const b = fromHex(o.$hex);
      if (b) return b;
    }
    const out: Record<string, Plain> = {};
    for (const k of keys) out[k] = fromJSONValue(o[k]);
    return out;
  }
  return v as Plain;
}

/** Deep copy of plain data (bytes copied too). */
export function clonePlain<T extends Plain | undefined>(v: T): T {
  if (v instanceof Uint8Array) return v.slice() as T;
  if (Array.isArray(v)) return (v as readonly Plain[]).map((x) => clonePlain(x)) as unknown as T;
  if (v !== null && typeof v === "object") {
    const out: Record<string, Plain | undefined> = {};
    for (const [k, x] of Object.entries(v)) out[k] = clonePlain(x as Plain);
    return out as T;
  }
  return v;
}
