// The bhyve and ideal-ACPI pmtimer checks (bhyve-acpi.check.ts) against targets: every check can
// fail — a lying target (the model seen through a tap that alters one reply) fails each qtest
// script, both as a real target (compared with the model and the golden values) and standing in
// for the model (golden values only); the model-only checks fail on a machine configured wrongly —
// and `hvsim qtest --machine bhyve|acpi|acpi24` served as a qtest:<command> peer passes every
// check that applies to its machine, through the CLI.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { modelTarget } from "../../sim/conform/model-target.ts";
import type { Check, Outcome } from "../../sim/conform/types.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { tapTarget } from "../conformance/wrap-target.ts";
import { checks, modelScript, restorePoliciesCheck, bhyveWithRestore, STRICT_IO_STEPS } from "./bhyve-acpi.check.ts";

const ROOT = join(import.meta.dirname, "../..");
const byId = (id: string): Check => {
  const c = checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id}`);
  return c;
};
const detail = (o: Outcome): string => (o.status === "failed" ? o.detail : `not failed: ${o.status} ${o.detail ?? ""}`);

/** A target that answers the `nth` command matching `which` with `lie` instead. */
function liar(which: RegExp, nth: number, lie: string, name = "liar") {
  return tapTarget(
    modelTarget(1),
    () => {
      let n = 0;
      return { reply: (r, cmd) => (which.test(cmd) && ++n === nth ? lie : r) };
    },
    name,
  );
}

describe("each bhyve/acpi qtest check fails against a target that alters one reply", () => {
  // [check, which command, its nth occurrence, the step number that is reported]
  const cases: [string, RegExp, number, number][] = [
    ["pmtimer/bhyve-rate", /^inl 0x408$/, 3, 5],
    ["pmtimer/bhyve-wrap", /^inl 0x408$/, 2, 4],
    ["pmtimer/bhyve-random-steps", /^inl 0x408$/, 7, 14],
    ["pmtimer/acpi-32", /^inb 0x40a$/, 1, 5],
    ["pmtimer/acpi-random-steps", /^inl 0x408$/, 20, 40],
    ["pmtimer/acpi-24", /^inl 0x408$/, 4, 13],
    ["pmtimer/acpi24-random-steps", /^inl 0x408$/, 9, 18],
  ];
  for (const [id, which, nth, step] of cases) {
    it(`${id}: as a real target (golden and model) and standing in for the model (golden only)`, async () => {
      const c = byId(id);
      const real = await c.run({ target: liar(which, nth, "OK 0xbad"), model: modelTarget(1), seed: 1 });
      expect(detail(real)).toMatch(new RegExp(`^step ${step} '[a-z]+ 0x[0-9a-f]+'( at \\d+ ns)?: expected 'OK 0x[0-9a-f]{4,8}' \\(upstream; the model agrees\\), got 'OK 0xbad'$`));
      const stand = liar(which, nth, "OK 0xbad", "model");
      const golden = await c.run({ target: stand, model: stand, seed: 1 });
      expect(detail(golden)).toMatch(new RegExp(`^step ${step} .*: expected 'OK 0x[0-9a-f]{4,8}' \\(upstream\\), got 'OK 0xbad'$`));
    });
  }

  it("pmtimer/bhyve-widths: a refusal is matched by its 'FAIL EIO:' head — other words pass, another errno or an answer fails", async () => {
    const c = byId("pmtimer/bhyve-widths");
    const ctx = (t: ReturnType<typeof liar>) => ({ target: t, model: modelTarget(1), seed: 1 });
    expect((await c.run(ctx(liar(/^inb 0x408$/, 1, "FAIL EIO: refused in my own words")))).status).toBe("passed");
    expect(detail(await c.run(ctx(liar(/^inb 0x408$/, 1, "OK 0x000d"))))).toBe(
      "step 3 'inb 0x408' at 1000000000 ns: expected 'FAIL EIO:' (upstream; the model agrees), got 'OK 0x000d'",
    );
    expect(detail(await c.run(ctx(liar(/^outl 0x408/, 1, "FAIL EINVAL: no"))))).toMatch(/^step 5 'outl 0x408 0x0' at 1000000000 ns: expected 'FAIL EIO:' \(upstream; the model agrees\), got 'FAIL EINVAL: no'$/);
    // A neighbouring port answered by the timer instead of user space's all ones.
    expect(detail(await c.run(ctx(liar(/^inl 0x40b$/, 1, "OK 0x0036"))))).toMatch(/^step 9 'inl 0x40b' at 1000000000 ns: expected 'OK 0xffffffff' \(upstream; the model agrees\), got 'OK 0x0036'$/);
  });
});

describe("the model-only bhyve checks fail on a wrongly configured machine", () => {
  const ctx = { target: modelTarget(1), model: modelTarget(1), seed: 1 };

  it("pmtimer/bhyve-strict-io passes on bhyve -e and fails on plain bhyve (user space answers all ones there)", async () => {
    expect((await byId("pmtimer/bhyve-strict-io").run(ctx)).status).toBe("passed");
    const wrong = modelScript("pmtimer/bhyve-strict-io", "on plain bhyve", MACHINES.bhyve!, STRICT_IO_STEPS);
    const d = detail(await wrong.run(ctx));
    expect(d).toContain("step 1 'inb 0x409': expected 'FAIL VMEXIT_ABORT:' (upstream), got 'OK 0x00ff'");
    expect(d).toContain("step 3 'outw 0x80 0x1': expected 'FAIL VMEXIT_ABORT:' (upstream), got 'OK'");
  });

  it("pmtimer/bhyve-restore-policies fails when the two policies are swapped", async () => {
    expect((await byId("pmtimer/bhyve-restore-policies").run(ctx)).status).toBe("passed");
    const swapped = restorePoliciesCheck((p) => bhyveWithRestore(p === "monotonic" ? "bhyve-upstream" : "monotonic"));
    const d = detail(await swapped.run(ctx));
    // Saved at 1 s and continued monotonically, the counter reads on instead of restarting:
    // nstosbt(1e9) / 1199 = 3,582,124 and nstosbt(2e9) / 1199 = 8589934592 / 1199 = 7,164,249.
    expect(d).toContain("bhyve-upstream saved at 1 s: expected [0, 3582124] (upstream), got [3582124, 7164249]");
    expect(d).toContain("monotonic saved at 1 ns: expected [0, 1] (upstream), got [0, 0]");
  });
});

interface JsonReport {
  targets: { target: string; unavailable?: string; results: { id: string; outcome: { status: string; detail?: string; applicable?: false } }[] }[];
}

describe("hvsim qtest as a peer passes every pmtimer check that applies to its machine", () => {
  const expected: Record<string, string[]> = {
    bhyve: ["pmtimer/bhyve-random-steps", "pmtimer/bhyve-rate", "pmtimer/bhyve-widths", "pmtimer/bhyve-wrap"],
    acpi: ["pmtimer/acpi-32", "pmtimer/acpi-random-steps"],
    acpi24: ["pmtimer/acpi-24", "pmtimer/acpi24-random-steps"],
  };
  for (const [machine, ids] of Object.entries(expected)) {
    it(`hvsim conform --target 'qtest:node sim/cli/bin.mjs qtest --machine ${machine}' --machine ${machine} --suite pmtimer`, () => {
      const target = `qtest:node sim/cli/bin.mjs qtest --machine ${machine}`;
      const r = spawnSync(process.execPath, ["sim/cli/bin.mjs", "conform", "--target", target, "--machine", machine, "--suite", "pmtimer", "--json", "-", "--junit", "/dev/null"], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 120_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as JsonReport;
      const t = report.targets[0]!;
      expect(t.target).toBe(target);
      expect(t.unavailable).toBeUndefined();
      const passed = t.results.filter((x) => x.outcome.status === "passed").map((x) => x.id);
      expect(passed).toEqual(ids);
      // Everything else does not apply to this machine (or needs the model in process): none is skipped for another reason.
      for (const x of t.results.filter((y) => y.outcome.status !== "passed")) {
        expect(x.outcome, x.id).toMatchObject({ status: "skipped", applicable: false });
        expect(x.outcome.detail).toMatch(/ lacks (machine:\w+|model)$/);
      }
      expect(r.stderr).toMatch(new RegExp(`: ${ids.length} passed, 0 failed, \\d+ skipped`));
    }, 150_000);
  }
});
