// Shared set-up for the vmm specs and properties: a bench with one vmm device.
import { Bench } from "../../sim/machine/bench.ts";
import { DeviceKinds } from "../../sim/machine/device.ts";
import { VmmKind, type VmmConfig, type VmmDevice } from "../../sim/devices/vmm/vmm.ts";
import type { IoctlOutcome } from "../../sim/devices/vmm/model.ts";

/** Only the vmm kind: the specs do not depend on the other devices' modules. */
export function vmmKinds(): DeviceKinds {
  const k = new DeviceKinds();
  k.register(VmmKind);
  return k;
}

export function vmmBench(config: VmmConfig = {}, seed = 1): { bench: Bench; vmm: VmmDevice } {
  const bench = new Bench({ name: "vmm-test", description: "vmm control device", memory: 4096, devices: [{ type: "vmm", id: "vmm", config: config as Record<string, unknown> }] }, vmmKinds(), { seed });
  return { bench, vmm: bench.device<VmmDevice>("vmm") };
}

export function fdOf(r: { fd: number } | { errno: number }): number {
  if (!("fd" in r)) throw new Error(`open failed with errno ${r.errno}`);
  return r.fd;
}

/** The errno of an outcome that must have completed synchronously. */
export function errnoOf(r: IoctlOutcome): number {
  if (r.status !== "done") throw new Error(`expected a synchronous outcome, got pending op ${r.op}`);
  return r.errno;
}

/** Runs the clock until nothing is pending (bounded), returning the number of steps. */
export function drain(bench: Bench, maxSteps = 100_000): number {
  let n = 0;
  while (bench.clock.nextAt !== undefined) {
    if (++n > maxSteps) throw new Error("the clock did not go quiet");
    bench.clock.runNext();
  }
  return n;
}

/** Outcome of `r` once the clock has run: the pending op's result, or the synchronous one. */
export function settle(bench: Bench, vmm: VmmDevice, r: IoctlOutcome): { errno: number; out: string } {
  if (r.status === "done") return { errno: r.errno, out: Buffer.from(r.out).toString("hex") };
  drain(bench);
  const res = vmm.takeResult(r.op);
  if (!res) throw new Error(`op ${r.op} never completed`);
  return { errno: res.errno, out: res.out };
}
