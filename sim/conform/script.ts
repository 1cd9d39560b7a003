// A conformance check written as a qtest command script: the target's replies (and the IRQ lines
// it reports) must equal the model's, line for line. Against the model itself that comparison
// proves nothing, so there the script is held to golden replies taken from upstream facts.
// A script with `control` runs on a machine under host-side control (capability
// "vmgenid-control"), and a step may be an action on it (`run`: firmware's fw_cfg steps, a save
// and restore) instead of one command line.
import type { MachineControl, MachineControlOptions } from "./machine-control.ts";
import type { Capability, Check, CheckContext, Outcome, QtestMachine, QtestSession } from "./types.ts";

export interface ScriptStep {
  /** The qtest command line (with `run`: what the action does, for messages). */
  readonly cmd: string;
  /**
   * Runs this step instead of sending `cmd`; resolves with what stands for its reply. Given a
   * MachineControl when the script has `control`, else the plain qtest session.
   */
  readonly run?: (s: QtestSession | MachineControl) => Promise<string>;
  /** What is compared instead of the reply itself (for replies random by design, e.g. a guid=auto GUID). */
  readonly shape?: (reply: string) => string;
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
  /** Open the machine with openMachineControl (capability "vmgenid-control") and these options. */
  readonly control?: MachineControlOptions;
  readonly steps: readonly ScriptStep[] | ((seed: number) => readonly ScriptStep[]);
}

interface Transcript {
  replies: string[];
  irqs: string[][];
}

async function open(t: CheckContext["target"], machine: QtestMachine, control: MachineControlOptions | undefined): Promise<QtestSession | MachineControl> {
  if (control) {
    if (!t.openMachineControl) throw new Error(`${t.name} has no machine control`);
    return t.openMachineControl(machine, control);
  }
  if (!t.openQtest) throw new Error(`${t.name} has no qtest session`);
  return t.openQtest(machine);
}

async function play(ctx: CheckContext, which: "target" | "model", spec: ScriptCheckSpec, steps: readonly ScriptStep[]): Promise<Transcript> {
  const s = await open(which === "target" ? ctx.target : ctx.model, spec.machine, spec.control);
  const out: Transcript = { replies: [], irqs: [] };
  try {
    for (const st of steps) {
      const reply = st.run ? await st.run(s) : await s.command(st.cmd);
      out.replies.push(st.shape ? st.shape(reply) : reply);
      out.irqs.push(s.takeIrqLines());
    }
  } finally {
    await s.close();
  }
  return out;
}

export function scriptCheck(spec: ScriptCheckSpec): Check {
  const needs: Capability[] = [...(spec.needs ?? ["clock", "portio"]), `machine:${spec.machine}`, ...(spec.control ? (["vmgenid-control"] as const) : [])];
  return {
    id: spec.id,
    suite: spec.suite,
    title: spec.title,
    needs,
    async run(ctx): Promise<Outcome> {
      const steps = typeof spec.steps === "function" ? spec.steps(ctx.seed) : spec.steps;
      const got = await play(ctx, "target", spec, steps);
      const problems: string[] = [];
      const real = ctx.target.name !== ctx.model.name;
      const want = real ? await play(ctx, "model", spec, steps) : undefined;
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
