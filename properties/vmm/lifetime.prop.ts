// Descriptor-tied lifetime (VMMCTL_CREATE_DESTROY_ON_CLOSE, freebsd-src main vmm_dev.c) under
// arbitrary process and descriptor activity: spawn, fork, exit, open, close, create (with or
// without the flag), destroy, long ioctls and clock steps. Properties:
//  - no VM created with the flag outlives the descriptor that created it: at every point
//    (invariants) no live flagged VM's creating file is closed, and once the clock has drained,
//    every flagged VM has its creating file open; when every process has exited, exactly the VMs
//    created without the flag (and not destroyed by name) are left;
//  - reboot keeps memory: with the parent/child split (the parent holds the creating descriptor
//    and forks a child per boot), any number of child runs and exits (with arbitrary ioctls in
//    flight) leave the same VM with the same memory segments.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import { VMMCTL_CREATE_DESTROY_ON_CLOSE } from "../../sim/devices/vmm/ctl.ts";
import { invariants } from "../../sim/devices/vmm/model.ts";
import { drain, errnoOf, fdOf, settle, vmmBench } from "../../specs/vmm/helpers.ts";

/** Runs per property: more with HVSIM_LONG=1 (npm run test:long). */
const RUNS = (n: number) => (process.env.HVSIM_LONG ? n * 20 : n);

const NAMES = ["a", "b", "c"];

type Act =
  | { k: "spawn" }
  | { k: "fork"; p: number }
  | { k: "exit"; p: number }
  | { k: "openctl"; p: number }
  | { k: "openvm"; p: number; n: number }
  | { k: "close"; p: number; f: number }
  | { k: "create"; p: number; f: number; n: number; tied: boolean }
  | { k: "destroy"; p: number; f: number; n: number }
  | { k: "run"; p: number; f: number; c: number; d: number }
  | { k: "step"; ns: number };

const actArb: fc.Arbitrary<Act> = fc.oneof(
  fc.constant({ k: "spawn" as const }),
  fc.record({ k: fc.constant("fork" as const), p: fc.nat(9) }),
  fc.record({ k: fc.constant("exit" as const), p: fc.nat(9) }),
  fc.record({ k: fc.constant("openctl" as const), p: fc.nat(9) }),
  fc.record({ k: fc.constant("openvm" as const), p: fc.nat(9), n: fc.nat(NAMES.length - 1) }),
  fc.record({ k: fc.constant("close" as const), p: fc.nat(9), f: fc.nat(9) }),
  fc.record({ k: fc.constant("create" as const), p: fc.nat(9), f: fc.nat(9), n: fc.nat(NAMES.length - 1), tied: fc.boolean() }),
  fc.record({ k: fc.constant("destroy" as const), p: fc.nat(9), f: fc.nat(9), n: fc.nat(NAMES.length - 1) }),
  fc.record({ k: fc.constant("run" as const), p: fc.nat(9), f: fc.nat(9), c: fc.nat(2), d: fc.nat(5000) }),
  fc.record({ k: fc.constant("step" as const), ns: fc.nat(3000) }),
);

describe("descriptor-tied VM lifetime", () => {
  // vmmdev_create (freebsd-src main, sys/dev/vmm/vmm_dev.c): a VM created with
  // VMMCTL_CREATE_DESTROY_ON_CLOSE goes on priv->softcs and vmmctl_dtor destroys it at the
  // descriptor's last close; one created without the flag lives until VMMCTL_VM_DESTROY.
  it("no flagged VM outlives its descriptor; unflagged VMs outlive every close", () => {
    fc.assert(
      fc.property(fc.array(actArb, { minLength: 1, maxLength: 60 }), (acts) => {
        const { bench, vmm } = vmmBench({ maxcpus: 2 });
        const kept = new Set<string>();
        const pids = () => Object.keys(vmm.state.procs).map(Number).sort((a, b) => a - b);
        const pick = <T>(xs: T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);
        const fds = (pid: number) => Object.keys(vmm.state.procs[String(pid)]?.fds ?? {}).map(Number).sort((a, b) => a - b);
        for (const a of acts) {
          const pid = "p" in a ? pick(pids(), a.p) : undefined;
          switch (a.k) {
            case "spawn":
              vmm.spawn();
              break;
            case "fork":
              if (pid !== undefined) vmm.fork(pid);
              break;
            case "exit":
              if (pid !== undefined) vmm.exit(pid);
              break;
            case "openctl":
              if (pid !== undefined) vmm.open("/dev/vmmctl", "rw", pid);
              break;
            case "openvm":
              if (pid !== undefined) vmm.open(`/dev/vmm/${NAMES[a.n]}`, "rw", pid);
              break;
            case "close": {
              const fd = pid === undefined ? undefined : pick(fds(pid), a.f);
              if (fd !== undefined) expect(vmm.close(fd, pid)).toBe(0);
              break;
            }
            case "create":
            case "destroy": {
              const fd = pid === undefined ? undefined : pick(fds(pid), a.f);
              if (fd === undefined) break;
              if (a.k === "create") {
                const r = vmm.createVm(fd, NAMES[a.n]!, { pid, flags: a.tied ? VMMCTL_CREATE_DESTROY_ON_CLOSE : 0 });
                if (r.status === "done" && r.errno === 0 && !a.tied) kept.add(NAMES[a.n]!);
              } else {
                const r = vmm.destroyVm(fd, NAMES[a.n]!, { pid });
                // pending: the VM was found alive and is draining; its destruction cannot fail
                if (r.status === "pending" || r.errno === 0) kept.delete(NAMES[a.n]!);
              }
              break;
            }
            case "run": {
              const fd = pid === undefined ? undefined : pick(fds(pid), a.f);
              if (fd !== undefined) vmm.ioctl(fd, cmdOf("VM_RUN"), vcpuArg("VM_RUN", a.c), { pid, durationNs: a.d });
              break;
            }
            case "step":
              bench.clock.step(a.ns);
              break;
          }
          expect(invariants(vmm.state)).toEqual([]);
        }
        drain(bench);
        expect(invariants(vmm.state)).toEqual([]);
        for (const vm of Object.values(vmm.state.vms)) {
          if (vm.destroyOnClose) expect(vmm.state.files[String(vm.ownerFile)], `VM ${vm.name}`).toBeDefined();
        }
        for (const p of pids()) vmm.exit(p);
        drain(bench);
        expect(Object.values(vmm.state.vms).map((v) => v.name).sort()).toEqual([...kept].sort());
        expect(Object.values(vmm.state.vms).every((v) => !v.destroyOnClose && v.ownerFile === -1)).toBe(true);
        expect(vmm.state.files).toEqual({});
        expect(invariants(vmm.state)).toEqual([]);
      }),
      { numRuns: RUNS(300), seed: 11 },
    );
  });

  it("reboot keeps guest memory with the parent/child split", () => {
    const boot = fc.record({ runs: fc.array(fc.record({ c: fc.nat(1), d: fc.nat(4000) }), { maxLength: 4 }), stepBeforeExit: fc.nat(3000) });
    fc.assert(
      fc.property(fc.array(boot, { minLength: 1, maxLength: 6 }), (boots) => {
        const { bench, vmm } = vmmBench({ maxcpus: 2 });
        const parent = vmm.spawn();
        const ctl = fdOf(vmm.open("/dev/vmmctl", "rw", parent));
        expect(errnoOf(vmm.createVm(ctl, "guest", { pid: parent, flags: VMMCTL_CREATE_DESTROY_ON_CLOSE }))).toBe(0);
        const vfd = fdOf(vmm.open("/dev/vmm/guest", "rw", parent));
        expect(settle(bench, vmm, vmm.ioctl(vfd, cmdOf("VM_ALLOC_MEMSEG"), argBytes("VM_ALLOC_MEMSEG", { segid: 0, len: 1n << 20n }), { pid: parent })).errno).toBe(0);
        const vm = Object.values(vmm.state.vms)[0]!;
        const segs = JSON.stringify(vm.segs);
        for (const b of boots) {
          const child = vmm.fork(parent);
          b.runs.forEach((r, i) => vmm.ioctl(vfd, cmdOf("VM_RUN"), vcpuArg("VM_RUN", r.c), { pid: child, caller: `c${child}.${i}`, durationNs: r.d }));
          bench.clock.step(b.stepBeforeExit);
          vmm.exit(child); // guest reboot: the child exits with its ioctls possibly still in flight
          drain(bench);
          expect(settle(bench, vmm, vmm.ioctl(vfd, cmdOf("VM_REINIT"), argBytes("VM_REINIT"), { pid: parent })).errno).toBe(0);
          const now = Object.values(vmm.state.vms);
          expect(now.map((v) => v.id)).toEqual([vm.id]);
          expect(JSON.stringify(now[0]!.segs)).toBe(segs);
          expect(invariants(vmm.state)).toEqual([]);
        }
      }),
      { numRuns: RUNS(200), seed: 5 },
    );
  });
});
