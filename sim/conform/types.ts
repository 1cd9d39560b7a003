// Conformance: the same checks run against the embedded reference models and against real
// implementations ("targets"). A target declares capabilities; a check declares what it needs; a
// target that lacks a capability reports the check as skipped with the reason, never as passed.

import type { HypervOpenOptions, HypervSession } from "./hyperv-session.ts";
import type { MachineControl, MachineControlOptions } from "./machine-control.ts";
import type { VmmOpenOptions, VmmSession } from "../devices/vmm/session.ts";

export type Capability =
  | "clock" // virtual-clock control (qtest clock_step / clock_set)
  | "portio" // port I/O
  | "memory" // guest memory reads and writes
  | "irq" // interrupt interception
  | "fwcfg" // fw_cfg with the vmgenid files
  | "machine:q35"
  | "machine:bhyve"
  | "machine:acpi"
  | "machine:acpi24"
  | "kvp-daemon" // a KVP daemon behind the device bridge (or its model)
  | "vss-daemon" // a VSS daemon behind the device bridge (or its model)
  | "vmgenid-control" // openMachineControl: a vmgenid guid chosen at start, save and restore
  | "vmm" // a bhyve vmm control device (/dev/vmmctl and per-VM nodes; only the model here)
  | "model"; // in-process access to the reference model itself

/**
 * Every capability name, for validating what a user declares (`--lacks`, a targets file). Kept
 * next to the union by the compile-time check below: a capability added to one must be added here.
 */
export const CAPABILITIES = ["clock", "portio", "memory", "irq", "fwcfg", "machine:q35", "machine:bhyve", "machine:acpi", "machine:acpi24", "kvp-daemon", "vss-daemon", "vmgenid-control", "vmm", "model"] as const satisfies readonly Capability[];
type MissingCapability = Exclude<Capability, (typeof CAPABILITIES)[number]>;
export const CAPABILITIES_COMPLETE: [MissingCapability] extends [never] ? true : MissingCapability = true;

/** The machines a qtest target can implement (hvsim's machine names in sim/machine/machines.ts). */
export type QtestMachine = "q35" | "bhyve" | "acpi" | "acpi24";

/** A qtest-speaking session on one fresh machine. */
export interface QtestSession {
  /** Sends one command line; resolves with its reply line exactly as sent. */
  command(line: string): Promise<string>;
  /** Asynchronous `IRQ raise N` / `IRQ lower N` lines received since the last call. */
  takeIrqLines(): string[];
  close(): Promise<void>;
}

export const QTEST_MACHINES = ["q35", "bhyve", "acpi", "acpi24"] as const satisfies readonly QtestMachine[];

/** What the user declares about a target beyond its name (command line, or a targets file). */
export interface TargetOptions {
  /** The machine a qtest program implements (q35 unless declared). */
  readonly machine?: QtestMachine;
  /**
   * Capabilities the implementation lacks although its kind of target has them (a PM timer without
   * IRQ interception): makeTarget removes them, so the checks needing them are not applicable.
   */
  readonly lacks?: readonly Capability[];
  /** Extra environment for the programs the target starts (over hvsim's own). */
  readonly env?: Readonly<Record<string, string>>;
  /** Wall-clock limit of one reply from the target, ms (qtest: per command). */
  readonly timeoutMs?: number;
}

export interface Target {
  /** As given on the command line: "model", "qtest:<cmd>", "hv-daemon:kvp", ... */
  readonly name: string;
  readonly description: string;
  readonly capabilities: ReadonlySet<Capability>;
  /** True when usable here, else the reason it is not (missing program, no user namespaces...). */
  available(): Promise<true | string>;
  /** A fresh qtest session on `machine` (capability "clock"/"portio"/...). */
  openQtest?(machine: QtestMachine): Promise<QtestSession>;
  /**
   * A Hyper-V session (capability "kvp-daemon"/"vss-daemon"): hvsim's host and hv_utils kernel
   * with this target's daemon behind the character device (sim/conform/hyperv-session.ts).
   */
  openHyperv?(service: "kvp" | "vss", opts: HypervOpenOptions): Promise<HypervSession>;
  /** A qtest session with host-side control (capability "vmgenid-control", sim/conform/machine-control.ts). */
  openMachineControl?(machine: QtestMachine, opts: MachineControlOptions): Promise<MachineControl>;
  /**
   * A bhyve vmm control-device session (capability "vmm"): /dev/vmmctl and the per-VM nodes on a
   * fresh device (sim/devices/vmm/session.ts). Only the model target has one here.
   */
  openVmm?(opts?: VmmOpenOptions): Promise<VmmSession>;
  /**
   * Called after each check the target ran: what the target saw that the check's own outcome
   * need not show (a sanitized daemon's sanitizer report). `failures` fail the check (their text
   * first in its detail); `notes` are added to its detail.
   */
  afterCheck?(): { failures: string[]; notes: string[] };
}

export type Outcome =
  | { status: "passed"; detail?: string; deviations?: string[] }
  | { status: "failed"; detail: string; deviations?: string[] }
  /**
   * `applicable: false` when the target lacks a capability the check needs at all (the check does
   * not apply to it, as opposed to a skip for a reason that could change, such as a missing program).
   */
  | { status: "skipped"; detail: string; applicable?: false };

export interface CheckContext {
  readonly target: Target;
  /** The model target, for computing expected replies value for value. */
  readonly model: Target;
  /** Seed for checks that draw random operation sequences. */
  readonly seed: number;
}

export interface Check {
  /** Stable id, e.g. "pmtimer/qemu-golden". */
  readonly id: string;
  /** Suite name (the device): pmtimer, vmgenid, kvp, vss, vmm... */
  readonly suite: string;
  readonly title: string;
  readonly needs: readonly Capability[];
  run(ctx: CheckContext): Promise<Outcome>;
}

export class CheckFailure extends Error {
  override name = "CheckFailure";
}
