// Canonical text is a function of the value alone: key order does not change it, and carrying a
// value through toJSONValue + JSON text + fromJSONValue gives back the same canonical text.
import { describe, expect } from "vitest";
import { test, fc } from "@fast-check/vitest";
import { canonical, clonePlain, fromJSONValue, toJSONValue, type Plain } from "../../sim/clock/canonical.ts";

const RUNS = process.env.HVSIM_LONG ? 2000 : 300;

// Keys starting with "$" are left out: a one-key {"$big": ...} object is how bigints travel.
// "__proto__" is in: it must stay an own key through every copy.
const key = fc.oneof(fc.string({ maxLength: 6 }).filter((k) => !k.startsWith("$")), fc.constant("__proto__"));

const { plain } = fc.letrec<{ plain: Plain }>((tie) => ({
  plain: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string(),
    fc.bigInt(),
    fc.uint8Array({ maxLength: 8 }),
    fc.array(tie("plain"), { maxLength: 4 }),
    fc.dictionary(key, tie("plain"), { maxKeys: 4 }),
  ),
}));

/** The same value with every object's keys in reverse insertion order. */
function reversed(v: Plain): Plain {
  if (Array.isArray(v)) return (v as Plain[]).map(reversed);
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) {
    const out: Record<string, Plain> = {};
    for (const k of Object.keys(v).reverse()) Object.defineProperty(out, k, { value: reversed((v as Record<string, Plain>)[k]!), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

describe("canonical", () => {
  test.prop([plain], { numRuns: RUNS })("does not depend on key order", (v) => {
    expect(canonical(reversed(v))).toBe(canonical(v));
  });

  test.prop([plain], { numRuns: RUNS })("survives toJSONValue -> JSON text -> fromJSONValue, and clonePlain", (v) => {
    const back = fromJSONValue(JSON.parse(JSON.stringify(toJSONValue(v))));
    expect(canonical(back)).toBe(canonical(v));
    expect(canonical(clonePlain(v))).toBe(canonical(v));
  });

  test.prop([fc.jsonValue()], { numRuns: RUNS })("of a JSON value is its JSON text with keys sorted by code unit", (v) => {
    // Reference: JSON.stringify for scalars and keys; objects written member by member in sorted
    // key order (an object literal cannot hold that order: integer-like keys always come first).
    const ref = (x: unknown): string => {
      if (Array.isArray(x)) return `[${x.map(ref).join(",")}]`;
      if (x !== null && typeof x === "object") {
        const o = x as Record<string, unknown>;
        return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${ref(o[k])}`).join(",")}}`;
      }
      return JSON.stringify(x);
    };
    const text = canonical(v as Plain);
    expect(text).toBe(ref(v));
    expect(canonical(JSON.parse(text) as Plain)).toBe(text);
  });
});
