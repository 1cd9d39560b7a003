// The walk-through in docs/own-target.md, run: the guide's C PM timer (docs/own-target/mytimer.c)
// is built with the system `cc` and checked with `hvsim conform --target qtest:./mytimer --machine
// acpi --suite pmtimer` from the directory it was built in, as a user would. The right build passes
// every check that applies; the deliberately wrong builds (-DOFF_BY_ONE, -DWRONG_WRAP, and -DTMR_24
// on the 32-bit machine) exit 1 and the output names the failing step, its command, the expected
// and the actual reply. The wrong replies expected below are worked out from each bug's formula,
// not taken from the program. Every failure line the guide quotes must appear in a real run.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const SOURCE = join(ROOT, "docs/own-target/mytimer.c");
const BIN = join(ROOT, "sim/cli/bin.mjs");
const F = 3_579_545n;
const NS = 1_000_000_000n;
const hex = (v: bigint) => `OK 0x${v.toString(16).padStart(4, "0")}`;

let dir = "";
const outputs: string[] = [];

function build(name: string, defines: string[]): void {
  execFileSync("cc", ["-O2", "-Wall", "-Werror", ...defines.map((d) => `-D${d}`), "-o", join(dir, name), SOURCE], { stdio: "pipe" });
}

interface Run {
  status: number | null;
  out: string;
  report: { targets: { results: { id: string; outcome: { status: string; applicable?: false } }[] }[] };
}

/** `hvsim conform --target qtest:./<name> --machine <machine> --suite pmtimer`, run in the build directory. */
function conform(name: string, machine: string): Run {
  const r = spawnSync(process.execPath, [BIN, "conform", "--target", `qtest:./${name}`, "--machine", machine, "--suite", "pmtimer", "--json", "report.json", "--junit", "report.xml"], {
    cwd: dir,
    encoding: "utf8",
    timeout: 120_000,
  });
  outputs.push(r.stdout);
  return { status: r.status, out: r.stdout + r.stderr, report: JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as Run["report"] };
}

const passedIds = (r: Run) => r.report.targets[0]!.results.filter((x) => x.outcome.status === "passed").map((x) => x.id);
const failedIds = (r: Run) => r.report.targets[0]!.results.filter((x) => x.outcome.status === "failed").map((x) => x.id);

describe("docs/own-target.md: a user's own PM timer in C, checked over qtest", () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "hvsim-own-target-"));
    build("mytimer", []);
    build("mytimer-off-by-one", ["OFF_BY_ONE"]);
    build("mytimer-wrong-wrap", ["WRONG_WRAP"]);
    build("mytimer-24", ["TMR_24"]);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the guide's by-hand session gives the replies it shows", () => {
    const out = execFileSync(join(dir, "mytimer"), { input: "clock_set 5686000280\ninl 0x408\nclock_step 1\ninb 0x409\nfoo\n", encoding: "utf8" });
    // floor(5686000280 * 3579545 / 1e9) = 0x136910d; byte 1 of it is 0x91.
    expect(out).toBe("OK 5686000280\nOK 0x136910d\nOK 5686000281\nOK 0x0091\nFAIL Unknown command 'foo'\n");
  });

  it("mytimer passes every pmtimer check for the acpi machine (exit 0)", () => {
    const r = conform("mytimer", "acpi");
    expect(r.status, r.out).toBe(0);
    expect(passedIds(r)).toEqual(["pmtimer/acpi-32", "pmtimer/acpi-random-steps"]);
    expect(failedIds(r)).toEqual([]);
    for (const x of r.report.targets[0]!.results) if (x.outcome.status === "skipped") expect(x.outcome.applicable, x.id).toBe(false);
    expect(r.out).toMatch(/^qtest:\.\/mytimer: 2 passed, 0 failed, 0 skipped, \d+ not applicable$/m);
  }, 150_000);

  it("-DOFF_BY_ONE (rounds up) fails, naming the step, the expected and the actual reply (exit 1)", () => {
    const r = conform("mytimer-off-by-one", "acpi");
    expect(r.status, r.out).toBe(1);
    expect(failedIds(r)).toEqual(["pmtimer/acpi-32", "pmtimer/acpi-random-steps"]);
    // 5686000280 ns: 20,353,293.3 ticks (0x136910d.x), rounded up 0x136910e.
    const t = (5_686_000_280n * F) / NS;
    expect(r.out).toContain(`step 2 'inl 0x408' at 5686000280 ns: expected '${hex(t)}' (upstream; the model agrees), got '${hex(t + 1n)}'`);
    expect(r.out).toContain(`step 3 'inb 0x408' at 5686000280 ns: expected '${hex(t & 0xffn)}' (upstream; the model agrees), got '${hex((t + 1n) & 0xffn)}'`);
  }, 150_000);

  it("-DWRONG_WRAP (a 64-bit product, wrapping at 2^64 past 5153 s) fails at the first read past it (exit 1)", () => {
    const r = conform("mytimer-wrong-wrap", "acpi");
    expect(r.status, r.out).toBe(1);
    expect(failedIds(r)).toEqual(["pmtimer/acpi-32", "pmtimer/acpi-random-steps"]);
    const ns = 10_000_000_000_000n;
    const right = ((ns * F) / NS) & 0xffffffffn;
    const wrong = (BigInt.asUintN(64, ns * F) / NS) & 0xffffffffn;
    expect(r.out).toContain(`step 24 'inl 0x408' at 10000000000000 ns: expected '${hex(right)}' (upstream; the model agrees), got '${hex(wrong)}'`);
    // Nothing before that read fails: the 2^32 wrap at 1199.86 s is right.
    const acpi32 = r.out.slice(r.out.indexOf("FAIL pmtimer/acpi-32"), r.out.indexOf("FAIL pmtimer/acpi-random-steps"));
    expect(acpi32.match(/step (\d+) /g)).toEqual(["step 24 ", "step 26 "]);
  }, 150_000);

  it("-DTMR_24 passes on acpi24 and fails on acpi (24 bits where TMR_VAL_EXT shows 32)", () => {
    const ok = conform("mytimer-24", "acpi24");
    expect(ok.status, ok.out).toBe(0);
    expect(passedIds(ok)).toEqual(["pmtimer/acpi-24", "pmtimer/acpi24-random-steps"]);
    const bad = conform("mytimer-24", "acpi");
    expect(bad.status, bad.out).toBe(1);
    expect(bad.out).toContain("step 2 'inl 0x408' at 5686000280 ns: expected 'OK 0x136910d' (upstream; the model agrees), got 'OK 0x36910d'");
  }, 300_000);

  // Runs after the builds above have been checked (vitest keeps a file's tests in order).
  it("every failure line the guide quotes appears in a real run", () => {
    const doc = readFileSync(join(ROOT, "docs/own-target.md"), "utf8");
    const quoted = doc
      .split("\n")
      .map((l) => /step \d+ '[^']+' at \d+ ns: expected '[^']*' \([^)]*\), got '[^']*'/.exec(l)?.[0])
      .filter((l): l is string => l !== undefined);
    expect(quoted.length).toBeGreaterThanOrEqual(8);
    const all = outputs.join("\n");
    for (const q of quoted) expect(all, q).toContain(q);
  });
});
