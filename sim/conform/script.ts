// A conformance check written as a qtest command script: the target's replies (and the IRQ lines
// it reports) must equal the model's, line for line. Against the model itself that comparison
// proves nothing, so there the script is held to golden replies taken from upstream facts.
import type { Capability, Check, CheckContext, Outcome, QtestMachine } from "./types.ts";

export interface ScriptStep {
  /** The qtest command line. */
  readonly cmd: string;
  /** Upstream golden reply (source named where the check is declared), if any. */
  readonly golden?: string;
  /** IRQ lines expected right before this reply (upstream facts), if any. */
  readonly goldenIrq?: readonly string[];
  /**
   * A refusal: replies are compared up to their first ':' only ("FAIL EIO:"), as the words after
   * it are each implementation's own (hvsim answers "FAIL EIO: bhyve vpmtmr: ...").
   */
  readonly errnoOnly?: boolean;
}

/** The part of a reply a step compares. */
const compared = (st: ScriptStep, reply: string): string => (st.errnoOnly && reply.includes(":") ? reply.slice(0, reply.indexOf(":") + 1) : reply);

export interface ScriptCheckSpec {
  readonly id: string;
  readonly suite: string;
  readonly title: string;
  readonly machine: QtestMachine;
  readonly needs?: readonly Capability[];
  readonly steps: readonly ScriptStep[] | ((seed: number) => readonly ScriptStep[]);
}

interface Transcript {
  replies: string[];
  irqs: string[][];
}

async function play(ctx: CheckContext, which: "target" | "model", machine: QtestMachine, steps: readonly ScriptStep[]): Promise<Transcript> {
  const t = which === "target" ? ctx.target : ctx.model;
  if (!t.openQtest) throw new Error(`${t.name} has no qtest session`);
  const s = await t.openQtest(machine);
  const out: Transcript = { replies: [], irqs: [] };
  try {
    for (const st of steps) {
      out.replies.push(await s.command(st.cmd));
      out.irqs.push(s.takeIrqLines());
    }
  } finally {
    await s.close();
  }
  return out;
}

export function scriptCheck(spec: ScriptCheckSpec): Check {
  const needs: Capability[] = [...(spec.needs ?? ["clock", "portio"]), `machine:${spec.machine}`];
  return {
    id: spec.id,
    suite: spec.suite,
    title: spec.title,
    needs,
    async run(ctx): Promise<Outcome> {
      const steps = typeof spec.steps === "function" ? spec.steps(ctx.seed) : spec.steps;
      const got = await play(ctx, "target", spec.machine, steps);
      const problems: string[] = [];
      const real = ctx.target.name !== ctx.model.name;
      const want = real ? await play(ctx, "model", spec.machine, steps) : undefined;
      // The virtual time each step ran at, from the target's last clock reply ("OK <ns>").
      let ns = "";
      steps.forEach((st, i) => {
        const step = `step ${i + 1} '${st.cmd}'${ns ? ` at ${ns} ns` : ""}`;
        const clock = /^clock_(step|set)\b/.test(st.cmd) ? /^OK (\d+)$/.exec(got.replies[i]!) : null;
        if (clock) ns = clock[1]!;
        const r = compared(st, got.replies[i]!);
        const m = want && compared(st, want.replies[i]!);
        const gr = got.replies[i]!, mr = want?.replies[i];
        const badGolden = st.golden !== undefined && r !== st.golden;
        const badModel = m !== undefined && m !== r;
        // One line when the model agrees with the upstream value the target missed.
        if (badGolden && badModel && m === st.golden) problems.push(`${step}: expected '${st.golden}' (upstream; the model agrees), got '${gr}'`);
        else {
          if (badGolden) problems.push(`${step}: expected '${st.golden}' (upstream), got '${gr}'`);
          if (badModel) problems.push(`${step}: model replies '${mr}', ${ctx.target.name} '${gr}'`);
        }
        const gi = got.irqs[i]!.join(", ");
        const badIrq = st.goldenIrq !== undefined && gi !== st.goldenIrq.join(", ");
        const mi = want?.irqs[i]!.join(", ");
        const badModelIrq = mi !== undefined && mi !== gi;
        if (badIrq && badModelIrq && mi === st.goldenIrq!.join(", ")) problems.push(`${step}: expected IRQ lines [${mi}] (upstream; the model agrees), got [${gi}]`);
        else {
          if (badIrq) problems.push(`${step}: expected IRQ lines [${st.goldenIrq!.join(", ")}] (upstream), got [${gi}]`);
          if (badModelIrq) problems.push(`${step}: model IRQ lines [${mi}], ${ctx.target.name} [${gi}]`);
        }
      });
      if (!real && !steps.some((s) => s.golden !== undefined || s.goldenIrq !== undefined)) {
        return { status: "skipped", detail: "no upstream golden values: this qtest command sequence is only compared between a real target and the model" };
      }
      if (problems.length) return { status: "failed", detail: problems.slice(0, 10).join("\n") + (problems.length > 10 ? `\n(+${problems.length - 10} more)` : "") };
      return { status: "passed", detail: `${steps.length} commands` };
    },
  };
}
