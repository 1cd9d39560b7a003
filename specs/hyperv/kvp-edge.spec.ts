// Malformed and oversized host input, and the IP operations. Expectations from Linux 6.1
// drivers/hv/hv_kvp.c (kvp_send_key, process_ib_ipinfo/process_ob_ipinfo, hv_kvp_onchannelcallback:
// a 4-page receive buffer, no length check of the KVP payload), drivers/hv/ring_buffer.c
// (hv_ringbuffer_read: a packet larger than the buffer is -ENOBUFS and stays in the ring) and
// tools/hv/hv_kvp_daemon.c (kvp_mac_to_ip, kvp_get_if_name, kvp_set_ip_info).
import { describe, expect, it } from "vitest";
import { rig, S } from "./helpers.ts";
import { K, KVP_MSG_SIZE, buildIcFrame, rd32, utf16leBytes, wr32 } from "../../sim/devices/hyperv/index.ts";
import { HV_E_FAIL, HV_GUID_NOTFOUND, ICMSGTYPE_KVPEXCHANGE, KVP_OP_SET, REG_SZ } from "../../sim/wire/hyperv-constants.ts";

/** A host SET payload written byte by byte: key field all 'A' (no terminator), value "v". */
function unterminatedKeySet(keySize: number): Uint8Array {
  const m = new Uint8Array(KVP_MSG_SIZE);
  m[K.op] = KVP_OP_SET;
  m[K.pool] = 1;
  wr32(m, K.valueType, REG_SZ);
  wr32(m, K.keySize, keySize);
  wr32(m, K.valueSize, 4);
  m.set(utf16leBytes("A".repeat(256)), K.key); // 512 bytes, no U+0000
  m.set(utf16leBytes("v\0"), K.value);
  return m;
}

describe("host size fields the kernel does not check", () => {
  it("a key without a terminator and key_size 512: linux-6.1 converts 512 units, reading on into the value", () => {
    const got: Record<string, [string, string][]> = {};
    for (const profile of ["linux-6.1", "spec"] as const) {
      const r = rig({ profile, vssDaemon: false });
      r.host.negotiate("kvp");
      r.settle();
      const id = r.host.sendRaw("kvp", buildIcFrame({ msgType: ICMSGTYPE_KVPEXCHANGE, transactionId: 9, payload: unterminatedKeySet(512) }));
      r.settle();
      expect(r.host.answer("kvp", id)!.status).toBe(0);
      got[profile] = r.kvpd!.entries(1);
    }
    expect(got["linux-6.1"]).toEqual([["A".repeat(256) + "v", "v"]]);
    expect(got["spec"]).toEqual([["A".repeat(256), "v"]]);
  });

  it("an absurd key_size (0xffffffff) is not refused: conversion stops at U+0000 and at 511 bytes", () => {
    const r = rig({ vssDaemon: false });
    r.host.negotiate("kvp");
    r.settle();
    const p = unterminatedKeySet(0xffffffff);
    p.set(utf16leBytes("B".repeat(1000)), K.value); // no terminator in the value either
    const id = r.host.sendRaw("kvp", buildIcFrame({ msgType: ICMSGTYPE_KVPEXCHANGE, payload: p }));
    r.settle();
    expect(r.host.answer("kvp", id)!.status).toBe(0);
    const [[key]] = r.kvpd!.entries(1) as [[string, string]];
    expect(key.length).toBe(511);
  });

  it("a KVP payload shorter than hv_kvp_msg is processed with the receive buffer's stale bytes (no length check)", () => {
    const r = rig({ vssDaemon: false });
    r.host.kvpSet(0, "first", "1");
    r.settle();
    // Only the 4-byte header of a SET: the key and sizes come from the previous packet's bytes.
    const id = r.host.sendRaw("kvp", buildIcFrame({ msgType: ICMSGTYPE_KVPEXCHANGE, payload: new Uint8Array([KVP_OP_SET, 0, 0, 0]) }));
    r.settle();
    const a = r.host.answer("kvp", id)!;
    expect(a.status).toBe(0);
    expect(a.length).toBe(28 + 4); // the answer is as long as the request
    expect(r.kvpd!.entries(0)).toEqual([["first", "1"]]); // the stale SET, applied again
  });

  it("a packet larger than the 16384-byte receive buffer stays in the ring: the channel stalls, and the host's timeouts do not unstall it", () => {
    const r = rig({ vssDaemon: false });
    r.host.negotiate("kvp");
    r.settle();
    const sent = r.bench.now;
    const big = r.host.sendRaw("kvp", new Uint8Array(16385));
    const next = r.host.kvpEnumerate(2, 0);
    r.run(100 * S);
    // The guest answers neither; the host gives up on each after 35 s (hostTimeoutNs), and the
    // request it sends next lands in the ring behind the packet the guest cannot read.
    expect(r.host.answer("kvp", big)).toMatchObject({ status: -1, result: { timedOut: true }, at: sent + 35 * S });
    expect(r.host.answer("kvp", next)).toMatchObject({ status: -1, result: { timedOut: true }, at: sent + 70 * S });
    expect(r.kernel.svc("kvp").ring.length).toBe(2);
    expect(r.kernel.svc("kvp").stats.stalled).toBeGreaterThan(0);
    expect(r.kernel.svc("kvp").stats.answers).toBe(1); // the negotiation only
  });
});

describe("GET_IP_INFO / SET_IP_INFO with configured adapters", () => {
  const adapters = [
    { mac: "00:15:5d:01:02:03", deviceId: "{f8615163-df3e-46c5-913f-f2d2f965ed0e}", ifName: "eth0", dhcpEnabled: 1, ipAddr: "192.0.2.7;2001:db8::7", subNet: "255.255.255.0;64", gateWay: "192.0.2.1", dnsAddr: "192.0.2.53" },
  ];

  it("GET_IP_INFO by upper-case MAC answers the adapter's addresses in UTF-16; an unknown MAC is HV_E_FAIL", () => {
    const r = rig({ vssDaemon: false, kvpDaemon: { adapters } });
    const ok = r.host.kvp({ op: "get-ip-info", adapterId: "00:15:5D:01:02:03", addrFamily: 1 });
    const lower = r.host.kvp({ op: "get-ip-info", adapterId: "00:15:5d:01:02:03" });
    r.settle();
    expect(r.host.answer("kvp", ok)!).toMatchObject({
      status: 0,
      result: { adapterId: "00:15:5D:01:02:03", ipAddr: "192.0.2.7;2001:db8::7", subNet: "255.255.255.0;64", gateWay: "192.0.2.1", dnsAddr: "192.0.2.53", dhcpEnabled: 1, addrFamily: 1 },
    });
    expect(r.host.answer("kvp", lower)!.status).toBe(HV_E_FAIL);
  });

  it("SET_IP_INFO by device GUID reaches the daemon converted to UTF-8; the missing hv_set_ifconfig makes it HV_E_FAIL; an unknown GUID is HV_GUID_NOTFOUND", () => {
    const r = rig({ vssDaemon: false, kvpDaemon: { adapters } });
    const known = r.host.kvp({ op: "set-ip-info", adapterId: adapters[0]!.deviceId, addrFamily: 1, dhcpEnabled: 0, ipAddr: "10.1.2.3", subNet: "255.0.0.0", gateWay: "10.0.0.1", dnsAddr: "10.0.0.53" });
    const unknown = r.host.kvp({ op: "set-ip-info", adapterId: "{00000000-0000-0000-0000-000000000000}" });
    r.settle();
    expect(r.host.answer("kvp", known)!.status).toBe(HV_E_FAIL);
    expect(r.host.answer("kvp", unknown)!.status).toBe(HV_GUID_NOTFOUND);
    expect(r.kvpd!.state.ipSettings).toEqual([{ ifName: "eth0", ipAddr: "10.1.2.3", subNet: "255.0.0.0", gateWay: "10.0.0.1", dnsAddr: "10.0.0.53", dhcpEnabled: 0 }]);
  });

  it("SET_IP_INFO succeeds when the configuration says the script ran", () => {
    const r = rig({ vssDaemon: false, kvpDaemon: { adapters, setIpInfoStatus: 0 } });
    const id = r.host.kvp({ op: "set-ip-info", adapterId: adapters[0]!.deviceId, ipAddr: "10.9.9.9" });
    r.settle();
    expect(r.host.answer("kvp", id)!.status).toBe(0);
    expect(rd32(r.host.state.kvp.lastBytes!, 12 + 8)).toBe(0);
  });
});
