// FreeBSD ioctl command encoding (sys/sys/ioccom.h). A command number packs the direction bits,
// the parameter length (13 bits), a group character and a command number:
//
//   _IOC(inout, group, num, len) = inout | ((len & IOCPARM_MASK) << 16) | (group << 8) | num
//
// The direction bits reach bit 31, so numbers exceed int32: everything here is unsigned (>>> 0).
// Lengths come from struct declarations (sim/wire), never typed in by hand.

export const IOCPARM_SHIFT = 13;
export const IOCPARM_MASK = (1 << IOCPARM_SHIFT) - 1; // 0x1fff
export const IOCPARM_MAX = 1 << IOCPARM_SHIFT; // 0x2000
export const IOC_VOID = 0x20000000;
export const IOC_OUT = 0x40000000;
export const IOC_IN = 0x80000000;
export const IOC_INOUT = (IOC_IN | IOC_OUT) >>> 0;
export const IOC_DIRMASK = (IOC_VOID | IOC_OUT | IOC_IN) >>> 0;

/** sizeof(int) on every FreeBSD target: the one length an IOC_VOID command may carry. */
export const SIZEOF_INT = 4;

export class IoccomError extends Error {
  override name = "IoccomError";
}

function groupCode(g: string | number): number {
  const c = typeof g === "string" ? (g.length === 1 ? g.charCodeAt(0) : NaN) : g;
  if (!Number.isInteger(c) || c < 0 || c > 0xff) throw new IoccomError(`ioctl group must be one byte, got ${String(g)}`);
  return c;
}

/** _IOC: direction bits, group, number and parameter length; the result is unsigned. */
export function _IOC(inout: number, group: string | number, num: number, len: number): number {
  if (!Number.isInteger(num) || num < 0 || num > 0xff) throw new IoccomError(`ioctl number must be 0..255, got ${num}`);
  if (!Number.isInteger(len) || len < 0) throw new IoccomError(`ioctl length must be a non-negative integer, got ${len}`);
  return (inout | ((len & IOCPARM_MASK) << 16) | (groupCode(group) << 8) | num) >>> 0;
}

export const _IO = (g: string | number, n: number) => _IOC(IOC_VOID, g, n, 0);
/** _IOWINT: an IOC_VOID command whose argument is an int passed by value. */
export const _IOWINT = (g: string | number, n: number) => _IOC(IOC_VOID, g, n, SIZEOF_INT);
export const _IOR = (g: string | number, n: number, size: number) => _IOC(IOC_OUT, g, n, size);
export const _IOW = (g: string | number, n: number, size: number) => _IOC(IOC_IN, g, n, size);
export const _IOWR = (g: string | number, n: number, size: number) => _IOC(IOC_INOUT, g, n, size);

/** IOCPARM_LEN: the parameter length a command carries. */
export const IOCPARM_LEN = (cmd: number) => (cmd >>> 16) & IOCPARM_MASK;
/** IOCBASECMD: the command without its length. */
export const IOCBASECMD = (cmd: number) => (cmd & ~(IOCPARM_MASK << 16)) >>> 0;
/** IOCGROUP: the group byte. */
export const IOCGROUP = (cmd: number) => (cmd >>> 8) & 0xff;
export const IOCNUM = (cmd: number) => cmd & 0xff;

/** "0xc1285600" */
export function hexCmd(cmd: number): string {
  return `0x${(cmd >>> 0).toString(16).padStart(8, "0")}`;
}

/**
 * The generic checks sys_ioctl (sys/kern/sys_generic.c) makes before a driver sees a command: no
 * direction bit, a VOID command with a length other than sizeof(int), or a zero length on an OUT
 * command is ENOTTY. A zero length on an IN command is ENOTTY too, except in kernels built with
 * COMPAT_FREEBSD4/5 or COMPAT_43 (`compat4`, which amd64 GENERIC enables). Returns 0 when the
 * command passes. (The kernel truncates command words to 32 bits first; the model takes 32-bit
 * numbers only.)
 */
export function genericIoctlCheck(cmd: number, compat4 = true): number {
  const ENOTTY = 25;
  const size = IOCPARM_LEN(cmd);
  if (size > IOCPARM_MAX) return ENOTTY; // unreachable: the mask keeps size below the maximum
  if ((cmd & IOC_DIRMASK) === 0) return ENOTTY;
  if (compat4 ? (cmd & IOC_OUT) !== 0 && size === 0 : (cmd & (IOC_IN | IOC_OUT)) !== 0 && size === 0) return ENOTTY;
  if ((cmd & IOC_VOID) !== 0 && size > 0 && size !== SIZEOF_INT) return ENOTTY;
  return 0;
}
