// Readable and JSONL trace lines, and the run/inspect commands in-process (the CLI spec runs them
// as processes).
import { describe, expect, it, vi, afterEach } from "vitest";
import { Command } from "commander";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatRecord, formatTime, jsonlRecord } from "../../sim/scenario/index.ts";
import { register as registerRun } from "../../sim/cli/commands/run.ts";
import { register as registerSnapshot } from "../../sim/cli/commands/snapshot.ts";
import { Failure, UsageError } from "../../sim/cli/errors.ts";

describe("trace record formatting", () => {
  it("formats times, port I/O, faults, memory, events and other records", () => {
    expect(formatTime(1_000_000_279)).toBe("   1.000000279 s");
    expect(formatRecord({ at: 5, type: "io", fields: ["in", 0x608, 4, 0x369e99, "pmtimer"] })).toBe("   0.000000005 s  io     in  port=0x0608 size=4 -> 0x00369e99 [pmtimer]");
    expect(formatRecord({ at: 0, type: "io", fields: ["out", 0x80, 1, 7, null] })).toBe("   0.000000000 s  io     out port=0x0080 size=1 <- 0x07 (unclaimed)");
    expect(formatRecord({ at: 0, type: "io-fault", fields: ["in", 0x408, 2, "EIO", "pmtimer"] })).toBe("   0.000000000 s  io-fault in  port=0x0408 size=2 fault EIO [pmtimer]");
    expect(formatRecord({ at: 0, type: "mem", fields: ["write", 0x10, Uint8Array.from([1, 2])] })).toBe("   0.000000000 s  mem    write addr=0x10 bytes=0102");
    expect(formatRecord({ at: 0, type: "mem", fields: ["read", 0x10, 8, 5n] })).toBe("   0.000000000 s  mem    read  addr=0x10 size=8 value={\"$big\":\"5\"}");
    expect(formatRecord({ at: 0, type: "event", fields: ["t0", "tick", 3, { n: 1 }] })).toBe("   0.000000000 s  event  t0/tick seq=3 {\"n\":1}");
    expect(formatRecord({ at: 0, type: "irq", fields: ["raise", 9, "has space"] })).toBe("   0.000000000 s  irq    raise 9 \"has space\"");
    expect(jsonlRecord({ at: 1, type: "x", fields: [2n, Uint8Array.from([255])] })).toBe('{"at":1,"type":"x","fields":[{"$big":"2"},{"$hex":"ff"}]}');
  });
});

describe("run and snapshot commands in-process", () => {
  const out: string[] = [];
  const err: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    out.length = 0;
    err.length = 0;
  });
  async function cli(args: string[]): Promise<number> {
    vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, "write").mockImplementation((s) => (err.push(String(s)), true));
    const p = new Command("hvsim").exitOverride();
    registerRun(p);
    registerSnapshot(p);
    try {
      await p.parseAsync(args, { from: "user" });
      return 0;
    } catch (e) {
      if (e instanceof Failure) return e.exitCode;
      if (e instanceof UsageError) return 2;
      throw e;
    } finally {
      vi.restoreAllMocks();
    }
  }
  const scn = join(import.meta.dirname, "..", "scenarios");

  it("run prints the trace, notes and hash; inspect lists and verifies chunks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hvsim-inproc-"));
    try {
      expect(await cli(["run", join(scn, "testbox-save-restore.yaml"), "--snapshot-dir", dir, "--trace", join(dir, "t.jsonl")])).toBe(0);
      const text = out.join("");
      expect(text).toMatch(/^# testbox save\/restore: machine testbox, seed 42, 18 steps$/m);
      expect(text).toMatch(/^# step 5 \(line 12\): saved testbox-save-restore.snap \(\d+ bytes, t=5500 ns\)$/m);
      expect(text).toMatch(/^# step 10 \(line 21\): restored testbox-save-restore.snap \(t=5500 ns, 1 pages\)$/m);
      expect(text).toMatch(/^ok: 18 steps passed/m);
      expect(readFileSync(join(dir, "t.jsonl"), "utf8").split("\n").length).toBeGreaterThan(10);
      out.length = 0;
      expect(await cli(["snapshot", "inspect", join(dir, "testbox-save-restore.snap")])).toBe(0);
      expect(out.join("")).toMatch(/ok: header, manifest and 6 chunks verified/);
      out.length = 0;
      expect(await cli(["snapshot", "inspect", "--json", join(dir, "testbox-save-restore.snap")])).toBe(0);
      expect(JSON.parse(out.join("")).ok).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exit codes: 1 for a failed assertion or corrupt snapshot, 2 for a malformed scenario or bad seed", async () => {
    expect(await cli(["run", "-q", join(scn, "failing", "wrong-expect.yaml")])).toBe(1);
    expect(await cli(["run", join(scn, "invalid", "unknown-key.yaml")])).toBe(2);
    expect(err.join("")).toMatch(/unknown-key\.yaml:6:5: step 1 \(inl\): unknown key "expct"/);
    expect(await cli(["run", "--seed", "-1", join(scn, "testbox-basics.yaml")])).toBe(2);
    expect(await cli(["run", "--seed", "0x10", "-q", join(scn, "testbox-basics.yaml")])).toBe(0);
    expect(await cli(["snapshot", "inspect", join(scn, "testbox-basics.yaml")])).toBe(1);
    expect(err.join("")).toMatch(/bad magic/);
    expect(await cli(["snapshot", "inspect", join(scn, "nonexistent.snap")])).toBe(1);
  });

  it("a scenario whose bench cannot be built is malformed (exit 2) at its devices line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hvsim-inproc-"));
    try {
      const f = join(dir, "clash.yaml");
      const { writeFileSync } = await import("node:fs");
      writeFileSync(f, "machine: testbox\ndevices:\n  t1: { base: 0x700 }\nsteps:\n  - step: 1\n");
      expect(await cli(["run", f])).toBe(2);
      expect(err.join("")).toMatch(/clash\.yaml:3:3: cannot build machine testbox: port 0x700 is already claimed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
