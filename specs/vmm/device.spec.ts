// The vmm device's API around the model: completion listeners, configuration checks, and the
// argument builders used by tests and scenarios.
import { describe, expect, it } from "vitest";
import { Bench } from "../../sim/machine/bench.ts";
import { argBytes, ArgError, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { VmmApiError } from "../../sim/devices/vmm/model.ts";
import { drain, fdOf, vmmBench, vmmKinds } from "./helpers.ts";

describe("vmm device API", () => {
  it("calls completion listeners for ioctls that returned pending, until unsubscribed", () => {
    const { bench, vmm } = vmmBench();
    const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
    vmm.createVm(ctl, "l");
    const fd = fdOf(vmm.open("/dev/vmm/l", "rw"));
    const seen: string[] = [];
    const off = vmm.onComplete((r) => seen.push(`${r.name}:${r.errno}@${r.at}`));
    vmm.ioctl(fd, cmdOf("VM_RUN"), vcpuArg("VM_RUN", 0), { durationNs: 10 });
    drain(bench);
    off();
    vmm.ioctl(fd, cmdOf("VM_RUN"), vcpuArg("VM_RUN", 0), { durationNs: 10 });
    drain(bench);
    expect(seen).toEqual(["VM_RUN:0@10"]);
    expect(vmm.idle).toBe(true);
  });

  it("refuses bad configuration when the bench is built", () => {
    const build = (config: Record<string, unknown>) => new Bench({ name: "x", description: "", memory: 4096, devices: [{ type: "vmm", id: "vmm", config }] }, vmmKinds());
    expect(() => build({ maxcpus: 0 })).toThrow(/maxcpus/);
    expect(() => build({ ioctlNs: -1 })).toThrow(/ioctlNs/);
    expect(() => build({ durations: { VM_RUN: 1.5 } })).toThrow(/VM_RUN/);
    expect(() => build({ maxNameLen: 37 })).not.toThrow();
  });

  it("refuses API misuse (unknown process) with VmmApiError, not an errno", () => {
    const { vmm } = vmmBench();
    expect(() => vmm.open("/dev/vmmctl", "rw", 99)).toThrow(VmmApiError);
    expect(() => vmm.fork(99)).toThrow(VmmApiError);
  });

  it("builds argument bytes from member names", () => {
    const b = argBytes("VM_SET_REGISTER", { cpuid: -1, regnum: 2, regval: 0xffn });
    expect(Buffer.from(b).toString("hex")).toBe("ffffffff02000000ff00000000000000");
    expect(argBytes("VM_REINIT")).toEqual(new Uint8Array(8));
    expect(argBytes("VM_RTC_WRITE", { value: 0x1ff })[4]).toBe(0xff);
    expect(Buffer.from(argBytes("VM_SET_TOPOLOGY", { cores: 2 })).toString("hex")).toBe("0000020000000000");
    expect(() => argBytes("VM_NOPE")).toThrow(ArgError);
    expect(() => argBytes("VM_RUN", { nope: 1 })).toThrow(/no scalar member nope/);
    expect(() => argBytes("VM_REINIT", { x: 1 })).toThrow(ArgError);
    expect(() => vcpuArg("VM_REINIT", 0)).toThrow(ArgError);
    expect(() => cmdOf("VM_NOPE")).toThrow(ArgError);
  });
});
