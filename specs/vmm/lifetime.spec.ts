// Descriptor-tied VM lifetime, the direction FreeBSD's VMMCTL commit (D47028) names: a VM is
// destroyed when the descriptor that created it is closed. That commit also names the conflict:
// bhyve exits and is restarted on guest reboot, and a restart must not free guest memory; one
// design splits bhyve into a parent that handles reboots and a child that runs the guest (the
// parent keeps the creating descriptor open). Descriptor
// semantics are Unix's: fork shares open files; a file closes with its last reference, and an
// ioctl in progress holds one.
import { describe, expect, it } from "vitest";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { EBADF } from "../../sim/devices/vmm/errno.ts";
import type { VmmDevice } from "../../sim/devices/vmm/vmm.ts";
import type { Bench } from "../../sim/machine/bench.ts";
import { drain, errnoOf, fdOf, settle, vmmBench } from "./helpers.ts";

const MEM = 1n << 21n;

/** bhyve starting a guest: open vmmctl, create (EEXIST: reuse), open the VM, allocate memory once. */
function bhyveStart(bench: Bench, vmm: VmmDevice, pid: number, name: string): { ctl: number; vmfd: number; created: boolean } {
  const ctl = fdOf(vmm.open("/dev/vmmctl", "rw", pid));
  const c = errnoOf(vmm.createVm(ctl, name, { pid }));
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

describe("destroy on close (option off: today's behaviour)", () => {
  it("a VM outlives the descriptor that created it", () => {
    const { bench, vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "keep"))).toBe(0);
    expect(vmm.close(ctl)).toBe(0);
    drain(bench);
    expect(vmOf(vmm, "keep")).toBeDefined();
  });
});

describe("destroy on close (option on)", () => {
  it("closing the creating descriptor destroys the VM", () => {
    const { bench, vmm } = vmmBench({ destroyOnClose: true });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "tied"))).toBe(0);
    expect(vmOf(vmm, "tied")?.ownerFile).toBeGreaterThan(0);
    expect(vmm.close(ctl)).toBe(0);
    drain(bench);
    expect(vmOf(vmm, "tied")).toBeUndefined();
    expect(vmm.state.devfs).not.toContain("vmm/tied");
  });

  it("another vmmctl descriptor's close does not touch it; its own does", () => {
    const { bench, vmm } = vmmBench({ destroyOnClose: true });
    const a = fdOf(vmm.open("/dev/vmmctl", "rw"));
    const b = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(a, "mine"))).toBe(0);
    vmm.close(b);
    drain(bench);
    expect(vmOf(vmm, "mine")).toBeDefined();
    vmm.close(a);
    drain(bench);
    expect(vmOf(vmm, "mine")).toBeUndefined();
  });

  it("destruction waits for ioctls in progress on the VM (destroy_dev drains), as a clock event", () => {
    const { bench, vmm } = vmmBench({ destroyOnClose: true });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "draining"))).toBe(0);
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

  it("a descriptor shared by fork closes with its last reference", () => {
    const { bench, vmm } = vmmBench({ destroyOnClose: true });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "shared"))).toBe(0);
    const child = vmm.fork(1);
    expect(vmm.close(ctl)).toBe(0); // the parent's copy
    drain(bench);
    expect(vmOf(vmm, "shared")).toBeDefined();
    vmm.exit(child);
    drain(bench);
    expect(vmOf(vmm, "shared")).toBeUndefined();
    expect(vmm.close(ctl, 1)).toBe(EBADF);
  });
});

describe("reboot (bhyve exits and restarts) against destroy on close", () => {
  it("option off: a restarted bhyve finds the VM and keeps its memory", () => {
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

  it("option on, one process: the restart loses the guest's memory (the stated conflict)", () => {
    const { bench, vmm } = vmmBench({ destroyOnClose: true });
    const p1 = vmm.spawn();
    bhyveStart(bench, vmm, p1, "guest");
    const id = vmOf(vmm, "guest")!.id;
    vmm.exit(p1);
    drain(bench);
    expect(vmOf(vmm, "guest")).toBeUndefined();
    const p2 = vmm.spawn();
    expect(bhyveStart(bench, vmm, p2, "guest").created).toBe(true);
    expect(vmOf(vmm, "guest")!.id).not.toBe(id); // a new VM: the old memory is gone
  });

  it("option on, parent/child split: the parent keeps the VM across child restarts", () => {
    const { bench, vmm } = vmmBench({ destroyOnClose: true });
    const parent = vmm.spawn();
    const { ctl } = bhyveStart(bench, vmm, parent, "guest");
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
