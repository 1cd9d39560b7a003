// Every conformance check declared under specs/ runs on the model target: each must pass, or be
// skipped with a stated reason — a model failing its own upstream golden values fails the suite.
import { describe, expect, it } from "vitest";
import { loadChecks, runConformance } from "../../sim/conform/runner.ts";
import { modelTarget } from "../../sim/conform/model-target.ts";

const checks = await loadChecks();

describe("conformance on the model target", () => {
  it("declares checks for the devices", () => {
    expect(new Set(checks.map((c) => c.suite)).size).toBeGreaterThan(0);
  });
  for (const c of checks) {
    it(`${c.id}: ${c.title}`, async () => {
      const report = await runConformance([modelTarget(1)], [c], { seed: 1 });
      const o = report.targets[0]!.results[0]!.outcome;
      expect(o.status === "failed" ? o.detail : "").toBe("");
      if (o.status === "skipped") expect(o.detail.length).toBeGreaterThan(0);
    });
  }
});
