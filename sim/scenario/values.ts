// zod building blocks for step schemas: integers written as YAML numbers (0x608, 1e9) or strings
// ("0x1_0000", "1_000_000_000"), times, ports, access sizes and hex byte strings.
import { z } from "zod";
import { MAX_TIME } from "../clock/time.ts";
import { fromHex } from "../clock/canonical.ts";

/**
 * The exact integer a text spells: 0x/0o/0b or decimal with optional _ separators and sign, or a
 * decimal with a fraction and/or exponent that is a whole number ("1e30", "1.5e3"). The loader
 * hands over the source text of YAML/JSON numbers that a double cannot hold exactly, so this sees
 * 9007199254740993 as written.
 */
export function parseIntText(s: string): bigint | undefined {
  const t = s.trim().replace(/_/g, "");
  const neg = t.startsWith("-");
  const u = neg || t.startsWith("+") ? t.slice(1) : t;
  let v: bigint;
  if (/^(0x[0-9a-fA-F]+|0o[0-7]+|0b[01]+|[0-9]+)$/.test(u)) {
    v = BigInt(u);
  } else {
    const m = /^([0-9]*)(?:\.([0-9]*))?[eE]([+-]?[0-9]{1,4})$/.exec(u) ?? /^([0-9]*)\.([0-9]*)()$/.exec(u);
    if (!m || (m[1] === "" && (m[2] ?? "") === "")) return undefined;
    const frac = m[2] ?? "";
    const exp = Number(m[3] || "0") - frac.length;
    const digits = BigInt((m[1] || "0") + frac);
    if (exp >= 0) v = digits * 10n ** BigInt(exp);
    else {
      const d = 10n ** BigInt(-exp);
      if (digits % d !== 0n) return undefined;
      v = digits / d;
    }
  }
  return neg ? -v : v;
}

function exact(v: number | string): bigint | undefined {
  return typeof v === "number" ? (Number.isSafeInteger(v) ? BigInt(v) : undefined) : parseIntText(v);
}

/** An integer in [min, max] as a number (max at most 2^53 - 1). `range` words the range error. */
export function int(min = 0, max = Number.MAX_SAFE_INTEGER, what = "integer", range?: (v: string) => string) {
  return z.union([z.number(), z.string()]).transform((v, ctx) => {
    const b = exact(v);
    if (b === undefined) {
      ctx.addIssue({ code: "custom", message: `${what} must be a whole number (decimal or 0x hex), got ${typeof v === "string" ? JSON.stringify(v) : String(v)}` });
      return z.NEVER;
    }
    if (b < BigInt(min) || b > BigInt(max)) {
      const text = String(v).trim();
      ctx.addIssue({ code: "custom", message: range && b > BigInt(max) ? range(text) : `${what} ${text} is outside ${fmt(min)}..${fmt(max)}` });
      return z.NEVER;
    }
    return Number(b);
  });
}

/** An unsigned 64-bit value as a bigint. */
export const u64 = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = exact(v);
  if (n === undefined || n < 0n || n >= 1n << 64n) {
    ctx.addIssue({ code: "custom", message: `expected an unsigned 64-bit value, got ${n !== undefined ? String(v).trim() : JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

function fmt(n: number): string {
  return n >= 0x10000 ? `0x${n.toString(16)}` : String(n);
}

export const time = int(0, MAX_TIME, "time (ns)", (v) => `time (ns) ${v} is past the virtual clock's limit of 2^53 - 1 ns (${MAX_TIME} ns, about 104 days)`);
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
