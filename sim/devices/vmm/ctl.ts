// /dev/vmmctl commands (sys/dev/vmm/vmm_dev.h, vmm_dev.c): VMMCTL_VM_CREATE and VMMCTL_VM_DESTROY,
// numbered from the struct declarations in sim/wire/vmmctl.ts for a given VM_MAX_NAMELEN.
import { codec, type Codec } from "../../wire/codec.ts";
import { vmmctlStructs, VM_MAX_NAMELEN, VM_MAX_NAMELEN_FREEBSD12 } from "../../wire/vmmctl.ts";
import { _IOWR } from "./ioccom.ts";

export { VM_MAX_NAMELEN, VM_MAX_NAMELEN_FREEBSD12 };

export { VMMCTL_CREATE_DESTROY_ON_CLOSE, VMMCTL_FLAGS_MASK } from "../../wire/vmmctl.ts";

export interface VmmctlArgs {
  name: Uint8Array;
  reserved: number[];
}

export interface VmmctlCreateArgs extends VmmctlArgs {
  flags: number;
}

export interface VmmctlCommands {
  readonly maxNameLen: number;
  readonly create: Codec<VmmctlCreateArgs>;
  readonly destroy: Codec<VmmctlArgs>;
  /** _IOWR('V', 0, struct vmmctl_vm_create), from the declared size. */
  readonly VMMCTL_VM_CREATE: number;
  /** _IOWR('V', 1, struct vmmctl_vm_destroy), from the declared size. */
  readonly VMMCTL_VM_DESTROY: number;
}

const cache = new Map<number, VmmctlCommands>();

/** The vmmctl codecs and command numbers for VM_MAX_NAMELEN `maxNameLen` (229 now, 37 in FreeBSD 12). */
export function vmmctlCommands(maxNameLen: number = VM_MAX_NAMELEN): VmmctlCommands {
  let c = cache.get(maxNameLen);
  if (!c) {
    const s = vmmctlStructs(maxNameLen);
    c = Object.freeze({
      maxNameLen,
      create: codec(s.vmmctl_vm_create) as unknown as Codec<VmmctlCreateArgs>,
      destroy: codec(s.vmmctl_vm_destroy) as unknown as Codec<VmmctlArgs>,
      VMMCTL_VM_CREATE: _IOWR("V", 0, s.vmmctl_vm_create.size),
      VMMCTL_VM_DESTROY: _IOWR("V", 1, s.vmmctl_vm_destroy.size),
    });
    cache.set(maxNameLen, c);
  }
  return c;
}

/**
 * Argument bytes for CREATE (default) or DESTROY (`kind: "destroy"`): `name` (latin1 or bytes,
 * cut to fit), CREATE's `flags` word and optional reserved words (15 for CREATE, 16 for DESTROY).
 */
export function vmmctlArgBytes(
  name: string | Uint8Array,
  opts: { maxNameLen?: number; reserved?: readonly number[]; flags?: number; kind?: "create" | "destroy" } = {},
): Uint8Array {
  const cmds = vmmctlCommands(opts.maxNameLen ?? VM_MAX_NAMELEN);
  const cap = cmds.maxNameLen + 1;
  const raw = typeof name === "string" ? Uint8Array.from(Buffer.from(name, "latin1")) : name;
  const n = raw.subarray(0, cap);
  if (opts.kind === "destroy") {
    return cmds.destroy.encode({ name: n, reserved: Array.from({ length: 16 }, (_, i) => opts.reserved?.[i] ?? 0) });
  }
  const reserved = Array.from({ length: 15 }, (_, i) => opts.reserved?.[i] ?? 0);
  return cmds.create.encode({ name: n, flags: (opts.flags ?? 0) >>> 0, reserved });
}
