// The CLI at its edges, run as real processes (node sim/cli/bin.mjs): output paths that are a
// directory, under a missing folder, under a file, or where nothing can be created (as root, so
// /sys, not chmod); '-' as standard output; several outputs written all-or-nothing; stdout on a
// full disk (/dev/full) or a pipe closed early; bench --compare with a suite name; unquoted exec:
// commands; plurals. The output policy itself (sim/cli/output.ts) is also checked in process.
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { Command } from "commander";
import { UsageError } from "../../sim/cli/errors.ts";
import { checkOutputDir, checkOutputFile, writeOutputs } from "../../sim/cli/output.ts";
import { buildProgram } from "../../sim/cli/main.ts";
import { summaryText } from "../../sim/conform/report.ts";
import type { ConformReport } from "../../sim/conform/runner.ts";
import { Bench } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import { saveSnapshotFile } from "../../sim/snapshot/snapshot.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "sim/cli/bin.mjs");
const tmp = mkdtempSync(join(tmpdir(), "hvsim-outputs-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const ENV = { ...process.env, CI: "1", NO_COLOR: "1", HVSIM_DEBUG: "" };
const SCENARIO = join(ROOT, "specs/scenarios/testbox-basics.yaml");
const CONFORM_FIXTURE = join(ROOT, "specs/report/fixtures/conform.json");
const STACK = /\n\s+at .+:\d+:\d+/;

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** Runs the real CLI (or a bash line when `shell`) without blocking, so concurrent tests overlap. */
function run(args: string[], opts: { cwd?: string; stdout?: "full"; input?: string; shell?: string } = {}): Promise<Ran> {
  return new Promise((res) => {
    const full = opts.stdout === "full" ? openSync("/dev/full", "w") : undefined;
    const p = opts.shell
      ? spawn("bash", ["-c", opts.shell], { cwd: opts.cwd ?? tmp, env: { ...ENV, HVSIM_NODE: process.execPath, HVSIM_BIN: BIN } })
      : spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? tmp, env: ENV, stdio: ["pipe", full ?? "pipe", "pipe"] });
    if (full !== undefined) closeSync(full);
    let out = "", err = "";
    p.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    p.stdin?.end(opts.input ?? "");
    p.on("close", (code) => res({ code, out, err }));
  });
}

const fresh = (name: string) => mkdtempSync(join(tmp, `${name}-`));

/** Exit 2, exactly one line on stderr, nothing on stdout (no work ran). */
function expectRefused(r: Ran, pattern: RegExp): void {
  expect(r.err, r.err).toMatch(/^hvsim: [^\n]+\n$/);
  expect(r.err).toMatch(pattern);
  expect(r.err).not.toMatch(/internal error/);
  expect(r.code).toBe(2);
  expect(r.out).toBe("");
}

/** The commands with a file output, as argv builders; `dir` is the process's cwd. */
const FILE_OUTPUTS: Record<string, (x: string, dir: string) => string[]> = {
  "conform --json": (x) => ["conform", "--target", "model", "--json", x],
  "conform --junit": (x) => ["conform", "--target", "model", "--junit", x],
  "bench --json": (x) => ["bench", "scheduler-10", "--max-time", "0.01", "--json", x],
  "fuzz --json": (x) => ["fuzz", "hv_kvp_msg", "--runs", "10", "--json", x],
  "run --trace": (x) => ["run", SCENARIO, "--trace", x],
  "report --out": (x) => ["report", "--out", x, "--conform", CONFORM_FIXTURE],
  "save: step": (x, dir) => {
    const f = join(dir, "save.yaml");
    writeFileSync(f, `machine: testbox\nseed: 1\nsteps:\n  - step: 10\n  - save: ${JSON.stringify(x)}\n`);
    return ["run", f];
  },
};

describe.concurrent("output paths are checked before any work (exit 2, one line)", () => {
  for (const [what, argv] of Object.entries(FILE_OUTPUTS)) {
    it(`${what} <existing directory>`, async () => {
      const dir = fresh("isdir");
      mkdirSync(join(dir, "out"));
      const r = await run(argv(join(dir, "out"), dir), { cwd: dir });
      expectRefused(r, /is a directory/);
      expect(readdirSync(dir).sort(), "nothing written, no *.partial or temporary left").toEqual(["out", ...(what === "save: step" ? ["save.yaml"] : [])].sort());
      expect(readdirSync(join(dir, "out"))).toEqual([]);
    }, 60_000);
    it(`${what} <missing folder>/x: not created`, async () => {
      const dir = fresh("missing");
      const r = await run(argv(join(dir, "nonexistent", "x.out"), dir), { cwd: dir });
      expectRefused(r, /no such directory .*nonexistent \(hvsim does not create it\)/);
      expect(existsSync(join(dir, "nonexistent"))).toBe(false);
      expect(existsSync(join(dir, "reports")), "not even the default folder: nothing ran").toBe(false);
    }, 60_000);
  }
  it("fuzz --corpus <a file>, <missing folder>/x, and /sys/x (EACCES even for root)", async () => {
    const dir = fresh("corpus");
    writeFileSync(join(dir, "file"), "x");
    expectRefused(await run(["fuzz", "hv_kvp_msg", "--runs", "10", "--corpus", join(dir, "file")]), /--corpus .*file: exists and is not a directory/);
    expectRefused(await run(["fuzz", "hv_kvp_msg", "--runs", "10", "--corpus", join(dir, "no", "x")]), /--corpus .*: no such directory/);
    expectRefused(await run(["fuzz", "hv_kvp_msg", "--runs", "10", "--corpus", "/sys/hvsim-corpus"]), /cannot create files in \/sys: EACCES \(permission denied\)/);
    expect(readdirSync(dir)).toEqual(["file"]);
  }, 60_000);
  it("unwritable places: /sys (EACCES as root), /proc, a file as parent (/etc/hostname/x)", async () => {
    expectRefused(await run(FILE_OUTPUTS["conform --json"]!("/sys/hvsim.json", tmp)), /^hvsim: --json \/sys\/hvsim.json: cannot create files in \/sys: EACCES \(permission denied\)\n$/);
    expectRefused(await run(FILE_OUTPUTS["report --out"]!("/proc/hvsim.html", tmp)), /--out \/proc\/hvsim.html: cannot create files in \/proc: ENOENT/);
    expectRefused(await run(FILE_OUTPUTS["run --trace"]!("/etc/hostname/x.jsonl", tmp)), /--trace \/etc\/hostname\/x.jsonl: \/etc\/hostname is not a directory/);
    const dir = fresh("save-sys");
    expectRefused(await run(FILE_OUTPUTS["save: step"]!("/sys/x.snap", dir)), /save.yaml:5: save: \/sys\/x.snap: cannot create files in \/sys: EACCES/);
  }, 60_000);
  it("report's inputs are checked before it runs anything; fuzz --replay of a directory", async () => {
    const o = join(fresh("report-in"), "r.html");
    expectRefused(await run(["report", "--out", o, "--conform", tmp]), /^hvsim: cannot read conformance report .*: EISDIR \(is a directory\)\n$/);
    expectRefused(await run(["report", "--out", o, "--bench", join(tmp, "none.json")]), /cannot read benchmark results .*none.json: ENOENT/);
    expectRefused(await run(["report", "--out", o, "--fuzz", "/etc/hostname"]), /--fuzz \/etc\/hostname: not a directory/);
    expectRefused(await run(["fuzz", "--replay", tmp, "hv_kvp_msg"]), /--replay .*: not a file/);
    expect(existsSync(o)).toBe(false);
  }, 60_000);
  it("run --snapshot-dir must be an existing directory", async () => {
    expectRefused(await run(["run", SCENARIO, "--snapshot-dir", join(tmp, "nope")]), /--snapshot-dir .*nope: no such directory/);
  }, 60_000);
  it("two outputs on '-' are refused", async () => {
    expectRefused(await run(["conform", "--target", "model", "--json", "-", "--junit", "-"]), /--json and --junit cannot both be '-'/);
  }, 60_000);
});

describe.concurrent("writing", () => {
  it("conform writes both reports or neither: --junit on a full disk leaves no --json and no temporary", async () => {
    const dir = fresh("half");
    const r = await run(["conform", "--target", "model", "--suite", "pmtimer", "--json", join(dir, "c.json"), "--junit", "/dev/full"]);
    expect(r.err).toBe("hvsim: cannot write --junit /dev/full: ENOSPC (no space left on device)\n");
    expect(r.code).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);
  it("a successful run replaces existing files whole and leaves only them", async () => {
    const dir = fresh("atomic");
    writeFileSync(join(dir, "c.json"), "old ".repeat(100_000));
    const r = await run(["conform", "--target", "model", "--suite", "pmtimer", "--json", join(dir, "c.json"), "--junit", join(dir, "c.xml")]);
    expect(r.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["c.json", "c.xml"]);
    expect((JSON.parse(readFileSync(join(dir, "c.json"), "utf8")) as ConformReport).targets[0]!.target).toBe("model");
    expect(readFileSync(join(dir, "c.xml"), "utf8")).toMatch(/^<\?xml/);
  }, 60_000);
  it("'-' is standard output (readable text moves to stderr) and no file named '-' appears", async () => {
    const dir = fresh("dash");
    const [c, t, f, rep, b] = await Promise.all([
      run(["conform", "--target", "model", "--suite", "pmtimer", "--json", "-", "--junit", "j.xml"], { cwd: dir }),
      run(["run", SCENARIO, "--trace", "-"], { cwd: dir }),
      run(["fuzz", "hv_kvp_msg", "--runs", "20", "--json", "-"], { cwd: dir }),
      run(["report", "--out", "-", "--conform", CONFORM_FIXTURE], { cwd: dir }),
      run(["bench", "scheduler-10", "--max-time", "0.01", "--json", "-"], { cwd: dir }),
    ]);
    expect(c.code).toBe(0);
    expect((JSON.parse(c.out) as ConformReport).targets.map((x) => x.target)).toEqual(["model"]);
    expect(c.err).toMatch(/^model: \d+ passed/);
    expect(t.code).toBe(0);
    const lines = t.out.trim().split("\n");
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(() => JSON.parse(l) as unknown).not.toThrow();
    expect(t.err).toMatch(/trace hash: [0-9a-f]{64}/);
    expect(f.code).toBe(0);
    expect((JSON.parse(f.out) as { execs: number }).execs).toBe(20);
    expect(rep.code).toBe(0);
    expect(rep.out).toMatch(/^<!doctype html>/i);
    expect(b.code).toBe(0);
    expect((JSON.parse(b.out) as { suites: unknown[] }).suites.length).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(["j.xml"]);
  }, 120_000);
  it("only the default folder reports/ is created: for the default paths and for an output directly in it", async () => {
    const dir = fresh("reports");
    const r = await run(["conform", "--target", "model", "--suite", "pmtimer"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(readdirSync(join(dir, "reports")).sort()).toEqual(["conform.json", "conform.junit.xml"]);
    const dir2 = fresh("reports2");
    const f = await run(["fuzz", "hv_kvp_msg", "--runs", "5", "--json", "reports/f.json"], { cwd: dir2 });
    expect(f.code).toBe(0);
    expect(readdirSync(join(dir2, "reports"))).toEqual(["f.json"]);
  }, 60_000);
  it("saveSnapshotFile into a directory throws and leaves no *.partial", () => {
    const dir = fresh("partial");
    mkdirSync(join(dir, "snap"));
    expect(() => saveSnapshotFile(new Bench(MACHINES.q35!, defaultKinds(), { seed: 1 }), join(dir, "snap"))).toThrow();
    expect(readdirSync(dir)).toEqual(["snap"]);
  });
});

describe.concurrent("standard output that cannot be written", () => {
  const FULL = "hvsim: cannot write to standard output: ENOSPC (no space left on device)\n";
  const cases: [string, string[], string?][] = [
    ["layout", ["layout"]],
    ["--help", ["--help"]],
    ["conform --list", ["conform", "--list"]],
    ["fuzz --list", ["fuzz", "--list"]],
    ["run", ["run", SCENARIO]],
    ["snapshot inspect", ["snapshot", "inspect", join(ROOT, "specs/snapshot/fixtures", "")]],
    ["qtest", ["qtest"], "inl 0x608\n"],
    ["report --out -", ["report", "--out", "-", "--conform", CONFORM_FIXTURE]],
  ];
  for (const [name, args, input] of cases) {
    it(`${name} > /dev/full: one line, exit 1`, async () => {
      let argv = args;
      if (name === "snapshot inspect") {
        const snap = join(fresh("snap"), "s.bin");
        saveSnapshotFile(new Bench(MACHINES.q35!, defaultKinds(), { seed: 1 }), snap);
        argv = ["snapshot", "inspect", snap];
      }
      const r = await run(argv, { stdout: "full", ...(input ? { input } : {}) });
      expect(r.err).toBe(FULL);
      expect(r.err).not.toMatch(STACK);
      expect(r.code).toBe(1);
    }, 60_000);
  }
  it("a reader that closes early (| head -1) ends hvsim quietly with status 0", async () => {
    const names = Array.from({ length: 60 }, () => "hv_kvp_msg").join(" ");
    const r = await run([], { shell: `"$HVSIM_NODE" "$HVSIM_BIN" layout ${names} | head -1; echo "status=\${PIPESTATUS[0]}"` });
    expect(r.out).toBe("struct hv_kvp_msg: size 7432, align 1, packed  (linux include/uapi/linux/hyperv.h)\nstatus=0\n");
    expect(r.err).toBe("");
    const q = await run([], { shell: `yes 'inl 0x608' | head -50000 | "$HVSIM_NODE" "$HVSIM_BIN" qtest | head -1; echo "status=\${PIPESTATUS[2]}"` });
    expect(q.out).toMatch(/^OK 0x[0-9a-f]+\nstatus=0\n$/);
    expect(q.err).toBe("");
  }, 60_000);
});

describe.concurrent("options mean one thing", () => {
  it("bench --compare SUITE: a suite name is never taken as a baseline path", async () => {
    const r = await run(["bench", "--compare", "nosuchsuite"]);
    expect(r.err).toMatch(/^hvsim: no benchmark suite matches nosuchsuite\n/);
    expect(r.err).not.toMatch(/baseline/);
    expect(r.code).toBe(2);
    const m = await run(["bench", "--compare", join(tmp, "missing.json"), "scheduler-10"]);
    expect(m.err).toMatch(/no baseline at .*missing.json/);
    expect(m.code).toBe(2);
    const two = await run(["bench", "--compare", "a.json", "--baseline", "b.json"]);
    expect(two.err).toMatch(/--compare a.json and --baseline b.json name two different baselines/);
    expect(two.code).toBe(2);
  }, 60_000);
  it("fuzz exec: unquoted (exec:CMD @@) is one command; plurals say 1 input, 1 exec, 1 finding, 1 step", async () => {
    const r = await run(["fuzz", "exec:/bin/cat", "@@", "--runs", "3"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^fuzz exec:\/bin\/cat @@: seed 1, shard 0\/1, 3 inputs\n3 execs in .* 0 findings\n$/);
    const one = await run(["fuzz", "exec:sh -c 'kill -SEGV $$'", "--runs", "1"]);
    expect(one.code).toBe(1);
    expect(one.out).toMatch(/, 1 input\n/);
    expect(one.out).toMatch(/\n1 exec in .*, 1 finding\n$/);
    const f = join(fresh("one-step"), "one.yaml");
    writeFileSync(f, "machine: testbox\nseed: 1\nsteps:\n  - step: 10\n");
    const step = await run(["run", f]);
    expect(step.code).toBe(0);
    expect(step.out).toMatch(/, 1 step\n/);
    expect(step.out).toMatch(/\nok: 1 step passed \(t=10 ns, \d+ trace records?\)\n$/);
    const two = await run(["fuzz", "hv_kvp_msg", "extra"]);
    expect(two.err).toMatch(/one target only/);
    expect(two.code).toBe(2);
  }, 60_000);
  it("conform explains 'deviation' once and says no 'this script'", async () => {
    const r = await run(["conform", "--target", "model", "--json", join(fresh("dev"), "c.json"), "--junit", join(tmp, "dev.xml")]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/model: \d+ passed, 0 failed, \d+ skipped, 0 not applicable, \d+ deviations\n/);
    expect(r.out.match(/\(a deviation is /g)).toHaveLength(1);
    expect(r.out).not.toMatch(/this script/);
  }, 60_000);
});

describe("output policy (in process)", () => {
  it("checkOutputFile: '-', special files, default folder, and the refusals", () => {
    const dir = fresh("policy");
    expect(checkOutputFile("-", "--json").kind).toBe("stdout");
    expect(() => checkOutputFile("-", "save:", { allowStdout: false })).toThrow(UsageError);
    expect(checkOutputFile("/dev/null", "--json").kind).toBe("special");
    expect(checkOutputFile(join(dir, "a.json"), "--json").kind).toBe("file");
    expect(() => checkOutputFile(dir, "--json")).toThrow(/is a directory/);
    expect(() => checkOutputFile(join(dir, "m", "a.json"), "--json")).toThrow(/no such directory/);
    expect(() => checkOutputFile("", "--json")).toThrow(/empty file name/);
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(checkOutputFile("reports/x.json", "--json").createParent).toBe(join(dir, "reports"));
      expect(existsSync(join(dir, "reports")), "checking creates nothing").toBe(false);
      expect(() => checkOutputFile("reports/sub/x.json", "--json")).toThrow(/no such directory/);
    } finally {
      process.chdir(cwd);
    }
    expect(() => checkOutputDir("-", "--corpus")).toThrow(UsageError);
    expect(readdirSync(dir)).toEqual([]);
  });
  it("writeOutputs renames nothing when one output fails", () => {
    const dir = fresh("all-or-none");
    const a = checkOutputFile(join(dir, "a.txt"), "--a");
    const full = checkOutputFile("/dev/full", "--b");
    expect(() => writeOutputs([{ out: a, data: "aaa" }, { out: full, data: "bbb" }])).toThrow(/cannot write --b \/dev\/full: ENOSPC/);
    expect(readdirSync(dir)).toEqual([]);
    writeOutputs([{ out: a, data: "aaa" }]);
    expect(readFileSync(join(dir, "a.txt"), "utf8")).toBe("aaa");
    expect(readdirSync(dir)).toEqual(["a.txt"]);
  });
  it("summaryText: 1 deviation, not 1 deviations", () => {
    const report = { seed: 1, targets: [{ target: "t", results: [{ id: "x/y", suite: "x", title: "y", outcome: { status: "passed", deviations: ["d"] } }] }] } as unknown as ConformReport;
    const s = summaryText(report);
    expect(s).toMatch(/^t: 1 passed, 0 failed, 0 skipped, 0 not applicable, 1 deviation\n/);
    expect(s).toMatch(/\(a deviation is /);
  });
});

describe("README's Commands section agrees with --help", () => {
  it("names every command and every long option", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Commands"), readme.indexOf("\n## ", readme.indexOf("## Commands") + 3));
    const program = await buildProgram(() => {}, () => {});
    const missing: string[] = [];
    const walk = (c: Command, path: string) => {
      for (const sub of c.commands) {
        const p = `${path} ${sub.name()}`.trim();
        if (!sub.commands.length && !section.includes(`hvsim ${p}`)) missing.push(`command ${p}`);
        for (const o of sub.options) if (o.long && o.long !== "--help" && !section.includes(o.long)) missing.push(`${p} ${o.long}`);
        walk(sub, p);
      }
    };
    walk(program, "");
    expect(missing).toEqual([]);
  });
});
