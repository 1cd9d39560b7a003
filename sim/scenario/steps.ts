// The core step types: clock (step, until), port I/O (in/out and inb/inw/inl/outb/outw/outl),
// guest memory (read, write), snapshots (save, restore) and assertions on stored values (assert).
// Device-specific steps (vmgenid, kvp, vss, vmm) register themselves from their own modules: see
// registry.ts and plugins.ts.
import { z } from "zod";
import { toHex } from "../clock/canonical.ts";
import { IoFault, type IoSize } from "../bus/portio.ts";
import { describeIssue, restoreSnapshotFile, saveSnapshotFile } from "../snapshot/index.ts";
import { registerStep, StepAssertion, StepError, type StepContext } from "./registry.ts";
import { address, hex, hexBytes, int, ioSize, memSize, port, time, varName } from "./values.ts";

type Val = number | bigint;
/** An expected value: a literal, or "$name" for a value stored earlier with `as: name`. */
type Expect = { ref: string } | { value: Val } | { text: string };

function expectValue(max: bigint, allowText = false) {
  return z.union([z.number(), z.string()]).transform((v, ctx): Expect => {
    if (typeof v === "string" && v.startsWith("$")) {
      if (!/^\$[A-Za-z_][A-Za-z0-9_]*$/.test(v)) {
        ctx.addIssue({ code: "custom", message: `${JSON.stringify(v)} is not a variable reference like $name` });
        return z.NEVER;
      }
      return { ref: v.slice(1) };
    }
    let n: bigint | undefined;
    if (typeof v === "number") n = Number.isSafeInteger(v) ? BigInt(v) : undefined;
    else if (/^(0x[0-9a-fA-F_]+|[0-9_]+)$/.test(v.trim())) n = BigInt(v.trim().replace(/_/g, ""));
    if (n === undefined && allowText && typeof v === "string") return { text: v.replace(/[\s:-]/g, "").toLowerCase() };
    if (n === undefined || n < 0n || n > max) {
      ctx.addIssue({ code: "custom", message: `expected a whole number in 0..${hex(max)} or a $variable, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return { value: max > BigInt(Number.MAX_SAFE_INTEGER) ? n : Number(n) };
  });
}

const u32Expect = expectValue(0xffffffffn);
const u64Expect = expectValue((1n << 64n) - 1n);
/** assert's operands: numbers, $variables, or text (compared with values stored from byte reads). */
const cmpExpect = expectValue((1n << 64n) - 1n, true);
const mask32 = int(0, 0xffffffff, "mask");

function resolve(e: Expect, ctx: StepContext): Val | string {
  if ("value" in e) return e.value;
  if ("text" in e) return e.text;
  const v = ctx.vars.get(e.ref);
  if (v === undefined) throw new StepError(`no stored value $${e.ref} (store one with as: ${e.ref})`);
  return v;
}

function show(v: Val | string, width = 0): string {
  return typeof v === "string" ? JSON.stringify(v) : hex(v, width);
}

function checkValue(actual: Val, expect: Expect | undefined, mask: number | undefined, ctx: StepContext, width: number): void {
  if (expect === undefined) return;
  const want = resolve(expect, ctx);
  const got = mask === undefined ? actual : typeof actual === "bigint" ? actual & BigInt(mask) : (actual & mask) >>> 0;
  if (typeof want === "string" || BigInt(got) !== BigInt(want)) {
    const m = mask === undefined ? "" : ` (under mask ${hex(mask)})`;
    throw new StepAssertion(show(want, width), show(got, width) + m);
  }
}

const NAMES: Record<IoSize, string> = { 1: "b", 2: "w", 4: "l" };

// ---- clock ----

registerStep("step", z.strictObject({ step: time }), (a, ctx) => {
  ctx.bench.clock.step(a.step);
}, { describe: (a) => `step ${a.step}` });

registerStep("until", z.strictObject({ until: time }), (a, ctx) => {
  if (a.until < ctx.bench.clock.now) throw new StepError(`cannot run back to ${a.until} ns: the time is already ${ctx.bench.clock.now} ns`);
  ctx.bench.clock.runUntil(a.until);
}, { describe: (a) => `until ${a.until}` });

// ---- port I/O ----

const errno = z.string().regex(/^E[A-Z0-9]+$/, "fault is an errno name like EIO");
const inParams = { expect: u32Expect.optional(), mask: mask32.optional(), as: varName.optional(), fault: errno.optional() };

/** Runs a port access; with `fault`, the device must refuse it with that errno (a failed VM exit). */
function access<T>(fault: string | undefined, fn: () => T): T | undefined {
  try {
    const v = fn();
    if (fault !== undefined) throw new StepAssertion(`fault ${fault}`, typeof v === "number" ? `no fault (value ${hex(v)})` : "no fault");
    return v;
  } catch (e) {
    if (!(e instanceof IoFault)) throw e;
    if (fault === undefined) throw new StepError(`the device refused the access: ${e.errno} (${e.message}); expect it with fault: ${e.errno}`);
    if (e.errno !== fault) throw new StepAssertion(`fault ${fault}`, `fault ${e.errno}`);
    return undefined;
  }
}

function doIn(ctx: StepContext, p: number, size: IoSize, a: { expect?: Expect; mask?: number; as?: string; fault?: string }): void {
  const v = access(a.fault, () => ctx.bench.ports.in(p, size));
  if (v === undefined) return;
  if (a.as) ctx.vars.set(a.as, v);
  checkValue(v, a.expect, a.mask, ctx, size * 2);
}

function fits(value: number, size: IoSize): boolean {
  return value <= (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1);
}

registerStep("in", z.strictObject({ in: port, size: ioSize, ...inParams }), (a, ctx) => doIn(ctx, a.in, a.size, a), {
  describe: (a) => `in${NAMES[a.size]} ${hex(a.in)}`,
});
registerStep(
  "out",
  z.strictObject({ out: port, size: ioSize, value: int(0, 0xffffffff, "value"), fault: errno.optional() }).superRefine((a, ctx) => {
    if (!fits(a.value, a.size)) ctx.addIssue({ code: "custom", path: ["value"], message: `value ${hex(a.value)} does not fit a ${a.size}-byte write` });
  }),
  (a, ctx) => void access(a.fault, () => ctx.bench.ports.out(a.out, a.size, a.value)),
  { describe: (a) => `out${NAMES[a.size]} ${hex(a.out)} ${hex(a.value)}` },
);

for (const size of [1, 2, 4] as const) {
  const inName = `in${NAMES[size]}`;
  type InArgs = { expect?: Expect; mask?: number; as?: string; fault?: string; port: number };
  const inSchema = z.strictObject({ [inName]: port, ...inParams }).transform((a) => ({ ...a, port: (a as unknown as Record<string, number>)[inName]! }));
  registerStep(inName, inSchema as unknown as z.ZodType<InArgs>, (a, ctx) => doIn(ctx, a.port, size, a), { describe: (a) => `${inName} ${hex(a.port)}` });
  const outName = `out${NAMES[size]}`;
  const max = size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
  type OutArgs = { port: number; value: number; fault?: string };
  const outSchema = z.strictObject({ [outName]: z.tuple([port, int(0, max, `${size}-byte value`)], { error: `${outName} takes [port, value]` }), fault: errno.optional() })
    .transform((a) => {
      const [p, value] = (a as unknown as Record<string, [number, number]>)[outName]!;
      return { port: p, value, fault: a.fault as string | undefined };
    });
  registerStep(outName, outSchema as unknown as z.ZodType<OutArgs>, (a, ctx) => void access(a.fault, () => ctx.bench.ports.out(a.port, size, a.value)), {
    describe: (a) => `${outName} ${hex(a.port)} ${hex(a.value)}`,
  });
}

// ---- guest memory ----

const readSchema = z.strictObject({
  read: address,
  size: memSize.optional(),
  length: int(1, 1 << 20, "length").optional(),
  expect: z.union([z.number(), z.string()]).optional(),
  mask: mask32.optional(),
  as: varName.optional(),
}).transform((a, ctx) => {
  if ((a.size === undefined) === (a.length === undefined)) {
    ctx.addIssue({ code: "custom", path: ["read"], message: "read takes either size (1, 2, 4, 8: a little-endian number) or length (bytes, compared as hex)" });
    return z.NEVER;
  }
  let expect: Expect | { bytes: Uint8Array } | undefined;
  if (a.expect !== undefined) {
    const r = a.length !== undefined ? hexBytes.safeParse(a.expect) : (a.size === 8 ? u64Expect : u32Expect).safeParse(a.expect);
    if (!r.success) {
      for (const i of r.error.issues) ctx.addIssue({ code: "custom", path: ["expect"], message: i.message });
      return z.NEVER;
    }
    expect = r.data instanceof Uint8Array ? { bytes: r.data } : r.data;
  }
  return { ...a, expect };
});

registerStep("read", readSchema, (a, ctx) => {
  const mem = ctx.bench.memory;
  const now = ctx.bench.clock.now;
  if (a.length !== undefined) {
    const b = mem.read(a.read, a.length);
    ctx.bench.clock.trace.record(now, "mem", "read", a.read, b);
    if (a.as) ctx.vars.set(a.as, toHex(b));
    if (a.expect && "bytes" in a.expect && toHex(a.expect.bytes) !== toHex(b)) throw new StepAssertion(toHex(a.expect.bytes), toHex(b));
    return;
  }
  const size = a.size!;
  const v: Val = size === 8 ? mem.readU64(a.read) : mem.readUint(a.read, size);
  ctx.bench.clock.trace.record(now, "mem", "read", a.read, size, v);
  if (a.as) ctx.vars.set(a.as, v);
  if (a.expect && !("bytes" in a.expect)) checkValue(v, a.expect, a.mask, ctx, size * 2);
}, { describe: (a) => `read ${hex(a.read)}` });

const writeSchema = z.strictObject({
  write: address,
  bytes: hexBytes.optional(),
  size: memSize.optional(),
  value: z.union([z.number(), z.string()]).optional(),
}).transform((a, ctx) => {
  if ((a.bytes === undefined) === (a.size === undefined && a.value === undefined)) {
    ctx.addIssue({ code: "custom", path: ["write"], message: "write takes either bytes (hex) or size + value" });
    return z.NEVER;
  }
  if (a.bytes) return { write: a.write, bytes: a.bytes };
  if (a.size === undefined || a.value === undefined) {
    ctx.addIssue({ code: "custom", path: [a.size === undefined ? "write" : "size"], message: "write with a value needs both size and value" });
    return z.NEVER;
  }
  const r = (a.size === 8 ? u64Expect : u32Expect).safeParse(a.value);
  if (!r.success || !("value" in r.data) || !fits64(r.data.value, a.size)) {
    ctx.addIssue({ code: "custom", path: ["value"], message: `value ${JSON.stringify(a.value)} is not a whole number that fits ${a.size} bytes` });
    return z.NEVER;
  }
  const bytes = new Uint8Array(a.size);
  let v = BigInt(r.data.value);
  for (let i = 0; i < a.size; i++, v >>= 8n) bytes[i] = Number(v & 0xffn);
  return { write: a.write, bytes };
});

function fits64(v: Val, size: number): boolean {
  return BigInt(v) < 1n << BigInt(size * 8);
}

registerStep("write", writeSchema, (a, ctx) => {
  ctx.bench.memory.write(a.write, a.bytes);
  ctx.bench.clock.trace.record(ctx.bench.clock.now, "mem", "write", a.write, a.bytes);
}, { describe: (a) => `write ${hex(a.write)}` });

// ---- snapshots ----

registerStep("save", z.strictObject({ save: z.string().min(1, "save needs a file name") }), (a, ctx) => {
  const path = ctx.resolvePath(a.save);
  const n = saveSnapshotFile(ctx.bench, path);
  ctx.note(`saved ${a.save} (${n} bytes, t=${ctx.bench.clock.now} ns)`);
}, { describe: (a) => `save ${a.save}` });

registerStep("restore", z.strictObject({ restore: z.string().min(1, "restore needs a file name") }), (a, ctx) => {
  const r = restoreSnapshotFile(ctx.bench, ctx.resolvePath(a.restore));
  if (!r.ok) throw new StepError(`cannot restore ${a.restore}: ${describeIssue(r.error)}`);
  const up = [...r.value.upgraded].map(([id, [f, t]]) => `${id} v${f}->v${t}`);
  ctx.note(`restored ${a.restore} (t=${r.value.time} ns, ${r.value.pages} pages${up.length ? `, upgraded ${up.join(", ")}` : ""})`);
}, { describe: (a) => `restore ${a.restore}` });

// ---- assertions on stored values ----

const CMP = { equals: (a: bigint, b: bigint) => a === b, ne: (a: bigint, b: bigint) => a !== b, lt: (a: bigint, b: bigint) => a < b, le: (a: bigint, b: bigint) => a <= b, gt: (a: bigint, b: bigint) => a > b, ge: (a: bigint, b: bigint) => a >= b };
const OPS = { equals: "==", ne: "!=", lt: "<", le: "<=", gt: ">", ge: ">=" } as const;

registerStep(
  "assert",
  z.strictObject({
    assert: varName,
    equals: cmpExpect.optional(), ne: cmpExpect.optional(), lt: cmpExpect.optional(),
    le: cmpExpect.optional(), gt: cmpExpect.optional(), ge: cmpExpect.optional(),
  }).superRefine((a, ctx) => {
    if (!(Object.keys(OPS) as (keyof typeof OPS)[]).some((k) => a[k] !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["assert"], message: "assert needs at least one of equals, ne, lt, le, gt, ge" });
    }
  }),
  (a, ctx) => {
    const v = ctx.vars.get(a.assert);
    if (v === undefined) throw new StepError(`no stored value ${a.assert} (store one with as: ${a.assert})`);
    for (const k of Object.keys(OPS) as (keyof typeof OPS)[]) {
      const e = a[k];
      if (e === undefined) continue;
      const want = resolve(e, ctx);
      if (typeof v === "string" || typeof want === "string") {
        if (k !== "equals" && k !== "ne") throw new StepError(`${a.assert} ${OPS[k]} ${show(want)}: only equals and ne compare text`);
        if ((k === "equals") !== (String(v) === String(want))) throw new StepAssertion(`${a.assert} ${OPS[k]} ${show(want)}`, show(v));
        continue;
      }
      if (!CMP[k](BigInt(v), BigInt(want))) throw new StepAssertion(`${a.assert} ${OPS[k]} ${show(want)}`, show(v));
    }
  },
  { describe: (a) => `assert ${a.assert}` },
);
