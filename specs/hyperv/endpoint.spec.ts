// The daemon side is replaceable: anything that sends HVT_CALL events to the kernel and handles
// HVT_RESULT events is a daemon endpoint (sim/devices/hyperv/endpoint.ts). Here a minimal
// hand-written KVP endpoint — not the daemon model — registers (REGISTER1, Linux 6.1 hv_kvp.c
// kvp_handle_handshake) and answers one request through events only, as the bridge to the real
// hv_kvp_daemon would.
import { describe, expect, it } from "vitest";
import { rig } from "./helpers.ts";
import { HVT_CALL, HVT_RESULT, K, KVP_MSG_SIZE, POLLIN, type HvtCall, type HvtResult, type KvpDaemonModel } from "../../sim/devices/hyperv/index.ts";
import { Bench } from "../../sim/machine/bench.ts";
import { KVP_OP_REGISTER1, HV_S_CONT } from "../../sim/wire/hyperv-constants.ts";

describe("a foreign daemon endpoint", () => {
  it("registers and answers through HVT_CALL / HVT_RESULT events alone", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: false });
    const c = r.bench.clock;
    const log: string[] = [];
    const call = (x: Omit<HvtCall, "service" | "from">) => c.schedule(500, "hv-utils", HVT_CALL, { service: "kvp", from: "ext", ...x });
    let registered = false;
    c.on("ext", HVT_RESULT, (ev) => {
      const res = ev.payload as HvtResult;
      log.push(`${res.call}:${res.ret}${res.revents !== undefined ? `:${res.revents}` : ""}`);
      if (res.call === "open") {
        const m = new Uint8Array(KVP_MSG_SIZE);
        m[K.op] = KVP_OP_REGISTER1;
        call({ call: "write", bytes: m });
      } else if (res.call === "write") call({ call: "poll" });
      else if (res.call === "poll") call({ call: "read", len: KVP_MSG_SIZE });
      else if (res.call === "read") {
        if (!registered) {
          registered = true;
          call({ call: "poll" });
          return;
        }
        const m = res.bytes!.slice();
        new DataView(m.buffer).setUint32(0, HV_S_CONT, true); // "no such key"
        call({ call: "write", bytes: m });
      }
    });
    call({ call: "open" });
    const id = r.host.kvpGet(0, "anything");
    r.settle();
    expect(r.host.answer("kvp", id)!.status).toBe(HV_S_CONT);
    const IN = POLLIN | 0x40; // POLLIN | POLLRDNORM
    expect(log).toEqual([
      "open:0",
      `write:${KVP_MSG_SIZE}`,
      `poll:0:${IN}`,
      `read:${KVP_MSG_SIZE}`, // the registration reply: READY
      `poll:0:${IN}`, // waits until the host's GET has been read from the channel
      `read:${KVP_MSG_SIZE}`,
      `write:${KVP_MSG_SIZE}`, // the answer
      // the endpoint polls again and waits: no result yet
    ]);
    expect(r.kernel.stateName("kvp")).toBe("READY");
  });
});

describe("blocking read and a second daemon", () => {
  it("a read with nothing queued blocks until the kernel queues a message", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: false });
    const c = r.bench.clock;
    const results: HvtResult[] = [];
    c.on("ext", HVT_RESULT, (ev) => results.push(ev.payload as HvtResult));
    expect(r.kernel.open("vss", "ext")).toBe(0);
    c.schedule(0, "hv-utils", HVT_CALL, { service: "vss", from: "ext", call: "read", len: 12 });
    r.run(1_000_000);
    expect(results).toEqual([]); // blocked
    const reg = new Uint8Array(12);
    reg[0] = 129; // VSS_OP_REGISTER1: the kernel queues its 4-byte version
    expect(r.kernel.write("vss", "ext", reg)).toBe(12);
    r.run(1_000_000);
    expect(results.map((x) => [x.call, x.ret, x.bytes?.length])).toEqual([["read", 4, 4]]);
    expect(r.kernel.stateName("vss")).toBe("READY");
  });

  it("a second hv_kvp_daemon gets EBUSY from open and exits with status 1; the first keeps working", () => {
    const r = rig({ vssDaemon: false });
    const spec = { ...r.bench.machine, devices: [...r.bench.machine.devices, { type: "hv-kvp-daemon", id: "kvp-daemon-2", config: { kernel: "hv-utils" } }] };
    const b = new Bench(spec, r.bench.kinds, { seed: 1 });
    while (b.clock.nextAt !== undefined) b.clock.runNext();
    const second = b.device<KvpDaemonModel>("kvp-daemon-2");
    const first = b.device<KvpDaemonModel>("kvp-daemon");
    expect([first.state.phase, second.state.phase, second.state.exitStatus]).toEqual(["polling", "exited", 1]);
  });
});
