// Real conformance targets: registers their factories and default candidates with sim/conform
// (which itself spawns nothing). Imported for its side effects by `hvsim conform` and by specs.
import { registerTargetFactory } from "../conform/runner.ts";
import { registerDefaultCandidate } from "../conform/targets.ts";
import { QEMU_SHORTHAND, qtestTarget } from "./qtest/target.ts";
import "./hvdaemon/target.ts"; // registers hv-daemon:kvp / hv-daemon:vss

let registered = false;

export function registerRealTargets(): void {
  if (registered) return;
  registered = true;
  registerTargetFactory((spec, _seed, opts) =>
    spec.startsWith("qtest:")
      ? qtestTarget(spec.slice("qtest:".length), {
          ...(opts.machine ? { machine: opts.machine } : {}),
          ...(opts.env ? { env: opts.env } : {}),
          ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        })
      : undefined,
  );
  // The candidate's available() says why it is left out (findQtestQemu()'s reason).
  registerDefaultCandidate(`qtest:${QEMU_SHORTHAND}`);
}

registerRealTargets();
