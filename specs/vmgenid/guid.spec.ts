// The vmgenid GUID checks (guid.check.ts) pass against the model and, when it is found here,
// against the qtest-enabled QEMU (qtest:qemu); and each of them fails against a target that gets
// one thing wrong, naming the difference: the GUID stored in text order (no little-endian
// fields), a restore that keeps the source's GUID instead of the destination's property, a
// notification without the SCI, no notification when the restored guid equals the saved one.
import { describe, expect, it } from "vitest";
import { modelTarget } from "../../sim/conform/model-target.ts";
import type { MachineControl } from "../../sim/conform/machine-control.ts";
import type { Check, Outcome, QtestMachine, Target } from "../../sim/conform/types.ts";
import { qtestTarget } from "../../sim/targets/qtest/target.ts";
import { checks, G1, G1_GUEST, G2, G2_GUEST } from "./guid.check.ts";

const byId = (id: string): Check => checks.find((c) => c.id === id)!;
const failedDetail = (o: Outcome): string => (o.status === "failed" ? o.detail : `not failed: ${o.status}`);

interface Lie {
  /** Replaces a reply (`cmd` is the command line). */
  reply?(r: string, cmd: string): string;
  /** Replaces the IRQ lines taken after a command. */
  irq?(lines: string[]): string[];
  /** Replaces the guid a save/restore is asked for. */
  restoreGuid?(guid: string): string;
}

/** `inner` whose machine controls lie as `makeLie()` (made afresh for each machine) says. */
function liar(inner: Target, makeLie: () => Lie): Target {
  return {
    name: "liar",
    description: `${inner.description} (lying)`,
    capabilities: inner.capabilities,
    available: () => inner.available(),
    async openMachineControl(m: QtestMachine, opts) {
      const c: MachineControl = await inner.openMachineControl!(m, opts);
      const lie = makeLie();
      return {
        command: async (line) => (lie.reply ? lie.reply(await c.command(line), line) : c.command(line)),
        takeIrqLines: () => (lie.irq ? lie.irq(c.takeIrqLines()) : c.takeIrqLines()),
        close: () => c.close(),
        saveRestore: (o) => c.saveRestore(lie.restoreGuid ? { guid: lie.restoreGuid(o.guid) } : o),
      };
    },
  };
}

/** The GUID in text order: what a target that skips the byte swap stores. */
const textOrder = (guid: string) => guid.replace(/-/g, "");

describe("vmgenid GUID checks pass against the model", () => {
  const model = modelTarget(1);
  for (const c of checks) {
    it(c.id, async () => {
      const o = await c.run({ target: model, model, seed: 1 });
      expect(o).toEqual({ status: "passed", detail: expect.stringMatching(/commands$/) });
    });
  }
});

const qemu = qtestTarget("qemu");
const qemuAvail = await qemu.available();
describe.skipIf(qemuAvail !== true)(`vmgenid GUID checks pass against qtest:qemu${qemuAvail === true ? "" : ` (skipped: ${qemuAvail})`}`, () => {
  const model = modelTarget(1);
  for (const c of checks) {
    it(c.id, async () => {
      const o = await c.run({ target: qemu, model, seed: 1 });
      expect(failedDetail(o)).toBe("not failed: passed");
    }, 120_000);
  }
});

describe("each vmgenid GUID check fails against a lying target, naming the difference", () => {
  const model = modelTarget(1);
  const run = (id: string, lie: () => Lie) => byId(id).run({ target: liar(model, lie), model, seed: 1 });

  it("in-memory: the GUID stored in text order (first three fields not little-endian)", async () => {
    const d = failedDetail(await run("vmgenid/q35-guid-in-memory", () => ({ reply: (r, cmd) => (cmd === "read 0x20028 16" ? `OK 0x${textOrder(G2)}` : r) })));
    expect(d).toContain(`step 2 'read 0x20028 16': expected 'OK 0x${G2_GUEST}' (upstream; the model agrees), got 'OK 0x${textOrder(G2)}'`);
  });

  it("change: the restore keeps the source's GUID instead of the destination's guid property", async () => {
    const d = failedDetail(await run("vmgenid/q35-guid-change-notifies", () => ({ restoreGuid: () => G1 })));
    expect(d).toContain(`step 9 'read 0x20028 16': expected 'OK 0x${G2_GUEST}' (upstream; the model agrees), got 'OK 0x${G1_GUEST}'`);
  });

  it("change: GPE0_STS set but no SCI when GPE0_EN bit 5 is set", async () => {
    const d = failedDetail(await run("vmgenid/q35-guid-change-notifies", () => ({ irq: (l) => l.filter((x) => x !== "IRQ raise 9") })));
    expect(d).toContain("step 13 'outb 0x628 0x20': expected IRQ lines [IRQ raise 9] (upstream; the model agrees), got []");
  });

  it("restore: no notification when the restored guid equals the saved one", async () => {
    const d = failedDetail(
      await run("vmgenid/q35-restore-new-generation", () => {
        let restores = 0;
        return {
          restoreGuid: (g) => (restores++, g),
          reply: (r, cmd) => (cmd === "inb 0x620" && restores === 1 ? "OK 0x0000" : r),
        };
      }),
    );
    expect(d).toContain("step 8 'inb 0x620': expected 'OK 0x0020' (upstream; the model agrees), got 'OK 0x0000'");
  });

  it("restore: guid=auto that keeps the source's GUID", async () => {
    const d = failedDetail(await run("vmgenid/q35-restore-new-generation", () => ({ restoreGuid: (g) => (g === "auto" ? G1 : g) })));
    expect(d).toContain("step 16 'read 0x20028 16': expected 'a new GUID, version 4, variant RFC 4122' (upstream; the model agrees), got 'the source's GUID again'");
  });
});
