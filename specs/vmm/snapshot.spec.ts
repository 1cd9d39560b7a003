// The vmm device's state in bench snapshots: registered as kind "vmm" (state version 1), all of it
// plain data, including ioctls waiting on locks: a snapshot taken while callers wait restores and
// continues exactly like the uninterrupted run (same results, same trace hash).
import { describe, expect, it } from "vitest";
import { canonical, clonePlain, type Plain } from "../../sim/clock/canonical.ts";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { validateVmmState, VmmKind } from "../../sim/devices/vmm/vmm.ts";
import { drain, errnoOf, fdOf, vmmBench } from "./helpers.ts";

function scenario() {
  const { bench, vmm } = vmmBench({ ioctlNs: 300 }, 9);
  const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
  expect(errnoOf(vmm.createVm(ctl, "snap"))).toBe(0);
  const fd = fdOf(vmm.open("/dev/vmm/snap", "rw"));
  const ops = [
    vmm.ioctl(fd, cmdOf("VM_SET_REGISTER"), vcpuArg("VM_SET_REGISTER", 0, { regnum: 1, regval: 5n }), { caller: "a" }),
    vmm.ioctl(fd, cmdOf("VM_ALLOC_MEMSEG"), argBytes("VM_ALLOC_MEMSEG", { segid: 0, len: 4096n }), { caller: "b" }),
    vmm.ioctl(fd, cmdOf("VM_GET_REGISTER"), vcpuArg("VM_GET_REGISTER", 0, { regnum: 1 }), { caller: "c" }),
    vmm.ioctl(fd, cmdOf("VM_GET_MEMSEG"), argBytes("VM_GET_MEMSEG"), { caller: "d" }),
  ].map((o) => (o as { op: number }).op);
  return { bench, vmm, ops };
}

describe("vmm state in snapshots", () => {
  it("has state version 1", () => {
    expect(VmmKind.type).toBe("vmm");
    expect(VmmKind.stateVersion).toBe(1);
  });

  it("is plain data that validates", () => {
    const { vmm } = scenario();
    const s = vmm.state as unknown as Plain;
    expect(canonical(clonePlain(s))).toBe(canonical(s));
    expect(validateVmmState(vmm.state)).toBeUndefined();
    expect(validateVmmState(null)).toBe("not an object");
    expect(validateVmmState({ ...vmm.state, version: 2 })).toMatch(/layout/);
    const broken = clonePlain(s) as any;
    const vm = Object.values(broken.vms)[0] as any;
    vm.memS.push(99);
    expect(validateVmmState(broken)).toMatch(/memsegs/);
  });

  it("restores mid-wait and continues exactly as without the snapshot", () => {
    const straight = scenario();
    drain(straight.bench);
    const want = straight.ops.map((op) => straight.vmm.takeResult(op));
    const wantHash = straight.bench.traceHash();

    const first = scenario();
    first.bench.clock.runUntil(300); // the SET is done; the others wait or run
    expect(Object.values(first.vmm.state.ops).some((o) => o.waitOn !== "")).toBe(true);
    const bytes = saveSnapshot(first.bench);

    const second = vmmBench({ ioctlNs: 300 }, 9);
    const r = restoreSnapshot(second.bench, bytes);
    expect(r.ok).toBe(true);
    expect(second.vmm.invariants()).toEqual([]);
    drain(second.bench);
    const got = first.ops.map((op) => second.vmm.takeResult(op) ?? first.vmm.result(op));
    expect(got).toEqual(want);
    expect(second.bench.traceHash()).toBe(wantHash);
  });
});
