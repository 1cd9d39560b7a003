// Version negotiation as vmbus_prep_negotiate_resp (Linux 6.1 drivers/hv/channel_mgmt.c) does it
// for the versions hv_kvp.c (framework 3.0, 1.0; service 4.0, 3.0, 1.0) and hv_snapshot.c
// (framework 3.0; service 5.0) offer; IC framing per include/linux/hyperv.h.
import { describe, expect, it } from "vitest";
import { rig, S } from "./helpers.ts";
import { IC, buildIcFrame, buildNegotiate, prepNegotiateResp, rd16 } from "../../sim/devices/hyperv/index.ts";
import { ICMSGTYPE_NEGOTIATE, KVP_FW_VERSIONS, KVP_SRV_VERSIONS } from "../../sim/wire/hyperv-constants.ts";

const v = (s: string) => ({ major: Number(s.split(".")[0]), minor: Number(s.split(".")[1]) });
function packet(fw: string[], srv: string[], counts?: { fw?: number; msg?: number }): Uint8Array {
  return buildIcFrame({ msgType: ICMSGTYPE_NEGOTIATE, payload: buildNegotiate(fw.map(v), srv.map(v), counts) });
}
function resp(p: Uint8Array, len = p.length) {
  const buf = new Uint8Array(16384);
  buf.set(p);
  const picked = prepNegotiateResp(buf, len, KVP_FW_VERSIONS, KVP_SRV_VERSIONS);
  const at = (j: number) => `${rd16(buf, IC.negData + 4 * j)}.${rd16(buf, IC.negData + 4 * j + 2)}`;
  return { picked, size: rd16(buf, IC.icmsgsize), counts: [rd16(buf, IC.negFwCount), rd16(buf, IC.negMsgCount)], data: [at(0), at(1)] };
}

describe("vmbus_prep_negotiate_resp with the KVP versions", () => {
  it("picks the guest's first framework version the host offers, then its first service version", () => {
    expect(resp(packet(["1.0", "3.0"], ["3.0", "4.0", "5.0"]))).toEqual({ picked: { fw: 0x30000, srv: 0x40000 }, size: 0x10, counts: [1, 1], data: ["3.0", "4.0"] });
    expect(resp(packet(["1.0"], ["1.0"]))).toMatchObject({ counts: [1, 1], data: ["1.0", "1.0"] });
  });

  it("no common framework: counts 0/0, data[0]/data[1] carry the host's counts", () => {
    expect(resp(packet(["2.0", "9.9"], ["4.0"]))).toEqual({ picked: undefined, size: 0x10, counts: [0, 0], data: ["2.0", "1.0"] });
  });

  it("framework found but no service: counts 0/0, data[0] the framework, data[1] the service count", () => {
    expect(resp(packet(["3.0"], ["5.0", "6.0", "7.0"]))).toMatchObject({ picked: undefined, counts: [0, 0], data: ["3.0", "3.0"] });
  });

  it("a count over 100 (IC_VERSION_NEGOTIATION_MAX_VER_COUNT) or a version array past the packet fails", () => {
    const big = packet(["3.0"], ["4.0"], { fw: 101 });
    expect(resp(big)).toMatchObject({ picked: undefined, counts: [0, 0], data: ["101.0", "1.0"] });
    const short = packet(["3.0", "1.0"], ["4.0"]);
    expect(resp(short, short.length - 1)).toMatchObject({ picked: undefined, counts: [0, 0] });
  });

  it("a buffer shorter than 28 + 4 bytes is left as it is (no icmsgsize rewrite)", () => {
    const p = packet(["3.0"], ["4.0"]);
    const r = resp(p, 31);
    expect(r.picked).toBeUndefined();
    expect(r.size).toBe(16); // unchanged: the host's icmsgsize was the 16-byte body
    expect(r.counts).toEqual([1, 1]);
  });
});

describe("negotiation through the channel", () => {
  it("KVP answers with framework 3.0 / service 4.0 and TRANSACTION|RESPONSE; VSS with 3.0 / 5.0", () => {
    const r = rig({ host: { offers: { kvp: { framework: ["3.0", "1.0"], service: ["5.0", "4.0", "3.0"] } } } });
    const k = r.host.negotiate("kvp");
    const vs = r.host.negotiate("vss");
    r.settle();
    expect(r.host.answer("kvp", k)).toMatchObject({ status: 0, flags: 5, result: { fwCount: 1, msgCount: 1, framework: "3.0", service: "4.0", icmsgsize: 16 } });
    expect(r.host.answer("vss", vs)).toMatchObject({ status: 0, flags: 5, result: { framework: "3.0", service: "5.0" } });
    expect(r.kernel.svc("kvp").negotiated).toEqual({ fw: "3.0", srv: "4.0" });
  });

  it("VSS negotiates without a daemon; KVP does not", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: false, host: { timeoutNs: "none" } }); // "no answer" for 100 s
    const k = r.host.negotiate("kvp");
    const vs = r.host.negotiate("vss");
    r.run(100 * S);
    expect(r.host.answer("vss", vs)?.status).toBe(0);
    expect(r.host.answer("kvp", k)).toBeUndefined();
  });

  it("drops packets shorter than the 28-byte header and unknown message types without answering", () => {
    const r = rig({ kvpDaemon: false, host: { timeoutNs: "none" } }); // "no answer, ever"
    r.settle();
    const a = r.host.sendRaw("vss", new Uint8Array(27), { force: true });
    const b = r.host.sendRaw("vss", buildIcFrame({ msgType: 9, payload: new Uint8Array(16) }), { force: true });
    const c = r.host.sendRaw("vss", buildIcFrame({ msgType: 5, payload: new Uint8Array(11) }), { force: true }); // VSS < 28 + 12
    r.settle();
    expect([a, b, c].map((i) => r.host.answer("vss", i))).toEqual([undefined, undefined, undefined]);
    expect(r.kernel.svc("vss").stats.dropped).toBe(3);
  });
});
