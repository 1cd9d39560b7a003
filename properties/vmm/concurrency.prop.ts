// Concurrency of per-VM ioctls on the virtual clock: several callers issue real commands (with
// their upstream lock flags) at arbitrary times, with arbitrary vCPU ids and durations.
// Properties, for every interleaving:
//  - invariants(state) hold after every issue and every clock event: a vCPU is never frozen by two
//    callers, the memsegs lock is never held shared and exclusive at once, every sleeping op sits
//    in exactly the queue it names and every other op has an event pending (no lost wake-up);
//  - no deadlock and no lost wake-up: once the clock runs dry, every issued ioctl has completed;
//  - vCPUs are allocated only on first use: each vCPU that exists was named (in range) by an
//    issued command that allocates, and was allocated exactly once.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { allIoctls, ALLOC_VCPU, LOCK_ONE_VCPU, MAYBE_ALLOC_VCPU } from "../../sim/devices/vmm/table.ts";
import { argBytes, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { invariants } from "../../sim/devices/vmm/model.ts";
import { errnoOf, fdOf, vmmBench } from "../../specs/vmm/helpers.ts";
import type { Bench } from "../../sim/machine/bench.ts";
import type { VmmDevice } from "../../sim/devices/vmm/vmm.ts";

/** Runs per property: more with HVSIM_LONG=1 (npm run test:long). */
const RUNS = (n: number) => (process.env.HVSIM_LONG ? n * 20 : n);

const COMMANDS = allIoctls().filter((d) => d.option !== "BHYVE_SNAPSHOT" && d.name !== "VM_GET_CPUS");
const NEEDS_VCPU = LOCK_ONE_VCPU | ALLOC_VCPU | MAYBE_ALLOC_VCPU;

type Action =
  | { kind: "ioctl"; caller: number; cmd: number; vcpuid: number; durationNs: number }
  | { kind: "step"; ns: number }
  | { kind: "destroy" };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("ioctl" as const), caller: fc.nat(5), cmd: fc.nat(COMMANDS.length - 1), vcpuid: fc.integer({ min: -2, max: 5 }), durationNs: fc.integer({ min: 0, max: 3000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("step" as const), ns: fc.integer({ min: 0, max: 4000 }) }) },
  // destroy the VM with ioctls in flight (it drains them), then create it again and reopen it
  { weight: 1, arbitrary: fc.constant({ kind: "destroy" as const }) },
);

function check(vmm: VmmDevice): void {
  const bad = invariants(vmm.state);
  if (bad.length) throw new Error(`invariants broken: ${bad.join("; ")}`);
}

/** Runs the clock to `t`, one event time at a time, checking the invariants after each. */
function runChecked(bench: Bench, vmm: VmmDevice, t: number): void {
  while (bench.clock.nextAt !== undefined && bench.clock.nextAt <= t) {
    bench.clock.runNext();
    check(vmm);
  }
  bench.clock.runUntil(t);
}

function argFor(name: string, vcpuid: number, first: boolean): Uint8Array {
  if (name === "VM_ALLOC_MEMSEG") return argBytes(name, { segid: 0, len: 4096n });
  const d = COMMANDS.find((x) => x.name === name)!;
  if (!d.arg) return argBytes(name);
  return first ? vcpuArg(name, vcpuid) : argBytes(name);
}

describe("vmm ioctls under arbitrary interleavings", () => {
  it("keep the invariants, never deadlock or lose a wake-up, allocate vCPUs on first use only", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(action, { minLength: 1, maxLength: 40 }), (maxcpus, actions) => {
        const { bench, vmm } = vmmBench({ maxcpus, ioctlNs: 500 });
        const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
        expect(errnoOf(vmm.createVm(ctl, "prop"))).toBe(0);
        let fd = fdOf(vmm.open("/dev/vmm/prop", "rw"));
        const allocs: string[] = [];
        bench.clock.trace.listen((r) => {
          if (r.type === "vmm" && r.fields[1] === "vcpu-alloc") allocs.push(`${String(r.fields[2])}:${String(r.fields[3])}`);
        });
        const vmId = () => Object.values(vmm.state.vms).find((v) => v.name === "prop")?.id ?? -1;
        let current = vmId();
        const issued: { op?: number; name: string; vcpuid: number; vm: number }[] = [];
        for (const a of actions) {
          if (a.kind === "step") {
            runChecked(bench, vmm, bench.clock.now + a.ns);
            continue;
          }
          if (a.kind === "destroy") {
            const d = vmm.destroyVm(ctl, "prop");
            check(vmm);
            while (d.status === "pending" && vmm.state.ops[String(d.op)] !== undefined) {
              if (bench.clock.nextAt === undefined) throw new Error("the destroy waits but nothing is scheduled (lost wake-up)");
              bench.clock.runNext();
              check(vmm);
            }
            expect(vmm.state.vms).toEqual({});
            expect(errnoOf(vmm.createVm(ctl, "prop"))).toBe(0);
            expect(vmm.close(fd)).toBe(0);
            fd = fdOf(vmm.open("/dev/vmm/prop", "rw"));
            current = vmId();
            continue;
          }
          const caller = `t${a.caller}`;
          if (vmm.state.busy[caller] !== undefined) continue; // that thread is blocked in the kernel
          const d = COMMANDS[a.cmd]!;
          const r = vmm.ioctl(fd, d.cmd, argFor(d.name, a.vcpuid, (d.flags & NEEDS_VCPU) !== 0), { caller, durationNs: a.durationNs });
          issued.push({ op: r.status === "pending" ? r.op : undefined, name: d.name, vcpuid: (d.flags & NEEDS_VCPU) !== 0 ? a.vcpuid : -1, vm: current });
          check(vmm);
        }
        let guard = 0;
        while (bench.clock.nextAt !== undefined) {
          if (++guard > 100_000) throw new Error("the clock never went quiet");
          bench.clock.runNext();
          check(vmm);
        }
        // Everything issued has completed: no deadlock, no lost wake-up.
        expect(vmm.state.ops).toEqual({});
        expect(vmm.state.busy).toEqual({});
        for (const i of issued) if (i.op !== undefined) expect(vmm.result(i.op), `op ${i.op} ${i.name}`).toBeDefined();
        // vCPUs only on first use.
        const vm = Object.values(vmm.state.vms)[0]!;
        const named = new Set(issued.filter((i) => i.vm === vm.id && i.vcpuid >= 0 && i.vcpuid < maxcpus).map((i) => i.vcpuid));
        for (const v of Object.values(vm.vcpus)) {
          expect(named.has(v.id), `vCPU ${v.id} allocated without being named`).toBe(true);
          expect(v.state).toBe("idle");
        }
        expect(new Set(allocs).size, "a vCPU allocated twice").toBe(allocs.length);
        expect(vm.memX).toBe(-1);
        expect(vm.memS).toEqual([]);
        expect(vm.initS).toEqual([]);
      }),
      { numRuns: RUNS(300), seed: 20261122 },
    );
  });
});
