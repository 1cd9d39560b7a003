// The step registry: new step types plug in with a zod schema and an executor, get positioned
// errors for free, and fail with expected/actual through StepAssertion.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  formatFailure, formatIssue, parseScenario, registerStep, runScenario, StepAssertion, stepTypeNames, int, port,
  type RunResult,
} from "../../sim/scenario/index.ts";

registerStep(
  "poke-reg",
  z.strictObject({ "poke-reg": z.enum(["t0", "t1"]), value: int(0, 0xffffffff, "value"), check: z.boolean().optional() }),
  (a, ctx) => {
    const base = a["poke-reg"] === "t0" ? 0x700 : 0x710;
    ctx.bench.ports.out(base, 4, a.value);
    const back = ctx.bench.ports.in(base, 4);
    if (a.check && back !== a.value + 1) throw new StepAssertion(String(a.value + 1), String(back));
  },
  { describe: (a) => `poke-reg ${a["poke-reg"]}` },
);

function run(yaml: string, dir?: string): RunResult {
  const l = parseScenario(yaml, "inline.yaml");
  if (!l.ok) return { status: "invalid", issues: l.issues };
  return runScenario(l.scenario, { snapshotDir: dir });
}

function issues(yaml: string): string[] {
  const l = parseScenario(yaml, "inline.yaml");
  if (l.ok) throw new Error("expected problems");
  return l.issues.map(formatIssue);
}

describe("step registry", () => {
  it("a registered step type runs from a scenario", () => {
    const r = run("machine: testbox\nsteps:\n  - poke-reg: t1\n    value: 9\n  - inl: 0x710\n    expect: 9\n");
    expect(r.status).toBe("ok");
    expect(stepTypeNames()).toContain("poke-reg");
  });

  it("its schema errors come with file:line:column", () => {
    expect(issues("machine: testbox\nsteps:\n  - poke-reg: t2\n    value: 1\n")).toEqual([
      expect.stringMatching(/^inline\.yaml:3:15: step 1 \(poke-reg\): steps\[0\]\.poke-reg: /),
    ]);
    expect(issues("machine: testbox\nsteps:\n  - poke-reg: t0\n")).toEqual([expect.stringMatching(/^inline\.yaml:3:5: step 1 \(poke-reg\): missing steps\[0\]\.value/)]);
  });

  it("its assertions fail naming step, line, expected and actual", () => {
    const r = run("machine: testbox\nsteps:\n  - step: 5\n  - poke-reg: t0\n    value: 4\n    check: true\n");
    if (r.status !== "failed") throw new Error(r.status);
    expect(r.failure).toMatchObject({ step: 2, line: 4, column: 5, text: "poke-reg t0", expected: "5", actual: "4", time: 5 });
    expect(formatFailure("x.yaml", r.failure)).toBe("x.yaml:4:5: step 2 (poke-reg t0) at t=5 ns: assertion failed: expected 5, actual 4");
  });

  it("refuses bad registrations", () => {
    expect(() => registerStep("poke-reg", z.strictObject({}), () => {})).toThrow(/registered twice/);
    expect(() => registerStep("Bad Name", z.strictObject({}), () => {})).toThrow(/lowercase/);
    expect(() => registerStep("at", z.strictObject({}), () => {})).toThrow(/common step key/);
  });

  it("helpers: int and port accept YAML numbers and hex/underscore strings", () => {
    expect(int().parse("0x1_0")).toBe(16);
    expect(int().parse("1_000")).toBe(1000);
    expect(port.safeParse(0x10000).success).toBe(false);
    expect(int().safeParse(1.5).success).toBe(false);
  });
});

describe("core steps", () => {
  it("memory read/write in sizes and bytes, masks, variables and comparisons", () => {
    const r = run(`
machine: testbox
seed: 5
steps:
  - write: 0x2000
    size: 8
    value: "0x1122334455667788"
  - read: 0x2000
    size: 8
    expect: "0x1122334455667788"
  - read: 0x2004
    size: 2
    expect: 0x3344
  - write: 0x2100
    size: 1
    value: 0xab
  - read: 0x2100
    length: 3
    expect: "ab 00 00"
    as: bytes
  - assert: bytes
    equals: "ab0000"
  - outw: [0x704, 0x1234]
  - inw: 0x704
    mask: 0xff00
    expect: 0x1200
  - inb: 0x705
    expect: 0x12
    as: hi
  - assert: hi
    gt: 0x11
    le: 0x12
    ne: 0
  - out: 0x700
    size: 1
    value: 0x7f
  - in: 0x700
    size: 4
    as: reg
  - assert: reg
    equals: 0x7f
  - until: 500
  - at: 600
    note: at runs the clock first
    step: 0
`);
    if (r.status !== "ok") throw new Error(r.status === "failed" ? JSON.stringify(r.failure) : JSON.stringify(r.issues));
    expect(r.bench.clock.now).toBe(600);
    expect(r.vars.get("bytes")).toBe("ab0000");
  });

  for (const [what, yaml, msg] of [
    ["a failed comparison", "  - inl: 0x700\n    as: v\n  - assert: v\n    gt: 1\n", /expected v > 0x1, actual 0x0/],
    ["a bytes mismatch", "  - read: 0x10\n    length: 2\n    expect: '0001'\n", /expected 0001, actual 0000/],
    ["a masked mismatch", "  - inl: 0x7f0\n    mask: 0xff\n    expect: 0\n", /expected 0x00000000, actual 0x000000ff \(under mask 0xff\)/],
    ["running the clock backwards", "  - step: 100\n  - until: 50\n", /cannot run back to 50 ns/],
    ["an at in the past", "  - step: 100\n  - at: 50\n    step: 1\n", /before the current time/],
    ["an unknown variable", "  - assert: nothing\n    equals: 1\n", /no stored value nothing/],
    ["a memory access outside guest memory", "  - read: 0x1000000\n    size: 4\n", /MemoryError: guest memory access/],
    ["an unexpected fault", "  - outb: [0x70c, 1]\n", /the device refused the access: EIO .*expect it with fault: EIO/],
    ["a fault that does not happen", "  - outl: [0x70c, 1]\n    fault: EIO\n", /expected fault EIO, actual no fault/],
    ["a read that does not fault", "  - inl: 0x700\n    fault: EIO\n", /expected fault EIO, actual no fault \(value 0x0\)/],
    ["a different errno", "  - out: 0x70c\n    size: 2\n    value: 1\n    fault: EINVAL\n", /expected fault EINVAL, actual fault EIO/],
    ["restoring a missing snapshot", "  - restore: does-not-exist.snap\n", /cannot restore does-not-exist.snap: snapshot file: cannot read .*ENOENT/],
  ] as const) {
    it(`fails on ${what}`, () => {
      const r = run(`machine: testbox\nsteps:\n${yaml}`, tmpdir());
      if (r.status !== "failed") throw new Error(`status ${r.status}`);
      expect(formatFailure("f.yaml", r.failure)).toMatch(msg);
    });
  }

  it("a malformed scenario writes nothing, not even its save steps", () => {
    const dir = mkdtempSync(join(tmpdir(), "hvsim-nowrite-"));
    try {
      const r = run(`machine: testbox\nsteps:\n  - save: a.snap\n  - inl: 0x700\n    expect: nope\n`, dir);
      expect(r.status).toBe("invalid");
      expect(existsSync(join(dir, "a.snap"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const [what, yaml, msg] of [
    ["a non-mapping scenario", "- 1\n- 2\n", /^inline\.yaml:1:1: a scenario is a mapping/],
    ["a missing machine", "steps:\n  - step: 1\n", /^inline\.yaml:1:1: scenario: missing machine/],
    ["an unknown top-level key", "machine: testbox\nstep:\n  - step: 1\nsteps: [{step: 1}]\n", /^inline\.yaml:2:1: scenario: unknown key "step"/],
    ["empty steps", "machine: testbox\nsteps: []\n", /^inline\.yaml:2:8: scenario: steps: steps must not be empty/],
    ["a step that is not a mapping", "machine: testbox\nsteps:\n  - 5\n", /^inline\.yaml:3:5: step 1: a step is a mapping/],
    ["two step types in one item", "machine: testbox\nsteps:\n  - step: 1\n    until: 2\n", /^inline\.yaml:4:5: step 1: one step per list item, found step and until/],
    ["read with both size and length", "machine: testbox\nsteps:\n  - read: 0\n    size: 4\n    length: 4\n", /^inline\.yaml:3:11: .*either size .* or length/],
    ["write with a value too big", "machine: testbox\nsteps:\n  - write: 0\n    size: 2\n    value: 0x10000\n", /^inline\.yaml:5:12: .*does not fit 2 bytes|inline\.yaml:5:12/],
    ["out with a value too big", "machine: testbox\nsteps:\n  - out: 0x80\n    size: 1\n    value: 256\n", /^inline\.yaml:5:12: .*does not fit a 1-byte write/],
    ["a bad at", "machine: testbox\nsteps:\n  - at: -5\n    step: 1\n", /^inline\.yaml:3:9: step 1 \(step\): steps\[0\]\.at: time \(ns\) -5 is outside/],
    ["a duplicate key", "machine: testbox\nmachine: testbox\nsteps: [{step: 1}]\n", /^inline\.yaml:2:1: syntax error: Map keys must be unique/],
    ["a bad device override", "machine: testbox\ndevices:\n  t0: 5\nsteps: [{step: 1}]\n", /^inline\.yaml:3:7: scenario: devices\.t0: a device override is a mapping/],
  ] as const) {
    it(`positions ${what}`, () => {
      expect(issues(yaml)[0]).toMatch(msg);
    });
  }

  it("device overrides reach the device configuration; a config the device refuses is reported at devices", () => {
    const ok = run("machine: testbox\ndevices:\n  t1: { base: 0x800 }\nsteps:\n  - outl: [0x800, 3]\n  - inl: 0x800\n    expect: 3\n");
    expect(ok.status).toBe("ok");
    const bad = run("machine: testbox\ndevices:\n  t1: { base: 0x700 }\nsteps:\n  - step: 1\n");
    expect(bad.status === "invalid" && formatIssue(bad.issues[0]!)).toMatch(/^inline\.yaml:3:3: cannot build machine testbox: port 0x700 is already claimed by t0/);
  });
});
