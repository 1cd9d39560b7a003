// Fuzzing the vmm model with raw inputs: arbitrary command numbers (random words, real commands,
// real commands with a flipped bit) and arbitrary argument bytes on the vmmctl descriptor, a VM
// descriptor or a descriptor that is not open; and arbitrary CREATE/DESTROY argument bytes.
// Every outcome is an errno (or 0), never an exception, and the invariants hold throughout and
// after the clock has run everything to completion.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { allIoctls } from "../../sim/devices/vmm/table.ts";
import { vmmctlCommands } from "../../sim/devices/vmm/ctl.ts";
import { ERRNO_NAMES, EEXIST, EFAULT, EINVAL } from "../../sim/devices/vmm/errno.ts";
import { invariants } from "../../sim/devices/vmm/model.ts";
import { errnoOf, fdOf, vmmBench } from "../../specs/vmm/helpers.ts";

/** Runs per property: more with HVSIM_LONG=1 (npm run test:long). */
const RUNS = (n: number) => (process.env.HVSIM_LONG ? n * 20 : n);

const REAL = [...allIoctls().map((d) => d.cmd), vmmctlCommands().VMMCTL_VM_CREATE, vmmctlCommands().VMMCTL_VM_DESTROY];

const cmdArb = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.constantFrom(...REAL),
  fc.tuple(fc.constantFrom(...REAL), fc.nat(31)).map(([c, b]) => (c ^ (1 << b)) >>> 0),
);

const callArb = fc.record({
  target: fc.constantFrom("ctl", "vm", "closed"),
  cmd: cmdArb,
  arg: fc.uint8Array({ maxLength: 700 }),
  caller: fc.option(fc.nat(3), { nil: undefined }),
  durationNs: fc.nat(2000),
  step: fc.nat(1500),
});

function known(errno: number): boolean {
  return Object.hasOwn(ERRNO_NAMES, errno);
}

describe("fuzzed ioctls", () => {
  it("always yield an errno and keep the invariants", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(callArb, { minLength: 1, maxLength: 30 }), (bhyveSnapshot, calls) => {
        const { bench, vmm } = vmmBench({ maxcpus: 3, bhyveSnapshot });
        const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
        expect(errnoOf(vmm.createVm(ctl, "fz"))).toBe(0);
        const vfd = fdOf(vmm.open("/dev/vmm/fz", "rw"));
        for (const c of calls) {
          const fd = c.target === "ctl" ? ctl : c.target === "vm" ? vfd : 77;
          const caller = c.caller === undefined ? undefined : `f${c.caller}`;
          if (caller !== undefined && vmm.state.busy[caller] !== undefined) continue;
          const r = vmm.ioctl(fd, c.cmd, c.arg, { caller, durationNs: c.durationNs });
          if (r.status === "done") expect(known(r.errno), `errno ${r.errno}`).toBe(true);
          expect(invariants(vmm.state)).toEqual([]);
          bench.clock.step(c.step);
          expect(invariants(vmm.state)).toEqual([]);
        }
        let guard = 0;
        while (bench.clock.nextAt !== undefined) {
          if (++guard > 100_000) throw new Error("the clock never went quiet");
          bench.clock.runNext();
        }
        expect(invariants(vmm.state)).toEqual([]);
        expect(vmm.state.ops).toEqual({});
        for (const r of Object.values(vmm.state.results)) expect(known(r.errno), `errno ${r.errno}`).toBe(true);
      }),
      { numRuns: RUNS(300), seed: 42 },
    );
  });

  it("CREATE/DESTROY with arbitrary argument bytes yield only their errnos and cut names at 229", () => {
    const ctlCmds = vmmctlCommands();
    // Bytes biased towards printable names with slashes, dots, spaces and quotes.
    const nameByte = fc.oneof(fc.constantFrom(0x2f, 0x2e, 0x20, 0x22, 0x09, 0x61, 0x62, 0x00), fc.integer({ min: 0, max: 255 }));
    const argArb = fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.array(nameByte, { minLength: 296, maxLength: 296 }).map((a) => Uint8Array.from(a)));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), argArb), { minLength: 1, maxLength: 20 }), (ops) => {
        const { bench, vmm } = vmmBench();
        const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
        for (const [create, arg] of ops) {
          const before = Object.keys(vmm.state.vms).length;
          const r = vmm.ioctl(ctl, create ? ctlCmds.VMMCTL_VM_CREATE : ctlCmds.VMMCTL_VM_DESTROY, arg);
          expect(r.status).toBe("done"); // nothing is in flight on the VMs, so destroy does not wait
          const errno = (r as { errno: number }).errno;
          const allowed = create ? [0, EINVAL, EEXIST, EFAULT] : [0, EINVAL, EFAULT];
          expect(allowed, `errno ${errno}`).toContain(errno);
          if (arg.length < 296) expect(errno).toBe(EFAULT);
          if (create && errno === 0) {
            const z = arg.subarray(0, 229).indexOf(0);
            const want = Buffer.from(arg.subarray(0, z < 0 ? 229 : z)).toString("latin1");
            expect(Object.values(vmm.state.vms).some((v) => v.name === want)).toBe(true);
            expect(Object.keys(vmm.state.vms).length).toBe(before + 1);
          }
          expect(invariants(vmm.state)).toEqual([]);
        }
        expect(bench.clock.pending).toBe(0);
      }),
      { numRuns: RUNS(300), seed: 7 },
    );
  });
});
