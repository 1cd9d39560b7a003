// Every registered wire struct against gcc: sizeof, _Alignof, and offsetof and sizeof of every
// member path the declaration lists (nested members, every union member, flexible arrays by
// offsetof). The uapi Hyper-V structs are compiled from the installed /usr/include/linux/hyperv.h
// (linux-libc-dev); the kernel-internal IC headers and the FreeBSD vmmctl structs from C replicas
// of their upstream definitions (specs/helpers/gcc-layout.ts). Without `cc` this spec fails.
import { describe, expect, it } from "vitest";
import { codec } from "../../sim/wire/codec.ts";
import { WIRE_REGISTRY, wireEntries } from "../../sim/wire/registry.ts";
import { hv_kvp_msg, hv_vss_msg, icmsg_hdr, vmbuspipe_hdr } from "../../sim/wire/hyperv.ts";
import { ICMSG_HDR } from "../../sim/wire/hyperv-constants.ts";
import {
  VM_MAX_NAMELEN_FREEBSD12,
  VMMCTL_VM_CREATE,
  VMMCTL_VM_DESTROY,
  vmmctl_vm_create,
  vmmctl_vm_destroy,
  vmmctlStructs,
} from "../../sim/wire/vmmctl.ts";
import { gccLayoutsOf, requestOf, tsLayout, gccLayouts, FREEBSD_VMM_DEV_REPLICA, type CLayout } from "../helpers/gcc-layout.ts";

// Measured once; without a compiler every test below fails with the helper's "no C compiler" message.
let measured: { arch: string; layouts: Map<string, CLayout> } | Error | undefined;
function gccOfRegistry(): { arch: string; layouts: Map<string, CLayout> } {
  if (measured === undefined) {
    try {
      measured = gccLayoutsOf(wireEntries());
    } catch (e) {
      measured = e as Error;
    }
  }
  if (measured instanceof Error) throw measured;
  return measured;
}

describe("wire layouts equal gcc's", () => {
  it("the compiler targets x86-64 (the layout rules the declarations implement)", () => {
    expect(gccOfRegistry().arch).toBe("x86_64");
  });

  it("the registry is not empty and every entry was measured", () => {
    expect(WIRE_REGISTRY.size).toBeGreaterThanOrEqual(23);
    const { layouts } = gccOfRegistry();
    for (const name of WIRE_REGISTRY.keys()) expect(layouts.has(name), name).toBe(true);
  });

  for (const e of wireEntries()) {
    it(`struct ${e.name} (${e.header.path}): sizeof, _Alignof, every offsetof and member size`, () => {
      const c = gccOfRegistry().layouts.get(e.name)!;
      const ts = tsLayout(e.codec);
      expect({ size: ts.size, align: ts.align }).toEqual({ size: c.size, align: c.align });
      expect(ts.offsets).toEqual(c.offsets);
      expect(ts.sizes).toEqual(c.sizes);
      expect(Object.keys(ts.offsets).length).toBe(e.codec.fields.length);
    });
  }

  it("vmmctl structs with the FreeBSD 12 era VM_MAX_NAMELEN (37) equal gcc's with -DVM_MAX_NAMELEN=37", () => {
    const old = vmmctlStructs(VM_MAX_NAMELEN_FREEBSD12);
    const cs = [codec(old.vmmctl_vm_create), codec(old.vmmctl_vm_destroy)];
    const r = gccLayouts(FREEBSD_VMM_DEV_REPLICA, cs.map(requestOf), { VM_MAX_NAMELEN: VM_MAX_NAMELEN_FREEBSD12 });
    for (const c of cs) {
      const g = r.layouts.get(c.name)!;
      const ts = tsLayout(c);
      expect(ts).toEqual({ size: g.size, align: g.align, offsets: g.offsets, sizes: g.sizes });
    }
    // 38 name bytes + 2 padding + 16 ints
    expect(old.vmmctl_vm_create.size).toBe(104);
  });
});

describe("layout facts stated upstream (independent of gcc)", () => {
  it("sizeof(struct hv_kvp_msg) = 7432 and sizeof(struct hv_vss_msg) = 12 (include/uapi/linux/hyperv.h, Linux 6.1)", () => {
    expect(hv_kvp_msg.size).toBe(7432);
    expect(hv_vss_msg.size).toBe(12);
  });

  it("ICMSG_HDR = sizeof(vmbuspipe_hdr) + sizeof(icmsg_hdr) = 28 (include/linux/hyperv.h)", () => {
    expect(vmbuspipe_hdr.size + icmsg_hdr.size).toBe(28);
    expect(ICMSG_HDR).toBe(28);
  });

  it("KVP GET quirk offsets: the daemon writes a GET value at 528, the kernel reads it at the ENUMERATE offset 532 (drivers/hv/hv_kvp.c)", () => {
    const c = codec(hv_kvp_msg);
    expect(c.offsetOf("body.kvp_get.data.value")).toBe(528);
    expect(c.offsetOf("body.kvp_enum_data.data.value")).toBe(532);
  });

  it("struct vmmctl_vm_create / _destroy are 296 bytes on amd64 and VMMCTL_VM_CREATE/DESTROY = 0xC1285600/0xC1285601 (freebsd-src sys/dev/vmm/vmm_dev.h, sys/sys/ioccom.h)", () => {
    expect(vmmctl_vm_create.size).toBe(296);
    expect(vmmctl_vm_destroy.size).toBe(296);
    expect(VMMCTL_VM_CREATE).toBe(0xc1285600);
    expect(VMMCTL_VM_DESTROY).toBe(0xc1285601);
  });

  it("vmmctl_vm_create.flags sits where reserved[0] was: offset 232, reserved[15] after it (freebsd-src main sys/dev/vmm/vmm_dev.h)", () => {
    // 230 name bytes, 2 bytes of padding to the 4-byte-aligned uint32_t flags, then 15 ints.
    const c = codec(vmmctl_vm_create);
    expect(c.offsetOf("flags")).toBe(232);
    expect(c.offsetOf("reserved")).toBe(236);
    expect(codec(vmmctl_vm_destroy).offsetOf("reserved")).toBe(232);
  });
});
