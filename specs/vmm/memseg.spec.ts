// FreeBSD 15's VM_ALLOC_MEMSEG (struct vm_memseg with the NUMA domain set) next to the
// COMPAT_FREEBSD14 VM_ALLOC_MEMSEG_14 / VM_GET_MEMSEG_14 (struct vm_memseg_14, 32 bytes), after
// vmmdev_ioctl in freebsd-src sys/dev/vmm/vmm_dev.c (main, as read for issue 12):
//   case VM_ALLOC_MEMSEG: if (mseg->ds_policy != DOMAINSET_POLICY_INVALID && mseg->ds_mask !=
//   NULL) { if (mseg->ds_mask_size < sizeof(domainset_t) || mseg->ds_mask_size >
//   DOMAINSET_MAXSIZE / NBBY) { error = ERANGE; ... } } then alloc_memseg;
//   case VM_ALLOC_MEMSEG_14 / _12: alloc_memseg with the old name length (same segments).
// sizeof(domainset_t) in the kernel is 8 (DOMAINSET_SETSIZE = MAXMEMDOM = 8 bits on amd64, one
// long); DOMAINSET_MAXSIZE / NBBY = 256 / 8 = 32 (sys/sys/_domainset.h).
import { describe, expect, it } from "vitest";
import { argBytes, cmdOf } from "../../sim/devices/vmm/args.ts";
import { EEXIST, ENOTTY, ERANGE } from "../../sim/devices/vmm/errno.ts";
import * as S from "../../sim/devices/vmm/structs.ts";
import { codec } from "../../sim/wire/codec.ts";
import { errnoOf, fdOf, settle, vmmBench } from "./helpers.ts";

function setup(config = {}) {
  const { bench, vmm } = vmmBench(config);
  const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
  expect(errnoOf(vmm.createVm(ctl, "m"))).toBe(0);
  const fd = fdOf(vmm.open("/dev/vmm/m", "rw"));
  const io = (name: string, values: Record<string, number | bigint>) => settle(bench, vmm, vmm.ioctl(fd, cmdOf(name), argBytes(name, values)));
  return { vmm, fd, io };
}

describe("VM_ALLOC_MEMSEG (FreeBSD 15) domain set", () => {
  it("ds_mask_size outside [8, 32] is ERANGE when a policy and a mask are given", () => {
    const { vmm, io } = setup();
    const ds = (segid: number, size: bigint) => io("VM_ALLOC_MEMSEG", { segid, len: 4096n, ds_policy: 1, ds_mask: 0x7000n, ds_mask_size: size }).errno;
    expect(ds(0, 0n)).toBe(ERANGE);
    expect(ds(0, 7n)).toBe(ERANGE);
    expect(ds(0, 33n)).toBe(ERANGE);
    expect(ds(0, 1n << 40n)).toBe(ERANGE);
    expect(Object.values(vmm.state.vms)[0]!.segs).toEqual({}); // nothing allocated
    expect(ds(0, 8n)).toBe(0);
    expect(ds(1, 32n)).toBe(0);
  });

  it("no check without a policy (DOMAINSET_POLICY_INVALID, 0) or without a mask (NULL)", () => {
    const { io } = setup();
    expect(io("VM_ALLOC_MEMSEG", { segid: 0, len: 4096n, ds_policy: 0, ds_mask: 0x7000n, ds_mask_size: 1n }).errno).toBe(0);
    expect(io("VM_ALLOC_MEMSEG", { segid: 1, len: 4096n, ds_policy: 2, ds_mask: 0n, ds_mask_size: 1n }).errno).toBe(0);
  });
});

describe("VM_ALLOC_MEMSEG_14 / VM_GET_MEMSEG_14 (COMPAT_FREEBSD14)", () => {
  it("go through the same handler: a segment allocated by one is read back by the other", () => {
    const { io } = setup();
    expect(io("VM_ALLOC_MEMSEG_14", { segid: 0, len: 8192n }).errno).toBe(0);
    const cur = io("VM_GET_MEMSEG", { segid: 0, ds_policy: 3 });
    expect(cur.errno).toBe(0);
    const got = codec(S.vm_memseg).decode(Uint8Array.from(Buffer.from(cur.out, "hex")));
    expect(got.ok && [got.value.len, got.value.ds_policy]).toEqual([8192n, 3]); // get_memseg leaves the domain set alone
    expect(io("VM_ALLOC_MEMSEG", { segid: 1, len: 4096n }).errno).toBe(0);
    const old = io("VM_GET_MEMSEG_14", { segid: 1 });
    const g14 = codec(S.vm_memseg_14).decode(Uint8Array.from(Buffer.from(old.out, "hex")));
    expect(g14.ok && g14.value.len).toBe(4096n);
    // the same segment again through the compat command: vm_alloc_memseg's EEXIST
    expect(io("VM_ALLOC_MEMSEG_14", { segid: 1, len: 4096n }).errno).toBe(EEXIST);
  });

  it("are ENOTTY without COMPAT_FREEBSD14", () => {
    const { vmm, fd } = setup({ compat14: false });
    expect(errnoOf(vmm.ioctl(fd, cmdOf("VM_ALLOC_MEMSEG_14"), argBytes("VM_ALLOC_MEMSEG_14", { segid: 0, len: 4096n })))).toBe(ENOTTY);
    expect(errnoOf(vmm.ioctl(fd, cmdOf("VM_GET_MEMSEG_14"), argBytes("VM_GET_MEMSEG_14")))).toBe(ENOTTY);
  });
});
