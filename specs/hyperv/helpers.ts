// Shared set-up for the Hyper-V specs: a bench with host, hv_utils and (optionally) the daemon
// models, built from the four Hyper-V kinds only.
import { Bench } from "../../sim/machine/bench.ts";
import {
  hypervKinds,
  hypervMachine,
  type HvUtilsKernel,
  type HypervHost,
  type HypervMachineOptions,
  type KvpDaemonModel,
  type VssDaemonModel,
} from "../../sim/devices/hyperv/index.ts";
import { NS_PER_S } from "../../sim/clock/time.ts";

export interface Rig {
  bench: Bench;
  host: HypervHost;
  kernel: HvUtilsKernel;
  kvpd: KvpDaemonModel | undefined;
  vssd: VssDaemonModel | undefined;
  /** Runs the clock forward by `ns`. */
  run(ns: number): void;
  /** Runs until no event is pending (at most `limit` ns of virtual time). */
  settle(limit?: number): void;
}

export function rig(o: HypervMachineOptions = {}, seed = 1): Rig {
  const bench = new Bench(hypervMachine(o), hypervKinds(), { seed });
  const r: Rig = {
    bench,
    host: bench.device<HypervHost>("host"),
    kernel: bench.device<HvUtilsKernel>("hv-utils"),
    kvpd: bench.findDevice<KvpDaemonModel>("kvp-daemon"),
    vssd: bench.findDevice<VssDaemonModel>("vss-daemon"),
    run(ns) {
      bench.clock.step(ns);
    },
    settle(limit = 3600 * NS_PER_S) {
      const end = bench.now + limit;
      while (bench.clock.nextAt !== undefined && bench.clock.nextAt <= end) bench.clock.runNext();
    },
  };
  return r;
}

export const MS = 1_000_000;
export const S = NS_PER_S;
