// Issue 16/12 edges of scenario input, through the real CLI (`hvsim run` as a child process): each
// was an internal error (exit 1), accepted, or misreported before; each is now exit 2 with one
// file:line:column line per problem and nothing run or written. Also `run -` (standard input)
// and where relative snapshot names land.
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "sim", "cli", "bin.mjs");
const invalid = join(root, "specs", "scenarios", "invalid");

function hvsim(args: string[], opts: { cwd?: string; input?: string } = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: opts.cwd ?? root, input: opts.input, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", HVSIM_DEBUG: "" } });
  expect(r.stdout + r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+\)?\n/); // no stack traces
  expect(r.stderr).not.toMatch(/internal error/);
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Problem lines of a refused run, with the file's path shortened to its name. */
function problems(file: string, trace?: string): string[] {
  const path = join(invalid, file);
  const r = hvsim(["run", path, ...(trace ? ["--trace", trace] : [])]);
  expect(r.code).toBe(2);
  expect(r.out).toBe("");
  const lines = r.err.trim().split("\n");
  expect(lines.at(-1)).toMatch(/malformed scenario.*nothing was run$/);
  return lines.slice(0, -1).map((l) => l.replace(path, file));
}

describe("hvsim run: malformed scenario input exits 2 with file:line:column", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "hvsim-edges-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("YAML aliases: a bomb, an alias before its anchor, an alias without one", () => {
    expect(problems("alias-bomb.yaml")).toEqual(["alias-bomb.yaml:4:8: syntax error: the aliases expand to more than 100 aliased nodes (an alias bomb?); write the values out"]);
    expect(problems("alias-before-anchor.yaml")).toEqual(["alias-before-anchor.yaml:4:11: syntax error: alias *t: its anchor &t comes after it (an anchor must be set before its alias)"]);
    expect(problems("alias-no-anchor.yaml")).toEqual(["alias-no-anchor.yaml:4:11: syntax error: alias *nope: there is no anchor &nope"]);
  }, 120_000);

  it("times past 2^53 - 1 ns name the limit and quote the number as written", () => {
    const limit = "is past the virtual clock's limit of 2^53 - 1 ns (9007199254740991 ns, about 104 days)";
    expect(problems("time-range.yaml")).toEqual([
      `time-range.yaml:4:12: step 1 (until): steps[0].until: time (ns) 1e30 ${limit}`,
      `time-range.yaml:5:11: step 2 (step): steps[1].step: time (ns) 9007199254740993 ${limit}`,
    ]);
  }, 60_000);

  it("KVP u64 values: 2^64, -1 and text are refused at load", () => {
    expect(problems("kvp-u64-range.yaml")).toEqual([
      "kvp-u64-range.yaml:7:19: step 1 (kvp): steps[0].value.u64: expected an unsigned 64-bit value, got 18446744073709551616",
      "kvp-u64-range.yaml:11:19: step 2 (kvp): steps[1].value.u64: expected an unsigned 64-bit value, got -1",
      'kvp-u64-range.yaml:15:19: step 3 (kvp): steps[2].value.u64: expected an unsigned 64-bit value, got "abc"',
    ]);
  }, 60_000);

  it("vmm: a register value of 2^80 and an unknown ioctl name are refused at load", () => {
    // struct vm_register { int cpuid; int regnum; uint64_t regval; } (freebsd-src sys/amd64/include/vmm_dev.h)
    expect(problems("vmm-values.yaml")).toEqual([
      "vmm-values.yaml:14:32: step 3 (vmm): steps[2].args.regval: regval 1208925819614629174706176 does not fit the 8-byte member vm_register.regval",
      "vmm-values.yaml:17:10: step 4 (vmm): steps[3].cmd: unknown vmm ioctl VM_NO_SUCH_IOCTL",
    ]);
  }, 60_000);

  it("a device override that cannot be built writes no trace file", () => {
    const trace = join(dir, "never.jsonl");
    expect(problems("device-unbuildable.yaml", trace)).toEqual(["device-unbuildable.yaml:4:3: cannot build machine testbox: port must be in 0..0xffff, got 99999999"]);
    expect(existsSync(trace)).toBe(false);
  }, 60_000);

  it("run - reads the scenario from standard input", () => {
    const file = join(root, "specs", "scenarios", "testbox-basics.yaml");
    const a = hvsim(["run", "-q", file]);
    const b = hvsim(["run", "-q", "-"], { input: readFileSync(file, "utf8") });
    expect(a.code).toBe(0);
    expect(b).toEqual(a);
    const bad = hvsim(["run", "-"], { input: "machine: testbox\nsteps:\n  - step: x\n" });
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('-:3:11: step 1 (step): steps[0].step: time (ns) must be a whole number (decimal or 0x hex), got "x"');
  }, 60_000);

  it("relative save/restore names resolve against the scenario's folder, not the current directory", () => {
    const scnDir = join(dir, "scn");
    const cwd = join(dir, "cwd");
    mkdirSync(scnDir);
    mkdirSync(cwd);
    copyFileSync(join(root, "specs", "scenarios", "testbox-save-restore.yaml"), join(scnDir, "s.yaml"));
    expect(hvsim(["run", "-q", join(scnDir, "s.yaml")], { cwd }).code).toBe(0);
    expect(readdirSync(cwd)).toEqual([]);
    expect(readdirSync(scnDir).sort()).toEqual(["s.yaml", "testbox-save-restore.snap"]);
  }, 60_000);
});
