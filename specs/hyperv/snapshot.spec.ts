// Host, kernel and daemon states are plain data in bench snapshots (sim/snapshot): a bench saved
// in the middle of transactions (a request at the daemon, a timer pending, packets in flight)
// restores into a fresh bench and continues exactly as the original does — same answers, same
// pool files, same trace hash.
import { describe, expect, it } from "vitest";
import { rig, S } from "./helpers.ts";
import { saveSnapshot, restoreSnapshot } from "../../sim/snapshot/index.ts";
import { canonical, fromJSONValue, toJSONValue, type Plain } from "../../sim/clock/canonical.ts";
import { HYPERV_KINDS, hypervKinds } from "../../sim/devices/hyperv/index.ts";

function busy(seed: number) {
  const r = rig({ profile: "linux-6.1", vssDaemon: { script: [{ do: "delay", ns: 40 * S }] }, kvpDaemon: { script: [{ do: "answer" }, { do: "delay", ns: 31 * S }] } }, seed);
  r.host.kvpSet(0, "a", "1");
  r.host.kvpSet(1, "b", { u64: 5n });
  r.host.kvpEnumerate(1, 0);
  r.host.vss("freeze");
  r.host.vss("thaw");
  return r;
}

function finish(r: ReturnType<typeof rig>) {
  r.host.kvpDelete(0, "a");
  r.settle();
  return {
    hash: r.bench.traceHash(),
    now: r.bench.now,
    states: canonical(r.bench.devices().map((d) => [d.id, d.state]) as unknown as Plain),
  };
}

describe("hyperv device states in snapshots", () => {
  for (const at of [15_000, 45_000, 2 * S, 31 * S, 45 * S]) {
    it(`restores mid-run (at ${at} ns) and continues exactly`, () => {
      const a = busy(3);
      a.run(at);
      const snap = saveSnapshot(a.bench);
      const ref = finish(a);
      const b = busy(99); // different seed and history: everything comes from the snapshot
      const res = restoreSnapshot(b.bench, snap);
      expect(res.ok, res.ok ? "" : JSON.stringify(res)).toBe(true);
      expect(finish(b)).toEqual(ref);
    });
  }

  it("every state round-trips through JSON exactly and validates; broken states are refused", () => {
    const r = busy(1);
    r.run(20 * S);
    for (const d of r.bench.devices()) {
      const back = fromJSONValue(JSON.parse(JSON.stringify(toJSONValue(d.state))));
      expect(canonical(back)).toBe(canonical(d.state));
      expect(d.kind.validate(back)).toBeUndefined();
      expect(d.kind.stateVersion).toBe(1);
      expect(d.kind.validate({ ...(back as object), phase: "dancing", state: 9, kvp: null })).toBeTypeOf("string");
    }
    expect(HYPERV_KINDS.map((k) => k.type)).toEqual(["hyperv-host", "hv-utils", "hv-kvp-daemon", "hv-vss-daemon"]);
    expect(hypervKinds().types()).toEqual(["hv-kvp-daemon", "hv-utils", "hv-vss-daemon", "hyperv-host"]);
  });
});

describe("registration", () => {
  it("sim/devices/index.ts registers the four kinds", async () => {
    const { defaultKinds } = await import("../../sim/devices/index.ts");
    const types = defaultKinds().types();
    for (const t of ["hyperv-host", "hv-utils", "hv-kvp-daemon", "hv-vss-daemon"]) expect(types).toContain(t);
  });
});
