// A conformance check must be able to fail: each check kind runs against a target that lies about
// one answer field and must fail, naming that difference.
//   - golden (a Hyper-V check held to upstream facts on the model): the liar stands in for the
//     model, so its transcript meets the golden facts;
//   - script (qtest replies against the model's, and golden replies): the liar alters one reply;
//   - random differential: the liar alters one field of one KVP/VSS answer deep in a sequence, and
//     the failure must be shrunk to a short replayable sequence that still shows it.
import { describe, expect, it } from "vitest";
import { modelTarget } from "../../sim/conform/model-target.ts";
import type { Check, Outcome } from "../../sim/conform/types.ts";
import { parseTranscript, replay } from "../../sim/conform/hyperv-differential.ts";
import { tapTarget } from "./wrap-target.ts";
import { checks as kvpChecks } from "../hyperv/kvp.check.ts";
import { checks as diffChecks } from "../hyperv/differential.check.ts";
import { checks as pmChecks } from "../pmtimer/pmtimer.check.ts";

const byId = (cs: Check[], id: string): Check => cs.find((c) => c.id === id)!;
const failedDetail = (o: Outcome): string => (o.status === "failed" ? o.detail : `not failed: ${o.status}`);

describe("every conformance check kind fails against a lying target", () => {
  it("golden: kvp/auto with the AUTO pool's IntegrationServicesVersion answered as 3.2 (hv_kvp_daemon.c reports the kernel's \"3.1\")", async () => {
    const model = modelTarget(1);
    const liar = tapTarget(model, () => ({ answer: (a) => (a.result.key === "IntegrationServicesVersion" ? { ...a, result: { ...a.result, value: "3.2" } } : a) }), "model");
    const o = await byId(kvpChecks, "kvp/auto").run({ target: liar, model: liar, seed: 1 });
    expect(failedDetail(o)).toContain('auto 1: {"status":"0x0","icflags":5,"index":1,"key":"IntegrationServicesVersion","value":"3.2"');
    expect(failedDetail(o)).toContain('expected IntegrationServicesVersion="3.1"');
  });

  it("script: a pmtimer script whose target answers one read with a different value", async () => {
    const model = modelTarget(1);
    const liar = tapTarget(model, () => {
      let n = 0;
      return { reply: (r, cmd) => (cmd.startsWith("in") && ++n === 3 ? "OK 0xdead" : r) };
    });
    const c = pmChecks.find((x) => x.id === "pmtimer/q35-random-steps")!;
    const o = await c.run({ target: liar, model, seed: 1 });
    expect(failedDetail(o)).toMatch(/OK 0xdead/);
  });

  for (const service of ["kvp", "vss"] as const) {
    it(`random differential (${service}): one answer's status altered mid-sequence fails, is shrunk, and the transcript replays the failure`, async () => {
      const model = modelTarget(1);
      // Lies about the 9th answer of every session (the model session answers the same way each replay).
      const lie = () =>
        tapTarget(
          model,
          () => {
            let n = 0;
            return { answer: (a) => (++n === 9 ? { ...a, status: 0x80004005 } : a) };
          },
          "liar",
        );
      const o = await byId(diffChecks, `${service}/random-differential`).run({ target: lie(), model, seed: 1 });
      const d = failedDetail(o);
      expect(d).toMatch(/^seed 1: status: target "0x80004005", model "0x[0-9a-f]+"/);
      const text = d.slice(d.indexOf("\n") + 1);
      const ops = parseTranscript(text);
      // Shrunk: the lie needs 9 answers (1 negotiation + 8 ops), not the sequence's 30-40.
      expect(ops.length).toBeLessThanOrEqual(8);
      const r = await replay(lie(), model, service, ops);
      expect(r.mismatch?.fields[0]).toMatch(/^status: target "0x80004005"/);
    });
  }
});
