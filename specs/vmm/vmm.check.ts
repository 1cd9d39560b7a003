// Conformance checks for the bhyve vmm control device: /dev/vmmctl (VMMCTL_VM_CREATE / DESTROY)
// and the per-VM ioctls of /dev/vmm/NAME, each step with its golden errno. No FreeBSD target exists
// on this machine, so these run on the model only (a target with capability "vmm" and openVmm()).
//
// Golden errnos: freebsd-src sys/dev/vmm/vmm_dev.c at commit 012895d5be9de60ba30231b6466b87576c7b43d8
// (the behaviour the model's two permission revisions share, and the "root-only" revision), and
// markjdb/freebsd 0339235894031f6f7ecc844fc42001888cb2f2f9 sys/dev/vmm/vmm_dev.c for the group-vmm
// node permissions and PRIV_VMM_CREATE / PRIV_VMM_DESTROY (the model's default revision)
// (read through the library's read_file; the mirror was too large to fetch, so no line numbers
// from git: each golden names its function and the condition in it), plus the few facts from
// other files named where used: sys/amd64/vmm/vmm.c (vm_get_register / vm_set_register,
// vm_activate_cpu), sys/dev/vmm/vmm_mem.c (vm_alloc_memseg), sys/kern/kern_conf.c
// (prep_devname), sys/kern/sys_generic.c (sys_ioctl), devfs (a missing node is ENOENT; VOP_ACCESS
// on a root-owned 0600 node is EACCES for others).
import { CheckFailure, type Check, type CheckContext, type Outcome } from "../../sim/conform/types.ts";
import type { VmmOpenOptions, VmmSession, VmmResult } from "../../sim/devices/vmm/session.ts";
import type { Cred, IoctlOptions, OpenMode } from "../../sim/devices/vmm/model.ts";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { vmmctlArgBytes, VMMCTL_CREATE_DESTROY_ON_CLOSE, VM_MAX_NAMELEN } from "../../sim/devices/vmm/ctl.ts";
import { _IOWR, IOCNUM, IOCPARM_LEN } from "../../sim/devices/vmm/ioccom.ts";
import { VM_REG_LAST } from "../../sim/devices/vmm/structs.ts";
import { EACCES, EBUSY, EEXIST, EINVAL, ENOENT, ENOMEM, ENOTTY, EPERM, ERANGE, errnoName } from "../../sim/devices/vmm/errno.ts";

export const PINNED = "freebsd-src 012895d5 sys/dev/vmm/vmm_dev.c";
/** A developer tree's node permissions and privilege checks (config.permissions "vmm-group"; the default is root-only, PINNED). */
export const VMM_GROUP = "markjdb/freebsd 03392358 sys/dev/vmm/vmm_dev.c";
const MODEL_ONLY = "on the model only: no FreeBSD target exists here";

/** A golden errno, or "anything but" one (a boundary the source lets through to later checks). */
type Want = number | { not: number };

const show = (w: Want) => (typeof w === "number" ? errnoName(w) : `not ${errnoName(w.not)}`);
const meets = (got: number, w: Want) => (typeof w === "number" ? got === w : got !== w.not);

/** The steps of one check: each compares one outcome with its golden errno, naming the step on a mismatch. */
export class Steps {
  count = 0;
  constructor(readonly s: VmmSession) {}

  expect(step: string, got: number, want: Want): void {
    this.count++;
    if (!meets(got, want)) throw new CheckFailure(`step "${step}": got ${errnoName(got)}, golden ${show(want)}`);
  }

  open(step: string, path: string, mode: OpenMode, want: Want, cred?: Cred): number {
    const r = this.s.open(path, mode, cred);
    this.expect(step, "fd" in r ? 0 : r.errno, want);
    return "fd" in r ? r.fd : -1;
  }

  io(step: string, fd: number, cmd: number, arg: Uint8Array, want: Want, opts?: IoctlOptions): VmmResult {
    const r = this.s.settle(this.s.ioctl(fd, cmd, arg, opts));
    this.expect(step, r.errno, want);
    return r;
  }

  create(step: string, fd: number, name: string, want: Want, opts?: { flags?: number; reserved?: number[] }): void {
    this.expect(step, this.s.settle(this.s.createVm(fd, name, opts)).errno, want);
  }

  destroy(step: string, fd: number, name: string, want: Want, opts?: { reserved?: number[] }): void {
    this.expect(step, this.s.settle(this.s.destroyVm(fd, name, opts)).errno, want);
  }

  /** The named vCPU-argument ioctl `name` with struct members `values`. */
  vm(step: string, fd: number, name: string, values: Record<string, number | bigint>, want: Want, opts?: IoctlOptions): VmmResult {
    return this.io(step, fd, cmdOf(name), argBytes(name, values), want, opts);
  }
}

interface VmmCheckDef {
  readonly id: string;
  readonly title: string;
  readonly open?: VmmOpenOptions;
  /** The source of the goldens, when not (only) PINNED. */
  readonly source?: string;
  body(t: Steps): void;
}

/** A check run on a fresh vmm session of the target; a mismatch fails it naming the step. */
export function vmmCheck(def: VmmCheckDef): Check {
  return {
    id: def.id,
    suite: "vmm",
    title: `${def.title} (${MODEL_ONLY})`,
    needs: ["vmm"],
    async run(ctx: CheckContext): Promise<Outcome> {
      if (!ctx.target.openVmm) return { status: "skipped", detail: `${ctx.target.name} has no vmm session` };
      const s = await ctx.target.openVmm(def.open);
      const t = new Steps(s);
      try {
        def.body(t);
      } catch (e) {
        if (e instanceof CheckFailure) return { status: "failed", detail: `${e.message} (${def.source ?? PINNED}; ${MODEL_ONLY})` };
        throw e;
      } finally {
        await s.dispose();
      }
      return { status: "passed", detail: `${t.count} steps, each at its golden errno from ${def.source ?? PINNED}; run ${MODEL_ONLY}` };
    },
  };
}

const ROOT = { uid: 0 };
const USER = { uid: 1001 };
/** GID_VMM (sys/sys/conf.h of the vmm-group revision). */
const GID_VMM = 978;
const MEMBER = { uid: 1001, groups: [GID_VMM] };

export const checks: Check[] = [
  vmmCheck({
    id: "vmm/vmmctl-create-destroy",
    title: "VMMCTL_VM_CREATE / DESTROY: FWRITE, names, duplicates, reserved words, flags, unknown names and commands",
    body(t) {
      // vmmctl_open: `if ((flags & FWRITE) == 0) return (EPERM);`
      t.open("open /dev/vmmctl read-only", "/dev/vmmctl", "r", EPERM);
      const ctl = t.open("open /dev/vmmctl read-write", "/dev/vmmctl", "rw", 0);
      t.create("create guest0", ctl, "guest0", 0);
      // vmmdev_create: `sc = vmmdev_lookup(name, cred); if (sc != NULL) ... return (EEXIST);`
      t.create("create guest0 again", ctl, "guest0", EEXIST);
      // vmmctl_ioctl, VMMCTL_VM_CREATE: `if (vmc->reserved[i] != 0) { error = EINVAL; ...`
      t.create("create with a non-zero reserved word", ctl, "guest1", EINVAL, { reserved: [0, 0, 1] });
      // vmmdev_create: `if ((flags & ~VMMCTL_FLAGS_MASK) != 0) return (EINVAL);` (the mask is bit 0)
      t.create("create with an unknown flag bit", ctl, "guest1", EINVAL, { flags: 2 });
      t.create("create with bit 31 set", ctl, "guest1", EINVAL, { flags: 0x80000000 });
      // vmmctl_ioctl: `vmc->name[VM_MAX_NAMELEN] = '\0';` (VM_MAX_NAMELEN 229): a longer name is
      // cut to 229 bytes, so a 230-byte name equal to a 229-byte one in its first 229 is a duplicate.
      const long = "n".repeat(VM_MAX_NAMELEN);
      t.create("create a VM_MAX_NAMELEN-byte name", ctl, long, 0);
      t.create("create that name plus one byte (cut to VM_MAX_NAMELEN)", ctl, long + "x", EEXIST);
      t.open("open the VM_MAX_NAMELEN-byte name's node", `/dev/vmm/${long}`, "rw", 0);
      // make_dev_s(MAKEDEV_CHECKNAME) -> prep_devname (kern_conf.c): whitespace, an empty last
      // component ("vmm/" for the empty name) and ".." components are EINVAL.
      t.create("create a name with a space", ctl, "bad name", EINVAL);
      t.create("create the empty name", ctl, "", EINVAL);
      t.create("create a name with a .. component", ctl, "a/../b", EINVAL);
      // vmmdev_lookup_and_destroy: `if (sc == NULL || sc->cdev == NULL) ... return (EINVAL);` —
      // an unknown name is EINVAL at DESTROY (not ENOENT)...
      t.destroy("destroy an unknown name", ctl, "nosuchvm", EINVAL);
      // vmmctl_ioctl, VMMCTL_VM_DESTROY: `if (vmd->reserved[i] != 0) { error = EINVAL; ...`
      t.destroy("destroy with a non-zero reserved word", ctl, "guest0", EINVAL, { reserved: [0, 0, 0, 5] });
      // ...while opening a node that does not exist is devfs's ENOENT.
      t.open("open /dev/vmm/nosuchvm", "/dev/vmm/nosuchvm", "rw", ENOENT);
      t.destroy("destroy guest0", ctl, "guest0", 0);
      t.open("open /dev/vmm/guest0 after its destroy", "/dev/vmm/guest0", "rw", ENOENT);
      t.destroy("destroy guest0 again", ctl, "guest0", EINVAL);
      // vmmctl_ioctl: `default: error = ENOTTY;` — a well-formed 'V' command it does not know.
      t.io("an unknown vmmctl command", ctl, _IOWR("V", 2, 296), new Uint8Array(296), ENOTTY);
    },
  }),
  vmmCheck({
    id: "vmm/destroy-on-close",
    title: "VMMCTL_CREATE_DESTROY_ON_CLOSE: vmmctl_dtor destroys the descriptor's VMs at its last close; others outlive it",
    body(t) {
      const ctl = t.open("open /dev/vmmctl", "/dev/vmmctl", "rw", 0);
      t.create("create monitor with DESTROY_ON_CLOSE", ctl, "monitor", 0, { flags: VMMCTL_CREATE_DESTROY_ON_CLOSE });
      t.create("create persistent without it", ctl, "persistent", 0);
      t.expect("close the vmmctl descriptor", t.s.close(ctl), 0);
      t.s.quiesce();
      // vmmdev_create: `if ((flags & VMMCTL_CREATE_DESTROY_ON_CLOSE) != 0) LIST_INSERT_HEAD(&priv->softcs, ...)`;
      // vmmctl_dtor (devfs_set_cdevpriv's destructor, run at the last close) destroys that list.
      t.open("open /dev/vmm/monitor after the close", "/dev/vmm/monitor", "rw", ENOENT);
      t.open("open /dev/vmm/persistent after the close", "/dev/vmm/persistent", "rw", 0);
      const ctl2 = t.open("reopen /dev/vmmctl", "/dev/vmmctl", "rw", 0);
      t.create("create monitor again (the name is free)", ctl2, "monitor", 0);
    },
  }),
  vmmCheck({
    id: "vmm/open-credentials",
    title: "Opening the vmm nodes: a non-root user, a jail without and with allow.vmm",
    body(t) {
      // devfs VOP_ACCESS: vmmdev_init makes vmmctl UID_ROOT, 0600 root:wheel at 012895d5 and
      // 0660 root:vmm in the vmm-group revision — EACCES for a user in neither group.
      t.open("open /dev/vmmctl as uid 1001", "/dev/vmmctl", "rw", EACCES, USER);
      // vmmctl_open: `error = vmm_priv_check(td->td_ucred);` — vmm_priv_check: `if (jailed(ucred)
      // && !(ucred->cr_prison->pr_allow & pr_allow_flag)) return (EPERM);`
      t.open("open /dev/vmmctl as root in a jail without allow.vmm", "/dev/vmmctl", "rw", EPERM, { uid: 0, jail: { allowVmm: false } });
      t.open("open /dev/vmmctl as root in a jail with allow.vmm", "/dev/vmmctl", "rw", 0, { uid: 0, jail: { allowVmm: true } });
      const ctl = t.open("open /dev/vmmctl as root", "/dev/vmmctl", "rw", 0, ROOT);
      t.create("create g", ctl, "g", 0);
      // vmmdev_open: the same vmm_priv_check.
      t.open("open /dev/vmm/g as root in a jail without allow.vmm", "/dev/vmm/g", "rw", EPERM, { uid: 0, jail: { allowVmm: false } });
      t.open("open /dev/vmm/g as uid 1001", "/dev/vmm/g", "rw", EACCES, USER);
    },
  }),
  vmmCheck({
    id: "vmm/group-vmm",
    title: "Group vmm: /dev/vmmctl root:vmm 0660, PRIV_VMM_CREATE unless destroy-on-close, per-VM nodes their creator's, PRIV_VMM_DESTROY",
    source: VMM_GROUP,
    open: { config: { permissions: "vmm-group" } },
    body(t) {
      // vmmdev_init: `make_dev_p(MAKEDEV_CHECKNAME, &vmmctl_cdev, &vmmctlsw, NULL, UID_ROOT,
      // GID_VMM, 0660, "vmmctl")`: a member of group vmm passes devfs's access check...
      const ctl = t.open("open /dev/vmmctl as a member of group vmm", "/dev/vmmctl", "rw", 0, MEMBER);
      // ...and vmmctl_open's `if ((flags & FWRITE) == 0) return (EPERM);` still applies.
      t.open("open /dev/vmmctl read-only as a member", "/dev/vmmctl", "r", EPERM, MEMBER);
      // vmmdev_create: `if ((flags & VMMCTL_CREATE_DESTROY_ON_CLOSE) == 0 && (error =
      // priv_check_cred(cred, PRIV_VMM_CREATE)) != 0) ... return (error);` — EPERM for a user.
      t.create("create a persistent VM as a member", ctl, "persistent", EPERM);
      t.create("create a destroy-on-close VM as a member", ctl, "mine", 0, { flags: VMMCTL_CREATE_DESTROY_ON_CLOSE });
      // `mda.mda_uid = cred->cr_uid; mda.mda_gid = GID_VMM; mda.mda_mode = 0600;`
      t.open("open /dev/vmm/mine as its creator", "/dev/vmm/mine", "rw", 0, MEMBER);
      t.open("open /dev/vmm/mine as another member", "/dev/vmm/mine", "rw", EACCES, { uid: 1002, groups: [GID_VMM] });
      t.open("open /dev/vmm/mine as root", "/dev/vmm/mine", "rw", 0, ROOT);
      // vmmdev_lookup_and_destroy: `if ((cred->cr_uid != sc->ucred->cr_uid || cred->cr_prison !=
      // sc->ucred->cr_prison) && (error = priv_check_cred(cred, PRIV_VMM_DESTROY)) != 0)`
      const other = t.open("open /dev/vmmctl as another member", "/dev/vmmctl", "rw", 0, { uid: 1002, groups: [GID_VMM] });
      t.destroy("destroy mine as another member", other, "mine", EPERM);
      t.destroy("destroy mine as its creator", ctl, "mine", 0);
      const root = t.open("open /dev/vmmctl as root", "/dev/vmmctl", "rw", 0, ROOT);
      t.create("create a persistent VM as root (PRIV_VMM_CREATE)", root, "persistent", 0);
      t.open("open root's /dev/vmm/persistent as a member", "/dev/vmm/persistent", "rw", EACCES, MEMBER);
    },
  }),
  vmmCheck({
    id: "vmm/root-only",
    title: "The 012895d5 permissions (config permissions root-only): both nodes root:wheel 0600, no PRIV_VMM_* checks",
    open: { config: { permissions: "root-only" } },
    body(t) {
      // vmmdev_init: `UID_ROOT, GID_WHEEL, 0600, "vmmctl"`: group vmm is nobody special here.
      t.open("open /dev/vmmctl as a member of group 978", "/dev/vmmctl", "rw", EACCES, MEMBER);
      // vmmdev_create has no privilege check at 012895d5: a jailed root with allow.vmm creates.
      const jailed = t.open("open /dev/vmmctl as root in a jail with allow.vmm", "/dev/vmmctl", "rw", 0, { uid: 0, jail: { allowVmm: true } });
      t.create("create a persistent VM as a jailed root", jailed, "j", 0);
      // `mda.mda_uid = UID_ROOT; mda.mda_gid = GID_WHEEL; mda.mda_mode = 0600;`
      t.open("open /dev/vmm/j as uid 1001", "/dev/vmm/j", "rw", EACCES, USER);
      t.open("open /dev/vmm/j as root", "/dev/vmm/j", "rw", 0, ROOT);
    },
  }),
  vmmCheck({
    id: "vmm/not-initialised",
    title: "vmm_modinit failed: there is no /dev/vmmctl (ENOENT)",
    open: { config: { initialized: false } },
    body(t) {
      // vmm_handler, MOD_LOAD: `error = vmm_modinit(); ... else { error1 = vmmdev_cleanup(); ...`
      // and vmmdev_cleanup: `destroy_dev(vmmctl_cdev);` — the node is gone: devfs's ENOENT.
      t.open("open /dev/vmmctl", "/dev/vmmctl", "rw", ENOENT);
    },
  }),
  vmmCheck({
    id: "vmm/maxvmms",
    title: "hw.vmm.maxvmms: the (limit + 1)th VM of a user is ENOMEM; a destroy gives the slot back",
    open: { config: { maxvmms: 2 } },
    body(t) {
      const ctl = t.open("open /dev/vmmctl", "/dev/vmmctl", "rw", 0);
      t.create("create a", ctl, "a", 0);
      t.create("create b", ctl, "b", 0);
      // vmmdev_create: `if (!chgvmmcnt(cred->cr_ruidinfo, 1, vm_maxvmms)) { ... return (ENOMEM); }`
      t.create("create c past the limit", ctl, "c", ENOMEM);
      // ...after the lookup: a duplicate name is still EEXIST at the limit.
      t.create("create a again at the limit", ctl, "a", EEXIST);
      // vmmdev_destroy: `chgvmmcnt(sc->ucred->cr_ruidinfo, -1, 0);`
      t.destroy("destroy a", ctl, "a", 0);
      t.create("create c after the destroy", ctl, "c", 0);
    },
  }),
  vmmCheck({
    id: "vmm/registers",
    title: "VM_GET/SET_REGISTER(_SET): values round-trip, VM_REG_LAST bounds, vCPU ids",
    body(t) {
      const ctl = t.open("open /dev/vmmctl", "/dev/vmmctl", "rw", 0);
      t.create("create r", ctl, "r", 0);
      const fd = t.open("open /dev/vmm/r", "/dev/vmm/r", "rw", 0);
      t.vm("VM_SET_REGISTER vCPU 0 reg 0", fd, "VM_SET_REGISTER", { cpuid: 0, regnum: 0, regval: 0x1234_5678_9abcn }, 0);
      const got = t.vm("VM_GET_REGISTER vCPU 0 reg 0", fd, "VM_GET_REGISTER", { cpuid: 0, regnum: 0 }, 0);
      // VM_GET_REGISTER copies the struct back (IOC_OUT) with the value vm_set_register stored.
      const regval = got.out.length >= 16 ? new DataView(got.out.buffer, got.out.byteOffset).getBigUint64(8, true) : -1n;
      t.expect("VM_GET_REGISTER returns the value set", regval === 0x1234_5678_9abcn ? 0 : EINVAL, 0);
      // sys/amd64/vmm/vmm.c vm_get_register / vm_set_register: `if (reg >= VM_REG_LAST) return (EINVAL);`
      t.vm("VM_SET_REGISTER reg VM_REG_LAST", fd, "VM_SET_REGISTER", { cpuid: 0, regnum: VM_REG_LAST }, EINVAL);
      t.vm("VM_GET_REGISTER reg VM_REG_LAST", fd, "VM_GET_REGISTER", { cpuid: 0, regnum: VM_REG_LAST }, EINVAL);
      t.vm("VM_GET_REGISTER reg VM_REG_LAST - 1", fd, "VM_GET_REGISTER", { cpuid: 0, regnum: VM_REG_LAST - 1 }, 0);
      // vmmdev_ioctl, VM_GET/SET_REGISTER_SET: `if (vmregset->count > VM_REG_LAST) { error = EINVAL; ...`
      t.vm("VM_GET_REGISTER_SET count VM_REG_LAST + 1", fd, "VM_GET_REGISTER_SET", { cpuid: 0, count: VM_REG_LAST + 1 }, EINVAL);
      t.vm("VM_SET_REGISTER_SET count VM_REG_LAST + 1", fd, "VM_SET_REGISTER_SET", { cpuid: 0, count: VM_REG_LAST + 1 }, EINVAL);
      // vmmdev_ioctl: `vcpuid = *(int *)data; if (vcpuid == -1) { if ((ioctl->flags &
      // VMMDEV_IOCTL_MAYBE_ALLOC_VCPU) == 0) { error = EINVAL; goto lockfail; }`
      t.vm("VM_GET_REGISTER vCPU -1", fd, "VM_GET_REGISTER", { cpuid: -1, regnum: 0 }, EINVAL);
      // `vcpu = vm_alloc_vcpu(sc->vm, vcpuid); if (vcpu == NULL) { error = EINVAL; ...` — out of
      // [0, vm_maxcpu) (4 on the model's default host).
      t.vm("VM_GET_REGISTER vCPU maxcpus", fd, "VM_GET_REGISTER", { cpuid: 4, regnum: 0 }, EINVAL);
    },
  }),
  vmmCheck({
    id: "vmm/memseg",
    title: "VM_ALLOC_MEMSEG (15 layout, domain set ds_mask_size bounds) and VM_ALLOC/GET_MEMSEG_14 (COMPAT_FREEBSD14)",
    body(t) {
      const ctl = t.open("open /dev/vmmctl", "/dev/vmmctl", "rw", 0);
      t.create("create m", ctl, "m", 0);
      const fd = t.open("open /dev/vmm/m", "/dev/vmm/m", "rw", 0);
      // vmmdev_ioctl, VM_ALLOC_MEMSEG: `if (mseg->ds_policy != DOMAINSET_POLICY_INVALID &&
      // mseg->ds_mask != NULL) { if (mseg->ds_mask_size < sizeof(domainset_t) ||
      // mseg->ds_mask_size > DOMAINSET_MAXSIZE / NBBY) { error = ERANGE; ...` — 8 and 32 bytes
      // on amd64: sys/sys/_domainset.h has DOMAINSET_SETSIZE = MAXMEMDOM in the kernel and
      // DOMAINSET_MAXSIZE 256 (bits); sys/amd64/include/param.h has MAXMEMDOM 8 unless the kernel
      // config overrides it, so domainset_t is one 64-bit word.
      const ds = (size: bigint) => ({ segid: 0, len: 0x10_0000n, ds_policy: 1, ds_mask: 0x7000n, ds_mask_size: size });
      t.vm("VM_ALLOC_MEMSEG ds_mask_size 7", fd, "VM_ALLOC_MEMSEG", ds(7n), ERANGE);
      t.vm("VM_ALLOC_MEMSEG ds_mask_size 33", fd, "VM_ALLOC_MEMSEG", ds(33n), ERANGE);
      t.vm("VM_ALLOC_MEMSEG ds_mask_size 8 (in range)", fd, "VM_ALLOC_MEMSEG", { ...ds(8n), segid: 2 }, { not: ERANGE });
      t.vm("VM_ALLOC_MEMSEG ds_mask_size 32 (in range)", fd, "VM_ALLOC_MEMSEG", { ...ds(32n), segid: 3 }, { not: ERANGE });
      t.vm("VM_ALLOC_MEMSEG segment 0, no domain set", fd, "VM_ALLOC_MEMSEG", { segid: 0, len: 0x10_0000n }, 0);
      // vmm_mem.c vm_alloc_memseg: the same segment again is EEXIST; a length that is not a
      // multiple of the page size is EINVAL.
      t.vm("VM_ALLOC_MEMSEG segment 0 again", fd, "VM_ALLOC_MEMSEG", { segid: 0, len: 0x10_0000n }, EEXIST);
      t.vm("VM_ALLOC_MEMSEG a length not page-aligned", fd, "VM_ALLOC_MEMSEG", { segid: 1, len: 4097n }, EINVAL);
      // COMPAT_FREEBSD14: VM_ALLOC_MEMSEG_14 (struct vm_memseg_14, 32 bytes) goes to the same
      // alloc_memseg with the old name length; VM_GET_MEMSEG_14 reads it back.
      t.vm("VM_ALLOC_MEMSEG_14 segment 1", fd, "VM_ALLOC_MEMSEG_14", { segid: 1, len: 0x2000n }, 0);
      const g = t.vm("VM_GET_MEMSEG_14 segment 1", fd, "VM_GET_MEMSEG_14", { segid: 1 }, 0);
      const len = g.out.length >= 16 ? new DataView(g.out.buffer, g.out.byteOffset).getBigUint64(8, true) : -1n;
      t.expect("VM_GET_MEMSEG_14 returns the length allocated", len === 0x2000n ? 0 : EINVAL, 0);
    },
  }),
  vmmCheck({
    id: "vmm/cpuset-sizes",
    title: "VM_GET_CPUS: cpusetsize outside [1, CPU_MAXSIZE / NBBY] is ERANGE, an unknown set EINVAL",
    body(t) {
      const ctl = t.open("open /dev/vmmctl", "/dev/vmmctl", "rw", 0);
      t.create("create c", ctl, "c", 0);
      const fd = t.open("open /dev/vmm/c", "/dev/vmm/c", "rw", 0);
      // vmmdev_ioctl, VM_GET_CPUS: `if (size < 1 || size > CPU_MAXSIZE / NBBY) { error = ERANGE;`
      // (CPU_MAXSIZE 1024: 128 bytes), then `else error = EINVAL;` for a `which` other than
      // VM_ACTIVE_CPUS (0), VM_SUSPENDED_CPUS (1), VM_DEBUG_CPUS (2).
      t.vm("VM_GET_CPUS cpusetsize 0", fd, "VM_GET_CPUS", { which: 0, cpusetsize: 0 }, ERANGE);
      t.vm("VM_GET_CPUS cpusetsize 129", fd, "VM_GET_CPUS", { which: 0, cpusetsize: 129 }, ERANGE);
      t.vm("VM_GET_CPUS cpusetsize -1", fd, "VM_GET_CPUS", { which: 0, cpusetsize: -1 }, ERANGE);
      t.vm("VM_GET_CPUS cpusetsize 128", fd, "VM_GET_CPUS", { which: 0, cpusetsize: 128 }, { not: ERANGE });
      t.vm("VM_GET_CPUS which 3", fd, "VM_GET_CPUS", { which: 3, cpusetsize: 8 }, EINVAL);
    },
  }),
  vmmCheck({
    id: "vmm/dispatch",
    title: "vmmdev_ioctl's table lookup: an unknown command and a known one with the wrong size in its word are ENOTTY",
    body(t) {
      const ctl = t.open("open /dev/vmmctl", "/dev/vmmctl", "rw", 0);
      t.create("create d", ctl, "d", 0);
      const fd = t.open("open /dev/vmm/d", "/dev/vmm/d", "rw", 0);
      // vmmdev_ioctl: no entry in vmmdev_ioctls nor vmmdev_machdep_ioctls -> `return (ENOTTY);`
      t.io("an unknown 'v' command", fd, _IOWR("v", 0xfe, 16), new Uint8Array(16), ENOTTY);
      // The table compares whole command words (`vmmdev_ioctls[i].cmd == cmd`), and the word
      // carries the argument size: VM_SET_REGISTER's number with 8 more bytes is no command.
      const set = cmdOf("VM_SET_REGISTER");
      const wrong = _IOWR("v", IOCNUM(set), IOCPARM_LEN(set) + 8);
      t.io("VM_SET_REGISTER with the size field + 8", fd, wrong, new Uint8Array(IOCPARM_LEN(set) + 8), ENOTTY);
      t.io("VM_SET_REGISTER with its own size", fd, set, vcpuArg("VM_SET_REGISTER", 0), 0);
      // A vmmctl command on a VM node is not in the VM's tables either.
      t.io("VMMCTL_VM_CREATE on a VM node", fd, t.s.ctl.VMMCTL_VM_CREATE, vmmctlArgBytes("x"), ENOTTY);
    },
  }),
  vmmCheck({
    id: "vmm/vcpu-locking",
    title: "Per-ioctl locking: LOCK_ONE_VCPU waits for a busy vCPU (no EBUSY); VM_ACTIVATE_CPU twice is EBUSY",
    body(t) {
      const ctl = t.open("open /dev/vmmctl", "/dev/vmmctl", "rw", 0);
      t.create("create l", ctl, "l", 0);
      const fd = t.open("open /dev/vmm/l", "/dev/vmm/l", "rw", 0);
      // vcpu_lock_one: `return (vcpu_set_state(vcpu, VCPU_FROZEN, true));` — from_idle: the
      // caller sleeps until the vCPU is idle, so a second LOCK_ONE_VCPU ioctl waits, then succeeds.
      const first = t.s.ioctl(fd, cmdOf("VM_SET_REGISTER"), argBytes("VM_SET_REGISTER", { cpuid: 0, regnum: 1, regval: 7n }), { durationNs: 5000 });
      const second = t.s.ioctl(fd, cmdOf("VM_GET_REGISTER"), argBytes("VM_GET_REGISTER", { cpuid: 0, regnum: 1 }), { durationNs: 10 });
      const a = t.s.settle(first);
      const b = t.s.settle(second);
      t.expect("VM_SET_REGISTER holding vCPU 0", a.errno, 0);
      t.expect("VM_GET_REGISTER on the busy vCPU 0", b.errno, 0);
      t.expect("the waiting ioctl completes after the holder", b.at > a.at ? 0 : EBUSY, 0);
      const v = b.out.length >= 16 ? new DataView(b.out.buffer, b.out.byteOffset).getBigUint64(8, true) : -1n;
      t.expect("the waiting ioctl sees the holder's value", v === 7n ? 0 : EINVAL, 0);
      // sys/amd64/vmm/vmm.c vm_activate_cpu: `if (CPU_ISSET(vcpu->vcpuid, &vm->active_cpus)) return (EBUSY);`
      t.vm("VM_ACTIVATE_CPU vCPU 0", fd, "VM_ACTIVATE_CPU", { vcpuid: 0 }, 0);
      t.vm("VM_ACTIVATE_CPU vCPU 0 again", fd, "VM_ACTIVATE_CPU", { vcpuid: 0 }, EBUSY);
    },
  }),
];
