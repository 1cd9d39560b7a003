// The vmm(4) control plane as a state machine over plain data: /dev/vmmctl (create/destroy by
// name), the per-VM device /dev/vmm/NAME with vmmdev_ioctl's dispatch and locking, processes with
// descriptor tables, and ioctls in flight. Nothing here is a closure or a timer: every caller,
// lock, wait queue and in-flight ioctl is data in VmmState, and waiting is a clock event (the
// Host schedules "wake" and "finish" events that the device feeds back into onWake/onFinish).
//
// Facts follow freebsd-src:
//   - sys_ioctl (sys_generic.c): generic command checks -> ENOTTY, copyin of IOCPARM_LEN bytes
//     (a short user buffer is EFAULT), copyout of IOC_OUT commands on success only.
//   - vmmctl_open: FWRITE required, else EPERM. vmmctl_ioctl: CREATE / DESTROY, else ENOTTY.
//   - CREATE: name[VM_MAX_NAMELEN] = 0; non-zero reserved -> EINVAL; vmmdev_create: flags outside
//     VMMCTL_FLAGS_MASK -> EINVAL; visible name -> EEXIST; vmm not initialised -> ENXIO;
//     make_dev_s("vmm/%s", MAKEDEV_CHECKNAME) -> prep_devname's errors. A VM created with
//     VMMCTL_CREATE_DESTROY_ON_CLOSE goes on the creating descriptor's priv->softcs list and
//     vmmctl_dtor (the descriptor's last close) destroys it; without the flag it outlives the close.
//   - DESTROY: same reserved check; unknown or dying -> EINVAL; else sc->cdev = NULL (dying),
//     vm_suspend(VM_SUSPEND_DESTROY), destroy_dev (new ioctls fail ENXIO; waits for the ioctls
//     already inside to drain), vmmdev_destroy (vCPU creation disabled, all vCPUs frozen, freed).
//   - vmmdev_ioctl: generic table, then machine-dependent table (unknown -> ENOTTY); memsegs lock
//     (X if XLOCK else S if SLOCK); vcpuid = first int of the argument; -1 only with MAYBE_ALLOC;
//     vm_alloc_vcpu (out of range, or creation disabled -> EINVAL; creating a vCPU takes
//     vcpus_init_lock exclusively, so it waits while a LOCK_ALL holds it shared); LOCK_ONE freezes
//     that vCPU (waits until idle); LOCK_ALL takes vcpus_init_lock shared and freezes every
//     allocated vCPU 0..maxcpus-1 in order, rolling back on failure; release: memsegs, then all
//     vCPUs (and the shared lock) or the one.
import type { Plain } from "../../clock/canonical.ts";
import { fromHex, toHex } from "../../clock/canonical.ts";
import { codec } from "../../wire/codec.ts";
import { EACCES, EALREADY, EBADF, EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, ENOMEM, ENOTTY, ENXIO, EPERM, ERANGE } from "./errno.ts";
import { IOC_IN, IOC_OUT, IOC_VOID, IOCPARM_LEN, genericIoctlCheck } from "./ioccom.ts";
import { devfsNameTaken, prepDevname, SPECNAMELEN } from "./devname.ts";
import { vmmctlCommands, VM_MAX_NAMELEN, VMMCTL_CREATE_DESTROY_ON_CLOSE, VMMCTL_FLAGS_MASK, type VmmctlCreateArgs } from "./ctl.ts";
import * as S from "./structs.ts";
import {
  ALLOC_VCPU, LOCK_ALL_VCPUS, LOCK_ONE_VCPU, MAYBE_ALLOC_VCPU, PRIV_CHECK_DRIVER, SLOCK_MEMSEGS, XLOCK_MEMSEGS, lookupIoctl,
} from "./table.ts";

// ---------------------------------------------------------------- state

export type VmmConfigState = {
  /** VM_MAX_NAMELEN: 229 (current) or 37 (FreeBSD 12 era). */
  maxNameLen: number;
  /** SPECNAMELEN for prep_devname (255 now; 63 in the FreeBSD 12 era). */
  specnamelen: number;
  /** vmm_modinit succeeded (else there is no /dev/vmmctl node: open is ENOENT). */
  initialized: boolean;
  /** vm_maxcpu: vCPU ids are valid in [0, maxcpus). */
  maxcpus: number;
  /** Default time an ioctl holds its locks, in ns. */
  ioctlNs: number;
  /** Per-command durations by C name (e.g. VM_RUN), in ns. */
  durations: Record<string, number>;
  /** devfs names that exist besides the vmm devices (e.g. "null"). */
  devfsNames: string[];
  /** Kernel built with COMPAT_FREEBSD4/5/43 (sys_ioctl then accepts IN commands of length 0). */
  compat4: boolean;
  /** COMPAT_FREEBSD12 table entries. */
  compat12: boolean;
  /** COMPAT_FREEBSD14 table entries (VM_ALLOC_MEMSEG_14, VM_GET_MEMSEG_14). */
  compat14: boolean;
  /** BHYVE_SNAPSHOT kernel option. */
  bhyveSnapshot: boolean;
  /** VM_MAX_MEMSEGS (segment ids valid in [0, maxMemsegs)). */
  maxMemsegs: number;
  /** Fault injection: freezing this vCPU inside LOCK_ALL fails with EBUSY (-1: never). */
  faultFreezeVcpu: number;
  /** mp_ncpus of the host. */
  hostCpus: number;
  /** hw.vmm.maxvmms: VMs per real uid (chgvmmcnt limit); vmm_handler sets 4 * mp_ncpus. */
  maxvmms: number;
  /**
   * Which vmm_dev.c's node permissions and privilege checks (see PERMISSIONS below):
   * "root-only" (default) — freebsd-src 012895d5be9de60ba30231b6466b87576c7b43d8, the newest
   * vmm_dev.c of the FreeBSD repository readable here: both nodes root:wheel 0600, no privilege
   * checks at create/destroy, the count taken before vm_create;
   * "vmm-group" — markjdb/freebsd 0339235894031f6f7ecc844fc42001888cb2f2f9 (a developer's tree,
   * not found in freebsd-src as stored here):
   * /dev/vmmctl root:vmm 0660, /dev/vmm/NAME the creator's uid with group vmm 0600,
   * PRIV_VMM_CREATE for a VM without VMMCTL_CREATE_DESTROY_ON_CLOSE, PRIV_VMM_DESTROY for
   * another user's VM, the maxvmms count taken after make_dev_s.
   */
  permissions: VmmPermissions;
};

export const PERMISSIONS = ["vmm-group", "root-only"] as const;
export type VmmPermissions = (typeof PERMISSIONS)[number];

/**
 * The opener's credentials: uid (0 is root), primary gid and supplementary groups (default none),
 * and, when jailed, whether the jail has allow.vmm. The model knows one jail: two jailed
 * credentials are in the same prison.
 */
export type Cred = { uid: number; gid?: number; groups?: number[]; jail?: { allowVmm: boolean } };

export const ROOT: Cred = { uid: 0 };

/** GID_VMM (sys/sys/conf.h in the vmm-group revision): the group of /dev/vmmctl. */
export const GID_VMM = 978;
/** GID_WHEEL. */
export const GID_WHEEL = 0;

/**
 * priv_check_cred(cred, PRIV_DRIVER / PRIV_VMM_CREATE / PRIV_VMM_DESTROY): root outside a jail.
 * priv_check_cred asks prison_priv_check first, whose switch (sys/kern/kern_jail.c, markjdb/
 * freebsd 16700f3ce69d) names none of these, so its default denies them to a jailed root; then
 * the superuser check grants them to uid 0.
 */
export function hasPrivDriver(c: Cred): boolean {
  return c.uid === 0 && c.jail === undefined;
}

/** In group `gid` (primary or supplementary). */
export function inGroup(c: Cred, gid: number): boolean {
  return c.gid === gid || (c.groups ?? []).includes(gid);
}

/** A devfs node's owner, group and mode. */
export type NodePerm = { uid: number; gid: number; mode: number };

/**
 * devfs_access -> vaccess for an open with `mode`: root passes (PRIV_VFS_READ / PRIV_VFS_WRITE,
 * granted to a jailed root too); else the owner's, the group's or the others' bits must allow it.
 */
export function devAccess(c: Cred, node: NodePerm, mode: OpenMode): boolean {
  if (c.uid === 0) return true;
  const bits = c.uid === node.uid ? (node.mode >> 6) & 7 : inGroup(c, node.gid) ? (node.mode >> 3) & 7 : node.mode & 7;
  return (!mode.includes("r") || (bits & 4) !== 0) && (!mode.includes("w") || (bits & 2) !== 0);
}

/** vmm_priv_check: EPERM for a jailed credential whose jail lacks allow.vmm. */
export function vmmPrivCheck(c: Cred): number {
  return c.jail !== undefined && !c.jail.allowVmm ? EPERM : 0;
}

export type VcpuState = {
  id: number;
  state: "idle" | "frozen" | "running";
  /** Op that froze it, -1 when idle. */
  owner: number;
  /** Ops waiting for it to become idle (FIFO). */
  waiters: number[];
  /** Register values by number, as decimal text of the u64. */
  regs: Record<string, string>;
  /** The op whose vCPU id argument allocated it, and that op's command. */
  allocatedBy: number;
  allocatedCmd: string;
};

export type VmState = {
  id: number;
  /** The name as given (latin1 string of the bytes). */
  name: string;
  /** Its devfs name, "vmm/..." after prep_devname. */
  devname: string;
  /** sc->cdev != NULL: false once destruction has been scheduled. */
  alive: boolean;
  /** destroy_dev has begun: new ioctls and opens fail ENXIO. */
  draining: boolean;
  /** vm_disable_vcpu_creation has run. */
  vcpuCreationDisabled: boolean;
  maxcpus: number;
  topology: { sockets: number; cores: number; threads: number };
  vcpus: Record<string, VcpuState>;
  /** memsegs sx lock: exclusive holder (-1 none), shared holders, waiters (FIFO). */
  memX: number;
  memS: number[];
  memWaiters: number[];
  /** vcpus_init_lock held shared by LOCK_ALL ops; vCPU creation waits for it. */
  initS: number[];
  initWaiters: number[];
  /** Ops inside the VM's cdev (counted for destroy_dev's drain). */
  inflight: number[];
  drainWaiters: number[];
  /** Memory segments by id: length (decimal text) and whether system memory. */
  segs: Record<string, { len: string; sysmem: boolean }>;
  active: number[];
  suspended: number[];
  debug: number[];
  /** vm->suspend: 0 or the VM_SUSPEND_* reason. */
  suspend: number;
  /** Created with VMMCTL_CREATE_DESTROY_ON_CLOSE: on its creating descriptor's priv->softcs list. */
  destroyOnClose: boolean;
  /** The vmmctl file (open description) whose last close destroys it (destroyOnClose), else -1. */
  ownerFile: number;
  /** The creator's uid (sc->ucred): owner of /dev/vmm/NAME and charged in its chgvmmcnt count. */
  uid: number;
  /** The creator was jailed (sc->ucred->cr_prison is the model's one jail, not prison0). */
  jailed: boolean;
  createdAt: number;
};

export type FileState = {
  id: number;
  /** "vmmctl" or a VM's devname. */
  path: string;
  /** VM id for a VM device, -1 for vmmctl. */
  vm: number;
  mode: "r" | "w" | "rw";
  /** Descriptor-table entries plus ioctls in flight on it. */
  refs: number;
  /** The credentials it was opened with (used for its ioctls too). */
  cred: Cred;
};

export type ProcState = { pid: number; fds: Record<string, number> };

export type Step = "mem" | "vcpu" | "lockone" | "lockall" | "run" | "drain";

export type OpState = {
  id: number;
  kind: "ioctl" | "destroy";
  caller: string;
  pid: number;
  /** File the ioctl came through (-1 for a destroy started by a close). */
  file: number;
  /** VM the op works on (-1 none). */
  vm: number;
  cmd: number;
  name: string;
  flags: number;
  /** The kernel's copy of the argument (IOCPARM_LEN bytes), hex. */
  data: string;
  /** Copy out on success (IOC_OUT). */
  out: boolean;
  vcpuid: number;
  /** A vCPU was named (vcpuid != -1) and allocated. */
  hasVcpu: boolean;
  step: Step;
  lockAllNext: number;
  heldMem: "" | "S" | "X";
  heldVcpus: number[];
  heldInit: boolean;
  /** Wait queue the op sits in ("" when not waiting): "mem", "init", "drain", "vcpu:N". */
  waitOn: string;
  /** Pending clock event for the op ("" none): a wake-up or the end of its run. */
  pending: "" | "wake" | "finish";
  seq: number;
  issuedAt: number;
  duration: number;
  /** Number of times the op went to sleep. */
  waits: number;
};

export type ResultState = { op: number; caller: string; name: string; errno: number; out: string; at: number; issuedAt: number };

export type VmmState = {
  version: 3;
  config: VmmConfigState;
  nextPid: number;
  nextFile: number;
  nextVm: number;
  nextOp: number;
  procs: Record<string, ProcState>;
  files: Record<string, FileState>;
  vms: Record<string, VmState>;
  /** Active devfs names (sorted), the vmm ones included. */
  devfs: string[];
  ops: Record<string, OpState>;
  /** Results of ops that completed after their ioctl() call returned "pending", until taken. */
  results: Record<string, ResultState>;
  /** Named callers with an ioctl in flight -> op id. */
  busy: Record<string, number>;
  stats: { created: number; destroyed: number; vcpuAllocs: number; ioctls: number; waits: number };
};

export const DEFAULT_CONFIG: VmmConfigState = {
  maxNameLen: VM_MAX_NAMELEN,
  specnamelen: SPECNAMELEN,
  initialized: true,
  maxcpus: 4,
  ioctlNs: 1000,
  durations: {},
  devfsNames: ["null", "zero", "random"],
  compat4: true,
  compat12: true,
  compat14: true,
  bhyveSnapshot: false,
  maxMemsegs: 4,
  faultFreezeVcpu: -1,
  hostCpus: 4,
  maxvmms: 16,
  permissions: "root-only",
};

export function initialState(config: Partial<VmmConfigState> = {}): VmmState {
  const hostCpus = config.hostCpus ?? DEFAULT_CONFIG.hostCpus;
  const c: VmmConfigState = { ...DEFAULT_CONFIG, maxvmms: 4 * hostCpus, ...config, durations: { ...(config.durations ?? {}) }, devfsNames: [...(config.devfsNames ?? DEFAULT_CONFIG.devfsNames)] };
  return {
    version: 3,
    config: c,
    nextPid: 2,
    nextFile: 1,
    nextVm: 1,
    nextOp: 1,
    procs: { "1": { pid: 1, fds: {} } },
    files: {},
    vms: {},
    devfs: [...new Set([...c.devfsNames, ...(c.initialized ? ["vmmctl"] : [])])].sort(),
    ops: {},
    results: {},
    busy: {},
    stats: { created: 0, destroyed: 0, vcpuAllocs: 0, ioctls: 0, waits: 0 },
  };
}

// ---------------------------------------------------------------- API types

export type OpenMode = "r" | "w" | "rw";

export type IoctlOutcome =
  | { readonly status: "done"; readonly errno: number; readonly out: Uint8Array }
  | { readonly status: "pending"; readonly op: number };

export interface IoctlOptions {
  /** Process issuing the call (default 1). */
  pid?: number;
  /** Thread name: a named caller can have one ioctl in flight (default: a fresh anonymous one). */
  caller?: string;
  /** Override of the time the ioctl holds its locks, in ns. */
  durationNs?: number;
}

export interface Host {
  now(): number;
  schedule(delay: number, kind: "wake" | "finish", payload: { op: number }): number;
  cancel(seq: number): boolean;
  trace(what: string, ...fields: Plain[]): void;
  /** Called when an op that returned "pending" completes. */
  completed?(r: ResultState): void;
}

/** Misuse of the model's API (not an outcome of the modelled kernel): a busy caller, an unknown pid. */
export class VmmApiError extends Error {
  override name = "VmmApiError";
}

const VM_SUSPEND_DESTROY = 5;
/** sys/sys/domainset.h: DOMAINSET_POLICY_INVALID 0. */
const DOMAINSET_POLICY_INVALID = 0;
/** sys/sys/_domainset.h: DOMAINSET_MAXSIZE 256 (bits). */
const DOMAINSET_MAXSIZE = 256n;
/** sizeof(domainset_t) in the kernel: DOMAINSET_SETSIZE = MAXMEMDOM (8 on amd64) bits in longs = 8 bytes. */
const SIZEOF_DOMAINSET_T = 8n;
const VM_SUSPEND_LAST = 6;
const PAGE_SIZE = 4096n;
const CPU_MAXSIZE = 1024;

const C = {
  vm_register: codec(S.vm_register),
  vm_register_set: codec(S.vm_register_set),
  vm_activate_cpu: codec(S.vm_activate_cpu),
  vm_memseg: codec(S.vm_memseg),
  vm_memseg_12: codec(S.vm_memseg_12),
  vm_memseg_14: codec(S.vm_memseg_14),
  vm_suspend: codec(S.vm_suspend),
  vm_cpu_topology: codec(S.vm_cpu_topology),
  vm_cpuset: codec(S.vm_cpuset),
};

const key = (n: number) => String(n);
const remove = (a: number[], v: number) => {
  const i = a.indexOf(v);
  if (i >= 0) a.splice(i, 1);
};

/** A plain copy of `c` with only the members given. */
export function copyCred(c: Cred): Cred {
  return {
    uid: c.uid,
    ...(c.gid !== undefined ? { gid: c.gid } : {}),
    ...(c.groups !== undefined ? { groups: [...c.groups] } : {}),
    ...(c.jail ? { jail: { allowVmm: c.jail.allowVmm } } : {}),
  };
}

/** Reads the C string at the start of `b` as latin1 (bytes one-to-one). */
function cString(b: Uint8Array): string {
  const z = b.indexOf(0);
  return Buffer.from(z < 0 ? b : b.subarray(0, z)).toString("latin1");
}

// ---------------------------------------------------------------- the model

export class VmmModel {
  constructor(
    public state: VmmState,
    private readonly host: Host,
  ) {}

  private get s(): VmmState {
    return this.state;
  }

  get config(): VmmConfigState {
    return this.s.config;
  }

  /** VMMCTL_VM_CREATE / VMMCTL_VM_DESTROY for the configured VM_MAX_NAMELEN. */
  get ctl() {
    return vmmctlCommands(this.s.config.maxNameLen);
  }

  // ---- processes and descriptors ----

  private proc(pid: number): ProcState {
    const p = this.s.procs[key(pid)];
    if (!p) throw new VmmApiError(`no process ${pid}`);
    return p;
  }

  /** A new process with an empty descriptor table. */
  spawn(): number {
    const pid = this.s.nextPid++;
    this.s.procs[key(pid)] = { pid, fds: {} };
    this.host.trace("spawn", pid);
    return pid;
  }

  /** fork(2): the child shares every open file of the parent. */
  fork(pid: number): number {
    const parent = this.proc(pid);
    const child = this.s.nextPid++;
    this.s.procs[key(child)] = { pid: child, fds: { ...parent.fds } };
    for (const f of Object.values(parent.fds)) this.s.files[key(f)]!.refs++;
    this.host.trace("fork", pid, child);
    return child;
  }

  /** exit(2): every descriptor of the process is closed. */
  exit(pid: number): void {
    const p = this.proc(pid);
    for (const fd of Object.keys(p.fds).map(Number).sort((a, b) => a - b)) this.close(fd, pid);
    delete this.s.procs[key(pid)];
    this.host.trace("exit", pid);
  }

  /** open(2) of "/dev/vmmctl" or "/dev/vmm/NAME": a descriptor, or an errno as { errno }. */
  open(path: string, mode: OpenMode, pid = 1, cred: Cred = ROOT): { fd: number } | { errno: number } {
    const p = this.proc(pid);
    const rel = path.replace(/\/{2,}/g, "/").replace(/^\/dev\//, "");
    let vm = -1;
    // devfs access check first (vn_open -> VOP_ACCESS; root passes): the nodes' owners and modes
    // are the revision's (nodePerm). Then vmmctl_open and vmmdev_open start with vmm_priv_check
    // (EPERM in a jail without allow.vmm); vmmctl_open then wants FWRITE (EPERM).
    if (rel === "vmmctl") {
      // vmm_handler (MOD_LOAD): when vmm_modinit fails, vmmdev_cleanup destroys the vmmctl node.
      if (!this.s.config.initialized) return this.openFail(path, ENOENT);
      if (!devAccess(cred, this.nodePerm(), mode)) return this.openFail(path, EACCES);
      if (vmmPrivCheck(cred)) return this.openFail(path, EPERM);
      if (!mode.includes("w")) return this.openFail(path, EPERM);
    } else {
      const v = Object.values(this.s.vms).find((x) => x.devname === rel);
      if (!v) return this.openFail(path, ENOENT);
      if (!devAccess(cred, this.nodePerm(v), mode)) return this.openFail(path, EACCES);
      if (vmmPrivCheck(cred)) return this.openFail(path, EPERM);
      if (v.draining) return this.openFail(path, ENXIO);
      vm = v.id;
    }
    const file: FileState = { id: this.s.nextFile++, path: rel, vm, mode, refs: 1, cred: copyCred(cred) };
    this.s.files[key(file.id)] = file;
    let fd = 3;
    while (p.fds[key(fd)] !== undefined) fd++;
    p.fds[key(fd)] = file.id;
    this.host.trace("open", pid, fd, rel, mode, file.id);
    return { fd };
  }

  /**
   * The devfs owner, group and mode of /dev/vmmctl (no `vm`) or of `vm`'s node:
   * vmm-group (markjdb/freebsd 03392358): vmmdev_init `make_dev_p(..., UID_ROOT, GID_VMM, 0660,
   * "vmmctl")`; vmmdev_create `mda.mda_uid = cred->cr_uid; mda.mda_gid = GID_VMM; mda.mda_mode =
   * 0600;`. root-only (freebsd-src 012895d5): `UID_ROOT, GID_WHEEL, 0600` for both.
   */
  nodePerm(vm?: VmState): NodePerm {
    if (this.s.config.permissions === "root-only") return { uid: 0, gid: GID_WHEEL, mode: 0o600 };
    return vm ? { uid: vm.uid, gid: GID_VMM, mode: 0o600 } : { uid: 0, gid: GID_VMM, mode: 0o660 };
  }

  private openFail(path: string, errno: number): { errno: number } {
    this.host.trace("open-fail", path, errno);
    return { errno };
  }

  /** close(2): 0, or EBADF. The open file goes away with its last reference (in-flight ioctls hold one). */
  close(fd: number, pid = 1): number {
    const p = this.proc(pid);
    const f = p.fds[key(fd)];
    if (f === undefined) return EBADF;
    delete p.fds[key(fd)];
    this.host.trace("close", pid, fd, f);
    this.unrefFile(f);
    return 0;
  }

  private unrefFile(id: number): void {
    const f = this.s.files[key(id)];
    if (!f) return;
    f.refs--;
    if (f.refs > 0) return;
    delete this.s.files[key(id)];
    this.host.trace("file-closed", id, f.path);
    // vmmctl_dtor: destroy every VM on this descriptor's softcs list (one already being
    // destroyed by someone else is left to that destroy).
    for (const vm of Object.values(this.s.vms)) {
      if (vm.destroyOnClose && vm.ownerFile === id && vm.alive) this.startDestroy(vm, -1, -1, `close:${id}:${vm.id}`);
    }
  }

  // ---- ioctl ----

  /**
   * ioctl(2) on `fd` with command `cmd` and `arg`, the user buffer the argument pointer points to
   * (for IOC_VOID commands, its first 8 bytes are the value passed). Returns the errno (0 on
   * success) and the bytes copied out, or "pending" with an op id when the call has to wait or
   * take time; the result then arrives with a later clock event (result(op)).
   */
  ioctl(fd: number, cmd: number, arg: Uint8Array, opts: IoctlOptions = {}): IoctlOutcome {
    const pid = opts.pid ?? 1;
    const p = this.proc(pid);
    if (opts.caller !== undefined && this.s.busy[opts.caller] !== undefined) {
      throw new VmmApiError(`caller ${opts.caller} already has an ioctl in flight (op ${this.s.busy[opts.caller]})`);
    }
    cmd = cmd >>> 0;
    this.s.stats.ioctls++;
    const done = (errno: number, out: Uint8Array = new Uint8Array(0)): IoctlOutcome => {
      this.host.trace("ioctl", pid, fd, cmd, errno);
      return { status: "done", errno, out };
    };
    // sys_ioctl: generic checks, then the kernel copy of the argument.
    const bad = genericIoctlCheck(cmd, this.s.config.compat4);
    if (bad) return done(bad);
    let size = IOCPARM_LEN(cmd);
    let data: Uint8Array;
    if (size > 0 && (cmd & IOC_VOID) !== 0) {
      data = new Uint8Array(8);
      data.set(arg.subarray(0, 8));
      size = 0;
    } else if (size === 0) {
      data = new Uint8Array(8); // the pointer value itself
      data.set(arg.subarray(0, 8));
    } else if ((cmd & IOC_IN) !== 0) {
      if (arg.length < size) return done(EFAULT);
      data = arg.slice(0, size);
    } else {
      data = new Uint8Array(size);
    }
    // kern_ioctl
    const fileId = p.fds[key(fd)];
    const file = fileId === undefined ? undefined : this.s.files[key(fileId)];
    if (!file) return done(EBADF);
    const out = (cmd & IOC_OUT) !== 0 && size > 0;
    if (file.vm === -1) return this.vmmctlIoctl(pid, file, cmd, data, out, opts);
    return this.vmIoctl(pid, file, cmd, data, out, opts);
  }

  private newOp(partial: Pick<OpState, "kind" | "pid" | "file" | "vm" | "cmd" | "name" | "flags" | "data" | "out" | "step">, opts: IoctlOptions): OpState {
    const id = this.s.nextOp++;
    const op: OpState = {
      id,
      caller: opts.caller ?? `anon:${id}`,
      vcpuid: -1,
      hasVcpu: false,
      lockAllNext: 0,
      heldMem: "",
      heldVcpus: [],
      heldInit: false,
      waitOn: "",
      pending: "",
      seq: -1,
      issuedAt: this.host.now(),
      duration: opts.durationNs ?? this.s.config.durations[partial.name] ?? this.s.config.ioctlNs,
      waits: 0,
      ...partial,
    };
    this.s.ops[key(id)] = op;
    if (opts.caller !== undefined) this.s.busy[opts.caller] = id;
    if (op.file >= 0) this.s.files[key(op.file)]!.refs++;
    return op;
  }

  /** After issuing `op`: "done" if it completed synchronously (its result is taken), else "pending". */
  private outcome(op: OpState): IoctlOutcome {
    const r = this.s.results[key(op.id)];
    if (r) {
      delete this.s.results[key(op.id)];
      return { status: "done", errno: r.errno, out: fromHex(r.out)! };
    }
    return { status: "pending", op: op.id };
  }

  // ---- /dev/vmmctl ----

  private vmmctlIoctl(pid: number, file: FileState, cmd: number, data: Uint8Array, out: boolean, opts: IoctlOptions): IoctlOutcome {
    const ctl = this.ctl;
    const isCreate = cmd === ctl.VMMCTL_VM_CREATE;
    if (!isCreate && cmd !== ctl.VMMCTL_VM_DESTROY) {
      this.host.trace("ioctl", pid, file.id, cmd, ENOTTY);
      return { status: "done", errno: ENOTTY, out: new Uint8Array(0) };
    }
    const dec = (isCreate ? ctl.create : ctl.destroy).decode(data);
    // The kernel buffer always holds sizeof(struct) bytes here, so decoding cannot fail.
    if (!dec.ok) return { status: "done", errno: EFAULT, out: new Uint8Array(0) };
    const nameBytes = dec.value.name;
    nameBytes[ctl.maxNameLen] = 0; // name[VM_MAX_NAMELEN] = '\0'
    data.set(nameBytes, 0);
    const name = cString(nameBytes);
    const finish = (errno: number): IoctlOutcome => {
      this.host.trace(isCreate ? "vm-create" : "vm-destroy", pid, name, errno);
      return { status: "done", errno, out: errno === 0 && out ? data : new Uint8Array(0) };
    };
    if (dec.value.reserved.some((r) => r !== 0)) return finish(EINVAL);
    if (isCreate) return finish(this.create(name, ((dec.value as Partial<VmmctlCreateArgs>).flags ?? 0) >>> 0, file));
    const vm = this.lookup(name);
    if (!vm || !vm.alive) return finish(EINVAL);
    // vmm-group (03392358) vmmdev_lookup_and_destroy: `if ((cred->cr_uid != sc->ucred->cr_uid ||
    // cred->cr_prison != sc->ucred->cr_prison) && (error = priv_check_cred(cred,
    // PRIV_VMM_DESTROY)) != 0)` -> EPERM. root-only (012895d5) has no such check.
    const stranger = file.cred.uid !== vm.uid || (file.cred.jail !== undefined) !== vm.jailed;
    if (this.s.config.permissions === "vmm-group" && stranger && !hasPrivDriver(file.cred)) return finish(EPERM);
    const op = this.startDestroy(vm, file.id, pid, opts.caller, opts);
    const res = this.outcome(op);
    if (res.status === "done") return finish(res.errno);
    this.host.trace("vm-destroy-pending", pid, name, op.id);
    return res;
  }

  /** vmmdev_lookup: by name among every VM on the list, dying ones included. */
  lookup(name: string): VmState | undefined {
    return Object.values(this.s.vms).find((v) => v.name === name);
  }

  /**
   * vmmdev_create: the errno of creating VM `name` (0 on success). Both revisions: flags outside
   * VMMCTL_FLAGS_MASK -> EINVAL, then vmmdev_lookup -> EEXIST. root-only (012895d5): chgvmmcnt
   * (ENOMEM), vm_create (ENXIO when vmm is not initialised), make_dev_s (prep_devname's errors).
   * vmm-group (03392358): `if ((flags & VMMCTL_CREATE_DESTROY_ON_CLOSE) == 0 && (error =
   * priv_check_cred(cred, PRIV_VMM_CREATE)) != 0)` -> EPERM, vm_create, make_dev_s, and only then
   * chgvmmcnt (ENOMEM, the node destroyed again).
   */
  private create(name: string, flags: number, file: FileState): number {
    if ((flags & ~VMMCTL_FLAGS_MASK) !== 0) return EINVAL;
    if (this.lookup(name)) return EEXIST;
    const onClose = (flags & VMMCTL_CREATE_DESTROY_ON_CLOSE) !== 0;
    // chgvmmcnt(cred->cr_ruidinfo, 1, vm_maxvmms): the creator's uid may hold maxvmms VMs (the
    // count drops in vmmdev_destroy, so a dying VM still counts). No privilege bypasses it.
    const uid = file.cred.uid;
    const full = () => Object.values(this.s.vms).filter((v) => v.uid === uid).length >= this.s.config.maxvmms;
    const groupRev = this.s.config.permissions === "vmm-group";
    if (groupRev && !onClose && !hasPrivDriver(file.cred)) return EPERM;
    if (!groupRev && full()) return ENOMEM;
    if (!this.s.config.initialized) return ENXIO;
    const dn = prepDevname(`vmm/${name}`, (n) => devfsNameTaken(this.s.devfs, n), this.s.config.specnamelen);
    if (!dn.ok) return dn.errno;
    if (groupRev && full()) return ENOMEM;
    const id = this.s.nextVm++;
    this.s.vms[key(id)] = {
      id,
      name,
      devname: dn.name,
      alive: true,
      draining: false,
      vcpuCreationDisabled: false,
      maxcpus: this.s.config.maxcpus,
      topology: { sockets: this.s.config.maxcpus, cores: 1, threads: 1 },
      vcpus: {},
      memX: -1,
      memS: [],
      memWaiters: [],
      initS: [],
      initWaiters: [],
      inflight: [],
      drainWaiters: [],
      segs: {},
      active: [],
      suspended: [],
      debug: [],
      suspend: 0,
      destroyOnClose: onClose,
      ownerFile: onClose ? file.id : -1,
      uid,
      jailed: file.cred.jail !== undefined,
      createdAt: this.host.now(),
    };
    this.s.devfs = [...this.s.devfs, dn.name].sort();
    this.s.stats.created++;
    return 0;
  }

  /** Schedules destruction of `vm` (already looked up and alive) and runs it as far as it can go. */
  private startDestroy(vm: VmState, file: number, pid: number, caller: string | undefined, opts: IoctlOptions = {}): OpState {
    vm.alive = false;
    // vm_suspend(VM_SUSPEND_DESTROY): a vCPU inside VM_RUN returns at once.
    if (vm.suspend === 0) vm.suspend = VM_SUSPEND_DESTROY;
    for (const id of vm.inflight) {
      const o = this.s.ops[key(id)]!;
      if (o.name === "VM_RUN" && o.pending === "finish") {
        this.host.cancel(o.seq);
        o.seq = this.host.schedule(0, "finish", { op: o.id });
      }
    }
    vm.draining = true; // destroy_dev: no new entries into the cdev
    const op = this.newOp(
      { kind: "destroy", pid, file, vm: vm.id, cmd: this.ctl.VMMCTL_VM_DESTROY, name: "VMMCTL_VM_DESTROY", flags: 0, data: "", out: false, step: "drain" },
      { ...opts, caller },
    );
    this.host.trace("destroy-start", vm.id, vm.name, op.id);
    this.advanceDestroy(op);
    return op;
  }

  private advanceDestroy(op: OpState): void {
    const vm = this.s.vms[key(op.vm)]!;
    if (vm.inflight.length > 0) return this.wait(op, "drain", vm.drainWaiters);
    // vmmdev_destroy: no more vCPUs, freeze them all (idle now: nothing is inside the cdev), free.
    vm.vcpuCreationDisabled = true;
    for (const v of Object.values(vm.vcpus)) {
      v.state = "frozen";
      v.owner = op.id;
    }
    this.s.devfs = this.s.devfs.filter((n) => n !== vm.devname);
    delete this.s.vms[key(vm.id)];
    this.s.stats.destroyed++;
    this.host.trace("vm-destroyed", vm.id, vm.name);
    this.complete(op, 0);
  }

  // ---- /dev/vmm/NAME ----

  private vmIoctl(pid: number, file: FileState, cmd: number, data: Uint8Array, out: boolean, opts: IoctlOptions): IoctlOutcome {
    const done = (errno: number): IoctlOutcome => {
      this.host.trace("ioctl", pid, file.id, cmd, errno);
      return { status: "done", errno, out: new Uint8Array(0) };
    };
    const vm = this.s.vms[key(file.vm)];
    if (!vm || vm.draining) return done(ENXIO); // vmmdev_lookup2 / destroyed cdev
    const def = lookupIoctl(cmd, { compat12: this.s.config.compat12, compat14: this.s.config.compat14, bhyveSnapshot: this.s.config.bhyveSnapshot });
    if (!def) return done(ENOTTY);
    if ((def.flags & PRIV_CHECK_DRIVER) !== 0 && !hasPrivDriver(file.cred)) return done(EPERM);
    const op = this.newOp({ kind: "ioctl", pid, file: file.id, vm: vm.id, cmd, name: def.name, flags: def.flags, data: toHex(data), out, step: "mem" }, opts);
    if ((def.flags & (LOCK_ONE_VCPU | ALLOC_VCPU | MAYBE_ALLOC_VCPU)) !== 0) {
      op.vcpuid = new DataView(data.buffer, data.byteOffset, data.byteLength).getInt32(0, true);
    }
    vm.inflight.push(op.id);
    this.host.trace("ioctl-start", op.id, op.caller, def.name, vm.id, op.vcpuid);
    this.advance(op);
    return this.outcome(op);
  }

  private wait(op: OpState, on: string, queue: number[]): void {
    op.waitOn = on;
    op.waits++;
    this.s.stats.waits++;
    queue.push(op.id);
    this.host.trace("wait", op.id, on);
  }

  private wakeAll(queue: number[]): void {
    const ids = queue.splice(0, queue.length);
    for (const id of ids) {
      const o = this.s.ops[key(id)];
      if (!o) continue;
      o.waitOn = "";
      o.pending = "wake";
      o.seq = this.host.schedule(0, "wake", { op: id });
    }
  }

  /** Clock event: a sleeping op was woken; it retries where it stopped. */
  onWake(opId: number): void {
    const op = this.s.ops[key(opId)];
    if (!op || op.pending !== "wake") return;
    op.pending = "";
    op.seq = -1;
    if (op.kind === "destroy") this.advanceDestroy(op);
    else this.advance(op);
  }

  /** vm_alloc_vcpu: "ok", "wait" (vcpus_init_lock is held shared), or EINVAL. */
  private allocVcpu(vm: VmState, id: number, op: OpState): "ok" | "wait" | number {
    if (id < 0 || id >= vm.maxcpus) return EINVAL;
    if (vm.vcpus[key(id)]) return "ok";
    if (vm.initS.length > 0) return "wait";
    if (vm.vcpuCreationDisabled) return EINVAL;
    vm.vcpus[key(id)] = { id, state: "idle", owner: -1, waiters: [], regs: {}, allocatedBy: op.id, allocatedCmd: op.name };
    this.s.stats.vcpuAllocs++;
    this.host.trace("vcpu-alloc", vm.id, id, op.id);
    return "ok";
  }

  private freeze(vm: VmState, v: VcpuState, op: OpState): void {
    v.state = "frozen";
    v.owner = op.id;
    op.heldVcpus.push(v.id);
  }

  private unfreeze(vm: VmState, id: number, op: OpState): void {
    const v = vm.vcpus[key(id)]!;
    v.state = "idle";
    v.owner = -1;
    remove(op.heldVcpus, id);
    this.wakeAll(v.waiters);
  }

  private releaseMem(vm: VmState, op: OpState): void {
    if (op.heldMem === "X") vm.memX = -1;
    else if (op.heldMem === "S") remove(vm.memS, op.id);
    else return;
    op.heldMem = "";
    this.wakeAll(vm.memWaiters);
  }

  private releaseInit(vm: VmState, op: OpState): void {
    if (!op.heldInit) return;
    op.heldInit = false;
    remove(vm.initS, op.id);
    if (vm.initS.length === 0) this.wakeAll(vm.initWaiters);
  }

  /** Runs an ioctl through vmmdev_ioctl's lock acquisition until it must wait or starts its run. */
  private advance(op: OpState): void {
    const vm = this.s.vms[key(op.vm)]!;
    for (;;) {
      switch (op.step) {
        case "mem": {
          if ((op.flags & XLOCK_MEMSEGS) !== 0) {
            if (vm.memX !== -1 || vm.memS.length > 0) return this.wait(op, "mem", vm.memWaiters);
            vm.memX = op.id;
            op.heldMem = "X";
          } else if ((op.flags & SLOCK_MEMSEGS) !== 0) {
            // sx: new shared holders queue behind an exclusive holder or exclusive waiters.
            const xWaiting = vm.memWaiters.some((w) => ((this.s.ops[key(w)]?.flags ?? 0) & XLOCK_MEMSEGS) !== 0);
            if (vm.memX !== -1 || xWaiting) return this.wait(op, "mem", vm.memWaiters);
            vm.memS.push(op.id);
            op.heldMem = "S";
          }
          op.step = "vcpu";
          break;
        }
        case "vcpu": {
          if ((op.flags & (LOCK_ONE_VCPU | ALLOC_VCPU | MAYBE_ALLOC_VCPU)) !== 0) {
            if (op.vcpuid === -1) {
              if ((op.flags & MAYBE_ALLOC_VCPU) === 0) return this.lockfail(vm, op, EINVAL);
            } else {
              const r = this.allocVcpu(vm, op.vcpuid, op);
              if (r === "wait") return this.wait(op, "init", vm.initWaiters);
              if (r !== "ok") return this.lockfail(vm, op, EINVAL);
              op.hasVcpu = true;
              if ((op.flags & LOCK_ONE_VCPU) !== 0) {
                op.step = "lockone";
                break;
              }
            }
          }
          op.step = "lockall";
          break;
        }
        case "lockone": {
          const v = vm.vcpus[key(op.vcpuid)]!;
          if (v.state !== "idle") return this.wait(op, `vcpu:${v.id}`, v.waiters);
          this.freeze(vm, v, op);
          op.step = "lockall";
          break;
        }
        case "lockall": {
          if ((op.flags & LOCK_ALL_VCPUS) !== 0) {
            if (!op.heldInit) {
              vm.initS.push(op.id); // vm_slock_vcpus: creation is atomic here, so it never waits
              op.heldInit = true;
            }
            for (let i = op.lockAllNext; i < vm.maxcpus; i++) {
              const v = vm.vcpus[key(i)];
              if (!v) continue;
              if (i === this.s.config.faultFreezeVcpu) {
                // vcpu_lock_one failed: unfreeze 0..i-1, drop the shared lock, then lockfail.
                for (const j of [...op.heldVcpus].sort((a, b) => a - b)) this.unfreeze(vm, j, op);
                this.releaseInit(vm, op);
                return this.lockfail(vm, op, EBUSY);
              }
              if (v.state !== "idle") {
                op.lockAllNext = i;
                return this.wait(op, `vcpu:${i}`, v.waiters);
              }
              this.freeze(vm, v, op);
            }
          }
          op.step = "run";
          break;
        }
        case "run": {
          if (op.name === "VM_RUN" && op.hasVcpu) vm.vcpus[key(op.vcpuid)]!.state = "running";
          // A VM being destroyed is suspended: VM_RUN returns at once.
          const d = op.name === "VM_RUN" && vm.suspend !== 0 ? 0 : op.duration;
          op.pending = "finish";
          op.seq = this.host.schedule(d, "finish", { op: op.id });
          this.host.trace("run", op.id, op.name, d);
          return;
        }
        case "drain":
          return;
      }
    }
  }

  /** The lockfail path: only the memsegs lock is held; the ioctl returns `errno`. */
  private lockfail(vm: VmState, op: OpState, errno: number): void {
    this.releaseMem(vm, op);
    this.complete(op, errno);
  }

  /** Clock event: the op's run is over: the command takes effect, locks are released in order. */
  onFinish(opId: number): void {
    const op = this.s.ops[key(opId)];
    if (!op || op.pending !== "finish") return;
    op.pending = "";
    op.seq = -1;
    const vm = this.s.vms[key(op.vm)]!;
    const data = fromHex(op.data)!;
    const errno = this.execute(vm, op, data);
    op.data = toHex(data);
    if (op.name === "VM_RUN" && op.hasVcpu) vm.vcpus[key(op.vcpuid)]!.state = "frozen";
    this.releaseMem(vm, op);
    if ((op.flags & LOCK_ALL_VCPUS) !== 0) {
      for (let i = 0; i < vm.maxcpus; i++) if (op.heldVcpus.includes(i)) this.unfreeze(vm, i, op);
      this.releaseInit(vm, op);
    } else if ((op.flags & LOCK_ONE_VCPU) !== 0 && op.hasVcpu) {
      this.unfreeze(vm, op.vcpuid, op);
    }
    this.complete(op, errno);
  }

  private complete(op: OpState, errno: number): void {
    const out = errno === 0 && op.out ? op.data : "";
    const r: ResultState = { op: op.id, caller: op.caller, name: op.name, errno, out, at: this.host.now(), issuedAt: op.issuedAt };
    delete this.s.ops[key(op.id)];
    if (this.s.busy[op.caller] === op.id) delete this.s.busy[op.caller];
    this.s.results[key(op.id)] = r;
    this.host.trace("ioctl-done", op.id, op.name, errno);
    const vm = this.s.vms[key(op.vm)];
    if (vm && op.kind === "ioctl") {
      remove(vm.inflight, op.id);
      if (vm.inflight.length === 0) this.wakeAll(vm.drainWaiters);
    }
    if (op.file >= 0) this.unrefFile(op.file);
    this.host.completed?.(r);
  }

  /** The result of a completed op that returned "pending" (kept until takeResult). */
  result(op: number): ResultState | undefined {
    return this.s.results[key(op)];
  }

  takeResult(op: number): ResultState | undefined {
    const r = this.s.results[key(op)];
    if (r) delete this.s.results[key(op)];
    return r;
  }

  // ---- command bodies (run at the end of the op, locks held) ----
  // Checks from freebsd-src sys/amd64/vmm/vmm.c and sys/dev/vmm/vmm_mem.c: vm_activate_cpu (EBUSY
  // when active), vm_suspend_cpu / vm_resume_cpu (debug set; EINVAL for an inactive or undebugged
  // vCPU), vm_suspend (EINVAL outside (NONE, LAST), EALREADY when suspended), vm_reinit (EBUSY
  // unless every active vCPU is suspended), vm_alloc_memseg (EINVAL for a bad id or length,
  // EEXIST for the same segment again, EINVAL for a different one), vm_get_memseg, and the
  // VM_GET_CPUS / VM_SET_TOPOLOGY checks of vmmdev_ioctl. Simplified: VM_SUSPEND marks every
  // active vCPU suspended at once (upstream each vCPU does so when it next runs). Register numbers
  // are checked as vm_get_register/vm_set_register do (0 <= reg < VM_REG_LAST, else EINVAL) and
  // register-set counts as vmmdev_ioctl does (count > VM_REG_LAST: EINVAL); the sets' user
  // pointers are not followed (a set within bounds succeeds without effect), nor are other
  // commands without a body here.

  private execute(vm: VmState, op: OpState, data: Uint8Array): number {
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const vcpu = op.hasVcpu ? vm.vcpus[key(op.vcpuid)] : undefined;
    switch (op.name) {
      case "VM_SET_REGISTER": {
        const r = C.vm_register.decode(data);
        if (!r.ok || r.value.regnum < 0 || r.value.regnum >= S.VM_REG_LAST) return EINVAL;
        vcpu!.regs[key(r.value.regnum)] = r.value.regval.toString();
        return 0;
      }
      case "VM_GET_REGISTER": {
        const r = C.vm_register.decode(data);
        if (!r.ok || r.value.regnum < 0 || r.value.regnum >= S.VM_REG_LAST) return EINVAL;
        dv.setBigUint64(C.vm_register.offsetOf("regval"), BigInt(vcpu!.regs[key(r.value.regnum)] ?? "0"), true);
        return 0;
      }
      case "VM_GET_REGISTER_SET":
      case "VM_SET_REGISTER_SET": {
        const r = C.vm_register_set.decode(data);
        if (!r.ok || r.value.count > S.VM_REG_LAST) return EINVAL;
        return 0;
      }
      case "VM_ACTIVATE_CPU":
        if (vm.active.includes(op.vcpuid)) return EBUSY;
        vm.active.push(op.vcpuid);
        vm.active.sort((a, b) => a - b);
        return 0;
      case "VM_SUSPEND_CPU":
        if (!op.hasVcpu) vm.debug = [...vm.active];
        else if (!vm.active.includes(op.vcpuid)) return EINVAL;
        else if (!vm.debug.includes(op.vcpuid)) vm.debug = [...vm.debug, op.vcpuid].sort((a, b) => a - b);
        return 0;
      case "VM_RESUME_CPU":
        if (!op.hasVcpu) vm.debug = [];
        else if (!vm.debug.includes(op.vcpuid)) return EINVAL;
        else vm.debug = vm.debug.filter((c) => c !== op.vcpuid);
        return 0;
      case "VM_ALLOC_MEMSEG":
      case "VM_ALLOC_MEMSEG_14":
      case "VM_ALLOC_MEMSEG_12": {
        // vmmdev_ioctl: the compat commands go to alloc_memseg with their name length; the
        // current one first checks the domain set: with ds_policy != DOMAINSET_POLICY_INVALID (0)
        // and ds_mask != NULL, ds_mask_size outside [sizeof(domainset_t), DOMAINSET_MAXSIZE /
        // NBBY] is ERANGE. (The mask's copyin and domainset_populate are not modelled, nor is
        // adjust_segid's renumbering of pre-15 segment ids.)
        const r = (op.name === "VM_ALLOC_MEMSEG" ? C.vm_memseg : op.name === "VM_ALLOC_MEMSEG_14" ? C.vm_memseg_14 : C.vm_memseg_12).decode(data);
        if (!r.ok) return EINVAL;
        const { segid, len, name } = r.value as { segid: number; len: bigint; name: Uint8Array };
        if (op.name === "VM_ALLOC_MEMSEG") {
          const m = r.value as unknown as { ds_mask: bigint; ds_mask_size: bigint; ds_policy: number };
          if (m.ds_policy !== DOMAINSET_POLICY_INVALID && m.ds_mask !== 0n && (m.ds_mask_size < SIZEOF_DOMAINSET_T || m.ds_mask_size > DOMAINSET_MAXSIZE / 8n)) return ERANGE;
        }
        if (segid < 0 || segid >= this.s.config.maxMemsegs) return EINVAL;
        if (len === 0n || len % PAGE_SIZE !== 0n) return EINVAL;
        const sysmem = name[0] === 0;
        const old = vm.segs[key(segid)];
        if (old) return old.len === len.toString() && old.sysmem === sysmem ? EEXIST : EINVAL;
        vm.segs[key(segid)] = { len: len.toString(), sysmem };
        return 0;
      }
      case "VM_GET_MEMSEG":
      case "VM_GET_MEMSEG_14":
      case "VM_GET_MEMSEG_12": {
        const segid = dv.getInt32(0, true);
        if (segid < 0 || segid >= this.s.config.maxMemsegs) return EINVAL;
        dv.setBigUint64(8, BigInt(vm.segs[key(segid)]?.len ?? "0"), true);
        // get_memseg: bzero(mseg->name, len) for system memory (the name only: the FreeBSD 15
        // domain-set members after it are left as given)
        data.fill(0, 16, 16 + (op.name === "VM_GET_MEMSEG_12" ? 64 : S.VM_MAX_SUFFIXLEN + 1));
        return 0;
      }
      case "VM_REINIT": {
        const same = vm.suspended.length === vm.active.length && vm.active.every((c) => vm.suspended.includes(c));
        if (!same) return EBUSY;
        vm.active = [];
        vm.suspended = [];
        vm.debug = [];
        vm.suspend = 0;
        for (const v of Object.values(vm.vcpus)) v.regs = {};
        return 0; // memory segments stay: a reboot keeps guest memory
      }
      case "VM_SUSPEND": {
        const how = dv.getInt32(0, true);
        if (how <= 0 || how >= VM_SUSPEND_LAST) return EINVAL;
        if (vm.suspend !== 0) return EALREADY;
        vm.suspend = how;
        vm.suspended = [...vm.active];
        return 0;
      }
      case "VM_GET_TOPOLOGY":
        dv.setUint16(0, vm.topology.sockets, true);
        dv.setUint16(2, vm.topology.cores, true);
        dv.setUint16(4, vm.topology.threads, true);
        dv.setUint16(6, vm.maxcpus, true);
        return 0;
      case "VM_SET_TOPOLOGY": {
        const t = C.vm_cpu_topology.decode(data);
        if (!t.ok) return EINVAL;
        if (t.value.sockets * t.value.cores * t.value.threads > vm.maxcpus) return EINVAL;
        vm.topology = { sockets: t.value.sockets, cores: t.value.cores, threads: t.value.threads };
        return 0;
      }
      case "VM_GET_CPUS": {
        const c = C.vm_cpuset.decode(data);
        if (!c.ok) return EINVAL;
        if (c.value.cpusetsize < 1 || c.value.cpusetsize > CPU_MAXSIZE / 8) return ERANGE;
        if (c.value.which < 0 || c.value.which > 2) return EINVAL;
        return 0; // the copyout to the user's cpuset pointer is not modelled
      }
      default:
        return 0;
    }
  }
}

// ---------------------------------------------------------------- invariants

/** Every way `s` breaks the model's invariants (empty when it holds). */
export function invariants(s: VmmState): string[] {
  const bad: string[] = [];
  const ops = s.ops;
  const opOf = (id: number) => ops[key(id)];
  // Files: refs = descriptor entries + in-flight ops on them.
  const refs = new Map<number, number>();
  for (const p of Object.values(s.procs)) for (const f of Object.values(p.fds)) refs.set(f, (refs.get(f) ?? 0) + 1);
  for (const o of Object.values(ops)) if (o.file >= 0) refs.set(o.file, (refs.get(o.file) ?? 0) + 1);
  for (const [f, n] of refs) {
    const file = s.files[key(f)];
    if (!file) bad.push(`file ${f} is referenced but not open`);
    else if (file.refs !== n) bad.push(`file ${f} has refs ${file.refs}, ${n} references exist`);
  }
  for (const f of Object.values(s.files)) {
    if (!refs.has(f.id)) bad.push(`file ${f.id} is open without references`);
    const c = f.cred as Cred | undefined;
    const id = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
    if (
      !c || typeof c !== "object" || !id(c.uid) || (c.gid !== undefined && !id(c.gid)) || (c.groups !== undefined && !(Array.isArray(c.groups) && c.groups.every(id)))
      || (c.jail !== undefined && typeof c.jail?.allowVmm !== "boolean")
    ) bad.push(`file ${f.id} has no valid credentials`);
  }
  // Names.
  const names = new Set<string>();
  for (const vm of Object.values(s.vms)) {
    if (!Number.isSafeInteger(vm.uid) || vm.uid < 0 || typeof vm.jailed !== "boolean") bad.push(`VM ${vm.id} has no creator uid and prison`);
    if (names.has(vm.name)) bad.push(`two VMs named ${JSON.stringify(vm.name)}`);
    names.add(vm.name);
    if (!s.devfs.includes(vm.devname)) bad.push(`VM ${vm.id} has no devfs node ${vm.devname}`);
    if (vm.alive && vm.draining) bad.push(`VM ${vm.id} drains while alive`);
    if (vm.destroyOnClose && vm.alive && !s.files[key(vm.ownerFile)]) bad.push(`VM ${vm.id} outlives its descriptor (file ${vm.ownerFile})`);
    if (!vm.destroyOnClose && vm.ownerFile !== -1) bad.push(`VM ${vm.id} is tied to file ${vm.ownerFile} without VMMCTL_CREATE_DESTROY_ON_CLOSE`);
    // memsegs lock: never shared and exclusive at once; holders hold what the lock says.
    if (vm.memX !== -1 && vm.memS.length > 0) bad.push(`VM ${vm.id}: memsegs held exclusive by ${vm.memX} and shared by ${vm.memS.join(",")}`);
    if (vm.memX !== -1 && opOf(vm.memX)?.heldMem !== "X") bad.push(`VM ${vm.id}: memsegs X holder ${vm.memX} does not know it`);
    if (new Set(vm.memS).size !== vm.memS.length) bad.push(`VM ${vm.id}: a shared memsegs holder twice`);
    for (const h of vm.memS) if (opOf(h)?.heldMem !== "S") bad.push(`VM ${vm.id}: memsegs S holder ${h} does not know it`);
    for (const h of vm.initS) if (!opOf(h)?.heldInit || ((opOf(h)!.flags & LOCK_ALL_VCPUS) === 0)) bad.push(`VM ${vm.id}: vcpus_init_lock held by ${h} without LOCK_ALL`);
    // vCPUs: in range, allocated by an op that named them, frozen by at most one op.
    for (const [k, v] of Object.entries(vm.vcpus)) {
      if (String(v.id) !== k || v.id < 0 || v.id >= vm.maxcpus) bad.push(`VM ${vm.id}: vCPU ${k} out of range`);
      if (v.allocatedBy < 1 || v.allocatedCmd === "") bad.push(`VM ${vm.id}: vCPU ${v.id} allocated without a use`);
      if (v.state === "idle" && v.owner !== -1) bad.push(`VM ${vm.id}: idle vCPU ${v.id} has owner ${v.owner}`);
      if (v.state !== "idle") {
        const o = opOf(v.owner);
        if (!o) bad.push(`VM ${vm.id}: vCPU ${v.id} frozen by ${v.owner}, which is not in flight`);
        else if (o.kind === "ioctl" && !o.heldVcpus.includes(v.id)) bad.push(`VM ${vm.id}: vCPU ${v.id} owner ${v.owner} does not hold it`);
      }
      if (v.state === "running" && opOf(v.owner)?.name !== "VM_RUN") bad.push(`VM ${vm.id}: vCPU ${v.id} running outside VM_RUN`);
    }
    for (const id of vm.inflight) if (opOf(id)?.vm !== vm.id) bad.push(`VM ${vm.id}: in-flight op ${id} is not on it`);
    // Nobody sleeps on something that is free: a release wakes every sleeper (else a lost wake-up).
    if (vm.memWaiters.length && vm.memX === -1 && vm.memS.length === 0) bad.push(`VM ${vm.id}: ops ${vm.memWaiters.join(",")} sleep on a free memsegs lock`);
    if (vm.initWaiters.length && vm.initS.length === 0) bad.push(`VM ${vm.id}: ops ${vm.initWaiters.join(",")} sleep on a free vcpus_init_lock`);
    if (vm.drainWaiters.length && vm.inflight.length === 0) bad.push(`VM ${vm.id}: destroy sleeps on a drained device`);
    for (const v of Object.values(vm.vcpus)) if (v.waiters.length && v.state === "idle") bad.push(`VM ${vm.id}: ops ${v.waiters.join(",")} sleep on idle vCPU ${v.id}`);
  }
  // Ops: each vCPU held by one op; waiting <=> in exactly the queue named; not waiting => one pending event.
  const holder = new Map<string, number>();
  for (const o of Object.values(ops)) {
    const vm = s.vms[key(o.vm)];
    if (!vm) {
      bad.push(`op ${o.id} works on VM ${o.vm}, which is gone`);
      continue;
    }
    for (const c of o.heldVcpus) {
      const k = `${o.vm}:${c}`;
      if (holder.has(k)) bad.push(`vCPU ${k} frozen by ops ${holder.get(k)} and ${o.id}`);
      holder.set(k, o.id);
      if (vm.vcpus[key(c)]?.owner !== o.id) bad.push(`op ${o.id} holds vCPU ${c}, whose owner is ${vm.vcpus[key(c)]?.owner}`);
    }
    if (o.heldMem === "X" && vm.memX !== o.id) bad.push(`op ${o.id} thinks it holds memsegs X`);
    if (o.heldMem === "S" && !vm.memS.includes(o.id)) bad.push(`op ${o.id} thinks it holds memsegs S`);
    const queues: [string, number[]][] = [["mem", vm.memWaiters], ["init", vm.initWaiters], ["drain", vm.drainWaiters], ...Object.values(vm.vcpus).map((v) => [`vcpu:${v.id}`, v.waiters] as [string, number[]])];
    const inQueues = queues.filter(([, q]) => q.includes(o.id)).map(([n]) => n);
    if (o.waitOn !== "") {
      if (inQueues.length !== 1 || inQueues[0] !== o.waitOn) bad.push(`op ${o.id} waits on ${o.waitOn} but sits in [${inQueues.join(",")}]`);
      if (o.pending !== "") bad.push(`op ${o.id} waits and has a pending ${o.pending}`);
    } else {
      if (inQueues.length) bad.push(`op ${o.id} is not waiting but sits in [${inQueues.join(",")}]`);
      if (o.pending === "") bad.push(`op ${o.id} neither waits nor has an event pending (lost wake-up)`);
    }
    if (o.kind === "ioctl" && !vm.inflight.includes(o.id)) bad.push(`op ${o.id} is not counted in flight on VM ${o.vm}`);
  }
  for (const [c, id] of Object.entries(s.busy)) if (opOf(id)?.caller !== c) bad.push(`caller ${c} marked busy with op ${id}, which is not its own`);
  const sorted = [...s.devfs].sort();
  if (sorted.some((n, i) => n !== s.devfs[i]) || new Set(s.devfs).size !== s.devfs.length) bad.push("devfs names are not sorted and unique");
  return bad;
}
