// The opener's credentials and the per-uid VM limit, after freebsd-src sys/dev/vmm/vmm_dev.c
// (main, 012895d5 as read for issue 12):
//   - vmmdev_init: make_dev_p(..., UID_ROOT, GID_WHEEL, 0600, "vmmctl"): only the owner (root)
//     may open it; devfs's access check (vn_open -> VOP_ACCESS, root bypasses) fails others with
//     EACCES before vmmctl_open runs.
//   - vmmdev_create: make_dev_s with mda_uid = cred->cr_uid, mda_mode = 0600 for vmm/NAME.
//   - vmm_priv_check (vmmctl_open, vmmdev_open): EPERM for a jailed credential without allow.vmm.
//   - vmmdev_create: `if (!chgvmmcnt(cred->cr_ruidinfo, 1, vm_maxvmms)) return (ENOMEM);`, after
//     the EEXIST lookup; vmmdev_destroy gives the count back (chgvmmcnt(..., -1, 0)), so a VM
//     being destroyed still counts until it is gone. vmm_handler: vm_maxvmms = 4 * mp_ncpus.
import { describe, expect, it } from "vitest";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { EACCES, EEXIST, ENOMEM, EPERM } from "../../sim/devices/vmm/errno.ts";
import { drain, errnoOf, fdOf, settle, vmmBench } from "./helpers.ts";

const user = { uid: 1001 };

describe("opening as a non-root user", () => {
  it("/dev/vmmctl (root, 0600) is EACCES for any mode; root opens it", () => {
    const { vmm } = vmmBench();
    for (const m of ["r", "w", "rw"] as const) expect(vmm.open("/dev/vmmctl", m, 1, user)).toEqual({ errno: EACCES });
    expect("fd" in vmm.open("/dev/vmmctl", "rw", 1, { uid: 0 })).toBe(true);
    expect(vmm.state.files).not.toEqual({});
  });

  it("/dev/vmm/NAME (the creator's uid, 0600) is EACCES for another uid", () => {
    const { vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "g"))).toBe(0);
    expect(Object.values(vmm.state.vms)[0]!.uid).toBe(0);
    expect(vmm.open("/dev/vmm/g", "rw", 1, user)).toEqual({ errno: EACCES });
    expect("fd" in vmm.open("/dev/vmm/g", "rw")).toBe(true);
  });

  it("the access check comes before vmm_priv_check: a jailed non-root user gets EACCES, a jailed root EPERM", () => {
    const { vmm } = vmmBench();
    expect(vmm.open("/dev/vmmctl", "rw", 1, { uid: 5, jail: { allowVmm: false } })).toEqual({ errno: EACCES });
    expect(vmm.open("/dev/vmmctl", "rw", 1, { uid: 0, jail: { allowVmm: false } })).toEqual({ errno: EPERM });
  });
});

describe("hw.vmm.maxvmms", () => {
  it("defaults to 4 x the host's CPUs", () => {
    expect(vmmBench().vmm.state.config.maxvmms).toBe(16); // 4 host CPUs by default
    expect(vmmBench({ hostCpus: 3 }).vmm.state.config.maxvmms).toBe(12);
    expect(vmmBench({ hostCpus: 3, maxvmms: 1 }).vmm.state.config.maxvmms).toBe(1);
  });

  it("the (maxvmms + 1)th VM of a uid is ENOMEM; destroying one frees its slot", () => {
    const { bench, vmm } = vmmBench({ hostCpus: 2 });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    for (let i = 0; i < 8; i++) expect(errnoOf(vmm.createVm(ctl, `v${i}`)), `v${i}`).toBe(0);
    expect(errnoOf(vmm.createVm(ctl, "v8"))).toBe(ENOMEM);
    expect(errnoOf(vmm.createVm(ctl, "v0"))).toBe(EEXIST); // the lookup comes first
    expect(Object.keys(vmm.state.vms)).toHaveLength(8);
    expect(errnoOf(vmm.destroyVm(ctl, "v3"))).toBe(0);
    drain(bench);
    expect(errnoOf(vmm.createVm(ctl, "v8"))).toBe(0);
    expect(errnoOf(vmm.createVm(ctl, "v9"))).toBe(ENOMEM);
  });

  it("a VM being destroyed still counts until vmmdev_destroy has run", () => {
    const { bench, vmm } = vmmBench({ maxvmms: 1 });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "a"))).toBe(0);
    const vfd = fdOf(vmm.open("/dev/vmm/a", "rw"));
    const busy = vmm.ioctl(vfd, cmdOf("VM_SET_REGISTER"), vcpuArg("VM_SET_REGISTER", 0), { durationNs: 500 });
    expect(busy.status).toBe("pending");
    const d = vmm.destroyVm(ctl, "a");
    expect(d.status).toBe("pending"); // draining the ioctl in progress
    expect(errnoOf(vmm.createVm(ctl, "b"))).toBe(ENOMEM);
    drain(bench);
    expect(errnoOf(vmm.createVm(ctl, "b"))).toBe(0);
  });

  it("maxvmms 0 refuses every create, root included (chglimit has no privilege bypass)", () => {
    const { vmm } = vmmBench({ maxvmms: 0 });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "x"))).toBe(ENOMEM);
  });
});

describe("PRIV_DRIVER from the credentials", () => {
  it("root outside a jail passes VMMDEV_IOCTL_PRIV_CHECK_DRIVER; a jailed root with allow.vmm is EPERM", () => {
    const { bench, vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "p"))).toBe(0);
    const root = fdOf(vmm.open("/dev/vmm/p", "rw"));
    const jailed = fdOf(vmm.open("/dev/vmm/p", "rw", 1, { uid: 0, jail: { allowVmm: true } }));
    expect(settle(bench, vmm, vmm.ioctl(root, cmdOf("VM_BIND_PPTDEV"), argBytes("VM_BIND_PPTDEV"))).errno).toBe(0);
    expect(errnoOf(vmm.ioctl(jailed, cmdOf("VM_BIND_PPTDEV"), argBytes("VM_BIND_PPTDEV")))).toBe(EPERM);
  });
});
