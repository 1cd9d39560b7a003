// The seeded random differential of the KVP and VSS suites (sim/conform/hyperv-differential.ts):
// random sequences (every op, pools 0-4 and 5-255, ENUMERATE indices past the end and >= 2^31,
// keys/values near the 512/2048-byte limits, multi-byte UTF-8, freeze/thaw in any order, daemon
// kills before or after applying a request (CrashPoint) and restarts, VSS answers written after the
// kernel's timeout so the daemon reopens, thawing what it froze; the frozen filesystems compared
// after every VSS op) on the target and on the model (linux-6.1 profile), answers compared field by
// field. On the model the target is the model itself, which holds the generator, the replay and the
// comparison to determinism (the per-seed pins in specs/hyperv/differential-pins.json hold the
// model's answers). A mismatch outside the named debian-6.1 daemon deviations fails the check with
// the shrunk sequence as a replayable transcript.
import type { Check, Outcome } from "../../sim/conform/types.ts";
import { runDifferential } from "../../sim/conform/hyperv-differential.ts";

/** Sequences per run and ops per sequence (kept so the hv-daemon runs stay a few seconds). */
export const DIFF_SIZE = { kvp: { sequences: 4, length: 40 }, vss: { sequences: 3, length: 30 } } as const;

function differential(service: "kvp" | "vss"): Check {
  return {
    id: `${service}/random-differential`,
    suite: service,
    title: `${service.toUpperCase()} seeded random differential: ${DIFF_SIZE[service].sequences} sequences of ${DIFF_SIZE[service].length} ops, every answer field equal to the model's`,
    needs: [service === "kvp" ? "kvp-daemon" : "vss-daemon"],
    async run(ctx): Promise<Outcome> {
      if (!ctx.target.openHyperv) return { status: "skipped", detail: `${ctx.target.name} cannot open Hyper-V sessions` };
      const { sequences, length } = DIFF_SIZE[service];
      const r = await runDifferential(ctx.target, ctx.model, service, ctx.seed, sequences, length);
      if (r.failure) {
        return {
          status: "failed",
          detail: `seed ${r.failure.seed}: ${r.failure.fields.join("; ")} (shrunk in ${r.failure.replays} replays to:)\n${r.failure.transcript}`,
          deviations: r.deviations,
        };
      }
      return { status: "passed", detail: `${r.sequences} sequences, ${r.ops} answers compared from seed ${ctx.seed}${r.deviations.length ? `; named daemon deviations met: ${r.deviations.join(", ")}` : ""}`, deviations: r.deviations };
    },
  };
}

export const checks: Check[] = [differential("kvp"), differential("vss")];
