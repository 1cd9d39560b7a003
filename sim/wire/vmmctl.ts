// FreeBSD bhyve's /dev/vmmctl ioctl arguments, declared from freebsd-src (main) sys/dev/vmm/vmm_dev.h:
// `struct vmmctl_vm_create { char name[VM_MAX_NAMELEN + 1]; uint32_t flags; int reserved[15]; }`
// (flags took the first reserved int, same size) and `struct vmmctl_vm_destroy { char
// name[VM_MAX_NAMELEN + 1]; int reserved[16]; }`, natural alignment; the ioctl encoding of
// sys/sys/ioccom.h.
import { array, char, field, i32, struct, u32 } from "./types.ts";

/** sys/dev/vmm/vmm_param.h: SPECNAMELEN (255) - 10 - 15 - 1. */
export const VM_MAX_NAMELEN = 229;
/** The FreeBSD 12 era limit, kept as a model option. */
export const VM_MAX_NAMELEN_FREEBSD12 = 37;
/** Defined upstream, not enforced by VMMCTL_VM_CREATE. */
export const VM_MIN_NAMELEN = 6;
export const VMMCTL_RESERVED_INTS = 16;
/** vmm_dev.h: VMMCTL_CREATE_DESTROY_ON_CLOSE 0x1; VMMCTL_FLAGS_MASK is that one bit. */
export const VMMCTL_CREATE_DESTROY_ON_CLOSE = 0x1;
export const VMMCTL_FLAGS_MASK = VMMCTL_CREATE_DESTROY_ON_CLOSE;

// sys/sys/ioccom.h
export const IOCPARM_SHIFT = 13;
export const IOCPARM_MASK = (1 << IOCPARM_SHIFT) - 1; // 0x1fff
export const IOC_VOID = 0x20000000;
export const IOC_OUT = 0x40000000;
export const IOC_IN = 0x80000000;
export const IOC_INOUT = IOC_IN | IOC_OUT;

/** `_IOC(inout, group, num, len)` as an unsigned 32-bit number (the values exceed int32). */
export function ioc(inout: number, group: number, num: number, len: number): number {
  return (inout | ((len & IOCPARM_MASK) << 16) | (group << 8) | num) >>> 0;
}

/** `_IOWR(group, num, type)` for a type of `size` bytes; `group` is a character such as 'V'. */
export function iowr(group: string, num: number, size: number): number {
  return ioc(IOC_INOUT, group.charCodeAt(0), num, size);
}

function createShape(maxNameLen: number) {
  return struct("vmmctl_vm_create", [field("name", array(char, maxNameLen + 1)), field("flags", u32), field("reserved", array(i32, VMMCTL_RESERVED_INTS - 1))]);
}

function destroyShape(maxNameLen: number) {
  return struct("vmmctl_vm_destroy", [field("name", array(char, maxNameLen + 1)), field("reserved", array(i32, VMMCTL_RESERVED_INTS))]);
}

/** `{ name: Uint8Array; flags: number; reserved: number[] }` (15 reserved ints). */
export type VmmctlCreateStruct = ReturnType<typeof createShape>;
/** `{ name: Uint8Array; reserved: number[] }` (16 reserved ints). */
export type VmmctlStruct = ReturnType<typeof destroyShape>;

export interface VmmctlStructs {
  readonly maxNameLen: number;
  readonly vmmctl_vm_create: VmmctlCreateStruct;
  readonly vmmctl_vm_destroy: VmmctlStruct;
  /** `_IOWR('V', 0, struct vmmctl_vm_create)` */
  readonly VMMCTL_VM_CREATE: number;
  /** `_IOWR('V', 1, struct vmmctl_vm_destroy)` */
  readonly VMMCTL_VM_DESTROY: number;
}

/** The two structs (same size upstream) and their ioctl numbers for a given VM_MAX_NAMELEN. */
export function vmmctlStructs(maxNameLen: number = VM_MAX_NAMELEN): VmmctlStructs {
  if (!Number.isSafeInteger(maxNameLen) || maxNameLen < 0) throw new RangeError(`VM_MAX_NAMELEN must be a whole number, got ${maxNameLen}`);
  const create = createShape(maxNameLen);
  const destroy = destroyShape(maxNameLen);
  return {
    maxNameLen,
    vmmctl_vm_create: create,
    vmmctl_vm_destroy: destroy,
    VMMCTL_VM_CREATE: iowr("V", 0, create.size),
    VMMCTL_VM_DESTROY: iowr("V", 1, destroy.size),
  };
}

const current = vmmctlStructs(VM_MAX_NAMELEN);

/** Current upstream declarations (VM_MAX_NAMELEN = 229). */
export const vmmctl_vm_create = current.vmmctl_vm_create;
export const vmmctl_vm_destroy = current.vmmctl_vm_destroy;
export const VMMCTL_VM_CREATE = current.VMMCTL_VM_CREATE;
export const VMMCTL_VM_DESTROY = current.VMMCTL_VM_DESTROY;

export const VMM_DEV_HEADER = "sys/dev/vmm/vmm_dev.h";
export const VMMCTL_STRUCTS = [vmmctl_vm_create, vmmctl_vm_destroy] as const;
