// ioctl numbers of vmm(4), checked three ways:
//  1. against the numbers that follow from freebsd-src sys/dev/vmm/vmm_dev.h + sys/sys/ioccom.h: VMMCTL_VM_CREATE 0xC1285600, DESTROY 0xC1285601;
//  2. against a C replica of the sys/sys/ioccom.h macros and the argument structs (written here from
//     the upstream declarations: sys/dev/vmm/vmm_dev.h, sys/amd64/include/vmm_dev.h,
//     sys/amd64/include/vmm_snapshot.h), compiled with the system `cc` at test time (x86-64, LP64,
//     the layout FreeBSD/amd64 shares);
//  3. the generic sys_ioctl checks against sys/kern/sys_generic.c.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  _IO, _IOC, _IOR, _IOW, _IOWR, _IOWINT, genericIoctlCheck, hexCmd, IOC_IN, IOC_INOUT, IOC_OUT, IOC_VOID, IOCBASECMD, IOCGROUP, IOCNUM, IOCPARM_LEN, IOCPARM_MASK, IOCPARM_MAX,
  IoccomError,
} from "../../sim/devices/vmm/ioccom.ts";
import { vmmctlCommands } from "../../sim/devices/vmm/ctl.ts";
import { allIoctls, describeIoctl, flagNames, GENERIC_IOCTLS, lookupIoctl, MACHDEP_IOCTLS } from "../../sim/devices/vmm/table.ts";
import * as S from "../../sim/devices/vmm/structs.ts";
import { codec } from "../../sim/wire/codec.ts";
import { VMMCTL_VM_CREATE as WIRE_CREATE, VMMCTL_VM_DESTROY as WIRE_DESTROY } from "../../sim/wire/vmmctl.ts";

// ---- the C replica: macros restated from sys/sys/ioccom.h, structs from the vmm headers ----
const C_SOURCE = String.raw`
#include <stdio.h>
#include <stdint.h>
#include <stddef.h>

#define R_IOCPARM_SHIFT 13
#define R_IOCPARM_MASK ((1 << R_IOCPARM_SHIFT) - 1)
#define R_IOC_VOID 0x20000000UL
#define R_IOC_OUT 0x40000000UL
#define R_IOC_IN 0x80000000UL
#define R_IOC_INOUT (R_IOC_IN | R_IOC_OUT)
#define R_IOC(inout, group, num, len) \
  ((unsigned long)((inout) | (((len) & R_IOCPARM_MASK) << 16) | ((group) << 8) | (num)))
#define R_IO(g, n) R_IOC(R_IOC_VOID, (g), (n), 0)
#define R_IOR(g, n, t) R_IOC(R_IOC_OUT, (g), (n), sizeof(t))
#define R_IOW(g, n, t) R_IOC(R_IOC_IN, (g), (n), sizeof(t))
#define R_IOWR(g, n, t) R_IOC(R_IOC_INOUT, (g), (n), sizeof(t))

struct vmmctl_229 { char name[229 + 1]; unsigned int flags; int reserved[15]; };
struct vmmctl_37 { char name[37 + 1]; int reserved[16]; };

struct tv { long tv_sec; long tv_usec; };
struct vm_register { int cpuid; int regnum; uint64_t regval; };
struct vm_register_set { int cpuid; unsigned int count; const int *regnums; uint64_t *regvals; };
struct vm_capability { int cpuid; int captype; int capval; int allcpus; };
struct vm_activate_cpu { int vcpuid; };
struct vm_exception { int cpuid; int vector; uint32_t error_code; int error_code_valid; int restart_instruction; };
struct vm_stats { int cpuid; int index; int num_entries; struct tv tv; uint64_t statbuf[64]; };
struct vm_stat_desc { int index; char desc[128]; };
/* sys/amd64/include/vmm_dev.h (FreeBSD 15): the domain-set members after the name */
typedef struct { long bits[1]; } domainset_t;
struct vm_memseg { int segid; size_t len; char name[15 + 1]; domainset_t *ds_mask; size_t ds_mask_size; int ds_policy; };
/* sys/dev/vmm/vmm_dev.c COMPAT_FREEBSD14, with its static assertion */
struct vm_memseg_14 { int segid; size_t len; char name[15 + 1]; };
_Static_assert(sizeof(struct vm_memseg_14) == (15 + 1 + 16), "COMPAT_FREEBSD14 ABI");
struct vm_memseg_12 { int segid; size_t len; char name[64]; };
struct vm_memmap { uint64_t gpa; int segid; uint64_t segoff; size_t len; int prot; int flags; };
struct vm_munmap { uint64_t gpa; size_t len; };
struct vm_cpuset { int which; int cpusetsize; void *cpus; };
struct vm_cpu_topology { uint16_t sockets; uint16_t cores; uint16_t threads; uint16_t maxcpus; };
struct vm_suspend { int how; };
struct vm_run { int cpuid; void *cpuset; size_t cpusetsize; void *vm_exit; };
struct vm_nmi { int cpuid; };
struct vm_lapic_irq { int cpuid; int vector; };
struct snap_buf { uint8_t *buf_start; size_t buf_size; uint8_t *buf; size_t buf_rem; };
struct vm_snapshot_meta { void *dev_data; const char *dev_name; int dev_req; struct snap_buf buffer; int op; };
struct seg_desc { uint64_t base; uint32_t limit; uint32_t access; };
struct vm_seg_desc { int cpuid; int regnum; struct seg_desc desc; };
struct vm_x2apic { int cpuid; int state; };
struct vm_intinfo { int vcpuid; uint64_t info1; uint64_t info2; };
struct vm_lapic_msi { uint64_t msg; uint64_t addr; };
struct vm_ioapic_irq { int irq; };
struct vm_isa_irq { int atpic_irq; int ioapic_irq; };
struct vm_isa_irq_trigger { int atpic_irq; int trigger; };
struct vm_pptdev { int bus; int slot; int func; };
struct vm_pptdev_mmio { int bus; int slot; int func; uint64_t gpa; uint64_t hpa; size_t len; };
struct vm_pptdev_msi { int vcpu; int bus; int slot; int func; int numvec; uint64_t msg; uint64_t addr; };
struct vm_pptdev_msix { int vcpu; int bus; int slot; int func; int idx; uint64_t msg; uint32_t vector_control; uint64_t addr; };
struct vm_gpa_pte { uint64_t gpa; uint64_t pte[4]; int ptenum; };
struct vm_hpet_cap { uint32_t capabilities; };
struct vm_rtc_data { int offset; uint8_t value; };
struct vm_rtc_time { long secs; };
struct vm_readwrite_kernemu_device { int vcpuid; unsigned access_width : 3; unsigned _unused : 29; uint64_t gpa; uint64_t value; };
/* assumed layout (see structs.ts): not established from the sources read */
struct vm_guest_paging { uint64_t cr3; int cpl; int cpu_mode; int paging_mode; };
struct vm_gla2gpa { int vcpuid; int prot; uint64_t gla; struct vm_guest_paging paging; int fault; uint64_t gpa; };

#define P(name, value) printf("%s 0x%08lx\n", name, (unsigned long)(value))
int main(void) {
  printf("ptr %zu\n", sizeof(void *));
  P("VMMCTL_VM_CREATE@229", R_IOWR('V', 0, struct vmmctl_229));
  P("VMMCTL_VM_DESTROY@229", R_IOWR('V', 1, struct vmmctl_229));
  P("VMMCTL_VM_CREATE@37", R_IOWR('V', 0, struct vmmctl_37));
  P("VMMCTL_VM_DESTROY@37", R_IOWR('V', 1, struct vmmctl_37));
  P("VM_GET_REGISTER", R_IOWR('v', 21, struct vm_register));
  P("VM_SET_REGISTER", R_IOW('v', 20, struct vm_register));
  P("VM_GET_REGISTER_SET", R_IOWR('v', 25, struct vm_register_set));
  P("VM_SET_REGISTER_SET", R_IOW('v', 24, struct vm_register_set));
  P("VM_GET_CAPABILITY", R_IOWR('v', 3, struct vm_capability));
  P("VM_SET_CAPABILITY", R_IOW('v', 2, struct vm_capability));
  P("VM_ACTIVATE_CPU", R_IOW('v', 90, struct vm_activate_cpu));
  P("VM_INJECT_EXCEPTION", R_IOW('v', 30, struct vm_exception));
  P("VM_STATS", R_IOWR('v', 50, struct vm_stats));
  P("VM_STAT_DESC", R_IOWR('v', 51, struct vm_stat_desc));
  P("VM_ALLOC_MEMSEG_12", R_IOW('v', 14, struct vm_memseg_12));
  P("VM_ALLOC_MEMSEG_14", R_IOW('v', 14, struct vm_memseg_14));
  P("VM_ALLOC_MEMSEG", R_IOW('v', 14, struct vm_memseg));
  P("VM_MMAP_MEMSEG", R_IOW('v', 16, struct vm_memmap));
  P("VM_MUNMAP_MEMSEG", R_IOW('v', 19, struct vm_munmap));
  P("VM_REINIT", R_IO('v', 5));
  P("VM_GET_MEMSEG_12", R_IOWR('v', 15, struct vm_memseg_12));
  P("VM_GET_MEMSEG_14", R_IOWR('v', 15, struct vm_memseg_14));
  P("VM_GET_MEMSEG", R_IOWR('v', 15, struct vm_memseg));
  printf("off.vm_memseg.segid %zu\noff.vm_memseg.len %zu\noff.vm_memseg.name %zu\noff.vm_memseg.ds_mask %zu\noff.vm_memseg.ds_mask_size %zu\noff.vm_memseg.ds_policy %zu\nsize.vm_memseg %zu\n",
    offsetof(struct vm_memseg, segid), offsetof(struct vm_memseg, len), offsetof(struct vm_memseg, name), offsetof(struct vm_memseg, ds_mask),
    offsetof(struct vm_memseg, ds_mask_size), offsetof(struct vm_memseg, ds_policy), sizeof(struct vm_memseg));
  printf("off.vm_memseg_14.segid %zu\noff.vm_memseg_14.len %zu\noff.vm_memseg_14.name %zu\nsize.vm_memseg_14 %zu\n",
    offsetof(struct vm_memseg_14, segid), offsetof(struct vm_memseg_14, len), offsetof(struct vm_memseg_14, name), sizeof(struct vm_memseg_14));
  P("VM_MMAP_GETNEXT", R_IOWR('v', 17, struct vm_memmap));
  P("VM_SUSPEND_CPU", R_IOW('v', 92, struct vm_activate_cpu));
  P("VM_RESUME_CPU", R_IOW('v', 93, struct vm_activate_cpu));
  P("VM_SUSPEND", R_IOW('v', 4, struct vm_suspend));
  P("VM_GET_CPUS", R_IOW('v', 91, struct vm_cpuset));
  P("VM_GET_TOPOLOGY", R_IOR('v', 64, struct vm_cpu_topology));
  P("VM_SET_TOPOLOGY", R_IOW('v', 63, struct vm_cpu_topology));
  P("VM_RUN", R_IOWR('v', 1, struct vm_run));
  P("VM_GET_SEGMENT_DESCRIPTOR", R_IOWR('v', 23, struct vm_seg_desc));
  P("VM_SET_SEGMENT_DESCRIPTOR", R_IOW('v', 22, struct vm_seg_desc));
  P("VM_SET_X2APIC_STATE", R_IOW('v', 60, struct vm_x2apic));
  P("VM_GLA2GPA", R_IOWR('v', 13, struct vm_gla2gpa));
  P("VM_GLA2GPA_NOFAULT", R_IOWR('v', 18, struct vm_gla2gpa));
  P("VM_SET_INTINFO", R_IOW('v', 29, struct vm_intinfo));
  P("VM_GET_INTINFO", R_IOWR('v', 28, struct vm_intinfo));
  P("VM_RESTART_INSTRUCTION", R_IOW('v', 39, int));
  P("VM_GET_KERNEMU_DEV", R_IOWR('v', 26, struct vm_readwrite_kernemu_device));
  P("VM_SET_KERNEMU_DEV", R_IOW('v', 27, struct vm_readwrite_kernemu_device));
  P("VM_BIND_PPTDEV", R_IOW('v', 40, struct vm_pptdev));
  P("VM_UNBIND_PPTDEV", R_IOW('v', 41, struct vm_pptdev));
  P("VM_MAP_PPTDEV_MMIO", R_IOW('v', 42, struct vm_pptdev_mmio));
  P("VM_UNMAP_PPTDEV_MMIO", R_IOW('v', 46, struct vm_pptdev_mmio));
  P("VM_SNAPSHOT_REQ", R_IOWR('v', 113, struct vm_snapshot_meta));
  P("VM_RESTORE_TIME", R_IOWR('v', 115, int));
  P("VM_INJECT_NMI", R_IOW('v', 32, struct vm_nmi));
  P("VM_LAPIC_IRQ", R_IOW('v', 31, struct vm_lapic_irq));
  P("VM_GET_X2APIC_STATE", R_IOWR('v', 61, struct vm_x2apic));
  P("VM_LAPIC_LOCAL_IRQ", R_IOW('v', 37, struct vm_lapic_irq));
  P("VM_PPTDEV_MSI", R_IOW('v', 43, struct vm_pptdev_msi));
  P("VM_PPTDEV_MSIX", R_IOW('v', 44, struct vm_pptdev_msix));
  P("VM_PPTDEV_DISABLE_MSIX", R_IOW('v', 45, struct vm_pptdev));
  P("VM_LAPIC_MSI", R_IOW('v', 36, struct vm_lapic_msi));
  P("VM_IOAPIC_ASSERT_IRQ", R_IOW('v', 33, struct vm_ioapic_irq));
  P("VM_IOAPIC_DEASSERT_IRQ", R_IOW('v', 34, struct vm_ioapic_irq));
  P("VM_IOAPIC_PULSE_IRQ", R_IOW('v', 35, struct vm_ioapic_irq));
  P("VM_IOAPIC_PINCOUNT", R_IOR('v', 38, int));
  P("VM_ISA_ASSERT_IRQ", R_IOW('v', 80, struct vm_isa_irq));
  P("VM_ISA_DEASSERT_IRQ", R_IOW('v', 81, struct vm_isa_irq));
  P("VM_ISA_PULSE_IRQ", R_IOW('v', 82, struct vm_isa_irq));
  P("VM_ISA_SET_IRQ_TRIGGER", R_IOW('v', 83, struct vm_isa_irq_trigger));
  P("VM_GET_GPA_PMAP", R_IOWR('v', 12, struct vm_gpa_pte));
  P("VM_GET_HPET_CAPABILITIES", R_IOR('v', 62, struct vm_hpet_cap));
  P("VM_RTC_READ", R_IOWR('v', 100, struct vm_rtc_data));
  P("VM_RTC_WRITE", R_IOW('v', 101, struct vm_rtc_data));
  P("VM_RTC_GETTIME", R_IOR('v', 103, struct vm_rtc_time));
  P("VM_RTC_SETTIME", R_IOW('v', 102, struct vm_rtc_time));
  return 0;
}
`;

let dir = "";
const fromC = new Map<string, number>();
const layoutC = new Map<string, number>();
let ptrSize = 0;

beforeAll(() => {
  const probe = spawnSync("cc", ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    throw new Error("the system C compiler `cc` is missing: this spec compiles a C replica of sys/sys/ioccom.h to check the ioctl numbers (install gcc or clang)");
  }
  dir = mkdtempSync(join(tmpdir(), "hvsim-ioccom-"));
  writeFileSync(join(dir, "ioccom.c"), C_SOURCE);
  execFileSync("cc", ["-std=c11", "-Wall", "-Werror", "-o", join(dir, "ioccom"), join(dir, "ioccom.c")], { stdio: "pipe" });
  const out = execFileSync(join(dir, "ioccom"), { encoding: "utf8" });
  for (const line of out.trim().split("\n")) {
    const [name, value] = line.split(" ");
    if (name === "ptr") ptrSize = Number(value);
    else if (name!.startsWith("off.") || name!.startsWith("size.")) layoutC.set(name!, Number(value));
    else fromC.set(name!, Number(value));
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("ioccom encoding", () => {
  it("has the ioccom.h constants", () => {
    // sys/sys/ioccom.h (vmmctl.md): IOCPARM_SHIFT 13, mask 0x1fff, max 0x2000, the direction bits.
    expect(IOCPARM_MASK).toBe(0x1fff);
    expect(IOCPARM_MAX).toBe(0x2000);
    expect(IOC_VOID).toBe(0x20000000);
    expect(IOC_OUT).toBe(0x40000000);
    expect(IOC_IN).toBe(0x80000000);
    expect(IOC_INOUT).toBe(0xc0000000);
  });

  it("gives VMMCTL_VM_CREATE/DESTROY as in vmmctl.md (229-byte names)", () => {
    const c = vmmctlCommands(229);
    expect(c.VMMCTL_VM_CREATE).toBe(0xc1285600);
    expect(c.VMMCTL_VM_DESTROY).toBe(0xc1285601);
    expect(c.create.size).toBe(296); // vmmctl.md: 230 + 2 padding + 64
    // the same numbers the wire declarations give
    expect(c.VMMCTL_VM_CREATE).toBe(WIRE_CREATE);
    expect(c.VMMCTL_VM_DESTROY).toBe(WIRE_DESTROY);
  });

  it("numbers are unsigned (above int32) and decompose back", () => {
    const cmd = vmmctlCommands(229).VMMCTL_VM_CREATE;
    expect(cmd).toBeGreaterThan(0x7fffffff);
    expect(IOCPARM_LEN(cmd)).toBe(296);
    expect(IOCGROUP(cmd)).toBe("V".charCodeAt(0));
    expect(IOCNUM(cmd)).toBe(0);
    expect(IOCBASECMD(cmd)).toBe(0xc0005600);
    expect(hexCmd(cmd)).toBe("0xc1285600");
    expect(_IOWINT("v", 1)).toBe(((IOC_VOID | (4 << 16)) >>> 0) + 0x7601);
  });

  it("masks the length to 13 bits like the macro", () => {
    // _IOC keeps only len & IOCPARM_MASK: 0x2000 bytes encode as length 0.
    expect(IOCPARM_LEN(_IOW("x", 1, 0x2000))).toBe(0);
    expect(IOCPARM_LEN(_IOR("x", 1, 0x1fff))).toBe(0x1fff);
  });

  it("refuses groups and numbers that are not a byte", () => {
    expect(() => _IOC(IOC_IN, "vv", 0, 4)).toThrow(IoccomError);
    expect(() => _IO("v", 256)).toThrow(IoccomError);
    expect(() => _IOWR(0x100, 1, 4)).toThrow(IoccomError);
    expect(() => _IOW("v", 1, -1)).toThrow(IoccomError);
  });
});

describe("against the C replica compiled with cc", () => {
  it("runs on an LP64 target (the FreeBSD/amd64 layout)", () => {
    expect(ptrSize).toBe(8);
  });

  it("VMMCTL numbers for VM_MAX_NAMELEN 229 and 37", () => {
    for (const n of [229, 37]) {
      const c = vmmctlCommands(n);
      expect(hexCmd(c.VMMCTL_VM_CREATE), `CREATE@${n}`).toBe(hexCmd(fromC.get(`VMMCTL_VM_CREATE@${n}`)!));
      expect(hexCmd(c.VMMCTL_VM_DESTROY), `DESTROY@${n}`).toBe(hexCmd(fromC.get(`VMMCTL_VM_DESTROY@${n}`)!));
    }
    // 37 + 1 = 38 bytes of name, 2 of padding, 64 of reserved words: 104 = 0x68.
    expect(vmmctlCommands(37).VMMCTL_VM_CREATE).toBe(0xc0685600);
  });

  it("struct vm_memseg (FreeBSD 15) and vm_memseg_14: sizeof and every offsetof equal gcc's", () => {
    for (const [name, st] of [["vm_memseg", S.vm_memseg], ["vm_memseg_14", S.vm_memseg_14]] as const) {
      const c = codec(st);
      expect(st.size, `sizeof ${name}`).toBe(layoutC.get(`size.${name}`));
      const fields = st.kind === "struct" ? st.fields.map((f) => f.name) : [];
      expect(fields.length).toBeGreaterThan(2);
      for (const f of fields as string[]) expect(c.offsetOf(f), `${name}.${f}`).toBe(layoutC.get(`off.${name}.${f}`));
    }
    // the upstream static assertion (vmm_dev.c, COMPAT_FREEBSD14): VM_MAX_SUFFIXLEN + 1 + 16 = 32
    expect(S.vm_memseg_14.size).toBe(32);
    expect(S.vm_memseg.size).toBe(56);
    // both VM_ALLOC_MEMSEG numbers come from the one _IOW encoding: same group and number, lengths 56 and 32
    const cur = lookupIoctl(fromC.get("VM_ALLOC_MEMSEG")!)!;
    const old = lookupIoctl(fromC.get("VM_ALLOC_MEMSEG_14")!)!;
    expect([cur.name, old.name]).toEqual(["VM_ALLOC_MEMSEG", "VM_ALLOC_MEMSEG_14"]);
    expect(hexCmd(cur.cmd)).toBe(hexCmd(_IOW("v", 14, 56)));
    expect(hexCmd(old.cmd)).toBe(hexCmd(_IOW("v", 14, 32)));
    expect(lookupIoctl(old.cmd, { compat14: false })).toBeUndefined();
  });

  it("every per-VM command number matches its C macro", () => {
    const names = allIoctls().map((d) => d.name);
    expect(new Set(names).size).toBe(names.length);
    for (const d of allIoctls()) {
      const c = fromC.get(d.name);
      expect(c, `${d.name} is in the C replica`).toBeDefined();
      expect(hexCmd(d.cmd), d.name).toBe(hexCmd(c!));
    }
    expect(fromC.size).toBe(allIoctls().length + 4);
  });
});

describe("the vmmdev tables", () => {
  // Flags from sys/dev/vmm/vmm_dev.c (vmmdev_ioctls) and sys/amd64/vmm/vmm_dev_machdep.c.
  const expectFlags: Record<string, string> = {
    VM_RUN: "LOCK_ONE_VCPU",
    VM_SET_REGISTER: "LOCK_ONE_VCPU",
    VM_GET_REGISTER: "LOCK_ONE_VCPU",
    VM_ACTIVATE_CPU: "LOCK_ONE_VCPU",
    VM_STATS: "LOCK_ONE_VCPU",
    VM_INJECT_NMI: "LOCK_ONE_VCPU",
    VM_LAPIC_IRQ: "LOCK_ONE_VCPU",
    VM_ALLOC_MEMSEG: "XLOCK_MEMSEGS|LOCK_ALL_VCPUS",
    VM_MMAP_MEMSEG: "XLOCK_MEMSEGS|LOCK_ALL_VCPUS",
    VM_MUNMAP_MEMSEG: "XLOCK_MEMSEGS|LOCK_ALL_VCPUS",
    VM_REINIT: "XLOCK_MEMSEGS|LOCK_ALL_VCPUS",
    VM_GET_MEMSEG: "SLOCK_MEMSEGS",
    VM_MMAP_GETNEXT: "SLOCK_MEMSEGS",
    VM_SUSPEND_CPU: "MAYBE_ALLOC_VCPU",
    VM_RESUME_CPU: "MAYBE_ALLOC_VCPU",
    VM_LAPIC_LOCAL_IRQ: "MAYBE_ALLOC_VCPU",
    VM_SNAPSHOT_REQ: "LOCK_ALL_VCPUS",
    VM_RESTORE_TIME: "LOCK_ALL_VCPUS",
    VM_SUSPEND: "0",
    VM_GET_CPUS: "0",
    VM_GET_TOPOLOGY: "0",
    VM_SET_TOPOLOGY: "0",
    VM_STAT_DESC: "0",
    VM_BIND_PPTDEV: "XLOCK_MEMSEGS|LOCK_ALL_VCPUS|PRIV_CHECK_DRIVER",
  };
  for (const [name, flags] of Object.entries(expectFlags)) {
    it(`${name} has ${flags}`, () => {
      const d = allIoctls().find((x) => x.name === name);
      expect(d).toBeDefined();
      expect(flagNames(d!.flags)).toBe(flags);
      expect(describeIoctl(d!)).toContain(name);
    });
  }

  it("holds the generic table's 26 entries and looks generic entries up first", () => {
    // vmmdev_ioctls[] in sys/dev/vmm/vmm_dev.c: 26 entries with COMPAT_FREEBSD12 and
    // COMPAT_FREEBSD14 (each adds an ALLOC_MEMSEG and a GET_MEMSEG variant).
    expect(GENERIC_IOCTLS.length).toBe(26);
    expect(MACHDEP_IOCTLS.every((d) => d.table === "machdep")).toBe(true);
    const run = MACHDEP_IOCTLS.find((d) => d.name === "VM_RUN")!;
    expect(lookupIoctl(run.cmd)?.name).toBe("VM_RUN");
    // BHYVE_SNAPSHOT entries only with the kernel option; COMPAT_FREEBSD12 ones unless turned off.
    const snap = MACHDEP_IOCTLS.find((d) => d.name === "VM_SNAPSHOT_REQ")!;
    expect(lookupIoctl(snap.cmd)).toBeUndefined();
    expect(lookupIoctl(snap.cmd, { bhyveSnapshot: true })?.name).toBe("VM_SNAPSHOT_REQ");
    const m12 = GENERIC_IOCTLS.find((d) => d.name === "VM_ALLOC_MEMSEG_12")!;
    expect(lookupIoctl(m12.cmd)?.name).toBe("VM_ALLOC_MEMSEG_12");
    expect(lookupIoctl(m12.cmd, { compat12: false })).toBeUndefined();
    expect(lookupIoctl(0x12345678)).toBeUndefined();
  });

  it("marks the one assumed layout", () => {
    expect(allIoctls().filter((d) => !d.sizeKnown).map((d) => d.name)).toEqual(["VM_GLA2GPA", "VM_GLA2GPA_NOFAULT"]);
  });
});

describe("sys_ioctl's generic checks (sys/kern/sys_generic.c)", () => {
  const ENOTTY = 25;
  it("refuses a command without direction bits", () => {
    expect(genericIoctlCheck(0x00007601)).toBe(ENOTTY);
  });
  it("refuses OUT commands of length 0, IN ones only without COMPAT_FREEBSD4", () => {
    expect(genericIoctlCheck((IOC_OUT | 0x7601) >>> 0)).toBe(ENOTTY);
    expect(genericIoctlCheck((IOC_IN | 0x7601) >>> 0, true)).toBe(0);
    expect(genericIoctlCheck((IOC_IN | 0x7601) >>> 0, false)).toBe(ENOTTY);
  });
  it("allows VOID commands of length 0 or sizeof(int) only", () => {
    expect(genericIoctlCheck(_IO("v", 5))).toBe(0);
    expect(genericIoctlCheck(_IOWINT("v", 5))).toBe(0);
    expect(genericIoctlCheck(_IOC(IOC_VOID, "v", 5, 8))).toBe(ENOTTY);
  });
});
