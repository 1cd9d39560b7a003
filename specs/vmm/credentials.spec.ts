// The opener's credentials, the node permissions and the per-uid VM limit, in the two vmm_dev.c
// revisions the model follows (config.permissions):
//
// "root-only" (the default) is the newest vmm_dev.c of the FreeBSD repository readable here; the
// other is a developer's tree, so it is a named option (permissions: "vmm-group"), not the default.
//
// "vmm-group" — markjdb/freebsd 0339235894031f6f7ecc844fc42001888cb2f2f9
// sys/dev/vmm/vmm_dev.c (Mark Johnston's tree; the freebsd-src snapshot readable here, 012895d5,
// predates it):
//   - vmmdev_init: make_dev_p(MAKEDEV_CHECKNAME, &vmmctl_cdev, &vmmctlsw, NULL, UID_ROOT, GID_VMM,
//     0660, "vmmctl"): root and group vmm (GID_VMM 978) may open it; others get devfs's EACCES
//     (vn_open -> VOP_ACCESS -> vaccess) before vmmctl_open runs.
//   - vmmdev_create: `mda.mda_uid = cred->cr_uid; mda.mda_gid = GID_VMM; mda.mda_mode = 0600;`
//     for vmm/NAME: its creator (and root) may open it, the group may not.
//   - vmmdev_create: `if ((flags & VMMCTL_CREATE_DESTROY_ON_CLOSE) == 0 && (error =
//     priv_check_cred(cred, PRIV_VMM_CREATE)) != 0) return (error);` after the EEXIST lookup:
//     an unprivileged user may create only VMs tied to the descriptor. PRIV_VMM_CREATE (710,
//     sys/sys/priv.h) is root's outside a jail: prison_priv_check (sys/kern/kern_jail.c) does not
//     name it, so its default EPERM applies to a jailed root.
//   - vmmdev_create: chgvmmcnt(cred->cr_ruidinfo, 1, vm_maxvmms) only after make_dev_s -> ENOMEM.
//   - vmmdev_lookup_and_destroy: `if ((cred->cr_uid != sc->ucred->cr_uid || cred->cr_prison !=
//     sc->ucred->cr_prison) && (error = priv_check_cred(cred, PRIV_VMM_DESTROY)) != 0) return
//     (error);` after the EINVAL lookup.
// "root-only" — freebsd-src 012895d5be9de60ba30231b6466b87576c7b43d8 sys/dev/vmm/vmm_dev.c:
//   - vmmdev_init: `UID_ROOT, GID_WHEEL, 0600, "vmmctl"`; vmmdev_create: `mda.mda_uid =
//     UID_ROOT; mda.mda_gid = GID_WHEEL; mda.mda_mode = 0600;`: root only, for both nodes.
//   - vmmdev_create: no privilege check; `if (!chgvmmcnt(cred->cr_ruidinfo, 1, vm_maxvmms))
//     return (ENOMEM)` right after the EEXIST lookup, before vm_create and make_dev_s.
// Both: vmm_priv_check (vmmctl_open, vmmdev_open): EPERM for a jailed credential without
// allow.vmm; vmmctl_open then wants FWRITE (EPERM); vmmdev_destroy gives the count back
// (chgvmmcnt(..., -1, 0)), so a VM being destroyed still counts; vmm_handler: vm_maxvmms =
// 4 * mp_ncpus.
import { describe, expect, it } from "vitest";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { VMMCTL_CREATE_DESTROY_ON_CLOSE } from "../../sim/devices/vmm/ctl.ts";
import { EACCES, EEXIST, EINVAL, ENAMETOOLONG, ENOMEM, EPERM } from "../../sim/devices/vmm/errno.ts";
import { drain, errnoOf, fdOf, settle, vmmBench } from "./helpers.ts";

const GID_VMM = 978; // sys/sys/conf.h of the vmm-group revision
const user = { uid: 1001 };
const member = { uid: 1001, gid: 1001, groups: [GID_VMM] };
const other = { uid: 1002, groups: [GID_VMM] };
const ON_CLOSE = { flags: VMMCTL_CREATE_DESTROY_ON_CLOSE };
const GROUP = { permissions: "vmm-group" as const };

describe("vmm-group (permissions: \"vmm-group\"): /dev/vmmctl root:vmm 0660", () => {
  it("is chosen by name; the default is root-only (freebsd-src 012895d5)", () => {
    expect(vmmBench().vmm.state.config.permissions).toBe("root-only");
    expect(vmmBench(GROUP).vmm.state.config.permissions).toBe("vmm-group");
  });

  it("a user outside group vmm gets EACCES for any mode; a member opens it read-write; root too", () => {
    const { vmm } = vmmBench(GROUP);
    for (const m of ["r", "w", "rw"] as const) expect(vmm.open("/dev/vmmctl", m, 1, user)).toEqual({ errno: EACCES });
    expect("fd" in vmm.open("/dev/vmmctl", "rw", 1, member)).toBe(true);
    expect("fd" in vmm.open("/dev/vmmctl", "rw", 1, { uid: 1001, gid: GID_VMM })).toBe(true); // the primary group counts too
    expect("fd" in vmm.open("/dev/vmmctl", "rw", 1, { uid: 0 })).toBe(true);
  });

  it("a member's read-only open passes the access check and fails vmmctl_open's FWRITE test (EPERM)", () => {
    const { vmm } = vmmBench(GROUP);
    expect(vmm.open("/dev/vmmctl", "r", 1, member)).toEqual({ errno: EPERM });
  });

  it("the access check comes before vmm_priv_check: a jailed non-member gets EACCES, a jailed member or root EPERM", () => {
    const { vmm } = vmmBench(GROUP);
    expect(vmm.open("/dev/vmmctl", "rw", 1, { uid: 5, jail: { allowVmm: false } })).toEqual({ errno: EACCES });
    expect(vmm.open("/dev/vmmctl", "rw", 1, { ...member, jail: { allowVmm: false } })).toEqual({ errno: EPERM });
    expect(vmm.open("/dev/vmmctl", "rw", 1, { uid: 0, jail: { allowVmm: false } })).toEqual({ errno: EPERM });
    expect("fd" in vmm.open("/dev/vmmctl", "rw", 1, { ...member, jail: { allowVmm: true } })).toBe(true);
  });
});

describe("vmm-group: creating needs PRIV_VMM_CREATE unless the VM is tied to the descriptor", () => {
  it("a member creates only VMMCTL_CREATE_DESTROY_ON_CLOSE VMs (else EPERM, after the EEXIST lookup)", () => {
    const { bench, vmm } = vmmBench(GROUP);
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw", 1, member));
    expect(errnoOf(vmm.createVm(ctl, "persistent"))).toBe(EPERM);
    expect(errnoOf(vmm.createVm(ctl, "mine", ON_CLOSE))).toBe(0);
    expect(errnoOf(vmm.createVm(ctl, "mine"))).toBe(EEXIST); // the lookup comes first
    expect(errnoOf(vmm.createVm(ctl, "bad", { flags: 2 }))).toBe(EINVAL); // the flags check before both
    expect(Object.values(vmm.state.vms).map((v) => [v.name, v.uid, v.destroyOnClose])).toEqual([["mine", 1001, true]]);
    vmm.close(ctl);
    drain(bench);
    expect(vmm.state.vms).toEqual({});
  });

  it("root creates either kind; a jailed root (allow.vmm) is refused PRIV_VMM_CREATE", () => {
    const { vmm } = vmmBench(GROUP);
    const root = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(root, "a"))).toBe(0);
    expect(errnoOf(vmm.createVm(root, "b", ON_CLOSE))).toBe(0);
    const jailed = fdOf(vmm.open("/dev/vmmctl", "rw", 1, { uid: 0, jail: { allowVmm: true } }));
    expect(errnoOf(vmm.createVm(jailed, "c"))).toBe(EPERM);
    expect(errnoOf(vmm.createVm(jailed, "c", ON_CLOSE))).toBe(0);
  });

  it("/dev/vmm/NAME is its creator's (group vmm, 0600): other members get EACCES, root opens it", () => {
    const { vmm } = vmmBench(GROUP);
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw", 1, member));
    expect(errnoOf(vmm.createVm(ctl, "g", ON_CLOSE))).toBe(0);
    expect("fd" in vmm.open("/dev/vmm/g", "rw", 1, member)).toBe(true);
    expect(vmm.open("/dev/vmm/g", "rw", 1, other)).toEqual({ errno: EACCES });
    expect("fd" in vmm.open("/dev/vmm/g", "rw")).toBe(true);
    const root = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(root, "r"))).toBe(0);
    expect(vmm.open("/dev/vmm/r", "rw", 1, member)).toEqual({ errno: EACCES });
  });

  it("destroying another user's VM needs PRIV_VMM_DESTROY (EPERM); its creator and root may", () => {
    const { bench, vmm } = vmmBench(GROUP);
    const mine = fdOf(vmm.open("/dev/vmmctl", "rw", 1, member));
    const theirs = fdOf(vmm.open("/dev/vmmctl", "rw", 1, other));
    expect(errnoOf(vmm.createVm(mine, "m1", ON_CLOSE))).toBe(0);
    expect(errnoOf(vmm.createVm(mine, "m2", ON_CLOSE))).toBe(0);
    expect(errnoOf(vmm.destroyVm(theirs, "m1"))).toBe(EPERM);
    expect(errnoOf(vmm.destroyVm(theirs, "nosuch"))).toBe(EINVAL); // the lookup comes first
    expect(settle(bench, vmm, vmm.destroyVm(mine, "m1")).errno).toBe(0);
    const root = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(settle(bench, vmm, vmm.destroyVm(root, "m2")).errno).toBe(0);
    // the same uid from a jail is another prison: PRIV_VMM_DESTROY again (denied in a jail)
    expect(errnoOf(vmm.createVm(mine, "m3", ON_CLOSE))).toBe(0);
    const jailedSame = fdOf(vmm.open("/dev/vmmctl", "rw", 1, { ...member, jail: { allowVmm: true } }));
    expect(errnoOf(vmm.destroyVm(jailedSame, "m3"))).toBe(EPERM);
  });

  it("the maxvmms count comes after make_dev_s: a bad name is its devfs error even at the limit", () => {
    const { vmm } = vmmBench({ ...GROUP, maxvmms: 1, specnamelen: 20 });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "a"))).toBe(0);
    expect(errnoOf(vmm.createVm(ctl, "b"))).toBe(ENOMEM);
    expect(errnoOf(vmm.createVm(ctl, "bad name"))).toBe(EINVAL); // prep_devname before chgvmmcnt
    expect(errnoOf(vmm.createVm(ctl, "x".repeat(30)))).toBe(ENAMETOOLONG); // "vmm/" + 30 > SPECNAMELEN 20
    expect(vmm.state.devfs.filter((n) => n.startsWith("vmm/"))).toEqual(["vmm/a"]); // nothing half-made
  });
});

describe("root-only (freebsd-src 012895d5): both nodes root:wheel 0600", () => {
  const rootOnly = { permissions: "root-only" as const };

  it("/dev/vmmctl is EACCES for any non-root user, group vmm included", () => {
    const { vmm } = vmmBench(rootOnly);
    for (const c of [user, member]) for (const m of ["r", "w", "rw"] as const) expect(vmm.open("/dev/vmmctl", m, 1, c)).toEqual({ errno: EACCES });
    expect(vmm.open("/dev/vmmctl", "rw", 1, { uid: 0, jail: { allowVmm: false } })).toEqual({ errno: EPERM });
    expect("fd" in vmm.open("/dev/vmmctl", "rw")).toBe(true);
  });

  it("/dev/vmm/NAME is root's: EACCES for every other uid; no privilege check at create or destroy", () => {
    const { bench, vmm } = vmmBench(rootOnly);
    const jailed = fdOf(vmm.open("/dev/vmmctl", "rw", 1, { uid: 0, jail: { allowVmm: true } }));
    expect(errnoOf(vmm.createVm(jailed, "g"))).toBe(0); // no PRIV_VMM_CREATE in this revision
    expect(vmm.open("/dev/vmm/g", "rw", 1, member)).toEqual({ errno: EACCES });
    const root = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(settle(bench, vmm, vmm.destroyVm(root, "g")).errno).toBe(0); // nor PRIV_VMM_DESTROY
  });

  it("the maxvmms count comes right after the lookup: ENOMEM before prep_devname's errors", () => {
    const { vmm } = vmmBench({ ...rootOnly, maxvmms: 1, specnamelen: 20 });
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    expect(errnoOf(vmm.createVm(ctl, "a"))).toBe(0);
    expect(errnoOf(vmm.createVm(ctl, "bad name"))).toBe(ENOMEM);
    expect(errnoOf(vmm.createVm(ctl, "x".repeat(30)))).toBe(ENOMEM);
    expect(errnoOf(vmm.createVm(ctl, "a"))).toBe(EEXIST);
  });
});

describe("hw.vmm.maxvmms (both revisions)", () => {
  it("defaults to 4 x the host's CPUs", () => {
    expect(vmmBench().vmm.state.config.maxvmms).toBe(16); // 4 host CPUs by default
    expect(vmmBench({ hostCpus: 3 }).vmm.state.config.maxvmms).toBe(12);
    expect(vmmBench({ hostCpus: 3, maxvmms: 1 }).vmm.state.config.maxvmms).toBe(1);
  });

  for (const permissions of ["vmm-group", "root-only"] as const) {
    it(`${permissions}: the (maxvmms + 1)th VM of a uid is ENOMEM; destroying one frees its slot`, () => {
      const { bench, vmm } = vmmBench({ hostCpus: 2, permissions });
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
  }

  it("the count is per uid: another member has its own", () => {
    const { vmm } = vmmBench({ ...GROUP, maxvmms: 1 });
    const a = fdOf(vmm.open("/dev/vmmctl", "rw", 1, member));
    const b = fdOf(vmm.open("/dev/vmmctl", "rw", 1, other));
    expect(errnoOf(vmm.createVm(a, "a1", ON_CLOSE))).toBe(0);
    expect(errnoOf(vmm.createVm(a, "a2", ON_CLOSE))).toBe(ENOMEM);
    expect(errnoOf(vmm.createVm(b, "b1", ON_CLOSE))).toBe(0);
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
