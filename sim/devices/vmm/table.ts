// The per-VM ioctl tables of vmm(4): the generic table of sys/dev/vmm/vmm_dev.c (vmmdev_ioctls)
// and the amd64 machine-dependent table of sys/amd64/vmm/vmm_dev_machdep.c, each command with its
// lock flags. Command numbers are computed with ioccom.ts from the IOCNUM values of
// sys/amd64/include/vmm_dev.h and the sizes of the argument structs declared in structs.ts.
import type { StructType } from "../../wire/types.ts";
import { _IO, _IOR, _IOW, _IOWR, hexCmd } from "./ioccom.ts";
import * as S from "./structs.ts";

// VMMDEV_IOCTL_* flags (sys/dev/vmm/vmm_dev.h).
export const SLOCK_MEMSEGS = 0x01;
export const XLOCK_MEMSEGS = 0x02;
export const LOCK_ONE_VCPU = 0x04;
export const LOCK_ALL_VCPUS = 0x08;
export const ALLOC_VCPU = 0x10;
export const MAYBE_ALLOC_VCPU = 0x20;
/** Newer headers: priv_check(PRIV_DRIVER) before anything else (pass-through commands). */
export const PRIV_CHECK_DRIVER = 0x40;

export const FLAG_NAMES: readonly [number, string][] = [
  [SLOCK_MEMSEGS, "SLOCK_MEMSEGS"],
  [XLOCK_MEMSEGS, "XLOCK_MEMSEGS"],
  [LOCK_ONE_VCPU, "LOCK_ONE_VCPU"],
  [LOCK_ALL_VCPUS, "LOCK_ALL_VCPUS"],
  [ALLOC_VCPU, "ALLOC_VCPU"],
  [MAYBE_ALLOC_VCPU, "MAYBE_ALLOC_VCPU"],
  [PRIV_CHECK_DRIVER, "PRIV_CHECK_DRIVER"],
];

export function flagNames(flags: number): string {
  const n = FLAG_NAMES.filter(([f]) => (flags & f) !== 0).map(([, s]) => s);
  return n.length ? n.join("|") : "0";
}

/** IOCNUM_* (sys/amd64/include/vmm_dev.h). */
export const IOCNUM = {
  RUN: 1,
  SET_CAPABILITY: 2,
  GET_CAPABILITY: 3,
  SUSPEND: 4,
  REINIT: 5,
  GET_GPA_PMAP: 12,
  GLA2GPA: 13,
  ALLOC_MEMSEG: 14,
  GET_MEMSEG: 15,
  MMAP_MEMSEG: 16,
  MMAP_GETNEXT: 17,
  GLA2GPA_NOFAULT: 18,
  MUNMAP_MEMSEG: 19,
  SET_REGISTER: 20,
  GET_REGISTER: 21,
  SET_SEGMENT_DESCRIPTOR: 22,
  GET_SEGMENT_DESCRIPTOR: 23,
  SET_REGISTER_SET: 24,
  GET_REGISTER_SET: 25,
  GET_KERNEMU_DEV: 26,
  SET_KERNEMU_DEV: 27,
  GET_INTINFO: 28,
  SET_INTINFO: 29,
  INJECT_EXCEPTION: 30,
  LAPIC_IRQ: 31,
  INJECT_NMI: 32,
  IOAPIC_ASSERT_IRQ: 33,
  IOAPIC_DEASSERT_IRQ: 34,
  IOAPIC_PULSE_IRQ: 35,
  LAPIC_MSI: 36,
  LAPIC_LOCAL_IRQ: 37,
  IOAPIC_PINCOUNT: 38,
  RESTART_INSTRUCTION: 39,
  BIND_PPTDEV: 40,
  UNBIND_PPTDEV: 41,
  MAP_PPTDEV_MMIO: 42,
  PPTDEV_MSI: 43,
  PPTDEV_MSIX: 44,
  PPTDEV_DISABLE_MSIX: 45,
  UNMAP_PPTDEV_MMIO: 46,
  VM_STATS: 50,
  VM_STAT_DESC: 51,
  SET_X2APIC_STATE: 60,
  GET_X2APIC_STATE: 61,
  GET_HPET_CAPABILITIES: 62,
  SET_TOPOLOGY: 63,
  GET_TOPOLOGY: 64,
  ISA_ASSERT_IRQ: 80,
  ISA_DEASSERT_IRQ: 81,
  ISA_PULSE_IRQ: 82,
  ISA_SET_IRQ_TRIGGER: 83,
  ACTIVATE_CPU: 90,
  GET_CPUSET: 91,
  SUSPEND_CPU: 92,
  RESUME_CPU: 93,
  RTC_READ: 100,
  RTC_WRITE: 101,
  RTC_SETTIME: 102,
  RTC_GETTIME: 103,
  SNAPSHOT_REQ: 113,
  RESTORE_TIME: 115,
} as const;

export type Dir = "IO" | "IOR" | "IOW" | "IOWR";

export interface IoctlDef {
  readonly name: string;
  readonly cmd: number;
  readonly flags: number;
  readonly dir: Dir;
  readonly num: number;
  /** The argument struct (undefined for _IO commands). */
  readonly arg?: StructType;
  /** Which upstream table holds the command. */
  readonly table: "generic" | "machdep";
  /** Kernel option the entry depends on, when any. */
  readonly option?: "COMPAT_FREEBSD12" | "COMPAT_FREEBSD14" | "BHYVE_SNAPSHOT";
  /** False when the argument size is a documented assumption, not an established layout. */
  readonly sizeKnown: boolean;
}

const GROUP = "v";

function def(name: string, dir: Dir, num: number, arg: StructType | undefined, flags: number, table: "generic" | "machdep", extra: { option?: IoctlDef["option"]; sizeKnown?: boolean } = {}): IoctlDef {
  const size = arg?.size ?? 0;
  const cmd = dir === "IO" ? _IO(GROUP, num) : dir === "IOR" ? _IOR(GROUP, num, size) : dir === "IOW" ? _IOW(GROUP, num, size) : _IOWR(GROUP, num, size);
  return Object.freeze({ name, cmd, flags, dir, num, arg, table, option: extra.option, sizeKnown: extra.sizeKnown ?? true });
}

const N = IOCNUM;
const X_ALL = XLOCK_MEMSEGS | LOCK_ALL_VCPUS;

/** vmmdev_ioctls[] in vmm_dev.c, in table order. */
export const GENERIC_IOCTLS: readonly IoctlDef[] = [
  def("VM_GET_REGISTER", "IOWR", N.GET_REGISTER, S.vm_register, LOCK_ONE_VCPU, "generic"),
  def("VM_SET_REGISTER", "IOW", N.SET_REGISTER, S.vm_register, LOCK_ONE_VCPU, "generic"),
  def("VM_GET_REGISTER_SET", "IOWR", N.GET_REGISTER_SET, S.vm_register_set, LOCK_ONE_VCPU, "generic"),
  def("VM_SET_REGISTER_SET", "IOW", N.SET_REGISTER_SET, S.vm_register_set, LOCK_ONE_VCPU, "generic"),
  def("VM_GET_CAPABILITY", "IOWR", N.GET_CAPABILITY, S.vm_capability, LOCK_ONE_VCPU, "generic"),
  def("VM_SET_CAPABILITY", "IOW", N.SET_CAPABILITY, S.vm_capability, LOCK_ONE_VCPU, "generic"),
  def("VM_ACTIVATE_CPU", "IOW", N.ACTIVATE_CPU, S.vm_activate_cpu, LOCK_ONE_VCPU, "generic"),
  def("VM_INJECT_EXCEPTION", "IOW", N.INJECT_EXCEPTION, S.vm_exception, LOCK_ONE_VCPU, "generic"),
  def("VM_STATS", "IOWR", N.VM_STATS, S.vm_stats, LOCK_ONE_VCPU, "generic"),
  def("VM_STAT_DESC", "IOWR", N.VM_STAT_DESC, S.vm_stat_desc, 0, "generic"),
  def("VM_ALLOC_MEMSEG_12", "IOW", N.ALLOC_MEMSEG, S.vm_memseg_12, X_ALL, "generic", { option: "COMPAT_FREEBSD12" }),
  def("VM_ALLOC_MEMSEG_14", "IOW", N.ALLOC_MEMSEG, S.vm_memseg_14, X_ALL, "generic", { option: "COMPAT_FREEBSD14" }),
  def("VM_ALLOC_MEMSEG", "IOW", N.ALLOC_MEMSEG, S.vm_memseg, X_ALL, "generic"),
  def("VM_MMAP_MEMSEG", "IOW", N.MMAP_MEMSEG, S.vm_memmap, X_ALL, "generic"),
  def("VM_MUNMAP_MEMSEG", "IOW", N.MUNMAP_MEMSEG, S.vm_munmap, X_ALL, "generic"),
  def("VM_REINIT", "IO", N.REINIT, undefined, X_ALL, "generic"),
  def("VM_GET_MEMSEG_12", "IOWR", N.GET_MEMSEG, S.vm_memseg_12, SLOCK_MEMSEGS, "generic", { option: "COMPAT_FREEBSD12" }),
  def("VM_GET_MEMSEG_14", "IOWR", N.GET_MEMSEG, S.vm_memseg_14, SLOCK_MEMSEGS, "generic", { option: "COMPAT_FREEBSD14" }),
  def("VM_GET_MEMSEG", "IOWR", N.GET_MEMSEG, S.vm_memseg, SLOCK_MEMSEGS, "generic"),
  def("VM_MMAP_GETNEXT", "IOWR", N.MMAP_GETNEXT, S.vm_memmap, SLOCK_MEMSEGS, "generic"),
  def("VM_SUSPEND_CPU", "IOW", N.SUSPEND_CPU, S.vm_activate_cpu, MAYBE_ALLOC_VCPU, "generic"),
  def("VM_RESUME_CPU", "IOW", N.RESUME_CPU, S.vm_activate_cpu, MAYBE_ALLOC_VCPU, "generic"),
  def("VM_SUSPEND", "IOW", N.SUSPEND, S.vm_suspend, 0, "generic"),
  def("VM_GET_CPUS", "IOW", N.GET_CPUSET, S.vm_cpuset, 0, "generic"),
  def("VM_GET_TOPOLOGY", "IOR", N.GET_TOPOLOGY, S.vm_cpu_topology, 0, "generic"),
  def("VM_SET_TOPOLOGY", "IOW", N.SET_TOPOLOGY, S.vm_cpu_topology, 0, "generic"),
];

const PRIV = PRIV_CHECK_DRIVER;

/** vmmdev_machdep_ioctls[] in amd64 vmm_dev_machdep.c (COMPAT_FREEBSD13 entries left out). */
export const MACHDEP_IOCTLS: readonly IoctlDef[] = [
  def("VM_RUN", "IOWR", N.RUN, S.vm_run, LOCK_ONE_VCPU, "machdep"),
  def("VM_GET_SEGMENT_DESCRIPTOR", "IOWR", N.GET_SEGMENT_DESCRIPTOR, S.vm_seg_desc, LOCK_ONE_VCPU, "machdep"),
  def("VM_SET_SEGMENT_DESCRIPTOR", "IOW", N.SET_SEGMENT_DESCRIPTOR, S.vm_seg_desc, LOCK_ONE_VCPU, "machdep"),
  // VM_INJECT_EXCEPTION is listed here too upstream; the generic entry is found first.
  def("VM_SET_X2APIC_STATE", "IOW", N.SET_X2APIC_STATE, S.vm_x2apic, LOCK_ONE_VCPU, "machdep"),
  def("VM_GLA2GPA", "IOWR", N.GLA2GPA, S.vm_gla2gpa, LOCK_ONE_VCPU, "machdep", { sizeKnown: false }),
  def("VM_GLA2GPA_NOFAULT", "IOWR", N.GLA2GPA_NOFAULT, S.vm_gla2gpa, LOCK_ONE_VCPU, "machdep", { sizeKnown: false }),
  def("VM_SET_INTINFO", "IOW", N.SET_INTINFO, S.vm_intinfo, LOCK_ONE_VCPU, "machdep"),
  def("VM_GET_INTINFO", "IOWR", N.GET_INTINFO, S.vm_intinfo, LOCK_ONE_VCPU, "machdep"),
  def("VM_RESTART_INSTRUCTION", "IOW", N.RESTART_INSTRUCTION, S.int_arg, LOCK_ONE_VCPU, "machdep"),
  def("VM_GET_KERNEMU_DEV", "IOWR", N.GET_KERNEMU_DEV, S.vm_readwrite_kernemu_device, LOCK_ONE_VCPU, "machdep"),
  def("VM_SET_KERNEMU_DEV", "IOW", N.SET_KERNEMU_DEV, S.vm_readwrite_kernemu_device, LOCK_ONE_VCPU, "machdep"),
  def("VM_BIND_PPTDEV", "IOW", N.BIND_PPTDEV, S.vm_pptdev, X_ALL | PRIV, "machdep"),
  def("VM_UNBIND_PPTDEV", "IOW", N.UNBIND_PPTDEV, S.vm_pptdev, X_ALL | PRIV, "machdep"),
  def("VM_MAP_PPTDEV_MMIO", "IOW", N.MAP_PPTDEV_MMIO, S.vm_pptdev_mmio, LOCK_ALL_VCPUS | PRIV, "machdep"),
  def("VM_UNMAP_PPTDEV_MMIO", "IOW", N.UNMAP_PPTDEV_MMIO, S.vm_pptdev_mmio, LOCK_ALL_VCPUS | PRIV, "machdep"),
  def("VM_SNAPSHOT_REQ", "IOWR", N.SNAPSHOT_REQ, S.vm_snapshot_meta, LOCK_ALL_VCPUS, "machdep", { option: "BHYVE_SNAPSHOT" }),
  def("VM_RESTORE_TIME", "IOWR", N.RESTORE_TIME, S.int_arg, LOCK_ALL_VCPUS, "machdep", { option: "BHYVE_SNAPSHOT" }),
  def("VM_INJECT_NMI", "IOW", N.INJECT_NMI, S.vm_nmi, LOCK_ONE_VCPU, "machdep"),
  def("VM_LAPIC_IRQ", "IOW", N.LAPIC_IRQ, S.vm_lapic_irq, LOCK_ONE_VCPU, "machdep"),
  def("VM_GET_X2APIC_STATE", "IOWR", N.GET_X2APIC_STATE, S.vm_x2apic, LOCK_ONE_VCPU, "machdep"),
  def("VM_LAPIC_LOCAL_IRQ", "IOW", N.LAPIC_LOCAL_IRQ, S.vm_lapic_irq, MAYBE_ALLOC_VCPU, "machdep"),
  def("VM_PPTDEV_MSI", "IOW", N.PPTDEV_MSI, S.vm_pptdev_msi, PRIV, "machdep"),
  def("VM_PPTDEV_MSIX", "IOW", N.PPTDEV_MSIX, S.vm_pptdev_msix, PRIV, "machdep"),
  def("VM_PPTDEV_DISABLE_MSIX", "IOW", N.PPTDEV_DISABLE_MSIX, S.vm_pptdev, PRIV, "machdep"),
  def("VM_LAPIC_MSI", "IOW", N.LAPIC_MSI, S.vm_lapic_msi, 0, "machdep"),
  def("VM_IOAPIC_ASSERT_IRQ", "IOW", N.IOAPIC_ASSERT_IRQ, S.vm_ioapic_irq, 0, "machdep"),
  def("VM_IOAPIC_DEASSERT_IRQ", "IOW", N.IOAPIC_DEASSERT_IRQ, S.vm_ioapic_irq, 0, "machdep"),
  def("VM_IOAPIC_PULSE_IRQ", "IOW", N.IOAPIC_PULSE_IRQ, S.vm_ioapic_irq, 0, "machdep"),
  def("VM_IOAPIC_PINCOUNT", "IOR", N.IOAPIC_PINCOUNT, S.int_arg, 0, "machdep"),
  def("VM_ISA_ASSERT_IRQ", "IOW", N.ISA_ASSERT_IRQ, S.vm_isa_irq, 0, "machdep"),
  def("VM_ISA_DEASSERT_IRQ", "IOW", N.ISA_DEASSERT_IRQ, S.vm_isa_irq, 0, "machdep"),
  def("VM_ISA_PULSE_IRQ", "IOW", N.ISA_PULSE_IRQ, S.vm_isa_irq, 0, "machdep"),
  def("VM_ISA_SET_IRQ_TRIGGER", "IOW", N.ISA_SET_IRQ_TRIGGER, S.vm_isa_irq_trigger, 0, "machdep"),
  def("VM_GET_GPA_PMAP", "IOWR", N.GET_GPA_PMAP, S.vm_gpa_pte, 0, "machdep"),
  def("VM_GET_HPET_CAPABILITIES", "IOR", N.GET_HPET_CAPABILITIES, S.vm_hpet_cap, 0, "machdep"),
  def("VM_RTC_READ", "IOWR", N.RTC_READ, S.vm_rtc_data, 0, "machdep"),
  def("VM_RTC_WRITE", "IOW", N.RTC_WRITE, S.vm_rtc_data, 0, "machdep"),
  def("VM_RTC_GETTIME", "IOR", N.RTC_GETTIME, S.vm_rtc_time, 0, "machdep"),
  def("VM_RTC_SETTIME", "IOW", N.RTC_SETTIME, S.vm_rtc_time, 0, "machdep"),
];

export interface TableOptions {
  /** COMPAT_FREEBSD12 entries (VM_ALLOC_MEMSEG_12, VM_GET_MEMSEG_12); default true as in GENERIC. */
  compat12?: boolean;
  /** COMPAT_FREEBSD14 entries (VM_ALLOC_MEMSEG_14, VM_GET_MEMSEG_14); default true as in GENERIC. */
  compat14?: boolean;
  /** BHYVE_SNAPSHOT kernel option (VM_SNAPSHOT_REQ, VM_RESTORE_TIME); default false as in GENERIC. */
  bhyveSnapshot?: boolean;
}

function enabled(d: IoctlDef, o: TableOptions): boolean {
  if (d.option === "COMPAT_FREEBSD12") return o.compat12 ?? true;
  if (d.option === "COMPAT_FREEBSD14") return o.compat14 ?? true;
  if (d.option === "BHYVE_SNAPSHOT") return o.bhyveSnapshot ?? false;
  return true;
}

/** Looks a command up as vmmdev_ioctl does: the generic table first, then the machine-dependent one. */
export function lookupIoctl(cmd: number, o: TableOptions = {}): IoctlDef | undefined {
  const c = cmd >>> 0;
  return GENERIC_IOCTLS.find((d) => d.cmd === c && enabled(d, o)) ?? MACHDEP_IOCTLS.find((d) => d.cmd === c && enabled(d, o));
}

const BY_NAME = new Map([...GENERIC_IOCTLS, ...MACHDEP_IOCTLS].map((d) => [d.name, d]));

/** The command definition by its C name ("VM_RUN"). */
export function ioctlByName(name: string): IoctlDef | undefined {
  return BY_NAME.get(name);
}

export function allIoctls(): readonly IoctlDef[] {
  return [...GENERIC_IOCTLS, ...MACHDEP_IOCTLS];
}

export function describeIoctl(d: IoctlDef): string {
  return `${d.name} ${hexCmd(d.cmd)} ${flagNames(d.flags)}`;
}
