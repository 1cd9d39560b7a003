// Descriptor-tied VM lifetime as freebsd-src main has it (sys/dev/vmm/vmm_dev.c at 012895d5):
// vmmctl_ioctl passes vmc->flags to vmmdev_create, which returns EINVAL for
// `(flags & ~VMMCTL_FLAGS_MASK) != 0` and puts a VM created with VMMCTL_CREATE_DESTROY_ON_CLOSE
// (0x1, sys/dev/vmm/vmm_dev.h) on the creating descriptor's priv->softcs list; vmmctl_dtor, the
// cdevpriv destructor run at the descriptor's last close, destroys every VM on that list. A VM
// created without the flag outlives the close. D47028 named the conflict this resolves per VM:
// bhyve exits and is restarted on guest reboot, and a restart must not free guest memory; one
// design splits bhyve into a parent that handles reboots and a child that runs the guest (the
// parent keeps the creating descriptor open). Descriptor
// semantics are Unix's: fork shares open files; a file closes with its last reference, and an
// ioctl in progress holds one.
import { describe, expect, it } from "vitest";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { VMMCTL_CREATE_DESTROY_ON_CLOSE as ON_CLOSE } from "../../sim/devices/vmm/ctl.ts";
import { EBADF, EINVAL } from "../../sim/devices/vmm/errno.ts";
import type { VmmDevice } from "../../sim/devices/vmm/vmm.ts";
import type { Bench } from "../../sim/machine/bench.ts";
import { drain, errnoOf, fdOf, settle, vmmBench } from "./helpers.ts";

const MEM = 1n << 21n;

/** bhyve starting a guest: open vmmctl, create (EEXIST: reuse), open the VM, allocate memory once. */
function bhyveStart(bench: Bench, vmm: VmmDevice, pid: number, name: string, flags = 0): { ctl: number; vmfd: number; created: boolean } {
  const ctl = fdOf(vmm.open("/dev/vmmctl", "rw", pid));
  const c = errnoOf(vmm.createVm(ctl, name, { pid, flags }));
  const vmfd = fdOf(vmm.open(`/dev/vmm/${name}`, "rw", pid));
  if (c === 0) {
    expect(settle(bench, vmm, vmm.ioctl(vmfd, cmdOf("VM_ALLOC_MEMSEG"), argBytes("VM_ALLOC_MEMSEG", { segid: 0, len: MEM }), { pid })).errno).toBe(0);
  } else {
    // an existing VM: bhyve reinitialises it, keeping its memory
    expect(settle(bench, vmm, vmm.ioctl(vmfd, cmdOf("VM_REINIT"), argBytes("VM_REINIT"), { pid })).errno).toBe(0);
  }
  return { ctl, vmfd, created: c === 0 };
}

const vmOf = (vmm: VmmDevice, name: string) => Object.values(vmm.state.vms).find((v) => v.name === name);

describe("VMMCTL_VM_CREATE flags", () => {
  it("a VM created without VMMCTL_CREATE_DESTROY_ON_CLOSE outlives the descriptor that created it", () => {
    const { bench, vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "keep"))).toBe(0);
    expect(vmOf(vmm, "keep")).toMatchObject({ destroyOnClose: false, ownerFile: -1 });
    expect(vmm.close(ctl)).toBe(0);
    drain(bench);
    expect(vmOf(vmm, "keep")).toBeDefined();
  });

  it("any flag bit outside VMMCTL_FLAGS_MASK (0x1) is EINVAL and creates nothing", () => {
    // vmmdev_create: `if ((flags & ~VMMCTL_FLAGS_MASK) != 0) return (EINVAL);`, before the
    // name lookup (so not EEXIST for a taken name either).
    const { vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    for (const f of [0x2, 0x3, 0x80, 0x80000000, 0xffffffff]) expect(errnoOf(vmm.createVm(ctl, "bad", { flags: f })), `flags ${f}`).toBe(EINVAL);
    expect(vmm.state.vms).toEqual({});
    expect(errnoOf(vmm.createVm(ctl, "taken"))).toBe(0);
    expect(errnoOf(vmm.createVm(ctl, "taken", { flags: 0x2 }))).toBe(EINVAL);
  });

  it("mixes per VM: on one descriptor, only the flagged VM goes at its close", () => {
    const { bench, vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "tied", { flags: ON_CLOSE }))).toBe(0);
    expect(errnoOf(vmm.createVm(ctl, "free"))).toBe(0);
    vmm.close(ctl);
    drain(bench);
    expect(vmOf(vmm, "tied")).toBeUndefined();
    expect(vmOf(vmm, "free")).toBeDefined();
  });
});

describe("VMMCTL_CREATE_DESTROY_ON_CLOSE", () => {
  it("closing the creating descriptor destroys the VM", () => {
    const { bench, vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "tied", { flags: ON_CLOSE }))).toBe(0);
    expect(vmOf(vmm, "tied")?.ownerFile).toBeGreaterThan(0);
    expect(vmm.close(ctl)).toBe(0);
    drain(bench);
    expect(vmOf(vmm, "tied")).toBeUndefined();
    expect(vmm.state.devfs).not.toContain("vmm/tied");
  });

  it("another vmmctl descriptor's close does not touch it; its own does", () => {
    const { bench, vmm } = vmmBench();
    const a = fdOf(vmm.open("/dev/vmmctl", "rw"));
    const b = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(a, "mine", { flags: ON_CLOSE }))).toBe(0);
    vmm.close(b);
    drain(bench);
    expect(vmOf(vmm, "mine")).toBeDefined();
    vmm.close(a);
    drain(bench);
    expect(vmOf(vmm, "mine")).toBeUndefined();
  });

  it("destruction waits for ioctls in progress on the VM (destroy_dev drains), as a clock event", () => {
    const { bench, vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "draining", { flags: ON_CLOSE }))).toBe(0);
    const vfd = fdOf(vmm.open("/dev/vmm/draining", "rw"));
    const op = vmm.ioctl(vfd, cmdOf("VM_SET_REGISTER"), vcpuArg("VM_SET_REGISTER", 0), { durationNs: 700 }) as { op: number };
    vmm.close(ctl);
    const vm = vmOf(vmm, "draining")!;
    expect(vm.alive).toBe(false);
    expect(vm.draining).toBe(true);
    const destroyOp = Object.values(vmm.state.ops).find((o) => o.kind === "destroy")!;
    expect(destroyOp.waitOn).toBe("drain");
    drain(bench);
    expect(vmm.takeResult(op.op)).toMatchObject({ errno: 0, at: 700 });
    expect(vmm.takeResult(destroyOp.id)).toMatchObject({ errno: 0, at: 700 });
    expect(vmOf(vmm, "draining")).toBeUndefined();
  });

  it("a descriptor shared by fork closes with its last reference (closed twice: once per process)", () => {
    const { bench, vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "shared", { flags: ON_CLOSE }))).toBe(0);
    const child = vmm.fork(1);
    expect(vmm.close(ctl)).toBe(0); // the parent's copy
    drain(bench);
    expect(vmOf(vmm, "shared")).toBeDefined();
    expect(vmm.close(ctl, child)).toBe(0); // the child's copy: the last reference
    drain(bench);
    expect(vmOf(vmm, "shared")).toBeUndefined();
    expect(vmm.close(ctl, 1)).toBe(EBADF);
  });

  it("a descriptor shared by fork, ended by exit, destroys the VM with the last process", () => {
    const { bench, vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "forked", { flags: ON_CLOSE }))).toBe(0);
    const child = vmm.fork(1);
    vmm.exit(child);
    drain(bench);
    expect(vmOf(vmm, "forked")).toBeDefined();
    expect(vmm.close(ctl)).toBe(0);
    drain(bench);
    expect(vmOf(vmm, "forked")).toBeUndefined();
  });
});

describe("reboot (bhyve exits and restarts) against destroy on close", () => {
  it("flag clear: a restarted bhyve finds the VM and keeps its memory", () => {
    const { bench, vmm } = vmmBench();
    const p1 = vmm.spawn();
    const first = bhyveStart(bench, vmm, p1, "guest");
    expect(first.created).toBe(true);
    const id = vmOf(vmm, "guest")!.id;
    vmm.exit(p1); // guest reboot: bhyve exits ...
    drain(bench);
    const p2 = vmm.spawn(); // ... and is started again
    expect(bhyveStart(bench, vmm, p2, "guest").created).toBe(false);
    expect(vmOf(vmm, "guest")?.id).toBe(id);
    expect(vmOf(vmm, "guest")?.segs).toEqual({ "0": { len: MEM.toString(), sysmem: true } });
  });

  it("flag set, one process: the restart loses the guest's memory (the stated conflict)", () => {
    const { bench, vmm } = vmmBench();
    const p1 = vmm.spawn();
    bhyveStart(bench, vmm, p1, "guest", ON_CLOSE);
    const id = vmOf(vmm, "guest")!.id;
    vmm.exit(p1);
    drain(bench);
    expect(vmOf(vmm, "guest")).toBeUndefined();
    const p2 = vmm.spawn();
    expect(bhyveStart(bench, vmm, p2, "guest", ON_CLOSE).created).toBe(true);
    expect(vmOf(vmm, "guest")!.id).not.toBe(id); // a new VM: the old memory is gone
  });

  it("flag set, parent/child split: the parent keeps the VM across child restarts", () => {
    const { bench, vmm } = vmmBench();
    const parent = vmm.spawn();
    const { ctl } = bhyveStart(bench, vmm, parent, "guest", ON_CLOSE);
    const vm = vmOf(vmm, "guest")!;
    for (let reboot = 0; reboot < 3; reboot++) {
      const child = vmm.fork(parent);
      // the child runs the guest through the shared descriptors, then exits on guest reboot
      const vmfd = Object.keys(vmm.state.procs[String(child)]!.fds).map(Number).find((fd) => fd !== ctl)!;
      expect(settle(bench, vmm, vmm.ioctl(vmfd, cmdOf("VM_RUN"), vcpuArg("VM_RUN", 0), { pid: child, durationNs: 5000 })).errno).toBe(0);
      vmm.exit(child);
      drain(bench);
      expect(settle(bench, vmm, vmm.ioctl(vmfd, cmdOf("VM_REINIT"), argBytes("VM_REINIT"), { pid: parent })).errno).toBe(0);
      expect(vmOf(vmm, "guest")?.id).toBe(vm.id);
      expect(vmOf(vmm, "guest")?.segs).toEqual({ "0": { len: MEM.toString(), sysmem: true } });
    }
    // shutting down for good: the parent exits and the VM goes with its descriptor
    vmm.exit(parent);
    drain(bench);
    expect(vmOf(vmm, "guest")).toBeUndefined();
    expect(vmm.invariants()).toEqual([]);
  });
});
