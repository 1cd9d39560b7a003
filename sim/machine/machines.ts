// Machines described as data: which devices, where, with what configuration.
import type { MachineSpec } from "./bench.ts";

export const MACHINES: Record<string, MachineSpec> = {
  // One entry per machine, e.g. q35: { name: "q35", description, memory, devices: [...] },
};

export function machineNames(): string[] {
  return Object.keys(MACHINES).sort();
}
