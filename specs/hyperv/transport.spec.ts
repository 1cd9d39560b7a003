// Character-device semantics of drivers/hv/hv_utils_transport.c (Linux 6.1) as the KVP/VSS
// drivers use them: hvt_op_open, hvt_op_read, hvt_op_write, hvt_op_poll, hvt_op_release and
// hvutil_transport_send, driven here by a scripted endpoint calling the kernel directly.
import { describe, expect, it } from "vitest";
import { rig, S } from "./helpers.ts";
import { EBUSY, EBADF, EINVAL, POLLERR, POLLHUP, POLLIN, POLLRDNORM, K, KVP_MSG_SIZE, rd32 } from "../../sim/devices/hyperv/index.ts";
import { KVP_OP_REGISTER1, HVUTIL_DEVICE_INIT, HVUTIL_READY, HVUTIL_USERSPACE_REQ, HV_E_FAIL } from "../../sim/wire/hyperv-constants.ts";

const bare = () => rig({ kvpDaemon: false, vssDaemon: false });
const reg1 = () => {
  const m = new Uint8Array(KVP_MSG_SIZE);
  m[K.op] = KVP_OP_REGISTER1;
  return m;
};

describe("hv_utils_transport: open/close", () => {
  it("has one opener: a second open gets EBUSY, and after close it can be opened again", () => {
    const { kernel } = bare();
    expect(kernel.open("kvp", "a")).toBe(0);
    expect(kernel.open("kvp", "b")).toBe(-EBUSY);
    expect(kernel.open("kvp", "a")).toBe(-EBUSY); // the same process opening twice is still a second open
    expect(kernel.close("kvp", "a")).toBe(0);
    expect(kernel.open("kvp", "b")).toBe(0);
  });

  it("close drops the queued message and resets the service to DEVICE_INIT (on_reset)", () => {
    const { kernel } = bare();
    kernel.open("kvp", "a");
    expect(kernel.write("kvp", "a", reg1())).toBe(KVP_MSG_SIZE); // the registration reply is queued
    expect(kernel.poll("kvp", "a")).toBe(POLLIN | POLLRDNORM);
    kernel.close("kvp", "a");
    expect(kernel.svc("kvp").hvt.outmsg).toBeNull();
    expect(kernel.svc("kvp").state).toBe(HVUTIL_DEVICE_INIT);
    kernel.open("kvp", "a");
    expect(kernel.poll("kvp", "a")).toBe(0); // nothing from the previous opener
  });
});

describe("hv_utils_transport: read/write/poll", () => {
  it("read returns the whole queued message; a short buffer gets EINVAL and the message stays", () => {
    const { kernel } = bare();
    kernel.open("kvp", "a");
    kernel.write("kvp", "a", reg1());
    expect(kernel.read("kvp", "a", KVP_MSG_SIZE - 1)).toBe(-EINVAL);
    expect(kernel.poll("kvp", "a")).toBe(POLLIN | POLLRDNORM);
    const m = kernel.read("kvp", "a", 65536);
    expect(m).toBeInstanceOf(Uint8Array);
    expect((m as Uint8Array).length).toBe(KVP_MSG_SIZE);
    expect(kernel.poll("kvp", "a")).toBe(0);
  });

  it("one write is one message: a KVP write shorter than sizeof(hv_kvp_msg) = 7432 is EINVAL", () => {
    const { kernel } = bare();
    kernel.open("kvp", "a");
    expect(kernel.write("kvp", "a", reg1().subarray(0, KVP_MSG_SIZE - 1))).toBe(-EINVAL);
    expect(kernel.write("kvp", "a", reg1())).toBe(KVP_MSG_SIZE);
  });

  it("a VSS write must be exactly sizeof(hv_vss_msg) = 12 bytes", () => {
    const { kernel } = bare();
    kernel.open("vss", "a");
    expect(kernel.write("vss", "a", new Uint8Array(11))).toBe(-EINVAL);
    expect(kernel.write("vss", "a", new Uint8Array(13))).toBe(-EINVAL);
  });

  it("a file that is not the opener's gets EBADF; a destroyed device polls ERR|HUP", () => {
    const { kernel } = bare();
    kernel.open("vss", "a");
    expect(kernel.write("vss", "b", new Uint8Array(12))).toBe(-EBADF);
    kernel.destroy("vss");
    expect(kernel.poll("vss", "a")).toBe(POLLERR | POLLHUP);
    expect(kernel.open("vss", "c")).toBe(-EBADF);
  });
});

describe("hvutil_transport_send", () => {
  it("fails with EINVAL when nobody has the device open: the host's request is answered HV_E_FAIL", () => {
    const r = bare();
    const sends: unknown[] = [];
    r.bench.clock.trace.listen((rec) => {
      if (rec.fields[1] === "send-to-daemon-failed") sends.push(rec.fields[3]);
    });
    // GET_DM_INFO is answered by the kernel itself, and vss_poll_wrapper then sets READY even though
    // no daemon ever registered (hv_snapshot.c vss_handle_request) — so FREEZE reaches the send.
    r.host.vss("get-dm-info");
    r.settle();
    expect(r.kernel.svc("vss").state).toBe(HVUTIL_READY);
    const id = r.host.vss("freeze");
    r.settle();
    expect(sends).toEqual([-EINVAL]);
    expect(r.host.answer("vss", id)?.status).toBe(HV_E_FAIL);
    expect(r.kernel.svc("vss").state).toBe(HVUTIL_READY);
  });

  it("fails with EFAULT while the previous message is unread: the next KVP request is answered HV_E_FAIL at once", () => {
    const r = bare();
    r.kernel.open("kvp", "d");
    r.kernel.write("kvp", "d", reg1());
    r.kernel.read("kvp", "d", KVP_MSG_SIZE); // registered: READY
    expect(r.kernel.svc("kvp").state).toBe(HVUTIL_READY);
    const first = r.host.kvpEnumerate(0, 0);
    r.run(1 * S);
    expect(r.kernel.svc("kvp").state).toBe(HVUTIL_USERSPACE_REQ);
    r.run(30 * S); // the endpoint never reads: 30 s timeout, the request stays queued in the device
    expect(r.host.answer("kvp", first)?.status).toBe(HV_E_FAIL);
    expect(r.kernel.svc("kvp").hvt.outmsg).not.toBeNull();
    const at = r.bench.now;
    const second = r.host.kvpEnumerate(0, 1);
    r.run(1 * S);
    const a = r.host.answer("kvp", second)!;
    expect(a.status).toBe(HV_E_FAIL);
    expect(a.at - at).toBeLessThan(1 * S); // answered without waiting for the timeout
    expect(rd32(r.kernel.svc("kvp").hvt.outmsg!, K.enumIndex)).toBe(0); // still the first request's message
  });
});
