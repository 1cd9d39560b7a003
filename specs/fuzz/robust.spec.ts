// `hvsim fuzz` edges (issue 16), each through the real CLI: an in-process input that never returns
// is a hang finding with its seed and the campaign goes on; a parser that throws anything (null
// included) is a finding, never a crash of the campaign; a --like finding replays (the sidecar
// records the generator parameters); a relative exec: program replays from another directory;
// exec: without a command or with a missing program is a usage error (exit 2); progress goes to
// stderr, results to stdout.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inputFor } from "../../sim/fuzz/engine.ts";
import { findInProcessTarget } from "../../sim/fuzz/all.ts";
import "./fixtures/hang-target.ts";

const root = new URL("../..", import.meta.url).pathname;
const plugin = join(root, "specs/fuzz/fixtures/hang-target.ts");

function hvsim(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  return spawnSync(process.execPath, [join(root, "sim/cli/bin.mjs"), ...args], {
    cwd: opts.cwd ?? root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", HVSIM_FUZZ_TARGETS: plugin, ...opts.env },
  });
}

const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at .*:\d+:\d+/);

describe("hvsim fuzz: a per-input time limit for in-process targets", () => {
  it("an input that never returns is a hang finding with its seed and run; the campaign goes on", () => {
    // Which runs of seed 1 hang, from the deterministic generator (first byte 0x07 loops forever).
    const t = findInProcessTarget("test-hang")!;
    const RUNS = 2100;
    const hangs = Array.from({ length: RUNS }, (_, r) => r).filter((r) => inputFor(t, 1, r).bytes[0] === 7);
    expect(hangs.length).toBeGreaterThan(0);
    const dir = mkdtempSync(join(tmpdir(), "hvsim-hang-"));
    const json = join(dir, "summary.json");
    const r = hvsim(["fuzz", "test-hang", "--runs", String(RUNS), "--seed", "1", "--timeout", "300", "--json", json, "--corpus", dir, "--export", "0"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`finding: hang: no answer within 300 ms (run ${hangs[0]}, seed 1,`);
    const summary = JSON.parse(readFileSync(json, "utf8"));
    // Every input ran: the hung ones were abandoned, the worker restarted after each.
    expect(summary.execs).toBe(RUNS);
    expect(summary.workerRestarts).toBe(hangs.length);
    expect(summary.findings).toEqual([{ kind: "hang", message: "no answer within 300 ms", seed: 1, run: hangs[0], bytes: inputFor(t, 1, hangs[0]!).bytes.length }]);
    // The saved input is the hanging one, and its sidecar replays it (still a hang).
    const sub = join(dir, "test-hang");
    const bin = readdirSync(sub).find((f) => f.startsWith("hang-") && f.endsWith(".bin") && !f.endsWith(".orig.bin"))!;
    expect([...readFileSync(join(sub, bin))]).toEqual([...inputFor(t, 1, hangs[0]!).bytes]);
    const again = hvsim(["fuzz", "--replay", join(sub, bin), "--timeout", "300"]);
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/regenerates the original input: yes/);
    expect(again.stdout).toMatch(/still fails: hang: no answer within 300 ms/);
  }, 120_000);

  it("a parser that throws null, or a target that throws, is a crash finding, not a crash of the campaign", () => {
    const r = hvsim(["fuzz", "test-throw-null", "--runs", "500"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/finding: crash: parser threw: non-error thrown: null/);
    expect(r.stdout).toMatch(/500 execs in .* 1 finding\n/);
    const t = hvsim(["fuzz", "test-target-throws", "--runs", "500"]);
    expect(t.status).toBe(1);
    expect(t.stdout).toMatch(/finding: crash: target threw: non-error thrown: undefined/);
    expect(r.stdout).toMatch(/500 execs in .* 1 finding\n/);
    noStack(r.stderr);
  }, 60_000);

  it("the scenario target runs to its summary: loader exceptions are findings, the harness never throws", () => {
    const r = hvsim(["fuzz", "scenario", "--runs", "3000", "--seed", "1"]);
    expect([0, 1]).toContain(r.status);
    expect(r.stdout).toMatch(/3000 execs in .* findings?\n$/);
    for (const line of r.stdout.split("\n").filter((l) => l.startsWith("finding:"))) expect(line).toMatch(/^finding: (crash|invariant): /);
    noStack(r.stderr);
  }, 60_000);
});

describe("hvsim fuzz: exec: targets and replay", () => {
  const crasher = (dir: string) => {
    // Crashes (SIGSEGV) on inputs longer than 20 bytes.
    const p = join(dir, "parser.sh");
    writeFileSync(p, '#!/bin/sh\n[ $(wc -c < "$1") -gt 20 ] && kill -SEGV $$\nexit 0\n');
    chmodSync(p, 0o755);
    return p;
  };

  it("a --like finding replays from its sidecar alone, and a relative program from another directory", () => {
    const work = mkdtempSync(join(tmpdir(), "hvsim-like-"));
    crasher(work);
    const out = join(work, "out");
    const r = hvsim(["fuzz", "exec:./parser.sh @@", "--like", "hv_vss_msg", "--runs", "60", "--seed", "3", "--corpus", out, "--export", "0"], { cwd: work });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/finding: signal: killed by SIGSEGV/);
    const sub = join(out, readdirSync(out)[0]!);
    const bin = readdirSync(sub).find((f) => f.endsWith(".bin") && !f.endsWith(".orig.bin"))!;
    const meta = JSON.parse(readFileSync(join(sub, bin.replace(/\.bin$/, ".json")), "utf8"));
    expect(meta.generator).toMatchObject({ seed: 3, like: "hv_vss_msg" });
    expect(meta.target).toBe(`exec:${join(work, "parser.sh")} @@`);
    // Replayed from the repository root, without --like.
    const again = hvsim(["fuzz", "--replay", join(sub, bin)]);
    expect(again.stderr).toBe("");
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/regenerates the original input: yes/);
    expect(again.stdout).toMatch(/still fails: signal/);
  }, 60_000);

  it("exec: without a command, or with a program that is not there, is a usage error (exit 2)", () => {
    for (const [target, msg] of [
      ["exec:", /exec: needs a command/],
      ["exec:   ", /exec: needs a command/],
      ["exec:./no-such-parser @@", /exec: program not found or not executable: \.\/no-such-parser \(relative to /],
      ["exec:no-such-parser-on-path", /exec: program not found or not executable: no-such-parser-on-path \(not on PATH\)/],
      ["exec:sh -c 'unterminated", /exec: unterminated quote/],
    ] as const) {
      const r = hvsim(["fuzz", target, "--runs", "5"]);
      expect(r.status, target).toBe(2);
      expect(r.stderr, target).toMatch(msg);
      expect(r.stderr.split("\n")[0], target).toMatch(msg);
      noStack(r.stderr);
      expect(r.stdout, target).not.toMatch(/finding/);
    }
  }, 60_000);
});

describe("hvsim fuzz: progress", () => {
  it("without a TTY, heartbeat lines go to stderr and stdout has only the header, findings and summary", () => {
    const r = hvsim(["fuzz", "hv_vss_msg", "--runs", "200000"], { env: { HVSIM_HEARTBEAT_MS: "1" } });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^progress: \d+ execs, \d+ execs\/s, 0 findings$/m);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^fuzz hv_vss_msg: seed 1/);
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^200000 execs in .* 0 findings$/)]);
  }, 60_000);
});
