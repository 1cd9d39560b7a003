// Machines a scenario can name: every machine in sim/machine/machines.ts, plus the minimal test
// machine "testbox" (two testdev devices) for examples that need only ports and memory.
import { MACHINES } from "../machine/machines.ts";
import type { MachineSpec } from "../machine/bench.ts";
import type { DeviceKinds } from "../machine/device.ts";
import { defaultKinds } from "../devices/index.ts";
import { TESTBOX, TestdevKind } from "../devices/testdev/testdev.ts";

const EXTRA: Record<string, MachineSpec> = { testbox: TESTBOX };

export function resolveMachine(name: string): MachineSpec | undefined {
  return Object.hasOwn(MACHINES, name) ? MACHINES[name] : Object.hasOwn(EXTRA, name) ? EXTRA[name] : undefined;
}

export function machineNamesForScenarios(): string[] {
  return [...new Set([...Object.keys(MACHINES), ...Object.keys(EXTRA)])].sort();
}

/** Every production device kind plus the test device. */
export function scenarioKinds(): DeviceKinds {
  const k = defaultKinds();
  if (!k.get(TestdevKind.type)) k.register(TestdevKind);
  return k;
}
