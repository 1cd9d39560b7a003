// Capability "vmgenid-control": a qtest session on a machine the host side also controls, for the
// vmgenid checks (specs/vmgenid/guid.check.ts). The machine is started with a vmgenid device whose
// `guid` property the check chooses, and can be saved and restored into a fresh machine started
// with another `guid` (QEMU: migrate to a file and `-incoming`, sim/targets/qtest/control.ts; the
// model: an hvsim snapshot restored into a new bench, sim/conform/model-control.ts).
//
// There is no runtime GUID change here: QEMU 7.2's `guid` is a static qdev property (hw/acpi/
// vmgenid.c, vmgenid_device_properties; docs/specs/vmgenid.txt "may be only be set using the
// command line"), so `qom-set /machine/peripheral/<id> guid ...` answers "Attempt to set property
// 'guid' on device ... after it was realized". The only GUID change a QEMU guest sees is a restore
// or incoming migration (vmgenid_post_load).
import type { QtestSession } from "./types.ts";

export interface MachineControlOptions {
  /** The vmgenid device's `guid` property: "auto" (a fresh random GUID) or a GUID text. */
  readonly guid: string;
}

export interface MachineControl extends QtestSession {
  /**
   * Saves the machine's state and restores it into a fresh machine of the same kind whose vmgenid
   * `guid` property is `opts.guid`, then waits until the restore has completed. From then on
   * `command` speaks to the restored machine through a new qtest session (IRQ interception off
   * again, IRQ lines of the old session dropped).
   */
  saveRestore(opts: MachineControlOptions): Promise<void>;
}
