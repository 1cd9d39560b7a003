// zod building blocks for step schemas: integers written as YAML numbers (0x608, 1e9) or strings
// ("0x1_0000", "1_000_000_000"), times, ports, access sizes and hex byte strings.
import { z } from "zod";
import { MAX_TIME } from "../clock/time.ts";
import { fromHex } from "../clock/canonical.ts";

function parseIntText(s: string): bigint | undefined {
  const t = s.trim().replace(/_/g, "");
  if (!/^(0x[0-9a-fA-F]+|0o[0-7]+|0b[01]+|[0-9]+)$/.test(t)) return undefined;
  return BigInt(t);
}

/** An integer in [min, max] as a number (max at most 2^53 - 1). */
export function int(min = 0, max = Number.MAX_SAFE_INTEGER, what = "integer") {
  return z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = typeof v === "number" ? (Number.isSafeInteger(v) ? v : undefined) : parseIntText(v);
    if (n === undefined) {
      ctx.addIssue({ code: "custom", message: `${what} must be a whole number (decimal or 0x hex), got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    const b = BigInt(n);
    if (b < BigInt(min) || b > BigInt(max)) {
      ctx.addIssue({ code: "custom", message: `${what} ${v} is outside ${fmt(min)}..${fmt(max)}` });
      return z.NEVER;
    }
    return Number(b);
  });
}

/** An unsigned 64-bit value as a bigint. */
export const u64 = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === "number" ? (Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined) : parseIntText(v);
  if (n === undefined || n < 0n || n >= 1n << 64n) {
    ctx.addIssue({ code: "custom", message: `expected an unsigned 64-bit value, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

function fmt(n: number): string {
  return n >= 0x10000 ? `0x${n.toString(16)}` : String(n);
}

export const time = int(0, MAX_TIME, "time (ns)");
export const port = int(0, 0xffff, "port");
export const ioSize = z.union([z.literal(1), z.literal(2), z.literal(4)], { error: "size must be 1, 2 or 4 bytes" });
export const memSize = z.union([z.literal(1), z.literal(2), z.literal(4), z.literal(8)], { error: "size must be 1, 2, 4 or 8 bytes" });
export const address = int(0, Number.MAX_SAFE_INTEGER, "address");
export const varName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a variable name is letters, digits and _");

/** Hex bytes: "deadbeef", "de ad be ef", "0xdeadbeef" (spaces, colons and dashes ignored). */
export const hexBytes = z.string().transform((v, ctx) => {
  const t = v.replace(/^0x/i, "").replace(/[\s:-]/g, "");
  const b = fromHex(t);
  if (!b) {
    ctx.addIssue({ code: "custom", message: `expected hex bytes (an even number of hex digits), got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return b;
});

export function hex(v: number | bigint, width = 0): string {
  return `0x${v.toString(16).padStart(width, "0")}`;
}
