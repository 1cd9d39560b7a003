// VSS through host, kernel and the hv_vss_daemon model. Expectations from Linux 6.1
// drivers/hv/hv_snapshot.c (vss_on_msg, vss_handle_request, vss_send_op, timeouts) and Debian
// hyperv-daemons 6.1 tools/hv/hv_vss_daemon.c (handshake, vss_operate, vss_do_freeze).
import { describe, expect, it } from "vitest";
import { rig, S } from "./helpers.ts";
import { EBUSY, EINVAL, VSS_MSG_SIZE, rd32, type Mount } from "../../sim/devices/hyperv/index.ts";
import { HV_E_FAIL, HVUTIL_DEVICE_INIT, HVUTIL_READY, VSS_OP_REGISTER, VSS_OP_REGISTER1 } from "../../sim/wire/hyperv-constants.ts";

const vmsg = (op: number) => {
  const m = new Uint8Array(VSS_MSG_SIZE);
  m[0] = op;
  return m;
};
const EIO = 5;

describe("VSS daemon registration (hv_snapshot.c vss_handle_handshake)", () => {
  it("REGISTER1 (129) is answered with a 4-byte 129; READY only when read", () => {
    const { kernel } = rig({ kvpDaemon: false, vssDaemon: false });
    kernel.open("vss", "me");
    expect(kernel.write("vss", "me", vmsg(VSS_OP_REGISTER1))).toBe(12);
    expect(kernel.svc("vss").state).toBe(HVUTIL_DEVICE_INIT);
    const r = kernel.read("vss", "me", 12) as Uint8Array;
    expect(r.length).toBe(4);
    expect(rd32(r, 0)).toBe(129);
    expect(kernel.svc("vss").state).toBe(HVUTIL_READY);
  });

  it("the legacy REGISTER (128) gets no answer and leaves the state DEVICE_INIT", () => {
    const { kernel } = rig({ kvpDaemon: false, vssDaemon: false });
    kernel.open("vss", "me");
    expect(kernel.write("vss", "me", vmsg(VSS_OP_REGISTER))).toBe(12);
    expect(kernel.svc("vss").hvt.outmsg).toBeNull();
    expect(kernel.svc("vss").state).toBe(HVUTIL_DEVICE_INIT);
  });

  it("the daemon model registers and records kernel version 129", () => {
    const r = rig({ kvpDaemon: false });
    r.settle();
    expect(r.vssd!.state.kernelVersion).toBe(129);
    expect(r.kernel.stateName("vss")).toBe("READY");
  });
});

describe("VSS requests", () => {
  it("FREEZE/THAW/HOT_BACKUP without a registered daemon are answered HV_E_FAIL", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: false });
    const ids = [r.host.vss("freeze"), r.host.vss("thaw"), r.host.vss("hot-backup")];
    r.settle();
    expect(ids.map((i) => r.host.answer("vss", i)!.status)).toEqual([HV_E_FAIL, HV_E_FAIL, HV_E_FAIL]);
  });

  it("GET_DM_INFO is answered by the kernel with flags 0; other ops are answered 0 without the daemon", () => {
    const r = rig({ kvpDaemon: false });
    r.settle();
    const dm = r.host.vss("get-dm-info", { flags: 0xffffffff });
    const others = (["create", "delete", "bu-complete", "auto-recover"] as const).map((o) => r.host.vss(o));
    r.settle();
    expect(r.host.answer("vss", dm)!).toMatchObject({ status: 0, result: { flags: 0 } });
    expect(others.map((i) => r.host.answer("vss", i)!.status)).toEqual([0, 0, 0, 0]);
    expect(r.vssd!.state.stats.requests).toBe(0);
  });

  it("FREEZE times out after 900 s and THAW after 30 s with HV_E_FAIL", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { script: [{ do: "delay", ns: 2000 * S }, { do: "delay", ns: 2000 * S }] } });
    r.host.negotiate("vss");
    r.settle();
    const t0 = r.bench.now;
    const f = r.host.vss("freeze");
    r.run(899 * S);
    expect(r.host.answer("vss", f)).toBeUndefined();
    r.run(1 * S + 1_000_000);
    const fa = r.host.answer("vss", f)!;
    expect(fa.status).toBe(HV_E_FAIL);
    expect(fa.at - t0).toBe(10_000 + 1_000 + 900 * S + 10_000); // delivery, work item, 900 s, delivery
    const t1 = r.bench.now;
    const t = r.host.vss("thaw");
    r.run(40 * S);
    expect(r.host.answer("vss", t)!.at - t1).toBe(10_000 + 1_000 + 30 * S + 10_000);
  });

  it("HOT_BACKUP: linux-6.1 never sets VSS_HBU_NO_AUTO_RECOVERY with hv_vss_daemon (its error overwrites the op byte)", () => {
    for (const [profile, flags] of [["linux-6.1", 0], ["spec", 5]] as const) {
      const r = rig({ kvpDaemon: false, profile });
      r.settle();
      const id = r.host.vss("hot-backup");
      r.settle();
      expect(r.host.answer("vss", id)!).toMatchObject({ status: 0, result: { flags } });
    }
  });

  it("a reply whose first byte is 2 (HOT_BACKUP) does set the flag in linux-6.1", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: false });
    const k = r.kernel;
    k.open("vss", "me");
    k.write("vss", "me", vmsg(VSS_OP_REGISTER1));
    k.read("vss", "me", 12);
    const id = r.host.vss("hot-backup");
    r.run(1_000_000);
    k.read("vss", "me", 12);
    k.write("vss", "me", vmsg(2)); // error = 2: the kernel reads operation == HOT_BACKUP
    r.settle();
    expect(r.host.answer("vss", id)!).toMatchObject({ status: 2, result: { flags: 5 } });
  });
});

describe("hv_vss_daemon vss_operate on a mount table", () => {
  const mounts: Mount[] = [
    { fsname: "/dev/sda1", dir: "/", type: "ext4", opts: ["rw"] },
    { fsname: "/dev/sdb1", dir: "/data", type: "xfs", opts: ["rw"] },
    { fsname: "/dev/sdc1", dir: "/ro", type: "ext4", opts: ["ro"] },
    { fsname: "/dev/sdd1", dir: "/boot/efi", type: "vfat", opts: ["rw"] },
    { fsname: "/dev/loop0", dir: "/snap", type: "squashfs", opts: ["rw"], loop: true },
    { fsname: "tmpfs", dir: "/run", type: "tmpfs", opts: ["rw"] },
    { fsname: "/dev/sdb1", dir: "/data2", type: "xfs", opts: ["rw"] }, // the same fs mounted twice
    { fsname: "/dev/sde1", dir: "/home", type: "ext4", opts: ["rw"] },
  ];

  it("freezes /dev/ mounts except ro, vfat and loop-backed, / last; the second mount's EBUSY counts as success", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { mounts } });
    const id = r.host.vss("freeze");
    r.settle();
    expect(r.host.answer("vss", id)!.status).toBe(0);
    expect(r.vssd!.state.ioctls).toEqual([
      ["FIFREEZE", "/data", 0],
      ["FIFREEZE", "/data2", EBUSY],
      ["FIFREEZE", "/home", 0],
      ["FIFREEZE", "/", 0],
    ]);
    const t = r.host.vss("thaw");
    r.settle();
    expect(r.host.answer("vss", t)!.status).toBe(0);
    expect(r.vssd!.state.ioctls.slice(4)).toEqual([
      ["FITHAW", "/data", 0],
      ["FITHAW", "/data2", EINVAL],
      ["FITHAW", "/home", 0],
      ["FITHAW", "/", 0],
    ]);
    expect(r.vssd!.state.frozen).toEqual([]);
  });

  it("a failed freeze thaws everything and answers HV_E_FAIL", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { mounts, failures: { "/home": { freeze: EIO } } } });
    const id = r.host.vss("freeze");
    r.settle();
    expect(r.host.answer("vss", id)!.status).toBe(HV_E_FAIL);
    expect(r.vssd!.state.ioctls).toEqual([
      ["FIFREEZE", "/data", 0],
      ["FIFREEZE", "/data2", EBUSY],
      ["FIFREEZE", "/home", EIO],
      ["FITHAW", "/data", 0],
      ["FITHAW", "/data2", EINVAL],
      ["FITHAW", "/home", EINVAL],
      ["FITHAW", "/", EINVAL],
    ]);
    expect(r.vssd!.state.frozen).toEqual([]);
  });

  it("a failing / (frozen last) also thaws the rest", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { mounts: mounts.slice(0, 2), failures: { "/": { freeze: EIO } } } });
    const id = r.host.vss("freeze");
    r.settle();
    expect(r.host.answer("vss", id)!.status).toBe(HV_E_FAIL);
    expect(r.vssd!.state.frozen).toEqual([]);
  });

  it("a THAW failure is HV_E_FAIL but every mount is still tried", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { mounts: mounts.slice(0, 2), failures: { "/data": { thaw: EIO } } } });
    r.host.vss("freeze");
    const t = r.host.vss("thaw");
    r.settle();
    expect(r.host.answer("vss", t)!.status).toBe(HV_E_FAIL);
    expect(r.vssd!.state.ioctls.slice(2)).toEqual([
      ["FITHAW", "/data", EIO],
      ["FITHAW", "/", 0],
    ]);
  });

  it("daemon crash during a FREEZE: HV_E_FAIL at once, state DEVICE_INIT; a restart re-registers", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { script: [{ do: "crash-after" }] } });
    const id = r.host.vss("freeze");
    r.settle();
    expect(r.host.answer("vss", id)!.status).toBe(HV_E_FAIL);
    expect(r.kernel.stateName("vss")).toBe("DEVICE_INIT");
    r.vssd!.start();
    r.settle();
    expect(r.kernel.stateName("vss")).toBe("READY");
    const t = r.host.vss("thaw");
    r.settle();
    expect(r.host.answer("vss", t)!.status).toBe(0);
  });
});

// hv_vss_daemon.c (Debian 6.1.192): fs_frozen (:31) is set after each successful FIFREEZE
// (:163/:174), cleared by a THAW without error (:178-179) and by a failed FREEZE's thaw (:188-189).
// reopen_vss_fd (:247-256), reached from a failed read (:308-311) or write (:346-349), closes the
// device and, with fs_frozen set, thaws first, exiting with EXIT_FAILURE if that thaw fails.
describe("VSS daemon reopen while filesystems are frozen", () => {
  const mounts: Mount[] = [
    { fsname: "/dev/sda1", dir: "/", type: "ext4", opts: ["rw"] },
    { fsname: "/dev/sdb1", dir: "/data", type: "xfs", opts: ["rw"] },
  ];
  const ioctlsFrom = (r: ReturnType<typeof rig>, i: number) => r.vssd!.state.ioctls.slice(i).map((x) => `${x[0]} ${x[1]}`);

  it("a FREEZE answered after the kernel's 900 s timeout: the late write fails, the daemon thaws, reopens and registers", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { mounts } });
    r.settle();
    r.vssd!.queue({ do: "delay", ns: 1000 * S });
    const id = r.host.vss("freeze");
    r.run(950 * S);
    expect(r.host.answer("vss", id)!.status).toBe(HV_E_FAIL); // the kernel's own timeout
    expect(r.vssd!.state.frozen).toEqual(["/dev/sdb1", "/dev/sda1"]);
    expect(r.vssd!.state.fsFrozen).toBe(true);
    r.settle();
    expect(ioctlsFrom(r, 0)).toEqual(["FIFREEZE /data", "FIFREEZE /", "FITHAW /data", "FITHAW /"]);
    expect(r.vssd!.state.frozen).toEqual([]);
    expect(r.vssd!.state.fsFrozen).toBe(false);
    expect(r.vssd!.state.stats.reopens).toBe(1);
    expect(r.vssd!.running).toBe(true);
    expect(r.kernel.stateName("vss")).toBe("READY");
  });

  it("the device goes away (hvutil_transport_destroy) while frozen: the failed read makes it thaw, then the open fails and it exits 1", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { mounts } });
    r.settle();
    const id = r.host.vss("freeze");
    r.settle();
    expect(r.host.answer("vss", id)!.status).toBe(0);
    const before = r.vssd!.state.ioctls.length;
    r.kernel.destroy("vss");
    r.settle();
    expect(ioctlsFrom(r, before)).toEqual(["FITHAW /data", "FITHAW /"]);
    expect(r.vssd!.state.frozen).toEqual([]);
    expect(r.vssd!.state.exitStatus).toBe(1);
  });

  it("a thaw that fails on reopen leaves the filesystem frozen and the daemon exits 1 (:251-254)", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { mounts } });
    r.settle();
    r.host.vss("freeze");
    r.settle();
    r.vssd!.failAt("/data", { thaw: EIO });
    const before = r.vssd!.state.ioctls.length;
    r.kernel.destroy("vss");
    r.settle();
    expect(ioctlsFrom(r, before)).toEqual(["FITHAW /data", "FITHAW /"]);
    expect(r.vssd!.state.frozen).toEqual(["/dev/sdb1"]);
    expect(r.vssd!.state.exitStatus).toBe(1);
  });

  it("not frozen (after a THAW, or a failed FREEZE): a reopen thaws nothing", () => {
    for (const failFreeze of [false, true]) {
      const r = rig({ kvpDaemon: false, vssDaemon: { mounts, failures: failFreeze ? { "/": { freeze: EIO } } : {} } });
      r.settle();
      r.host.vss("freeze");
      if (!failFreeze) r.host.vss("thaw");
      r.settle();
      expect(r.vssd!.state.fsFrozen).toBe(false);
      const before = r.vssd!.state.ioctls.length;
      r.kernel.destroy("vss");
      r.settle();
      expect(ioctlsFrom(r, before)).toEqual([]);
      expect(r.vssd!.state.exitStatus).toBe(1); // the open of the destroyed device fails
    }
  });

  it("a crash thaws nothing; the restarted process starts with fs_frozen false", () => {
    const r = rig({ kvpDaemon: false, vssDaemon: { mounts } });
    r.settle();
    r.host.vss("freeze");
    r.settle();
    r.vssd!.crash();
    r.settle();
    expect(r.vssd!.state.frozen).toEqual(["/dev/sdb1", "/dev/sda1"]);
    r.vssd!.start();
    r.settle();
    expect(r.vssd!.state.fsFrozen).toBe(false);
    expect(r.kernel.stateName("vss")).toBe("READY");
  });
});
