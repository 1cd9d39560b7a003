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
}

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
      steps.forEach((st, i) => {
        if (st.golden !== undefined && got.replies[i] !== st.golden) {
          problems.push(`step ${i + 1} '${st.cmd}': expected '${st.golden}' (upstream), got '${got.replies[i]}'`);
        }
        if (st.goldenIrq !== undefined && got.irqs[i]!.join("|") !== st.goldenIrq.join("|")) {
          problems.push(`step ${i + 1} '${st.cmd}': expected IRQ lines [${st.goldenIrq.join(", ")}] (upstream), got [${got.irqs[i]!.join(", ")}]`);
        }
      });
      if (ctx.target.name !== ctx.model.name) {
        const want = await play(ctx, "model", spec.machine, steps);
        steps.forEach((st, i) => {
          if (want.replies[i] !== got.replies[i]) problems.push(`step ${i + 1} '${st.cmd}': model replies '${want.replies[i]}', ${ctx.target.name} '${got.replies[i]}'`);
          const a = want.irqs[i]!.join("|"), b = got.irqs[i]!.join("|");
          if (a !== b) problems.push(`step ${i + 1} '${st.cmd}': model IRQ lines [${a}], ${ctx.target.name} [${b}]`);
        });
      } else if (!steps.some((s) => s.golden !== undefined || s.goldenIrq !== undefined)) {
        return { status: "skipped", detail: "no upstream golden values: this qtest command sequence is only compared between a real target and the model" };
      }
      if (problems.length) return { status: "failed", detail: problems.slice(0, 10).join("\n") + (problems.length > 10 ? `\n(+${problems.length - 10} more)` : "") };
      return { status: "passed", detail: `${steps.length} commands` };
    },
  };
}
