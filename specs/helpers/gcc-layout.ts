// Layouts as the system C compiler sees them: writes a C program that prints sizeof, _Alignof,
// offsetof and member sizes of the requested structs, compiles it with `cc` in a temp dir, runs
// it and parses the output. The uapi Hyper-V structs come from the installed
// /usr/include/linux/hyperv.h; the kernel-internal IC headers and the FreeBSD structs, which no
// installed header provides, from the C replicas below (written from the upstream definitions named
// beside them).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Codec } from "../../sim/wire/codec.ts";
import type { WireEntry } from "../../sim/wire/registry.ts";

export const CC = process.env.CC ?? "cc";

/** Throws (so the calling spec fails) when there is no C compiler. */
export function requireCc(): void {
  const r = spawnSync(CC, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(
      `no C compiler: '${CC} --version' failed (${r.error?.message ?? `exit ${r.status}`}). ` +
        "The layout specs compare every offset with gcc's; install gcc and libc6-dev (apt-get install gcc libc6-dev) or set CC.",
    );
  }
}

/** Replica of Linux include/linux/hyperv.h (v6.1): the IC framing structs, all __packed. */
export const LINUX_KERNEL_HYPERV_REPLICA = `
/* Replica of the kernel-internal Linux include/linux/hyperv.h (v6.1): vmbuspipe_hdr, ic_version,
 * icmsg_hdr, icmsg_negotiate. Not installed by linux-libc-dev. */
#include <linux/types.h>
struct vmbuspipe_hdr { __u32 flags; __u32 msgsize; } __attribute__((packed));
struct ic_version { __u16 major; __u16 minor; } __attribute__((packed));
struct icmsg_hdr {
  struct ic_version icverframe;
  __u16 icmsgtype;
  struct ic_version icvermsg;
  __u16 icmsgsize;
  __u32 status;
  __u8 ictransaction_id;
  __u8 icflags;
  __u8 reserved[2];
} __attribute__((packed));
struct icmsg_negotiate {
  __u16 icframe_vercnt;
  __u16 icmsg_vercnt;
  __u32 reserved;
  struct ic_version icversion_data[];
} __attribute__((packed));
`;

/** Replica of FreeBSD sys/dev/vmm/vmm_dev.h (main): vmmctl_vm_create / vmmctl_vm_destroy. */
export const FREEBSD_VMM_DEV_REPLICA = `
/* Replica of FreeBSD sys/dev/vmm/vmm_dev.h (freebsd-src main): the /dev/vmmctl ioctl arguments.
 * VM_MAX_NAMELEN comes from sys/dev/vmm/vmm_param.h (SPECNAMELEN 255 - 10 - 15 - 1 = 229). */
#ifndef VM_MAX_NAMELEN
#define VM_MAX_NAMELEN 229
#endif
/* main: uint32_t flags took the first reserved int (VMMCTL_CREATE_DESTROY_ON_CLOSE). */
struct vmmctl_vm_create { char name[VM_MAX_NAMELEN + 1]; unsigned int flags; int reserved[15]; };
struct vmmctl_vm_destroy { char name[VM_MAX_NAMELEN + 1]; int reserved[16]; };
`;

/** The C text that declares an entry's struct, by its upstream header. */
export function cSourceFor(e: WireEntry): string {
  const h = e.header;
  if (h.project === "linux" && h.uapi) {
    const m = /^include\/uapi\/(.+)$/.exec(h.path);
    if (!m) throw new Error(`${e.name}: cannot map uapi header ${h.path} to an installed include`);
    return `#include <${m[1]}>\n`;
  }
  if (h.project === "linux" && h.path === "include/linux/hyperv.h") return LINUX_KERNEL_HYPERV_REPLICA;
  if (h.project === "freebsd" && h.path === "sys/dev/vmm/vmm_dev.h") return FREEBSD_VMM_DEV_REPLICA;
  throw new Error(`${e.name}: no C source for ${h.project} ${h.path}; add a replica to specs/helpers/gcc-layout.ts`);
}

export interface CMember {
  readonly path: string;
  /** A flexible array member: offsetof only (sizeof of an incomplete type is not C). */
  readonly flex: boolean;
}

export interface CRequest {
  /** The C tag, e.g. "hv_kvp_msg" for `struct hv_kvp_msg`. */
  readonly tag: string;
  readonly kind?: "struct" | "union";
  readonly members: readonly CMember[];
}

export interface CLayout {
  readonly size: number;
  readonly align: number;
  readonly offsets: Record<string, number>;
  /** Member sizes (flexible arrays omitted). */
  readonly sizes: Record<string, number>;
}

/** A codec's members as a C request. */
export function requestOf(c: Codec<unknown>): CRequest {
  return { tag: c.name, kind: c.type.kind, members: c.fields.map((f) => ({ path: f.path, flex: f.type.kind === "flex" })) };
}

/** The same numbers from the TypeScript declaration, for comparison with a CLayout. */
export function tsLayout(c: Codec<unknown>): CLayout {
  const offsets: Record<string, number> = {};
  const sizes: Record<string, number> = {};
  for (const f of c.fields) {
    offsets[f.path] = f.offset;
    if (f.type.kind !== "flex") sizes[f.path] = f.size;
  }
  return { size: c.size, align: c.align, offsets, sizes };
}

/**
 * Compiles and runs a program printing the layout of `requests` as declared by `prelude` (C text).
 * `defines` become -D options. Returns the layouts by tag, plus the target's architecture.
 */
export function gccLayouts(
  prelude: string,
  requests: readonly CRequest[],
  defines: Record<string, string | number> = {},
): { arch: string; layouts: Map<string, CLayout> } {
  requireCc();
  const lines: string[] = [];
  for (const r of requests) {
    const T = `${r.kind ?? "struct"} ${r.tag}`;
    lines.push(`  printf("S\\t${r.tag}\\t%zu\\t%zu\\n", sizeof(${T}), _Alignof(${T}));`);
    for (const m of r.members) {
      lines.push(`  printf("O\\t${r.tag}\\t${m.path}\\t%zu\\n", offsetof(${T}, ${m.path}));`);
      if (!m.flex) lines.push(`  printf("Z\\t${r.tag}\\t${m.path}\\t%zu\\n", sizeof(((${T} *)0)->${m.path}));`);
    }
  }
  const program = `/* generated by specs/helpers/gcc-layout.ts */
#include <stddef.h>
#include <stdio.h>
${prelude}
int main(void) {
#if defined(__x86_64__)
  printf("A\\tx86_64\\n");
#else
  printf("A\\tother\\n");
#endif
${lines.join("\n")}
  return 0;
}
`;
  const dir = mkdtempSync(join(tmpdir(), "hvsim-gcc-"));
  try {
    const src = join(dir, "layout.c");
    const exe = join(dir, "layout");
    writeFileSync(src, program);
    const args = ["-std=gnu11", "-O0", "-o", exe, src, ...Object.entries(defines).map(([k, v]) => `-D${k}=${v}`)];
    const cc = spawnSync(CC, args, { encoding: "utf8" });
    if (cc.error || cc.status !== 0) throw new Error(`${CC} failed to compile the layout program:\n${cc.stderr || cc.error?.message}`);
    const run = spawnSync(exe, [], { encoding: "utf8" });
    if (run.error || run.status !== 0) throw new Error(`the layout program failed: ${run.stderr || run.error?.message}`);
    let arch = "";
    const layouts = new Map<string, { size: number; align: number; offsets: Record<string, number>; sizes: Record<string, number> }>();
    for (const line of run.stdout.split("\n")) {
      if (!line) continue;
      const [k, tag, a, b] = line.split("\t");
      if (k === "A") arch = tag!;
      else if (k === "S") layouts.set(tag!, { size: Number(a), align: Number(b), offsets: {}, sizes: {} });
      else if (k === "O") layouts.get(tag!)!.offsets[a!] = Number(b);
      else if (k === "Z") layouts.get(tag!)!.sizes[a!] = Number(b);
    }
    return { arch, layouts };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** gcc's layout of registered entries (their headers or replicas included once each). */
export function gccLayoutsOf(entries: readonly WireEntry[], defines: Record<string, string | number> = {}) {
  const prelude = [...new Set(entries.map(cSourceFor))].join("\n");
  return gccLayouts(prelude, entries.map((e) => requestOf(e.codec)), defines);
}
