// The host's transaction timeout (issue 12): under the linux-6.1 kernel profile two VSS packets in
// the ring at once lose the first transaction (deviation vss-request-overwrite: drivers/hv/
// hv_snapshot.c:301-304 hv_vss_onchannelcallback reads the channel again while the state is still
// READY, so the second packet overwrites the first in recv_buffer and only it is answered). A host
// that never times out then keeps that transaction outstanding and every later request queues
// behind it forever. With timeoutNs "hyperv" (the default) the host gives up after the guest
// kernel's own timeout plus 5 s (hostTimeoutNs: 30 s + 5 s for a HOT_BACKUP, 900 s + 5 s for a
// FREEZE, hv_snapshot.c:40 VSS_FREEZE_TIMEOUT and :195-196 / hv_kvp.c:727-728 HV_UTIL_TIMEOUT — the
// Hyper-V host's own value is not publicly documented) and the queue moves on. timeoutNs "none" is
// the explicit opt-out.
import { describe, expect, it } from "vitest";
import { rig, S } from "./helpers.ts";
import { hostTimeoutNs } from "../../sim/devices/hyperv/host.ts";

function burstThenNext(timeoutNs?: "hyperv" | "none") {
  const r = rig({ vssDaemon: { mounts: [] }, ...(timeoutNs ? { host: { timeoutNs } } : {}) });
  r.settle(60 * S);
  r.host.negotiate("vss");
  r.settle(60 * S);
  const sent = r.bench.now;
  const first = r.host.vss("hot-backup", { force: true });
  const second = r.host.vss("hot-backup", { force: true });
  const later = r.host.vss("get-dm-info");
  r.settle(3600 * S);
  return { r, sent, first, second, later };
}

describe("host transaction timeout", () => {
  it("chooses the guest kernel's timeout plus 5 s: 35 s for KVP and non-FREEZE VSS ops, 905 s for a VSS FREEZE", () => {
    expect(hostTimeoutNs("kvp", "kvp", 1)).toBe(35 * S);
    expect(hostTimeoutNs("vss", "vss", 2)).toBe(35 * S);
    expect(hostTimeoutNs("vss", "vss", 5)).toBe(905 * S);
  });

  it("opted out (timeoutNs none), the transaction lost by a linux-6.1 VSS burst stalls every later request", () => {
    const { r, first, second, later } = burstThenNext("none");
    expect(r.host.answer("vss", second)?.status).toBe(0);
    expect(r.host.answer("vss", first)).toBeUndefined();
    expect(r.host.answer("vss", later)).toBeUndefined();
    expect(r.host.idle("vss")).toBe(false);
  });

  for (const how of ["by default", "with timeoutNs hyperv"] as const) {
  it(`${how}, the lost transaction times out after 35 s of virtual time and the queued request is answered`, () => {
    const { r, sent, first, second, later } = burstThenNext(how === "by default" ? undefined : "hyperv");
    expect(r.host.answer("vss", second)?.status).toBe(0);
    const lost = r.host.answer("vss", first)!;
    expect(lost.result).toEqual({ timedOut: true });
    expect(lost.at - sent).toBe(35 * S);
    const a = r.host.answer("vss", later)!;
    expect(a.status).toBe(0);
    expect(a.sentAt).toBe(lost.at);
    expect(r.host.idle("vss")).toBe(true);
    expect(r.host.svc("vss").timedOut).toEqual([{ id: first, at: lost.at }]);
  });
  }

  it("a FREEZE the guest never answers times out after 905 s; a bad timeoutNs is refused by name", () => {
    const r = rig({ vssDaemon: { mounts: [] } });
    r.host.negotiate("vss");
    r.settle(60 * S);
    r.kernel.destroy("vss"); // DEVICE_DYING: the guest drops every packet (rx-after-destroy)
    const sent = r.bench.now;
    const id = r.host.vss("freeze");
    r.settle(3600 * S);
    expect(r.host.answer("vss", id)).toMatchObject({ status: -1, result: { timedOut: true }, at: sent + 905 * S });
    expect(() => rig({ host: { timeoutNs: "never" } })).toThrow(/timeoutNs must be "hyperv", "none" or whole ns >= 0, got "never"/);
    expect(() => rig({ host: { timeoutNs: -1 } })).toThrow(/timeoutNs must be/);
  });

  it("an answered transaction leaves no timeout event behind", () => {
    const r = rig({ vssDaemon: { mounts: [] } });
    r.settle(60 * S);
    const id = r.host.vss("thaw");
    r.settle(60 * S);
    expect(r.host.answer("vss", id)?.status).toBe(0);
    expect(r.bench.clock.pendingEvents().filter((e) => e.kind === "host.timeout")).toEqual([]);
    expect(r.host.svc("vss").timedOut).toEqual([]);
  });
});
