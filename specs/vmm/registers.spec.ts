// Register numbers are bounds-checked (issue 12). Golden values from FreeBSD main:
//   sys/amd64/include/vmm.h @ 001345683da712c21ec449c4116671a4554c737b, enum vm_reg_name: RAX is 0
//     and TPR the 49th entry (48), so VM_REG_LAST = 49.
//   sys/amd64/vmm/vmm.c vm_get_register / vm_set_register: `if (reg < 0 || reg >= VM_REG_LAST)
//     return (EINVAL);`
//   sys/dev/vmm/vmm_dev.c @ 012895d5be9de60ba30231b6466b87576c7b43d8, vmmdev_ioctl cases
//     VM_GET_REGISTER_SET and VM_SET_REGISTER_SET: `if (vmregset->count > VM_REG_LAST) { error =
//     EINVAL; break; }` before any copyin.
import { describe, expect, it } from "vitest";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { EINVAL } from "../../sim/devices/vmm/errno.ts";
import { drain, errnoOf, fdOf, vmmBench } from "./helpers.ts";
import type { IoctlOutcome } from "../../sim/devices/vmm/model.ts";

function setup() {
  const { bench, vmm } = vmmBench({ ioctlNs: 0 });
  const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
  expect(errnoOf(vmm.createVm(ctl, "regs"))).toBe(0);
  const fd = fdOf(vmm.open("/dev/vmm/regs", "rw"));
  const run = (o: IoctlOutcome): number => {
    if (o.status === "done") return o.errno;
    drain(bench);
    return vmm.takeResult(o.op)!.errno;
  };
  return { vmm, fd, run };
}

describe("vmm register numbers against VM_REG_LAST (49 on amd64)", () => {
  it("VM_GET_REGISTER / VM_SET_REGISTER: 0 and 48 (TPR) are accepted, 49 and -1 are EINVAL", () => {
    const { vmm, fd, run } = setup();
    for (const name of ["VM_SET_REGISTER", "VM_GET_REGISTER"] as const) {
      expect(run(vmm.ioctl(fd, cmdOf(name), vcpuArg(name, 0, { regnum: 0, regval: 1n })))).toBe(0);
      expect(run(vmm.ioctl(fd, cmdOf(name), vcpuArg(name, 0, { regnum: 48, regval: 1n })))).toBe(0);
      expect(run(vmm.ioctl(fd, cmdOf(name), vcpuArg(name, 0, { regnum: 49, regval: 1n })))).toBe(EINVAL);
      expect(run(vmm.ioctl(fd, cmdOf(name), vcpuArg(name, 0, { regnum: -1, regval: 1n })))).toBe(EINVAL);
    }
  });

  it("VM_GET_REGISTER_SET / VM_SET_REGISTER_SET: a count of 49 is accepted, 50 is EINVAL", () => {
    const { vmm, fd, run } = setup();
    for (const name of ["VM_GET_REGISTER_SET", "VM_SET_REGISTER_SET"] as const) {
      expect(run(vmm.ioctl(fd, cmdOf(name), argBytes(name, { cpuid: 0, count: 49 })))).toBe(0);
      expect(run(vmm.ioctl(fd, cmdOf(name), argBytes(name, { cpuid: 0, count: 50 })))).toBe(EINVAL);
      expect(run(vmm.ioctl(fd, cmdOf(name), argBytes(name, { cpuid: 0, count: 0xffffffff })))).toBe(EINVAL);
    }
  });
});
