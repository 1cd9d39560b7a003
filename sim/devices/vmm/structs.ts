// Argument structs of the per-VM ioctls on amd64 (LP64: pointers, size_t, vm_paddr_t and
// vm_ooffset_t are 8 bytes; enums are int), declared with the wire DSL so that the command numbers
// in table.ts are computed from their sizes. Layouts follow sys/amd64/include/vmm_dev.h (FreeBSD
// 14 era) and sys/amd64/include/vmm_snapshot.h; where the current header differs or a layout is
// not established, the declaration says so.
import { array, char, field, i32, i64, struct, u16, u32, u64, u8 } from "../../wire/types.ts";


const ptr = u64; // void *, cpuset_t *, struct vm_exit * ...
const size_t = u64;
const enumT = i32;

/** struct timeval on amd64: time_t tv_sec, suseconds_t (long) tv_usec. */
export const timeval = struct("timeval", [field("tv_sec", i64), field("tv_usec", i64)]);

/** amd64 enum vm_reg_name's VM_REG_LAST: 49 registers, RAX (0) .. TPR (48) (sys/amd64/include/vmm.h). */
export const VM_REG_LAST = 49;

export const vm_register = struct("vm_register", [field("cpuid", i32), field("regnum", i32), field("regval", u64)]);

export const vm_register_set = struct("vm_register_set", [
  field("cpuid", i32),
  field("count", u32),
  field("regnums", ptr),
  field("regvals", ptr),
]);

export const vm_capability = struct("vm_capability", [field("cpuid", i32), field("captype", enumT), field("capval", i32), field("allcpus", i32)]);

export const vm_activate_cpu = struct("vm_activate_cpu", [field("vcpuid", i32)]);

export const vm_exception = struct("vm_exception", [
  field("cpuid", i32),
  field("vector", i32),
  field("error_code", u32),
  field("error_code_valid", i32),
  field("restart_instruction", i32),
]);

/** MAX_VM_STATS 64; FreeBSD 14 added `index` after cpuid (the 13 layout is VM_STATS_13). */
export const MAX_VM_STATS = 64;
export const vm_stats = struct("vm_stats", [
  field("cpuid", i32),
  field("index", i32),
  field("num_entries", i32),
  field("tv", timeval),
  field("statbuf", array(u64, MAX_VM_STATS)),
]);

export const vm_stat_desc = struct("vm_stat_desc", [field("index", i32), field("desc", array(char, 128))]);

/** VM_MAX_SUFFIXLEN (sys/dev/vmm/vmm_param.h). */
export const VM_MAX_SUFFIXLEN = 15;

/**
 * struct vm_memseg since FreeBSD 15 (sys/amd64/include/vmm_dev.h): the FreeBSD 14 members, then the
 * NUMA domain set `domainset_t *ds_mask; size_t ds_mask_size; int ds_policy;` (56 bytes on amd64).
 */
export const vm_memseg = struct("vm_memseg", [
  field("segid", i32),
  field("len", size_t),
  field("name", array(char, VM_MAX_SUFFIXLEN + 1)),
  field("ds_mask", ptr),
  field("ds_mask_size", size_t),
  field("ds_policy", i32),
]);

/**
 * struct vm_memseg_14 (vmm_dev.c, COMPAT_FREEBSD14): the FreeBSD 14 layout, statically asserted
 * upstream at VM_MAX_SUFFIXLEN + 1 + 16 = 32 bytes; VM_ALLOC_MEMSEG_14 / VM_GET_MEMSEG_14.
 */
export const vm_memseg_14 = struct("vm_memseg_14", [field("segid", i32), field("len", size_t), field("name", array(char, VM_MAX_SUFFIXLEN + 1))]);

/** The FreeBSD 12 layout (80 bytes, asserted upstream), used by VM_ALLOC_MEMSEG_12 / VM_GET_MEMSEG_12. */
export const vm_memseg_12 = struct("vm_memseg_12", [field("segid", i32), field("len", size_t), field("name", array(char, 64))]);

export const vm_memmap = struct("vm_memmap", [
  field("gpa", u64),
  field("segid", i32),
  field("segoff", u64),
  field("len", size_t),
  field("prot", i32),
  field("flags", i32),
]);

export const vm_munmap = struct("vm_munmap", [field("gpa", u64), field("len", size_t)]);

export const vm_cpuset = struct("vm_cpuset", [field("which", i32), field("cpusetsize", i32), field("cpus", ptr)]);

export const vm_cpu_topology = struct("vm_cpu_topology", [field("sockets", u16), field("cores", u16), field("threads", u16), field("maxcpus", u16)]);

export const vm_suspend = struct("vm_suspend", [field("how", enumT)]);

/**
 * struct vm_run since FreeBSD 14: the vCPU id plus user pointers for the exit record and the IPI
 * cpuset (amd64 vmm_dev_machdep.c copies out to vm_exit and cpuset, reading cpusetsize; the
 * FreeBSD 13 layout with the exit record embedded survives as VM_RUN_13). One int and three
 * 8-byte members make 32 bytes whatever their order; the order is the one the other
 * architectures' vmm_dev.h show (the amd64 header snapshot available here predates the change).
 */
export const vm_run = struct("vm_run", [field("cpuid", i32), field("cpuset", ptr), field("cpusetsize", size_t), field("vm_exit", ptr)]);

export const vm_nmi = struct("vm_nmi", [field("cpuid", i32)]);
export const vm_lapic_irq = struct("vm_lapic_irq", [field("cpuid", i32), field("vector", i32)]);

/** struct vm_snapshot_buffer / vm_snapshot_meta (sys/amd64/include/vmm_snapshot.h): 32 and 64 bytes. */
export const vm_snapshot_buffer = struct("vm_snapshot_buffer", [field("buf_start", ptr), field("buf_size", size_t), field("buf", ptr), field("buf_rem", size_t)]);
export const vm_snapshot_meta = struct("vm_snapshot_meta", [
  field("dev_data", ptr),
  field("dev_name", ptr),
  field("dev_req", enumT),
  field("buffer", vm_snapshot_buffer),
  field("op", enumT),
]);

/** A bare int argument (VM_RESTORE_TIME, VM_RESTART_INSTRUCTION). */
export const int_arg = struct("int", [field("value", i32)]);
// ---- machine-dependent (amd64 vmm_dev_machdep.c table) ----

/** struct seg_desc (machine/vmm.h): base, limit, access. */
export const seg_desc = struct("seg_desc", [field("base", u64), field("limit", u32), field("access", u32)]);
export const vm_seg_desc = struct("vm_seg_desc", [field("cpuid", i32), field("regnum", i32), field("desc", seg_desc)]);
export const vm_x2apic = struct("vm_x2apic", [field("cpuid", i32), field("state", enumT)]);
export const vm_intinfo = struct("vm_intinfo", [field("vcpuid", i32), field("info1", u64), field("info2", u64)]);
export const vm_lapic_msi = struct("vm_lapic_msi", [field("msg", u64), field("addr", u64)]);
export const vm_ioapic_irq = struct("vm_ioapic_irq", [field("irq", i32)]);
export const vm_isa_irq = struct("vm_isa_irq", [field("atpic_irq", i32), field("ioapic_irq", i32)]);
export const vm_isa_irq_trigger = struct("vm_isa_irq_trigger", [field("atpic_irq", i32), field("trigger", enumT)]);
export const vm_pptdev = struct("vm_pptdev", [field("bus", i32), field("slot", i32), field("func", i32)]);
export const vm_pptdev_mmio = struct("vm_pptdev_mmio", [
  field("bus", i32),
  field("slot", i32),
  field("func", i32),
  field("gpa", u64),
  field("hpa", u64),
  field("len", size_t),
]);
export const vm_pptdev_msi = struct("vm_pptdev_msi", [
  field("vcpu", i32),
  field("bus", i32),
  field("slot", i32),
  field("func", i32),
  field("numvec", i32),
  field("msg", u64),
  field("addr", u64),
]);
export const vm_pptdev_msix = struct("vm_pptdev_msix", [
  field("vcpu", i32),
  field("bus", i32),
  field("slot", i32),
  field("func", i32),
  field("idx", i32),
  field("msg", u64),
  field("vector_control", u32),
  field("addr", u64),
]);
export const vm_gpa_pte = struct("vm_gpa_pte", [field("gpa", u64), field("pte", array(u64, 4)), field("ptenum", i32)]);
export const vm_hpet_cap = struct("vm_hpet_cap", [field("capabilities", u32)]);
export const vm_rtc_data = struct("vm_rtc_data", [field("offset", i32), field("value", u8)]);
export const vm_rtc_time = struct("vm_rtc_time", [field("secs", i64)]);
/** Two bit-fields (access_width:3, _unused:29) share one unsigned int; 24 bytes (asserted upstream). */
export const vm_readwrite_kernemu_device = struct("vm_readwrite_kernemu_device", [
  field("vcpuid", i32),
  field("bits", u32),
  field("gpa", u64),
  field("value", u64),
]);
/**
 * struct vm_guest_paging (cr3, cpl, cpu_mode, paging_mode) and vm_gla2gpa: NOT established from
 * the sources read for this model (vm_guest_paging lives in machine/vmm.h). The layout below is a
 * documented assumption (56 bytes); VM_GLA2GPA and VM_GLA2GPA_NOFAULT are kept with it and marked
 * `sizeKnown: false` in the table.
 */
export const vm_guest_paging = struct("vm_guest_paging", [field("cr3", u64), field("cpl", i32), field("cpu_mode", enumT), field("paging_mode", enumT)]);
export const vm_gla2gpa = struct("vm_gla2gpa", [
  field("vcpuid", i32),
  field("prot", i32),
  field("gla", u64),
  field("paging", vm_guest_paging),
  field("fault", i32),
  field("gpa", u64),
]);
