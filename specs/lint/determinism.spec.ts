// The determinism lint rule (eslint.config.js) fires: wall-clock time, timers and unseeded
// randomness are errors in simulation code under sim/, allowed in the CLI and in the adapters that
// talk to real processes (sim/cli, sim/targets, sim/peers), and the real sim/ tree has none.
import { beforeAll, describe, expect, it } from "vitest";
import { ESLint, type Linter } from "eslint";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DETERMINISM_RULES = new Set(["no-restricted-globals", "no-restricted-properties", "no-restricted-syntax", "no-restricted-imports"]);

// Each snippet is a complete module using one forbidden source of time or randomness.
const FORBIDDEN: [string, string][] = [
  ["Date.now()", "export const t = Date.now();\n"],
  ["new Date()", "export const d = new Date();\n"],
  ["Math.random()", "export const r = Math.random();\n"],
  ["performance.now()", "export const p = performance.now();\n"],
  ["process.hrtime()", "export const h = process.hrtime();\n"],
  ["process.hrtime.bigint()", "export const h = process.hrtime.bigint();\n"],
  ["process.uptime()", "export const u = process.uptime();\n"],
  ["setTimeout", "export function later(f: () => void): void {\n  setTimeout(f, 10);\n}\n"],
  ["setInterval", "export function every(f: () => void): void {\n  setInterval(f, 10);\n}\n"],
  ["setImmediate", "export function soon(f: () => void): void {\n  setImmediate(f);\n}\n"],
  ["queueMicrotask", "export function soon(f: () => void): void {\n  queueMicrotask(f);\n}\n"],
  ["crypto.randomUUID()", "export const id = crypto.randomUUID();\n"],
  ["crypto.getRandomValues()", "export const b = crypto.getRandomValues(new Uint8Array(4));\n"],
  ['import { randomBytes } from "node:crypto"', 'import { randomBytes } from "node:crypto";\nexport const b = randomBytes(4);\n'],
  ['import { randomInt } from "crypto"', 'import { randomInt } from "crypto";\nexport const n = randomInt(10);\n'],
  ['import { setTimeout as st } from "node:timers/promises"', 'import { setTimeout as st } from "node:timers/promises";\nexport const wait = (): Promise<void> => st(1);\n'],
  ['import { performance } from "node:perf_hooks"', 'import { performance as perf } from "node:perf_hooks";\nexport const t = perf.now();\n'],
];

// Deterministic simulation code: virtual time, the seeded RNG, hashing (not randomness) from crypto.
const CLEAN = `import { createHash } from "node:crypto";
import type { Clock } from "../clock/clock.ts";

export interface TimerState { readonly period: number; readonly fired: number }

/** Arms a periodic timer on the virtual clock; jitter comes from the bench's seeded RNG. */
export function arm(clock: Clock, id: string, state: TimerState): number {
  const jitter = clock.rng.int(0, 10);
  return clock.schedule(state.period + jitter, id, "tick", { fired: state.fired + 1, at: clock.now });
}

export function digest(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export const elapsed = (clock: Clock, since: number): number => clock.now - since;
`;

let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: ROOT });
});

async function lint(code: string, filePath: string): Promise<Linter.LintMessage[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages;
}

const determinismErrors = (messages: Linter.LintMessage[]) => messages.filter((m) => m.severity === 2 && m.ruleId !== null && DETERMINISM_RULES.has(m.ruleId));

describe("the determinism rule", () => {
  it.each(FORBIDDEN)("flags %s in simulation code as an error", async (_name, code) => {
    const messages = await lint(code, "sim/devices/example.ts");
    const errors = determinismErrors(messages);
    expect(errors.length, JSON.stringify(messages)).toBeGreaterThan(0);
    // The message says what to use instead.
    for (const e of errors) expect(e.message).toMatch(/virtual clock|seeded RNG|clock events/);
  });

  it.each(FORBIDDEN)("flags %s anywhere else under sim/ too (sim/bus, sim/machine)", async (_name, code) => {
    for (const path of ["sim/bus/example.ts", "sim/machine/deep/example.ts"]) {
      expect(determinismErrors(await lint(code, path)).length, path).toBeGreaterThan(0);
    }
  });

  it.each(FORBIDDEN)("allows %s in the CLI and in the adapters for real processes", async (_name, code) => {
    for (const path of ["sim/cli/x.ts", "sim/targets/x.ts", "sim/peers/x.ts"]) {
      const messages = await lint(code, path);
      expect(messages.filter((m) => m.severity === 2), `${path}: ${JSON.stringify(messages)}`).toEqual([]);
    }
  });

  it("allows them outside sim/ (benchmarks time themselves)", async () => {
    const messages = await lint("export const t0 = performance.now();\nexport const when = new Date().toISOString();\n", "bench/example.ts");
    expect(messages.filter((m) => m.severity === 2)).toEqual([]);
  });

  it("leaves clean simulation code without errors", async () => {
    const messages = await lint(CLEAN, "sim/devices/example.ts");
    expect(messages.filter((m) => m.severity === 2)).toEqual([]);
  });

  it("the real sim/ tree has no determinism errors", async () => {
    const results = await eslint.lintFiles(["sim/**/*.ts"]);
    expect(results.length).toBeGreaterThan(10);
    const found = results.flatMap((r) => determinismErrors(r.messages).map((m) => `${r.filePath}:${m.line}: ${m.message}`));
    expect(found).toEqual([]);
  });
});
