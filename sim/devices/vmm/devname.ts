// Device names under devfs: the checks make_dev_s(MAKEDEV_CHECKNAME) applies (prep_devname in
// sys/kern/kern_conf.c) and the name-collision test of devfs (devfs_dev_exists, with
// devfs_pathpath, in sys/fs/devfs/devfs_devs.c).
//
// prep_devname, in order: a formatted name longer than SPECNAMELEN is ENAMETOOLONG; leading
// slashes are dropped; whitespace (isspace: space, \t \n \v \f \r) or a double quote anywhere is
// EINVAL; runs of slashes collapse to one; a trailing slash is EINVAL; an empty result is EINVAL;
// a "." or ".." component is EINVAL; a name devfs already has is EEXIST.
import { EEXIST, EINVAL, ENAMETOOLONG } from "./errno.ts";

/** SPECNAMELEN in current FreeBSD (sys/sys/param.h); 63 in the FreeBSD 12 era. */
export const SPECNAMELEN = 255;

/** The kernel's isspace (sys/sys/ctype.h): space and \t..\r. Bytes are latin1 code units. */
function isKernelSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

export type DevnameResult = { ok: true; name: string } | { ok: false; errno: number };

/**
 * Normalises `formatted` (already printf-expanded, a latin1 string of bytes) as prep_devname does.
 * `exists` answers devfs_dev_exists for the normalised name.
 */
export function prepDevname(formatted: string, exists: (name: string) => boolean, specnamelen = SPECNAMELEN): DevnameResult {
  if (formatted.length > specnamelen) return { ok: false, errno: ENAMETOOLONG };
  let i = 0;
  while (formatted.charCodeAt(i) === 0x2f) i++;
  let out = "";
  for (; i < formatted.length; i++) {
    const c = formatted.charCodeAt(i);
    if (isKernelSpace(c) || c === 0x22) return { ok: false, errno: EINVAL };
    while (formatted.charCodeAt(i) === 0x2f && formatted.charCodeAt(i + 1) === 0x2f) i++;
    if (formatted.charCodeAt(i) === 0x2f && i + 1 === formatted.length) return { ok: false, errno: EINVAL };
    out += formatted[i];
  }
  if (out === "") return { ok: false, errno: EINVAL };
  for (const comp of out.split("/")) if (comp === "." || comp === "..") return { ok: false, errno: EINVAL };
  if (exists(out)) return { ok: false, errno: EEXIST };
  return { ok: true, name: out };
}

/** devfs_pathpath(p1, p2): p1 equals p2, or p2 is a directory of p1 ("a/b" contains "a"). */
export function pathContains(p1: string, p2: string): boolean {
  if (p1 === p2) return true;
  return p1.length > p2.length && p1.startsWith(p2) && p1.charCodeAt(p2.length) === 0x2f;
}

/**
 * devfs_dev_exists over a list of active device names: taken when a device has that name, when the
 * name is a directory of an existing device, or when an existing device is a directory of it.
 * (devfs_dir_find also answers for directories made by devfs rules; those are not modelled.)
 */
export function devfsNameTaken(active: readonly string[], name: string): boolean {
  return active.some((d) => pathContains(d, name) || pathContains(name, d));
}
