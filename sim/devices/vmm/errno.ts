// FreeBSD errno values (sys/sys/errno.h) for the outcomes the vmm model can produce. Every outcome
// of the model is one of these (or 0), never an exception.
export const EPERM = 1;
export const ENOENT = 2;
export const ENXIO = 6;
export const EBADF = 9;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOTTY = 25;
export const ERANGE = 34;
export const EALREADY = 37;
export const ENAMETOOLONG = 63;

export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  0: "0",
  [EPERM]: "EPERM",
  [ENOENT]: "ENOENT",
  [ENXIO]: "ENXIO",
  [EBADF]: "EBADF",
  [ENOMEM]: "ENOMEM",
  [EACCES]: "EACCES",
  [EFAULT]: "EFAULT",
  [EBUSY]: "EBUSY",
  [EEXIST]: "EEXIST",
  [EINVAL]: "EINVAL",
  [ENOTTY]: "ENOTTY",
  [ERANGE]: "ERANGE",
  [EALREADY]: "EALREADY",
  [ENAMETOOLONG]: "ENAMETOOLONG",
};

/** The errno value for a name ("EINVAL") or a number; undefined when unknown. */
export function errnoValue(v: string | number): number | undefined {
  if (typeof v === "number") return Object.hasOwn(ERRNO_NAMES, v) ? v : undefined;
  if (v === "0" || v === "OK") return 0;
  for (const [k, name] of Object.entries(ERRNO_NAMES)) if (name === v) return Number(k);
  return undefined;
}

export function errnoName(e: number): string {
  return ERRNO_NAMES[e] ?? `errno ${e}`;
}
