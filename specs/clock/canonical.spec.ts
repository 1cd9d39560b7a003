// Canonical encoding of plain data (sorted keys, no whitespace, bigint and bytes tagged), its
// JSON carriage (toJSONValue / fromJSONValue), hex, deep copies, and the JSON-form check restore
// uses. Expected texts are written out by hand from the documented format.
import { describe, expect, it } from "vitest";
import { canonical, checkJSONPlain, clonePlain, fromHex, fromJSONValue, toHex, toJSONValue, type Plain } from "../../sim/clock/canonical.ts";

describe("canonical", () => {
  it("sorts object keys at every level and leaves no whitespace", () => {
    expect(canonical({ b: 1, a: { d: [3, { z: 0, y: 1 }], c: "x" } })).toBe('{"a":{"c":"x","d":[3,{"y":1,"z":0}]},"b":1}');
    expect(canonical({ a: { c: "x", d: [3, { y: 1, z: 0 }] }, b: 1 })).toBe(canonical({ b: 1, a: { d: [3, { z: 0, y: 1 }], c: "x" } }));
    // Keys sort by code unit, like Array.prototype.sort.
    expect(canonical({ b: 1, B: 2, a: 3, "10": 4, "9": 5 })).toBe('{"10":4,"9":5,"B":2,"a":3,"b":1}');
  });

  it("tags bigint and bytes", () => {
    expect(canonical(5n)).toBe('{"$big":"5"}');
    expect(canonical(-(2n ** 70n))).toBe('{"$big":"-1180591620717411303424"}');
    expect(canonical(new Uint8Array([0, 255, 16]))).toBe('{"$hex":"00ff10"}');
    expect(canonical(new Uint8Array(0))).toBe('{"$hex":""}');
    expect(canonical({ k: [1n, new Uint8Array([1])] })).toBe('{"k":[{"$big":"1"},{"$hex":"01"}]}');
  });

  it("writes scalars as JSON, -0 as 0, undefined as null (and drops undefined members)", () => {
    expect(canonical(null)).toBe("null");
    expect(canonical(undefined)).toBe("null");
    expect(canonical(true)).toBe("true");
    expect(canonical(false)).toBe("false");
    expect(canonical(-0)).toBe("0");
    expect(canonical(1.5e300)).toBe("1.5e+300");
    expect(canonical('a"b\nc\u2028')).toBe('"a\\"b\\nc\u2028"');
    expect(canonical({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(canonical([1, undefined as unknown as Plain, 2])).toBe("[1,null,2]");
  });

  it("refuses what is not plain data", () => {
    expect(() => canonical(NaN)).toThrow(/not plain data: NaN/);
    expect(() => canonical(Infinity)).toThrow(TypeError);
    expect(() => canonical((() => 1) as unknown as Plain)).toThrow(/not plain data: function/);
    expect(() => canonical(Symbol("s") as unknown as Plain)).toThrow(/not plain data: symbol/);
  });
});

describe("JSON carriage", () => {
  const value: Plain = { n: 1, s: "x", big: -(2n ** 64n), bytes: new Uint8Array([9, 8]), list: [null, true, 0n, new Uint8Array(0), { deep: [1n] }] };

  it("toJSONValue tags bigint and bytes, and fromJSONValue reverses it through JSON text", () => {
    const json = toJSONValue(value);
    expect(json).toEqual({ n: 1, s: "x", big: { $big: "-18446744073709551616" }, bytes: { $hex: "0908" }, list: [null, true, { $big: "0" }, { $hex: "" }, { deep: [{ $big: "1" }] }] });
    const back = fromJSONValue(JSON.parse(JSON.stringify(json)));
    expect(back).toEqual(value);
    expect(canonical(back)).toBe(canonical(value));
  });

  it("drops undefined members, and an object that only looks tagged stays an object", () => {
    expect(toJSONValue({ a: undefined, b: 2 })).toEqual({ b: 2 });
    expect(fromJSONValue({ $hex: "xyz" })).toEqual({ $hex: "xyz" });
    expect(fromJSONValue({ $big: "1", other: 2 })).toEqual({ $big: "1", other: 2 });
  });

  it("checkJSONPlain accepts the JSON form of plain data and names what is wrong otherwise", () => {
    expect(checkJSONPlain(JSON.parse(JSON.stringify(toJSONValue(value))))).toBeUndefined();
    expect(checkJSONPlain(null)).toBeUndefined();
    expect(checkJSONPlain({ a: [1, NaN] })).toBe(".a[1]: NaN is not a finite number");
    expect(checkJSONPlain({ a: { $big: "1.5" } })).toBe('.a.$big: "1.5" is not a decimal integer');
    expect(checkJSONPlain({ a: undefined })).toBe(".a: undefined is not JSON data");
    expect(checkJSONPlain([() => 1])).toBe("[0]: function is not JSON data");
    expect(checkJSONPlain({ m: new Map() })).toBe(".m: not a plain object or list");
    expect(checkJSONPlain(2n)).toBe(": bigint is not JSON data");
    let deep: unknown = 0;
    for (let i = 0; i < 300; i++) deep = [deep];
    expect(checkJSONPlain(deep)).toMatch(/nested more than 256 levels deep/);
  });
});

describe("hex and copies", () => {
  it("toHex / fromHex", () => {
    expect(toHex(new Uint8Array([0, 1, 0xab, 0xff]))).toBe("0001abff");
    expect(fromHex("0aFF")).toEqual(new Uint8Array([10, 255]));
    expect(fromHex("")).toEqual(new Uint8Array(0));
    expect(fromHex("abc")).toBeUndefined();
    expect(fromHex("zz")).toBeUndefined();
    expect(fromHex("0x12")).toBeUndefined();
  });

  it("clonePlain copies deeply, bytes included", () => {
    const v = { a: [1, { b: new Uint8Array([1, 2]) }], c: 3n };
    const c = clonePlain(v);
    expect(c).toEqual(v);
    (c.a[1] as { b: Uint8Array }).b[0] = 9;
    (c.a as unknown[]).push(4);
    expect(v.a).toHaveLength(2);
    expect((v.a[1] as { b: Uint8Array }).b[0]).toBe(1);
  });
});

describe("a \"__proto__\" key", () => {
  it("stays an own key through JSON carriage and copies (it does not become a prototype)", () => {
    const parsed = JSON.parse('{"__proto__":{"x":1},"a":2}') as Plain;
    expect(canonical(parsed)).toBe('{"__proto__":{"x":1},"a":2}');
    const back = fromJSONValue(JSON.parse(JSON.stringify(toJSONValue(parsed))));
    expect(canonical(back)).toBe('{"__proto__":{"x":1},"a":2}');
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(canonical(clonePlain(parsed))).toBe('{"__proto__":{"x":1},"a":2}');
    expect(canonical(toJSONValue(parsed) as Plain)).toBe('{"__proto__":{"x":1},"a":2}');
  });
});
