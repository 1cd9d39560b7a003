// Shared machinery of the Hyper-V conformance checks (kvp.check.ts, vss.check.ts). A check is a
// script over a HypervSession that records a transcript of host-visible results (labelled steps).
// The script runs under both kernel profiles (linux-6.1, spec):
//   - on the model, the transcript is held to golden facts (each check's `golden`);
//   - on a real target (hv-daemon:*), every step must equal the model's, value for value;
//   - steps that differ between the two profiles must be explained by a named deviation
//     (sim/devices/hyperv/profile.ts); the outcome lists those names in `deviations`.
import type { Check, CheckContext, Outcome, Target } from "../../sim/conform/types.ts";
import type { HvAnswer, HvMount, HypervSession } from "../../sim/conform/hyperv-session.ts";
import type { KernelProfile, Service } from "../../sim/devices/hyperv/index.ts";

export const PROFILES: readonly KernelProfile[] = ["linux-6.1", "spec"];

export interface Step {
  readonly label: string;
  readonly value: string;
  /** Deviations that explain a difference of this step between the profiles. */
  readonly deviations?: readonly string[];
}

export class Transcript {
  readonly steps: Step[] = [];
  constructor(readonly profile: KernelProfile) {}
  add(label: string, value: unknown, deviations?: readonly string[]): void {
    if (this.steps.some((s) => s.label === label)) throw new Error(`transcript step ${label} recorded twice`);
    this.steps.push({ label, value: JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v)), ...(deviations ? { deviations } : {}) });
  }
  get(label: string): unknown {
    const s = this.steps.find((x) => x.label === label);
    return s === undefined ? undefined : JSON.parse(s.value);
  }
}

/** An answer as a plain comparable value: status in hex, the IC header flags as icflags, the decoded payload (the transaction id is left out). */
export function answer(a: HvAnswer): Record<string, unknown> {
  return { status: `0x${a.status.toString(16)}`, icflags: a.flags, ...a.result };
}

export const hex = (n: number): string => `0x${n.toString(16)}`;

export interface HypervCheckSpec {
  id: string;
  title: string;
  service: Service;
  mounts?: HvMount[];
  script(s: HypervSession, t: Transcript): Promise<void>;
  /** Golden facts for the model's transcript: a list of violations (empty = holds). */
  golden(t: Transcript, profile: KernelProfile): string[];
}

async function transcriptOf(target: Target, spec: HypervCheckSpec, profile: KernelProfile): Promise<Transcript> {
  const t = new Transcript(profile);
  const s = await target.openHyperv!(spec.service, { profile, ...(spec.mounts ? { mounts: spec.mounts } : {}) });
  try {
    await s.registered();
    await spec.script(s, t);
  } finally {
    await s.close();
  }
  return t;
}

/** Golden assertion helper: pushes a violation when `got` differs from `want` (as JSON). */
export function expectStep(out: string[], t: Transcript, label: string, want: unknown): void {
  const got = t.get(label);
  const a = JSON.stringify(got), b = JSON.stringify(want);
  if (a !== b) out.push(`${label}: expected ${b}, got ${a}`);
}

/** The host status recorded for a step (what `answer()` stored under `label`), if any. */
export function statusOf(t: Transcript, label: string): string | undefined {
  return (t.get(label) as { status?: string } | undefined)?.status;
}

export function hypervCheck(spec: HypervCheckSpec): Check {
  return {
    id: spec.id,
    suite: spec.service,
    title: spec.title,
    needs: [spec.service === "kvp" ? "kvp-daemon" : "vss-daemon"],
    async run(ctx: CheckContext): Promise<Outcome> {
      if (!ctx.target.openHyperv) return { status: "skipped", detail: `${ctx.target.name} cannot open Hyper-V sessions` };
      const problems: string[] = [];
      const deviations = new Set<string>();
      const model: Partial<Record<KernelProfile, Transcript>> = {};
      const real: Partial<Record<KernelProfile, Transcript>> = {};
      for (const p of PROFILES) {
        const m = (model[p] = await transcriptOf(ctx.model, spec, p));
        for (const v of spec.golden(m, p)) problems.push(`model [${p}] ${v}`);
        real[p] = ctx.target.name === ctx.model.name ? m : await transcriptOf(ctx.target, spec, p);
      }
      const who = ctx.target.name;
      // The target against the model, value for value.
      if (who !== ctx.model.name) {
        for (const p of PROFILES) {
          const a = real[p]!.steps, b = model[p]!.steps;
          for (let i = 0; i < Math.max(a.length, b.length); i++) {
            const x = a[i], y = b[i];
            if (x?.label !== y?.label) {
              problems.push(`[${p}] step ${i}: ${who} recorded ${x?.label ?? "nothing"}, model ${y?.label ?? "nothing"}`);
              break;
            }
            if (x!.value !== y!.value) problems.push(`[${p}] ${x!.label}: ${who} ${x!.value}, model ${y!.value}`);
          }
        }
      }
      // Profile differences on the target, each explained by a named deviation.
      const lin = real["linux-6.1"]!.steps, sp = real.spec!.steps;
      for (let i = 0; i < Math.min(lin.length, sp.length); i++) {
        const a = lin[i]!, b = sp[i]!;
        if (a.label !== b.label || a.value === b.value) continue;
        if (!a.deviations?.length) problems.push(`${a.label} differs between profiles without a named deviation: linux-6.1 ${a.value}, spec ${b.value}`);
        for (const d of a.deviations ?? []) deviations.add(d);
      }
      if (lin.length !== sp.length) problems.push(`the profiles recorded ${lin.length} and ${sp.length} steps`);
      const devs = [...deviations].sort();
      const steps = lin.length + sp.length;
      if (problems.length) return { status: "failed", detail: problems.slice(0, 12).join("; ") + (problems.length > 12 ? ` (+${problems.length - 12} more)` : ""), deviations: devs };
      return {
        status: "passed",
        detail: `${steps} steps over linux-6.1 and spec${who !== ctx.model.name ? ", equal to the model's" : ", golden facts hold"}${devs.length ? `; profiles differ by ${devs.join(", ")}` : ""}`,
        deviations: devs,
      };
    },
  };
}
