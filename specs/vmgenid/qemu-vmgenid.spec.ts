// vmgenid across a migration on Debian's QEMU 7.2 (qemu-system-x86_64 from qemu-system-x86, under
// TCG and stopped with -S, so no firmware runs): the vmgenid GUID checks (guid.check.ts) run
// against it as against any target with "vmgenid-control" (sim/targets/qtest/control.ts: qtest on
// stdio, QMP on a socket, `migrate` to `exec:cat > FILE`, the destination started with another
// guid and `-incoming`). A check passes when the replies meet the upstream golden values and equal
// the model's (an hvsim snapshot restored into a bench with the destination's guid). Skipped, with
// the reason in the name, when Debian's qemu-system-x86_64 is not installed.
import { describe, expect, it } from "vitest";
import { modelTarget } from "../../sim/conform/model-target.ts";
import type { Outcome, Target } from "../../sim/conform/types.ts";
import { openQemuControl } from "../../sim/targets/qtest/control.ts";
import { resolveProgram } from "../../sim/targets/qtest/target.ts";
import { checks } from "./guid.check.ts";

const QEMU = resolveProgram("/usr/bin/qemu-system-x86_64") ?? resolveProgram("qemu-system-x86_64");
const TCG_ARGS = ["-machine", "q35", "-accel", "tcg", "-S", "-display", "none", "-nodefaults", "-m", "128M", "-qtest", "stdio", "-qtest-log", "/dev/null"];

const debianQemu: Target = {
  name: "debian-qemu-tcg",
  description: "Debian's qemu-system-x86_64 under TCG, stopped (-S), with QMP",
  capabilities: new Set(["portio", "memory", "irq", "fwcfg", "machine:q35", "vmgenid-control"]),
  available: async () => (QEMU ? true : "Debian's qemu-system-x86_64 is not installed"),
  openMachineControl: (_m, opts) => openQemuControl({ program: QEMU!, args: TCG_ARGS }, opts),
};

const failedDetail = (o: Outcome): string => (o.status === "failed" ? o.detail : `not failed: ${o.status}`);

describe.skipIf(!QEMU)(`vmgenid GUID checks on Debian's QEMU under TCG${QEMU ? "" : " (skipped: Debian's qemu-system-x86_64 is not installed: apt-get install qemu-system-x86)"}`, () => {
  const model = modelTarget(1);
  for (const c of checks) {
    it(`${c.id}: ${c.title}`, async () => {
      expect(failedDetail(await c.run({ target: debianQemu, model, seed: 1 }))).toBe("not failed: passed");
    }, 120_000);
  }

  it("refuses a guid that is not one before starting QEMU", async () => {
    await expect(openQemuControl({ program: QEMU!, args: TCG_ARGS }, { guid: "324e6eaf" })).rejects.toThrow(/vmgenid guid must be "auto" or a GUID/);
  });
});
