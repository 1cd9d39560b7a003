// The linux-6.1 and spec kernel profiles differ exactly in the named deviations of profile.ts.
// Each deviation has a demonstration here that shows the two sides; the upstream source of each
// linux-6.1 behaviour is named in DEVIATIONS (drivers/hv/hv_kvp.c, drivers/hv/hv_snapshot.c).
import { describe, expect, it } from "vitest";
import { rig, MS } from "./helpers.ts";
import { DEVIATIONS, K, KVP_MSG_SIZE, quirk, rd32, utf8Bytes, type KernelProfile } from "../../sim/devices/hyperv/index.ts";
import { KVP_OP_REGISTER1 } from "../../sim/wire/hyperv-constants.ts";

/** A KVP bench whose daemon is the test itself. */
function kvpCapture(profile: KernelProfile) {
  const r = rig({ profile, kvpDaemon: false, vssDaemon: false });
  const k = r.kernel;
  const reg = new Uint8Array(KVP_MSG_SIZE);
  reg[K.op] = KVP_OP_REGISTER1;
  k.open("kvp", "me");
  k.write("kvp", "me", reg);
  k.read("kvp", "me", KVP_MSG_SIZE);
  return { r, k };
}

const demos: Record<string, (p: KernelProfile) => unknown> = {
  // value_size the daemon is given for a GET, and what the host then reads through the daemon model
  "kvp-get-value-size": (p) => {
    const c = kvpCapture(p);
    c.r.host.kvpGet(0, "k");
    c.r.run(MS);
    const m = c.k.read("kvp", "me", KVP_MSG_SIZE) as Uint8Array;
    const e2e = rig({ profile: p, vssDaemon: false });
    e2e.host.kvpSet(0, "greeting", "HelloWorld");
    const id = e2e.host.kvpGet(0, "greeting");
    e2e.settle();
    return { valueSize: rd32(m, K.valueSize), hostSees: e2e.host.answer("kvp", id)!.result.value };
  },
  // the daemon writes the GET value at offset 528; the kernel reads it at 532 in linux-6.1
  "kvp-get-value-offset": (p) => {
    const c = kvpCapture(p);
    const id = c.r.host.kvpGet(0, "k");
    c.r.run(MS);
    const m = c.k.read("kvp", "me", KVP_MSG_SIZE) as Uint8Array;
    m.fill(0, 0, 4); // error = 0
    m.set(utf8Bytes("HelloWorld\0"), K.getValue);
    c.k.write("kvp", "me", m);
    c.r.settle();
    return c.r.host.answer("kvp", id)!.result.value;
  },
  // key_size is a byte count; linux-6.1 converts that many UTF-16 units
  "kvp-utf16-length-units": (p) => {
    const r = rig({ profile: p, vssDaemon: false });
    r.host.kvp({ op: "set", pool: 1, key: "abcdef", value: "v", overrides: { keySize: 6 } });
    r.settle();
    return r.kvpd!.entries(1).map(([k]) => k);
  },
  "vss-hot-backup-flag": (p) => {
    const r = rig({ profile: p, kvpDaemon: false });
    const id = r.host.vss("hot-backup");
    r.settle();
    return r.host.answer("vss", id)!.result.flags;
  },
  // two VSS packets in the ring at once (the host does not wait for the first answer)
  "vss-request-overwrite": (p) => {
    const r = rig({ profile: p, kvpDaemon: false });
    r.host.negotiate("vss");
    r.settle();
    const a = r.host.vss("get-dm-info", { force: true });
    const b = r.host.vss("create", { force: true });
    r.settle();
    // The guest never answers the lost one; the host gives up on it after 35 s (hostTimeoutNs).
    return [a, b].map((i) => {
      const x = r.host.answer("vss", i);
      return x === undefined ? "never answered" : x.result.timedOut ? "timed out by the host" : x.status;
    });
  },
};

describe("kernel profiles: deviations list", () => {
  it("every deviation has a demonstration, and the list names no unknown check", () => {
    expect(DEVIATIONS.map((d) => d.name).sort()).toEqual(Object.keys(demos).sort());
    for (const d of DEVIATIONS) {
      expect(quirk("linux-6.1", d.name)).toBe(true);
      expect(quirk("spec", d.name)).toBe(false);
      expect(d.source).toMatch(/^drivers\/hv\//);
    }
    expect(() => quirk("spec", "no-such-deviation")).toThrow();
  });

  for (const d of DEVIATIONS) {
    it(`${d.name}: linux-6.1 and spec differ`, () => {
      const demo = demos[d.name]!;
      expect(demo("linux-6.1")).not.toEqual(demo("spec"));
    });
  }

  it("observed values (linux-6.1 quirks as described in DEVIATIONS)", () => {
    expect(demos["kvp-get-value-size"]!("linux-6.1")).toEqual({ valueSize: 0, hostSees: "" });
    expect(demos["kvp-get-value-size"]!("spec")).toEqual({ valueSize: 2048, hostSees: "HelloWorld" });
    expect(demos["kvp-get-value-offset"]!("linux-6.1")).toBe("oWorld");
    expect(demos["kvp-get-value-offset"]!("spec")).toBe("HelloWorld");
    expect(demos["kvp-utf16-length-units"]!("linux-6.1")).toEqual(["abcdef"]);
    expect(demos["kvp-utf16-length-units"]!("spec")).toEqual(["abc"]);
    expect(demos["vss-hot-backup-flag"]!("linux-6.1")).toBe(0);
    expect(demos["vss-hot-backup-flag"]!("spec")).toBe(5);
    expect(demos["vss-request-overwrite"]!("linux-6.1")).toEqual(["timed out by the host", 0]);
    expect(demos["vss-request-overwrite"]!("spec")).toEqual([0, 0]);
  });
});
