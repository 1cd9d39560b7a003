// The `model` target: hvsim's own reference models, in process, spoken to through the same qtest
// protocol a real QEMU speaks (sim/qtest/server.ts).
import { Bench } from "../machine/bench.ts";
import { MACHINES } from "../machine/machines.ts";
import { defaultKinds } from "../devices/index.ts";
import { QtestServer } from "../qtest/server.ts";
import { CAPABILITIES, type QtestSession, type Target } from "./types.ts";
import { ModelHypervSession } from "./hyperv-session.ts";
import { openModelControl } from "./model-control.ts";
import { modelVmmSession } from "../devices/vmm/session.ts";

/** A qtest session served in process from `bench` (replies exactly as hvsim's qtest server sends them). */
export function benchQtestSession(bench: Bench): QtestSession {
  const server = new QtestServer(bench);
  let irq: string[] = [];
  return {
    async command(line: string) {
      const out = server.handle(line);
      const reply = out.pop()!;
      irq.push(...out);
      return reply;
    },
    takeIrqLines() {
      const t = irq;
      irq = [];
      return t;
    },
    async close() {
      server.close();
    },
  };
}

export function openModelQtest(machine: string, seed = 0): QtestSession & { readonly bench: Bench } {
  const spec = MACHINES[machine];
  if (!spec) throw new Error(`no machine ${machine} (known: ${Object.keys(MACHINES).join(", ")})`);
  const bench = new Bench(spec, defaultKinds(), { seed });
  return { bench, ...benchQtestSession(bench) };
}

export function modelTarget(seed = 0): Target {
  return {
    name: "model",
    description: "hvsim's embedded reference models (in process)",
    capabilities: new Set(CAPABILITIES), // the reference models have every capability there is
    async available() {
      return true;
    },
    async openQtest(machine) {
      return openModelQtest(machine, seed);
    },
    async openHyperv(service, opts) {
      return new ModelHypervSession(service, opts, seed);
    },
    async openMachineControl(machine, opts) {
      return openModelControl(machine, opts, seed);
    },
    async openVmm(opts) {
      return modelVmmSession(opts, seed);
    },
  };
}
