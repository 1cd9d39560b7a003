// The model's "vmgenid-control" (sim/conform/machine-control.ts): a bench of the named machine with
// its vmgenid device's `guid` set as asked, served over hvsim's qtest protocol; saveRestore takes
// an hvsim snapshot and restores it into a new bench whose vmgenid `guid` is the destination's (the
// device kind's destinationConfig), as QEMU's `-incoming` destination carries its own property.
import { Bench, type MachineSpec } from "../machine/bench.ts";
import { MACHINES } from "../machine/machines.ts";
import { defaultKinds } from "../devices/index.ts";
import { parseGuid } from "../devices/vmgenid/guid.ts";
import { restoreSnapshot, saveSnapshot } from "../snapshot/index.ts";
import type { MachineControl, MachineControlOptions } from "./machine-control.ts";
import { benchQtestSession } from "./model-target.ts";
import type { QtestMachine, QtestSession } from "./types.ts";

/** `machine` with every vmgenid device's `guid` property set to `guid`. */
export function machineWithGuid(machine: QtestMachine, guid: string): MachineSpec {
  const spec = MACHINES[machine];
  if (!spec) throw new Error(`no machine ${machine} (known: ${Object.keys(MACHINES).join(", ")})`);
  if (guid !== "auto" && !parseGuid(guid)) throw new Error(`vmgenid guid must be "auto" or a GUID like 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87, got ${JSON.stringify(guid)}`);
  if (!spec.devices.some((d) => d.type === "vmgenid")) throw new Error(`machine ${machine} has no vmgenid device`);
  return { ...spec, devices: spec.devices.map((d) => (d.type === "vmgenid" ? { ...d, config: { ...d.config, guid } } : d)) };
}

export function openModelControl(machine: QtestMachine, opts: MachineControlOptions, seed = 0): MachineControl & { readonly bench: Bench } {
  let bench = new Bench(machineWithGuid(machine, opts.guid), defaultKinds(), { seed });
  let session: QtestSession = benchQtestSession(bench);
  let restores = 0;
  return {
    get bench() {
      return bench;
    },
    command: (line) => session.command(line),
    takeIrqLines: () => session.takeIrqLines(),
    close: () => session.close(),
    async saveRestore(next) {
      const bytes = saveSnapshot(bench);
      // Another seed for the destination, as another QEMU process draws another guid=auto.
      const dst = new Bench(machineWithGuid(machine, next.guid), defaultKinds(), { seed: seed + ++restores });
      const r = restoreSnapshot(dst, bytes);
      if (!r.ok) throw new Error(`model restore failed: ${JSON.stringify(r.error)}`);
      // QEMU's post_load runs before the guest runs again: what is due now is dispatched.
      dst.clock.runUntil(dst.now);
      await session.close();
      bench = dst;
      session = benchQtestSession(dst);
    },
  };
}
