// Every conformance check declared under specs/ on the qtest-enabled QEMU 7.2 found here
// (`qtest:qemu`: scripts/build-qemu-qtest.sh's build, q35,pit=off,hpet=off, qtest accelerator).
// A check passes when QEMU's replies equal the model's value for value; checks QEMU cannot run
// (the bhyve machine, the Hyper-V daemons) are skipped with the reason. Without such a QEMU the
// whole suite is skipped, with the reason in its name.
import { describe, expect, it } from "vitest";
import { loadChecks, makeTarget, runConformance } from "../../sim/conform/runner.ts";
import "../../sim/targets/index.ts";

const checks = await loadChecks();
const target = makeTarget("qtest:qemu", 1)!;
const avail = await target.available();

describe.skipIf(avail !== true)(`conformance on ${target.name}${avail === true ? "" : ` (skipped: ${avail})`}`, () => {
  for (const c of checks) {
    it(`${c.id}: ${c.title}`, async () => {
      const report = await runConformance([target], [c], { seed: 1 });
      const o = report.targets[0]!.results[0]!.outcome;
      expect(o.status === "failed" ? o.detail : "").toBe("");
      if (o.status === "skipped") expect(o.detail).toMatch(/lacks|unavailable|skipped|no /);
    }, 120_000);
  }
});
