// parseSmall, the qtest server's fast path for port commands, must read every word exactly as
// parseNumber (strtoul with base 0, the reference of QEMU's qtest argument parsing) does whenever
// the value fits a double exactly, and must step aside (undefined) otherwise so that parseNumber
// answers or refuses it. Checked on generated words: well-formed literals of every base around the
// 2^53 boundary and arbitrary strings over the characters literals are made of.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseNumber, parseSmall } from "../../sim/qtest/server.ts";

function reference(word: string): number | undefined {
  let v: bigint;
  try {
    v = parseNumber(word);
  } catch {
    return undefined;
  }
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

const literal = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 70n) - 1n }).map((v) => `0x${v.toString(16)}`),
  fc.bigInt({ min: 0n, max: (1n << 70n) - 1n }).map((v) => `0X${v.toString(16).toUpperCase()}`),
  fc.bigInt({ min: 0n, max: (1n << 70n) - 1n }).map((v) => `0${v.toString(8)}`),
  fc.bigInt({ min: 1n, max: (1n << 70n) - 1n }).map((v) => v.toString(10)),
  fc.bigInt({ min: -4n, max: 4n }).map((d) => (BigInt(Number.MAX_SAFE_INTEGER) + d).toString(10)),
  fc.bigInt({ min: -4n, max: 4n }).map((d) => `0x${(BigInt(Number.MAX_SAFE_INTEGER) + d).toString(16)}`),
);
const junk = fc.string({ unit: fc.constantFrom(..."0123456789abcdefxX-+ g8"), maxLength: 20 });

describe("parseSmall", () => {
  it("reads a word as parseNumber does when the value is at most 2^53 - 1, else steps aside", () => {
    fc.assert(
      fc.property(fc.oneof(literal, junk), (w) => {
        expect(parseSmall(w)).toBe(reference(w));
      }),
      { numRuns: 5000 },
    );
  });

  it("handles the edge words", () => {
    for (const w of ["", "0", "00", "0x", "0X", "0x0", "08", "0x1g", "9007199254740991", "9007199254740992", "0x1fffffffffffff", "0x20000000000000"]) {
      expect(parseSmall(w), w).toBe(reference(w));
    }
    expect(parseSmall(undefined)).toBeUndefined();
    expect(parseSmall("0x608")).toBe(0x608);
    expect(parseSmall("0777")).toBe(0o777);
  });
});
