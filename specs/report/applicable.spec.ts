// The runner marks a skip for a missing capability `applicable: false`; the report leaves those
// out of its counts and counts every other skip (an unavailable target, a check that skips itself).
import { describe, expect, it } from "vitest";
import { runConformance } from "../../sim/conform/runner.ts";
import type { Capability, Check, Target } from "../../sim/conform/types.ts";
import { tally, verdictOf } from "../../sim/report/conform-matrix.ts";

const target = (name: string, caps: Capability[], avail: true | string = true): Target => ({
  name,
  description: name,
  capabilities: new Set(caps),
  available: () => Promise.resolve(avail),
});
const check = (id: string, needs: Capability[], run: Check["run"] = () => Promise.resolve({ status: "passed" })): Check => ({ id, suite: id.split("/")[0]!, title: id, needs, run });

describe("applicable checks", () => {
  it("a capability skip is not applicable; other skips and passes count", async () => {
    const checks = [
      check("kvp/a", ["kvp-daemon"]),
      check("pmtimer/b", ["portio", "clock"]),
      check("pmtimer/c", ["portio"], () => Promise.resolve({ status: "skipped", detail: "nothing to compare" })),
    ];
    const r = await runConformance([target("d", ["kvp-daemon"]), target("q", ["portio", "clock"]), target("gone", ["portio"], "not installed")], checks, { seed: 1 });
    const [d, q, gone] = r.targets;
    expect(d!.results.map((x) => x.outcome)).toEqual([
      { status: "passed" },
      { status: "skipped", detail: "d lacks portio, clock", applicable: false },
      { status: "skipped", detail: "d lacks portio", applicable: false },
    ]);
    expect(tally(d!.results)).toEqual({ passed: 1, failed: 0, skipped: 0, na: 2, applicable: 1 });
    expect(tally(q!.results)).toEqual({ passed: 1, failed: 0, skipped: 1, na: 1, applicable: 2 });
    // An unavailable target's skips apply to it (it could run them): counted, with the reason.
    expect(tally(gone!.results)).toEqual({ passed: 0, failed: 0, skipped: 3, na: 0, applicable: 3 });
  });

  it("reads reports written before the field existed by their reason", () => {
    const r = (detail: string) => ({ id: "x/y", suite: "x", title: "", ms: 0, outcome: { status: "skipped" as const, detail } });
    expect(verdictOf(r("hv-daemon:vss lacks clock, portio, machine:q35"))).toBe("n/a");
    expect(verdictOf(r("target unavailable: hv_kvp_daemon is not installed"))).toBe("skipped");
    expect(verdictOf(r("no upstream golden values: this script only compares a real target with the model"))).toBe("skipped");
  });
});
