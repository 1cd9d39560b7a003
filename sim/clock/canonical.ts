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

/** Sets own property `k` (a plain assignment would set the prototype when k is "__proto__"). */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === "__proto__") Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
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
    for (const [k, x] of Object.entries(v)) if (x !== undefined) setOwn(out, k, toJSONValue(x as Plain));
    return out;
  }
  return v;
}

/**
 * Returns what is wrong with `v` as the JSON form of a plain value (what toJSONValue produces and
 * fromJSONValue accepts), as a path suffix and reason (`.a[2]: not a finite number`), or undefined.
 */
export function checkJSONPlain(v: unknown, path = "", depth = 0): string | undefined {
  if (depth > 256) return `${path}: nested more than 256 levels deep`;
  switch (typeof v) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(v) ? undefined : `${path}: ${v} is not a finite number`;
    case "object": {
      if (v === null) return undefined;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const bad = checkJSONPlain(v[i], `${path}[${i}]`, depth + 1);
          if (bad) return bad;
        }
        return undefined;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return `${path}: not a plain object or list`;
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && "$big" in o && typeof o.$big === "string" && !/^-?[0-9]+$/.test(o.$big)) {
        return `${path}.$big: ${JSON.stringify(o.$big)} is not a decimal integer`;
      }
      for (const k of keys) {
        const bad = checkJSONPlain(o[k], `${path}.${k}`, depth + 1);
        if (bad) return bad;
      }
      return undefined;
    }
    default:
      return `${path}: ${typeof v} is not JSON data`;
  }
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
    for (const k of keys) setOwn(out, k, fromJSONValue(o[k]));
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
    for (const [k, x] of Object.entries(v)) setOwn(out, k, clonePlain(x as Plain));
    return out as T;
  }
  return v;
}
