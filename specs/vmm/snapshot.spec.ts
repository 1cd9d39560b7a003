// The vmm device's state in bench snapshots: registered as kind "vmm" (state version 3), all of it
// plain data, including ioctls waiting on locks: a snapshot taken while callers wait restores and
// continues exactly like the uninterrupted run (same results, same trace hash).
import { describe, expect, it } from "vitest";
import { canonical, clonePlain, type Plain } from "../../sim/clock/canonical.ts";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { validateVmmState, VmmKind } from "../../sim/devices/vmm/vmm.ts";
import { VMMCTL_CREATE_DESTROY_ON_CLOSE } from "../../sim/devices/vmm/ctl.ts";
import { upgradeState } from "../../sim/machine/device.ts";
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

/** Turns a v3 state into the v2 layout (no config.permissions, no per-VM creator prison). */
function toV2(s: any): void {
  s.version = 2;
  delete s.config.permissions;
  for (const v of Object.values(s.vms) as any[]) delete v.jailed;
}

/** Turns a v3 state into the v1 layout (global options, no per-VM flag, uid or file credentials). */
function toV1(s: any, cfg: { destroyOnClose: boolean; privDriver: boolean; jailedWithoutVmm: boolean }): void {
  toV2(s);
  s.version = 1;
  delete s.config.hostCpus;
  delete s.config.maxvmms;
  Object.assign(s.config, cfg);
  for (const v of Object.values(s.vms) as any[]) {
    delete v.destroyOnClose;
    delete v.uid;
  }
  for (const f of Object.values(s.files) as any[]) delete f.cred;
}

describe("vmm state in snapshots", () => {
  it("has state version 3", () => {
    expect(VmmKind.type).toBe("vmm");
    expect(VmmKind.stateVersion).toBe(3);
  });

  it("upgrades v2 to v3 with the root-only permissions the v2 model had, and each VM's creator prison", () => {
    const { bench, vmm } = vmmBench({ permissions: "root-only" });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    const jctl = fdOf(vmm.open("/dev/vmmctl", "rw", 1, { uid: 0, jail: { allowVmm: true } }));
    expect(errnoOf(vmm.createVm(ctl, "host"))).toBe(0);
    expect(errnoOf(vmm.createVm(jctl, "jailed", { flags: VMMCTL_CREATE_DESTROY_ON_CLOSE }))).toBe(0);
    const v2 = clonePlain(vmm.state as unknown as Plain) as any;
    toV2(v2);
    expect(validateVmmState(v2)).toMatch(/layout 2/);
    const up = upgradeState(VmmKind, 2, v2) as { ok: true; state: any };
    expect(up.ok).toBe(true);
    expect(validateVmmState(up.state)).toBeUndefined();
    expect(canonical(up.state)).toBe(canonical(vmm.state as unknown as Plain));
    expect(Object.values(up.state.vms).map((v: any) => [v.name, v.jailed])).toEqual([["host", false], ["jailed", true]]);
    vmm.state = up.state;
    expect(vmm.open("/dev/vmmctl", "rw", 1, { uid: 5, groups: [978] })).toEqual({ errno: 13 }); // root-only: EACCES
    drain(bench);
  });

  it("upgrades v1 (global destroyOnClose) to v2 (per-VM VMMCTL_CREATE_DESTROY_ON_CLOSE), then v3", () => {
    // Under v1 a VM had ownerFile >= 0 exactly when config.destroyOnClose was on at its creation.
    const { bench, vmm } = vmmBench({ permissions: "root-only" });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "tied", { flags: VMMCTL_CREATE_DESTROY_ON_CLOSE }))).toBe(0);
    expect(errnoOf(vmm.createVm(ctl, "free"))).toBe(0);
    const v1 = clonePlain(vmm.state as unknown as Plain) as any;
    toV1(v1, { destroyOnClose: true, privDriver: true, jailedWithoutVmm: false });
    expect(validateVmmState(v1)).toMatch(/layout 1/);
    const up = upgradeState(VmmKind, 1, v1);
    expect(up.ok).toBe(true);
    const s2 = (up as { state: any }).state;
    expect(validateVmmState(s2)).toBeUndefined();
    expect(s2.config.destroyOnClose).toBeUndefined();
    expect(canonical(s2)).toBe(canonical(vmm.state as unknown as Plain));
    // and it behaves as v2: the tied VM goes with its descriptor, the other stays
    vmm.state = s2;
    vmm.close(ctl);
    drain(bench);
    expect(Object.values(vmm.state.vms).map((v) => v.name)).toEqual(["free"]);
  });

  it("a v1 state whose option was off upgrades with no VM tied", () => {
    const { vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "a"))).toBe(0);
    const v1 = clonePlain(vmm.state as unknown as Plain) as any;
    toV1(v1, { destroyOnClose: false, privDriver: false, jailedWithoutVmm: false });
    const up = upgradeState(VmmKind, 1, v1) as { ok: true; state: any };
    expect(up.ok).toBe(true);
    expect(validateVmmState(up.state)).toBeUndefined();
    expect(Object.values(up.state.vms).map((v: any) => [v.destroyOnClose, v.ownerFile, v.uid])).toEqual([[false, -1, 0]]);
    // v1 privDriver: false (no PRIV_DRIVER) becomes a jailed root with allow.vmm on every open file
    expect(Object.values(up.state.files).map((f: any) => f.cred)).toEqual([{ uid: 0, jail: { allowVmm: true } }]);
    expect(up.state.config).toMatchObject({ hostCpus: 4, maxvmms: 16 });
  });

  it("is plain data that validates", () => {
    const { vmm } = scenario();
    const s = vmm.state as unknown as Plain;
    expect(canonical(clonePlain(s))).toBe(canonical(s));
    expect(validateVmmState(vmm.state)).toBeUndefined();
    expect(validateVmmState(null)).toBe("not an object");
    expect(validateVmmState({ ...vmm.state, version: 4 } as any)).toMatch(/layout/);
    expect(validateVmmState({ ...vmm.state, config: { ...vmm.state.config, permissions: "world" } } as any)).toMatch(/config\.permissions/);
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
