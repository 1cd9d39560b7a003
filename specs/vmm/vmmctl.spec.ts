// /dev/vmmctl: every errno rule of open, VMMCTL_VM_CREATE and VMMCTL_VM_DESTROY. Expectations come
// from freebsd-src sys/dev/vmm/vmm_dev.c (vmmctl_open, vmmctl_ioctl, vmmdev_create,
// vmmdev_lookup_and_destroy), sys/kern/kern_conf.c (prep_devname), sys/fs/devfs/devfs_devs.c
// (devfs_pathpath) and sys/kern/sys_generic.c (sys_ioctl).
import { describe, expect, it } from "vitest";
import { EBADF, EEXIST, EFAULT, EINVAL, ENAMETOOLONG, ENOENT, ENOTTY, ENXIO, EPERM, errnoName, errnoValue } from "../../sim/devices/vmm/errno.ts";
import { devfsNameTaken, pathContains, prepDevname } from "../../sim/devices/vmm/devname.ts";
import { vmmctlArgBytes, vmmctlCommands } from "../../sim/devices/vmm/ctl.ts";
import { cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { drain, errnoOf, fdOf, vmmBench } from "./helpers.ts";

function setup(config = {}) {
  const { bench, vmm } = vmmBench(config);
  const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
  const create = (name: string | Uint8Array, reserved?: number[]) => errnoOf(vmm.createVm(ctl, name, { reserved }));
  const destroy = (name: string | Uint8Array, reserved?: number[]) => errnoOf(vmm.destroyVm(ctl, name, { reserved }));
  return { bench, vmm, ctl, create, destroy };
}

describe("open(/dev/vmmctl)", () => {
  it("needs write access (FWRITE), else EPERM", () => {
    const { vmm } = vmmBench();
    expect(vmm.open("/dev/vmmctl", "r")).toEqual({ errno: EPERM });
    expect("fd" in vmm.open("/dev/vmmctl", "w")).toBe(true);
    expect("fd" in vmm.open("/dev/vmmctl", "rw")).toBe(true);
  });

  it("is EPERM inside a jail without allow.vmm (vmm_priv_check), for VM devices too", () => {
    const { vmm, create } = setup();
    expect(create("j")).toBe(0);
    const jailed = { uid: 0, jail: { allowVmm: false } };
    expect(vmm.open("/dev/vmmctl", "rw", 1, jailed)).toEqual({ errno: EPERM });
    expect(vmm.open("/dev/vmm/j", "rw", 1, jailed)).toEqual({ errno: EPERM });
    // with allow.vmm the jail passes vmm_priv_check
    expect("fd" in vmm.open("/dev/vmmctl", "rw", 1, { uid: 0, jail: { allowVmm: true } })).toBe(true);
  });

  it("gives the lowest free descriptor from 3 and refuses a second close (EBADF)", () => {
    const { vmm } = vmmBench();
    expect(vmm.open("/dev/vmmctl", "w")).toEqual({ fd: 3 });
    expect(vmm.open("/dev/vmmctl", "w")).toEqual({ fd: 4 });
    expect(vmm.close(3)).toBe(0);
    expect(vmm.close(3)).toBe(EBADF);
    expect(vmm.open("/dev/vmmctl", "w")).toEqual({ fd: 3 });
  });

  it("opens VM devices by their devfs name; unknown is ENOENT", () => {
    const { vmm, create } = setup();
    expect(create("g1")).toBe(0);
    expect("fd" in vmm.open("/dev/vmm/g1", "rw")).toBe(true);
    expect("fd" in vmm.open("/dev//vmm//g1", "r")).toBe(true);
    expect(vmm.open("/dev/vmm/nope", "rw")).toEqual({ errno: ENOENT });
  });
});

describe("VMMCTL_VM_CREATE", () => {
  it("creates a VM and its /dev/vmm node", () => {
    const { vmm, create } = setup();
    expect(create("guest0")).toBe(0);
    expect(vmm.state.devfs).toContain("vmm/guest0");
    expect(Object.values(vmm.state.vms).map((v) => v.name)).toEqual(["guest0"]);
  });

  it("refuses a duplicate name with EEXIST", () => {
    const { create } = setup();
    expect(create("dup")).toBe(0);
    expect(create("dup")).toBe(EEXIST);
  });

  it("has no /dev/vmmctl when vmm failed to initialise: open is ENOENT", () => {
    // sys/dev/vmm/vmm_dev.c @ 012895d5be9de60ba30231b6466b87576c7b43d8, vmm_handler MOD_LOAD:
    // vmmdev_init() makes the node, then `error = vmm_modinit(); ... else { error1 =
    // vmmdev_cleanup(); }` and vmmdev_cleanup destroys vmmctl_cdev, so the path does not exist.
    const { vmm } = vmmBench({ initialized: false });
    expect(vmm.open("/dev/vmmctl", "rw")).toEqual({ errno: ENOENT });
    expect(vmm.state.devfs).not.toContain("vmmctl");
    expect(vmm.state.vms).toEqual({});
  });

  it("is EINVAL for any non-zero reserved word, before anything else", () => {
    const { create, destroy } = setup();
    // vmmctl_ioctl: CREATE checks its 15 reserved ints (flags took the first), DESTROY its 16.
    for (const i of [0, 7, 14]) {
      expect(create("guest", Array.from({ length: 15 }, (_, j) => (j === i ? 1 : 0)))).toBe(EINVAL);
    }
    for (const i of [0, 7, 15]) {
      expect(destroy("guest", Array.from({ length: 16 }, (_, j) => (j === i ? 1 : 0)))).toBe(EINVAL);
    }
    expect(create("guest", Array.from({ length: 15 }, (_, j) => (j === 3 ? -1 : 0)))).toBe(EINVAL);
  });

  it("cuts the name at VM_MAX_NAMELEN (229): name[229] is forced to NUL", () => {
    const { create, destroy, vmm } = setup();
    const long = "a".repeat(229) + "XYZ"; // 230 bytes fill the field; the last is overwritten
    expect(create(long)).toBe(0);
    const vm = Object.values(vmm.state.vms)[0]!;
    expect(vm.name).toBe("a".repeat(229));
    expect(create("a".repeat(229))).toBe(EEXIST);
    expect(destroy("a".repeat(229) + "Q")).toBe(0);
  });

  it("cuts at 37 with the FreeBSD 12 limit, whose commands are numbered differently", () => {
    const { create, vmm, ctl } = setup({ maxNameLen: 37 });
    expect(create("b".repeat(50))).toBe(0);
    expect(Object.values(vmm.state.vms)[0]!.name).toBe("b".repeat(37));
    // the 229 command is unknown to a 37 kernel
    const r = vmm.ioctl(ctl, vmmctlCommands(229).VMMCTL_VM_CREATE, vmmctlArgBytes("x"));
    expect(errnoOf(r)).toBe(ENOTTY);
  });

  it("enforces no minimum length (VM_MIN_NAMELEN is not checked) and no character whitelist", () => {
    const { create, vmm } = setup();
    for (const n of ["a", "x*y", "ünï", "semi;colon", "tab-less\u00a0nbsp", "dir/b"]) expect(create(n), n).toBe(0);
    expect(vmm.state.devfs).toContain("vmm/dir/b");
  });

  describe("device name rules (prep_devname on vmm/NAME)", () => {
    it("whitespace or a double quote is EINVAL", () => {
      const { create } = setup();
      for (const n of ["a b", "a\tb", "a\nb", "a\vb", "a\fb", "a\rb", 'a"b', " ", "x\t"]) expect(create(n), JSON.stringify(n)).toBe(EINVAL);
    });

    it("an empty name or a trailing slash is EINVAL", () => {
      const { create } = setup();
      expect(create("")).toBe(EINVAL);
      expect(create("a/")).toBe(EINVAL);
      expect(create("a//")).toBe(EINVAL);
      expect(create("/")).toBe(EINVAL);
    });

    it("a . or .. component is EINVAL", () => {
      const { create } = setup();
      for (const n of [".", "..", "a/.", "a/..", "./a", "../a", "a/./b", "a/../b"]) expect(create(n), n).toBe(EINVAL);
      for (const n of ["...", ".a", "a.", "a..b"]) expect(create(n), n).toBe(0);
    });

    it("collapses repeated slashes, so names that collapse alike collide in devfs (EEXIST)", () => {
      const { create, vmm } = setup();
      expect(create("a//b")).toBe(0);
      expect(vmm.state.devfs).toContain("vmm/a/b");
      expect(create("a/b")).toBe(EEXIST); // another name, the same device node
      expect(create("/c")).toBe(0); // "vmm//c" -> "vmm/c"
      expect(vmm.state.devfs).toContain("vmm/c");
      expect(create("c")).toBe(EEXIST);
    });

    it("a name that is a devfs directory of another device, or has one as its directory, is EEXIST", () => {
      const { create } = setup();
      expect(create("p")).toBe(0);
      expect(create("p/q")).toBe(EEXIST); // vmm/p is a device, not a directory
      expect(create("r/s")).toBe(0);
      expect(create("r")).toBe(EEXIST); // vmm/r is a directory
    });

    it("too long is ENAMETOOLONG (SPECNAMELEN 255)", () => {
      // Through vmmctl the name is at most 229 bytes, so "vmm/" + name fits 255; the rule itself:
      expect(prepDevname("vmm/" + "n".repeat(251), () => false)).toEqual({ ok: true, name: "vmm/" + "n".repeat(251) });
      expect(prepDevname("vmm/" + "n".repeat(252), () => false)).toEqual({ ok: false, errno: ENAMETOOLONG });
      // The length is checked before slashes collapse.
      expect(prepDevname("vmm/" + "/".repeat(249) + "abc", () => false)).toEqual({ ok: false, errno: ENAMETOOLONG });
      // A kernel whose SPECNAMELEN is smaller than the name limit assumes reaches it through CREATE.
      const { create } = setup({ specnamelen: 63 });
      expect(create("m".repeat(59))).toBe(0);
      expect(create("m".repeat(60))).toBe(ENAMETOOLONG);
    });

    it("devfs_pathpath: equal, or the second is a directory of the first", () => {
      expect(pathContains("a/b", "a")).toBe(true);
      expect(pathContains("a", "a/b")).toBe(false);
      expect(pathContains("ab", "a")).toBe(false);
      expect(devfsNameTaken(["vmm/x"], "vmm/x/y")).toBe(true);
      expect(devfsNameTaken(["vmm/x/y"], "vmm/x")).toBe(true);
      expect(devfsNameTaken(["vmm/xy"], "vmm/x")).toBe(false);
    });

    it("names taken by other devices are EEXIST", () => {
      const { create } = setup({ devfsNames: ["vmm/legacy"] });
      expect(create("legacy")).toBe(EEXIST);
    });
  });
});

describe("VMMCTL_VM_DESTROY", () => {
  it("destroys a VM and frees its name", () => {
    const { create, destroy, vmm } = setup();
    expect(create("g")).toBe(0);
    expect(destroy("g")).toBe(0);
    expect(vmm.state.vms).toEqual({});
    expect(vmm.state.devfs).not.toContain("vmm/g");
    expect(create("g")).toBe(0);
  });

  it("is EINVAL (not ENOENT) for an unknown name", () => {
    const { destroy } = setup();
    expect(destroy("ghost")).toBe(EINVAL);
  });

  it("is EINVAL for a dying VM; CREATE of that name is EEXIST until it is gone", () => {
    const { bench, vmm, create, destroy, ctl } = setup();
    expect(create("busy")).toBe(0);
    const vfd = fdOf(vmm.open("/dev/vmm/busy", "rw"));
    // an ioctl inside the VM device keeps destroy_dev from finishing
    const run = vmm.ioctl(vfd, cmdOf("VM_SET_REGISTER"), vcpuArg("VM_SET_REGISTER", 0), { durationNs: 5000 });
    expect(run.status).toBe("pending");
    const d = vmm.destroyVm(ctl, "busy");
    expect(d.status).toBe("pending");
    expect(destroy("busy")).toBe(EINVAL);
    expect(create("busy")).toBe(EEXIST);
    // new ioctls on the dying VM and new opens fail with ENXIO
    expect(errnoOf(vmm.ioctl(vfd, cmdOf("VM_SET_REGISTER"), vcpuArg("VM_SET_REGISTER", 1)))).toBe(ENXIO);
    expect(vmm.open("/dev/vmm/busy", "rw")).toEqual({ errno: ENXIO });
    drain(bench);
    expect(vmm.takeResult((d as { op: number }).op)?.errno).toBe(0);
    expect(vmm.state.vms).toEqual({});
    expect(create("busy")).toBe(0);
    // the old descriptor still points at the destroyed device
    expect(errnoOf(vmm.ioctl(vfd, cmdOf("VM_SET_REGISTER"), vcpuArg("VM_SET_REGISTER", 0)))).toBe(ENXIO);
  });
});

describe("the ioctl(2) layer on /dev/vmmctl", () => {
  it("unknown commands are ENOTTY", () => {
    const { vmm, ctl } = setup();
    expect(errnoOf(vmm.ioctl(ctl, vmmctlCommands().VMMCTL_VM_CREATE + 2, new Uint8Array(296)))).toBe(ENOTTY);
    expect(errnoOf(vmm.ioctl(ctl, cmdOf("VM_RUN"), new Uint8Array(64)))).toBe(ENOTTY);
    expect(errnoOf(vmm.ioctl(ctl, 0, new Uint8Array(0)))).toBe(ENOTTY);
  });

  it("a user buffer shorter than the command's length is EFAULT (copyin)", () => {
    const { vmm, ctl } = setup();
    expect(errnoOf(vmm.ioctl(ctl, vmmctlCommands().VMMCTL_VM_CREATE, vmmctlArgBytes("g").subarray(0, 100)))).toBe(EFAULT);
  });

  it("a descriptor that is not open is EBADF", () => {
    const { vmm } = setup();
    expect(errnoOf(vmm.ioctl(42, vmmctlCommands().VMMCTL_VM_CREATE, vmmctlArgBytes("g")))).toBe(EBADF);
  });

  it("copies the argument back out on success (IOC_OUT), with name[229] cleared", () => {
    const { vmm, ctl } = setup();
    const arg = vmmctlArgBytes("z".repeat(230));
    const r = vmm.createVm(ctl, "z".repeat(230));
    expect(r.status === "done" && r.out.length).toBe(296);
    expect(r.status === "done" && r.out[229]).toBe(0);
    expect(arg[229]).toBe("z".charCodeAt(0));
  });

  it("names errnos", () => {
    expect(errnoName(EINVAL)).toBe("EINVAL");
    expect(errnoValue("EEXIST")).toBe(EEXIST);
    expect(errnoValue(ENXIO)).toBe(ENXIO);
    expect(errnoValue("ENOPE")).toBeUndefined();
    expect(errnoName(999)).toBe("errno 999");
  });
});
