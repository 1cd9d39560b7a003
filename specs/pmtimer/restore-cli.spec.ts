// The PM timer scenarios of issues 12 and 16 through the real CLI (`hvsim run` as a process). The
// expected counter values are in the scenario files, each derived there from the upstream
// formula it names (ACPI rate floor(ns * 3579545 / 1e9); vpmtmr.c with FreeBSD main's nstosbt).
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "sim", "cli", "bin.mjs");
const scenarios = join(import.meta.dirname, "scenarios");

describe("hvsim run: PM timer restore and bhyve port I/O scenarios", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "hvsim-pm-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (file: string) => {
    const r = spawnSync(process.execPath, [bin, "run", "-q", "--snapshot-dir", dir, join(scenarios, file)], { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", HVSIM_DEBUG: "" } });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it("acpi: until 1, save, restore, until 280 reads 1, as the uninterrupted run does (issue 16)", () => {
    const r = run("acpi-restore-same-instant.yaml");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok: 7 steps passed/m);
  });

  it("bhyve-upstream restore: (nstosbt(now) - nstosbt(base)) / 1199 reads 0 at 280 ns and 1 at 281 ns (issue 12)", () => {
    const r = run("bhyve-restore-two-conversions.yaml");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
  });

  it("bhyve with the device override strictIo: true: an unhandled inb exits the VM, the check fails with exit 1", () => {
    const r = run("bhyve-strict-io.yaml");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/step 2 \(inb 0x409\).*VMEXIT_ABORT.*Unhandled inb 0x0409/);
    expect(r.err).not.toMatch(/\n\s+at .*:\d+:\d+\)?\n/);
  });
});
