// KVP through all three actors. Expectations from Linux 6.1 drivers/hv/hv_kvp.c (registration,
// kvp_send_key, kvp_respond_to_host, timeouts), drivers/hv/hv_utils_transport.c, and Debian
// hyperv-daemons 6.1 tools/hv/hv_kvp_daemon.c (pool semantics, AUTO pool); constants from
// include/uapi/linux/hyperv.h.
import { describe, expect, it } from "vitest";
import { rig, S, MS } from "./helpers.ts";
import { AUTO_KEYS, EINVAL, K, KVP_MSG_SIZE, encodePoolFile, parseKvpMsg, rd32, utf8Bytes, type HvtResult } from "../../sim/devices/hyperv/index.ts";
import {
  HV_E_FAIL,
  HV_S_CONT,
  HVUTIL_DEVICE_INIT,
  HVUTIL_READY,
  KVP_OP_REGISTER,
  KVP_OP_REGISTER1,
  REG_SZ,
} from "../../sim/wire/hyperv-constants.ts";
import { toHex } from "../../sim/clock/canonical.ts";

const msg = (op: number) => {
  const m = new Uint8Array(KVP_MSG_SIZE);
  m[K.op] = op;
  return m;
};

describe("KVP daemon registration (hv_kvp.c kvp_handle_handshake / kvp_register)", () => {
  it("REGISTER1 (100) is answered with a 7432-byte message, op 100, version \"3.1\"; READY only once it is read", () => {
    const { kernel } = rig({ kvpDaemon: false, vssDaemon: false });
    kernel.open("kvp", "me");
    expect(kernel.write("kvp", "me", msg(KVP_OP_REGISTER1))).toBe(KVP_MSG_SIZE);
    expect(kernel.svc("kvp").state).toBe(HVUTIL_DEVICE_INIT);
    const reply = kernel.read("kvp", "me", KVP_MSG_SIZE) as Uint8Array;
    expect(reply.length).toBe(7432);
    const v = parseKvpMsg(reply);
    expect(v.ok && v.value.operation).toBe(100);
    expect(v.ok && v.value.version).toBe("3.1");
    expect(kernel.svc("kvp").state).toBe(HVUTIL_READY);
  });

  it("accepts the legacy REGISTER (4) and answers with op 4; any other op is EINVAL", () => {
    const { kernel } = rig({ kvpDaemon: false, vssDaemon: false });
    kernel.open("kvp", "me");
    expect(kernel.write("kvp", "me", msg(7))).toBe(-EINVAL);
    expect(kernel.write("kvp", "me", msg(KVP_OP_REGISTER))).toBe(KVP_MSG_SIZE);
    const reply = kernel.read("kvp", "me", KVP_MSG_SIZE) as Uint8Array;
    expect(reply[K.op]).toBe(KVP_OP_REGISTER);
  });

  it("a registration write shorter than 7432 bytes is EINVAL", () => {
    const { kernel } = rig({ kvpDaemon: false, vssDaemon: false });
    kernel.open("kvp", "me");
    expect(kernel.write("kvp", "me", msg(KVP_OP_REGISTER1).subarray(0, 7431))).toBe(-EINVAL);
  });

  it("before registration the host gets no answer at all — negotiation included; after it, everything queued is answered", () => {
    // About the guest answering nothing for 120 s: the host must not give up (timeoutNs "none").
    const r = rig({ kvpDaemon: { autostart: false }, vssDaemon: false, host: { timeoutNs: "none" } });
    const id = r.host.kvpSet(0, "k", "v");
    r.run(120 * S);
    expect(r.host.state.kvp.answers).toEqual([]);
    expect(r.kernel.svc("kvp").ring.length).toBe(1); // the negotiation, unread
    expect(r.host.state.kvp.queue.length).toBe(1); // the SET waits behind it (one transaction at a time)
    r.kvpd!.start();
    r.settle();
    expect(r.host.state.kvp.answers.map((a) => [a.id, a.kind, a.status])).toEqual([
      [1, "negotiate", 0],
      [id, "kvp", 0],
    ]);
  });

  it("arms the 55 s handshake timer (HV_UTIL_NEGO_TIMEOUT) at the first unread packet; it re-polls without answering", () => {
    const r = rig({ kvpDaemon: { autostart: false }, vssDaemon: false, host: { timeoutNs: "none" } });
    const fired: number[] = [];
    r.bench.clock.trace.listen((rec) => {
      if (rec.fields[1] === "handshake-timer") fired.push(rec.at);
    });
    r.host.negotiate("kvp");
    r.run(100 * S);
    expect(fired).toEqual([10_000 + 55 * S]); // host -> guest delivery (10 µs) + 55 s
    expect(r.host.state.kvp.answers).toEqual([]);
  });

  it("a daemon that registers is READY and the IntegrationServicesVersion it reports is the kernel's \"3.1\"", () => {
    const r = rig({ vssDaemon: false });
    r.settle();
    expect(r.kernel.stateName("kvp")).toBe("READY");
    expect(r.kvpd!.state.licVersion).toBe("3.1");
    const id = r.host.kvpEnumerate(2, 1);
    r.settle();
    expect(r.host.answer("kvp", id)?.result).toMatchObject({ key: "IntegrationServicesVersion", value: "3.1" });
  });
});

describe("KVP operations on every pool", () => {
  for (const pool of [0, 1, 2, 3, 4]) {
    it(`pool ${pool}: SET adds then updates, ENUMERATE lists, DELETE removes, misses are HV_S_CONT`, () => {
      const r = rig({ vssDaemon: false });
      const h = r.host;
      const ids = [h.kvpSet(pool, "alpha", "1"), h.kvpSet(pool, "beta", "2"), h.kvpSet(pool, "alpha", "3"), h.kvpDelete(pool, "beta"), h.kvpDelete(pool, "beta"), h.kvpGet(pool, "gamma")];
      r.settle();
      expect(ids.map((i) => h.answer("kvp", i)!.status)).toEqual([0, 0, 0, 0, HV_S_CONT, HV_S_CONT]);
      expect(r.kvpd!.entries(pool)).toEqual([["alpha", "3"]]);
      const e0 = h.kvpEnumerate(pool, 0), e1 = h.kvpEnumerate(pool, 1);
      r.settle();
      if (pool === 2) {
        // The AUTO pool enumerates the daemon's generated list, not the pool file.
        expect(h.answer("kvp", e0)!.result).toMatchObject({ key: "FullyQualifiedDomainName" });
      } else {
        expect(h.answer("kvp", e0)!.result).toMatchObject({ key: "alpha", value: "3", keySize: 12, valueSize: 4, valueType: REG_SZ });
        expect(h.answer("kvp", e1)!.status).toBe(HV_S_CONT);
      }
    });
  }

  it("the AUTO pool enumerates the ten keys in hv_kvp_daemon's order with configured values; index 10 is HV_S_CONT", () => {
    const r = rig({ vssDaemon: false, kvpDaemon: { auto: { OSName: "TestOS", NetworkAddressIPv4: "10.0.0.5;10.0.0.6" } } });
    const ids = Array.from({ length: 11 }, (_, i) => r.host.kvpEnumerate(2, i));
    r.settle();
    const got = ids.map((i) => r.host.answer("kvp", i)!);
    expect(got.slice(0, 10).map((a) => a.result.key)).toEqual([...AUTO_KEYS]);
    expect(got[5]!.result.value).toBe("TestOS");
    expect(got[2]!.result.value).toBe("10.0.0.5;10.0.0.6");
    expect(got[10]!.status).toBe(HV_S_CONT);
  });

  it("every answer carries ICMSGHDRFLAG_TRANSACTION|RESPONSE (1|4) and the request's transaction id", () => {
    const r = rig({ vssDaemon: false });
    const id = r.host.kvpSet(1, "x", "y");
    r.settle();
    const a = r.host.answer("kvp", id)!;
    expect(a.flags).toBe(5);
    expect(r.host.state.kvp.lastBytes![8 + 16]).toBe(id & 0xff);
  });
});

/** A bench whose KVP "daemon" is this test: it captures what the kernel forwards. */
function capture() {
  const r = rig({ kvpDaemon: false, vssDaemon: false });
  const k = r.kernel;
  k.open("kvp", "me");
  k.write("kvp", "me", msg(KVP_OP_REGISTER1));
  k.read("kvp", "me", KVP_MSG_SIZE);
  const next = (): Uint8Array => {
    r.run(1 * MS);
    return k.read("kvp", "me", KVP_MSG_SIZE) as Uint8Array;
  };
  return { r, k, next };
}

describe("host UTF-16LE -> daemon UTF-8 (kvp_send_key)", () => {
  it("converts key and REG_SZ value, sizes = bytes + 1, value_type not forwarded", () => {
    const { r, next } = capture();
    r.host.kvpSet(0, "clé", "wörld 😀");
    const m = next();
    expect(toHex(m.subarray(K.key, K.key + 5))).toBe(toHex(utf8Bytes("clé\0")));
    expect(rd32(m, K.keySize)).toBe(5); // "clé" is 4 UTF-8 bytes + NUL
    expect(rd32(m, K.valueSize)).toBe(utf8Bytes("wörld 😀").length + 1);
    expect(rd32(m, K.valueType)).toBe(0);
  });

  it("REG_U32 and REG_U64 become decimal strings (%u, %llu)", () => {
    const { r, next } = capture();
    r.host.kvpSet(0, "a", { u32: 0xffffffff });
    const m1 = next();
    expect(parseKvpMsg(m1).ok && (parseKvpMsg(m1) as any).value.value).toBe("4294967295");
    expect(rd32(m1, K.valueSize)).toBe(11);
    r.kernel.write("kvp", "me", new Uint8Array(KVP_MSG_SIZE));
    r.run(1 * MS);
    r.host.kvpSet(0, "b", { u64: 18446744073709551615n });
    const m2 = next();
    expect((parseKvpMsg(m2) as any).value.value).toBe("18446744073709551615");
    expect(rd32(m2, K.valueSize)).toBe(21);
  });

  it("limits a key to 511 UTF-8 bytes: a character that no longer fits is dropped", () => {
    const { r, next } = capture();
    r.host.kvpSet(0, "€".repeat(255), "v"); // 255 units (the most 512 bytes hold), 765 UTF-8 bytes
    const m = next();
    expect(rd32(m, K.keySize)).toBe(170 * 3 + 1); // 170 whole euro signs fit in 511 bytes
    expect(m[K.key + 510]).toBe(0);
  });

  it("GET forwards only the key (value_size 0) and ENUMERATE only the index", () => {
    const { r, next } = capture();
    r.host.kvpGet(3, "k");
    const g = next();
    expect([g[K.op], g[K.pool], rd32(g, K.keySize), rd32(g, K.valueSize)]).toEqual([0, 3, 2, 0]);
    r.kernel.write("kvp", "me", new Uint8Array(KVP_MSG_SIZE));
    r.run(1 * MS);
    r.host.kvpEnumerate(4, 77);
    const e = next();
    expect([e[K.op], e[K.pool], rd32(e, K.enumIndex)]).toEqual([3, 4, 77]);
  });
});

describe("daemon UTF-8 -> host UTF-16 (kvp_respond_to_host)", () => {
  it("caps ENUMERATE keys at 254 and values at 1022 UTF-16 units; sizes are 2*(n+1)", () => {
    const r = rig({ vssDaemon: false });
    r.settle();
    r.kvpd!.setPoolFile(1, encodePoolFile([["k".repeat(511), "v".repeat(2047)]]));
    const id = r.host.kvpEnumerate(1, 0);
    r.settle();
    const a = r.host.answer("kvp", id)!;
    expect(a.status).toBe(0);
    expect(a.result.keySize).toBe(2 * (254 + 1));
    expect(a.result.valueSize).toBe(2 * (1022 + 1));
    expect((a.result.key as string).length).toBe(254);
  });

  it("invalid UTF-8 in a pool record makes the answer HV_E_FAIL", () => {
    const r = rig({ vssDaemon: false });
    r.settle();
    r.kvpd!.setPoolFile(0, encodePoolFile([[new Uint8Array([0x41, 0xc3, 0x28]), "v"]]));
    const id = r.host.kvpEnumerate(0, 0);
    r.settle();
    expect(r.host.answer("kvp", id)!.status).toBe(HV_E_FAIL);
  });
});

describe("KVP timeouts (HV_UTIL_TIMEOUT 30 s) and late answers", () => {
  it("answers HV_E_FAIL exactly 30 s after the request was read; the late answer gets EINVAL and the daemon reopens", () => {
    const r = rig({ vssDaemon: false });
    r.settle();
    r.host.negotiate("kvp");
    r.settle();
    r.kvpd!.queue({ do: "delay", ns: 31 * S });
    const writes: HvtResult[] = [];
    r.bench.clock.trace.listen((rec) => {
      if (rec.type === "event" && rec.fields[0] === "kvp-daemon" && rec.fields[1] === "hvt.result") {
        const p = rec.fields[3] as unknown as HvtResult;
        if (p.call === "write") writes.push(p);
      }
    });
    const t0 = r.bench.now;
    const id = r.host.kvpSet(0, "slow", "1");
    r.settle();
    const a = r.host.answer("kvp", id)!;
    expect(a.status).toBe(HV_E_FAIL);
    // host -> guest 10 µs, then the timer: 30 s; guest -> host 10 µs.
    expect(a.at - t0).toBe(10_000 + 30 * S + 10_000);
    expect(writes.map((w) => w.ret)).toEqual([-EINVAL, KVP_MSG_SIZE]); // the late answer, then the re-registration
    expect(r.kvpd!.state.stats.reopens).toBe(1);
    expect(r.kernel.stateName("kvp")).toBe("READY");
    expect(r.kvpd!.entries(0)).toEqual([["slow", "1"]]); // the daemon had applied it
    const next = r.host.kvpGet(0, "slow");
    r.settle();
    expect(r.host.answer("kvp", next)!.status).toBe(0);
    expect(r.host.state.kvp.unexpected).toEqual([]);
  });
});

describe("KVP daemon crash", () => {
  it("a close mid-transaction answers the pending request HV_E_FAIL, resets to DEVICE_INIT, and a restarted daemon re-registers", () => {
    // The GET sent while no daemon is registered must wait 60 s unanswered: no host timeout.
    const r = rig({ vssDaemon: false, host: { timeoutNs: "none" } });
    r.settle();
    r.kvpd!.queue({ do: "crash-after" });
    const id = r.host.kvpSet(4, "k", "v");
    r.settle();
    expect(r.host.answer("kvp", id)!.status).toBe(HV_E_FAIL);
    expect(r.kernel.stateName("kvp")).toBe("DEVICE_INIT");
    const waiting = r.host.kvpGet(4, "k");
    r.run(60 * S);
    expect(r.host.answer("kvp", waiting)).toBeUndefined(); // no daemon: not read at all
    r.kvpd!.start();
    r.settle();
    expect(r.host.answer("kvp", waiting)!.status).toBe(0);
    expect(r.kvpd!.state.stats.registrations).toBe(2);
  });
});

describe("a late answer meets the next request (hv_kvp.c: the daemon protocol carries no transaction id)", () => {
  it("after a timeout the next request is sent at once, and the daemon's late answer is taken as its answer", () => {
    for (const profile of ["linux-6.1", "spec"] as const) {
      const r = rig({ profile, vssDaemon: false });
      r.host.negotiate("kvp");
      r.settle();
      r.kvpd!.queue({ do: "delay", ns: 31 * S });
      const set = r.host.kvpSet(0, "abcdefgh", "v1");
      const en = r.host.kvpEnumerate(0, 0); // waits in the host queue, sent when the SET is answered
      r.settle();
      expect(r.host.answer("kvp", set)!.status).toBe(HV_E_FAIL);
      const a = r.host.answer("kvp", en)!;
      // The SET's answer read through the ENUMERATE layout: the key 4 bytes further on.
      expect(a.status).toBe(0);
      expect(a.result.key).toBe("efgh");
      expect(r.kvpd!.entries(0)).toEqual([["abcdefgh", "v1"]]);
      expect(r.kvpd!.state.stats.reopens).toBe(1); // the daemon's own answer to the ENUMERATE was refused
      expect(r.host.state.kvp.unexpected).toEqual([]);
    }
  });
});


describe("latencies are clock events", () => {
  it("a SET's round trip takes exactly the sum of the configured hops", () => {
    const r = rig({
      vssDaemon: false,
      host: { toGuestNs: 1_000_000 },
      kernel: { toHostNs: 2_000_000, workNs: 0, toDaemonNs: 10_000 },
      kvpDaemon: { toKernelNs: 100_000, opNs: 5_000_000 },
    });
    r.host.negotiate("kvp");
    r.settle();
    const t0 = r.bench.now;
    const id = r.host.kvpSet(0, "k", "v");
    r.settle();
    // host->guest 1 ms; work 0; poll wake-up 10 µs; read call 100 µs + result 10 µs; daemon 5 ms;
    // write call 100 µs; guest->host 2 ms.
    expect(r.host.answer("kvp", id)!.at - t0).toBe(1_000_000 + 10_000 + 100_000 + 10_000 + 5_000_000 + 100_000 + 2_000_000);
  });
});
