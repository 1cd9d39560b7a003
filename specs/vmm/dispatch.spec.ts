// Per-VM ioctl dispatch and locking, after vmmdev_ioctl in freebsd-src sys/dev/vmm/vmm_dev.c:
// table lookup (ENOTTY), memsegs lock (X for XLOCK, else S for SLOCK), vcpuid from the first int,
// -1 only with MAYBE_ALLOC_VCPU, vm_alloc_vcpu's range and dying checks (EINVAL), LOCK_ONE waits
// for its vCPU, LOCK_ALL freezes vCPUs in order and rolls back on failure, release order memsegs
// then vCPUs. Waiting is a clock event in the model: checked through the trace and pending events.
import { describe, expect, it } from "vitest";
import { EBUSY, EEXIST, EINVAL, ENOTTY, EPERM } from "../../sim/devices/vmm/errno.ts";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import type { TraceRecord } from "../../sim/clock/trace.ts";
import type { Cred } from "../../sim/devices/vmm/model.ts";
import { drain, errnoOf, fdOf, settle, vmmBench } from "./helpers.ts";

function setup(config = {}, cred?: Cred) {
  const { bench, vmm } = vmmBench(config);
  const ctl = fdOf(vmm.open("/dev/vmmctl", "rw"));
  expect(errnoOf(vmm.createVm(ctl, "vm0"))).toBe(0);
  const fd = fdOf(vmm.open("/dev/vmm/vm0", "rw", 1, cred));
  const vm = () => Object.values(vmm.state.vms)[0]!;
  const records: TraceRecord[] = [];
  bench.clock.trace.listen((r) => records.push(r));
  const io = (name: string, arg: Uint8Array, opts: { caller?: string; durationNs?: number } = {}) => vmm.ioctl(fd, cmdOf(name), arg, opts);
  const vmmEvents = (what: string) => records.filter((r) => r.type === "vmm" && r.fields[1] === what);
  return { bench, vmm, ctl, fd, vm, io, records, vmmEvents };
}

const memseg = (segid: number, len: bigint) => argBytes("VM_ALLOC_MEMSEG", { segid, len });

describe("command lookup", () => {
  it("an unknown command on a VM is ENOTTY", () => {
    const { vmm, fd } = setup();
    expect(errnoOf(vmm.ioctl(fd, 0xc0107699, new Uint8Array(16)))).toBe(ENOTTY);
    expect(errnoOf(vmm.ioctl(fd, 0x80047601, new Uint8Array(4)))).toBe(ENOTTY);
  });

  it("PRIV_CHECK_DRIVER commands need the privilege (EPERM): a jailed root (allow.vmm) lacks PRIV_DRIVER", () => {
    // vmmdev_ioctl: priv_check(td, PRIV_DRIVER) for VMMDEV_IOCTL_PRIV_CHECK_DRIVER entries;
    // prison_priv_check (kern_jail.c) does not grant PRIV_DRIVER inside a jail.
    const { io, bench, vmm } = setup({}, { uid: 0, jail: { allowVmm: true } });
    expect(errnoOf(io("VM_BIND_PPTDEV", argBytes("VM_BIND_PPTDEV")))).toBe(EPERM);
    const ok = setup();
    expect(settle(ok.bench, ok.vmm, ok.io("VM_BIND_PPTDEV", argBytes("VM_BIND_PPTDEV"))).errno).toBe(0);
    expect(bench.clock.pending + Object.keys(vmm.state.ops).length).toBe(0);
  });

  it("BHYVE_SNAPSHOT commands exist only with the option", () => {
    const off = setup();
    expect(errnoOf(off.io("VM_SNAPSHOT_REQ", argBytes("VM_SNAPSHOT_REQ")))).toBe(ENOTTY);
    const on = setup({ bhyveSnapshot: true });
    expect(settle(on.bench, on.vmm, on.io("VM_SNAPSHOT_REQ", argBytes("VM_SNAPSHOT_REQ"))).errno).toBe(0);
  });
});

describe("the vCPU id argument", () => {
  it("-1 is EINVAL for LOCK_ONE commands", () => {
    const { io, vm } = setup();
    expect(errnoOf(io("VM_SET_REGISTER", vcpuArg("VM_SET_REGISTER", -1)))).toBe(EINVAL);
    expect(errnoOf(io("VM_RUN", vcpuArg("VM_RUN", -1)))).toBe(EINVAL);
    expect(vm().vcpus).toEqual({});
  });

  it("-1 with MAYBE_ALLOC_VCPU means all vCPUs and allocates none", () => {
    const { io, vm, bench, vmm } = setup();
    expect(settle(bench, vmm, io("VM_ACTIVATE_CPU", vcpuArg("VM_ACTIVATE_CPU", 2))).errno).toBe(0);
    expect(settle(bench, vmm, io("VM_SUSPEND_CPU", vcpuArg("VM_SUSPEND_CPU", -1))).errno).toBe(0);
    expect(vm().debug).toEqual([2]);
    expect(Object.keys(vm().vcpus)).toEqual(["2"]);
    expect(settle(bench, vmm, io("VM_RESUME_CPU", vcpuArg("VM_RESUME_CPU", -1))).errno).toBe(0);
    expect(vm().debug).toEqual([]);
  });

  it("outside [0, maxcpus) is EINVAL", () => {
    const { io, vm } = setup({ maxcpus: 4 });
    for (const id of [4, 5, -2, 0x7fffffff]) expect(errnoOf(io("VM_GET_REGISTER", vcpuArg("VM_GET_REGISTER", id))), String(id)).toBe(EINVAL);
    expect(errnoOf(io("VM_SUSPEND_CPU", vcpuArg("VM_SUSPEND_CPU", 4)))).toBe(EINVAL);
    expect(vm().vcpus).toEqual({});
  });

  it("is EINVAL for a new vCPU once creation is disabled (a dying VM); existing vCPUs still work", () => {
    const { io, vm, bench, vmm } = setup();
    expect(settle(bench, vmm, io("VM_SET_REGISTER", vcpuArg("VM_SET_REGISTER", 0))).errno).toBe(0);
    vm().vcpuCreationDisabled = true; // what vmmdev_destroy's vm_disable_vcpu_creation sets
    expect(errnoOf(io("VM_SET_REGISTER", vcpuArg("VM_SET_REGISTER", 1)))).toBe(EINVAL);
    expect(settle(bench, vmm, io("VM_SET_REGISTER", vcpuArg("VM_SET_REGISTER", 0))).errno).toBe(0);
  });

  it("allocates vCPUs lazily, on first use by a command that names one", () => {
    const { io, vm, bench, vmm } = setup();
    settle(bench, vmm, io("VM_ALLOC_MEMSEG", memseg(0, 1n << 20n))); // LOCK_ALL: allocates nothing
    settle(bench, vmm, io("VM_GET_TOPOLOGY", argBytes("VM_GET_TOPOLOGY")));
    expect(vm().vcpus).toEqual({});
    settle(bench, vmm, io("VM_RUN", vcpuArg("VM_RUN", 3)));
    expect(Object.keys(vm().vcpus)).toEqual(["3"]);
    expect(vm().vcpus["3"]!.allocatedCmd).toBe("VM_RUN");
    settle(bench, vmm, io("VM_GET_REGISTER", vcpuArg("VM_GET_REGISTER", 3)));
    expect(vmm.state.stats.vcpuAllocs).toBe(1);
  });
});

describe("locks and waits on the virtual clock", () => {
  it("LOCK_ONE waits while another caller has the vCPU frozen, and is woken by a clock event", () => {
    const { io, bench, vmm, vmmEvents, records } = setup();
    const set = io("VM_SET_REGISTER", vcpuArg("VM_SET_REGISTER", 1, { regnum: 3, regval: 0x1234n }), { caller: "t1", durationNs: 1000 });
    const get = io("VM_GET_REGISTER", vcpuArg("VM_GET_REGISTER", 1, { regnum: 3 }), { caller: "t2", durationNs: 500 });
    expect(set.status).toBe("pending");
    expect(get.status).toBe("pending");
    const op2 = (get as { op: number }).op;
    expect(vmm.state.ops[String(op2)]!.waitOn).toBe("vcpu:1");
    expect(vmmEvents("wait").map((r) => r.fields.slice(2))).toEqual([[op2, "vcpu:1"]]);
    expect(vmm.state.busy).toEqual({ t1: 1, t2: 2 });
    drain(bench);
    const wake = records.find((r) => r.type === "event" && r.fields[1] === "wake");
    expect(wake?.at).toBe(1000);
    expect(wake?.fields[3]).toEqual({ op: op2 });
    const res = vmm.takeResult(op2)!;
    expect(res.at).toBe(1500);
    expect(res.errno).toBe(0);
    expect(Buffer.from(res.out, "hex").readBigUInt64LE(8)).toBe(0x1234n);
    expect(vmm.state.busy).toEqual({});
  });

  it("a busy named caller cannot issue a second ioctl", () => {
    const { io } = setup();
    io("VM_RUN", vcpuArg("VM_RUN", 0), { caller: "vcpu0" });
    expect(() => io("VM_RUN", vcpuArg("VM_RUN", 0), { caller: "vcpu0" })).toThrow(/in flight/);
  });

  it("XLOCK_MEMSEGS excludes shared holders; shared holders run together", () => {
    const { io, bench, vmm } = setup();
    const g1 = io("VM_GET_MEMSEG", argBytes("VM_GET_MEMSEG"), { durationNs: 1000 }) as { op: number };
    const g2 = io("VM_GET_MEMSEG", argBytes("VM_GET_MEMSEG"), { durationNs: 1000 }) as { op: number };
    const x = io("VM_ALLOC_MEMSEG", memseg(0, 4096n), { durationNs: 1000 }) as { op: number };
    const g3 = io("VM_GET_MEMSEG", argBytes("VM_GET_MEMSEG"), { durationNs: 1000 }) as { op: number };
    const vm = Object.values(vmm.state.vms)[0]!;
    expect(vm.memS).toEqual([g1.op, g2.op]);
    expect(vmm.state.ops[String(x.op)]!.waitOn).toBe("mem");
    // a new shared locker queues behind the waiting exclusive one
    expect(vmm.state.ops[String(g3.op)]!.waitOn).toBe("mem");
    drain(bench);
    const at = (o: { op: number }) => vmm.takeResult(o.op)!.at;
    expect([at(g1), at(g2), at(x), at(g3)]).toEqual([1000, 1000, 2000, 3000]);
  });

  it("LOCK_ALL freezes vCPUs 0..maxcpus-1 in order, waiting at the first busy one", () => {
    const { io, bench, vmm, vm } = setup();
    for (const c of [0, 1, 2]) settle(bench, vmm, io("VM_ACTIVATE_CPU", vcpuArg("VM_ACTIVATE_CPU", c)));
    const t0 = bench.clock.now;
    const run = io("VM_RUN", vcpuArg("VM_RUN", 1), { durationNs: 5000 }) as { op: number };
    expect(vm().vcpus["1"]!.state).toBe("running");
    const all = io("VM_ALLOC_MEMSEG", memseg(0, 8192n), { durationNs: 100 }) as { op: number };
    const op = vmm.state.ops[String(all.op)]!;
    expect(op.heldVcpus).toEqual([0]);
    expect(op.waitOn).toBe("vcpu:1");
    expect(vm().memX).toBe(all.op);
    // vCPU creation waits while LOCK_ALL holds vcpus_init_lock
    const fresh = io("VM_SET_REGISTER", vcpuArg("VM_SET_REGISTER", 3), { durationNs: 10 }) as { op: number };
    expect(vmm.state.ops[String(fresh.op)]!.waitOn).toBe("init");
    expect(vm().vcpus["3"]).toBeUndefined();
    bench.clock.runUntil(t0 + 5000);
    expect(vmm.takeResult(run.op)?.errno).toBe(0);
    expect(vmm.state.ops[String(all.op)]!.heldVcpus).toEqual([0, 1, 2]);
    drain(bench);
    expect(vmm.takeResult(all.op)).toMatchObject({ errno: 0, at: t0 + 5100 });
    expect(vmm.takeResult(fresh.op)).toMatchObject({ errno: 0, at: t0 + 5110 });
    expect(vm().segs).toEqual({ "0": { len: "8192", sysmem: true } });
  });

  it("LOCK_ALL rolls back the vCPUs it froze when freezing one fails", () => {
    const { io, bench, vmm, vm } = setup({ faultFreezeVcpu: 2 });
    for (const c of [0, 1, 2, 3]) settle(bench, vmm, io("VM_SET_REGISTER", vcpuArg("VM_SET_REGISTER", c)));
    const r = settle(bench, vmm, io("VM_ALLOC_MEMSEG", memseg(0, 4096n)));
    expect(r.errno).toBe(EBUSY);
    expect(Object.values(vm().vcpus).map((v) => v.state)).toEqual(["idle", "idle", "idle", "idle"]);
    expect(vm().memX).toBe(-1);
    expect(vm().initS).toEqual([]);
    expect(vm().segs).toEqual({});
  });

  it("releases memsegs before the vCPUs (wake-ups in that order)", () => {
    const { io, bench, vmm, records } = setup();
    settle(bench, vmm, io("VM_SET_REGISTER", vcpuArg("VM_SET_REGISTER", 0)));
    const x = io("VM_ALLOC_MEMSEG", memseg(0, 4096n), { durationNs: 100 }) as { op: number };
    const vcpuWaiter = io("VM_SET_REGISTER", vcpuArg("VM_SET_REGISTER", 0)) as { op: number };
    const memWaiter = io("VM_GET_MEMSEG", argBytes("VM_GET_MEMSEG")) as { op: number };
    expect(vmm.state.ops[String(vcpuWaiter.op)]!.waitOn).toBe("vcpu:0");
    expect(vmm.state.ops[String(memWaiter.op)]!.waitOn).toBe("mem");
    drain(bench);
    const wakes = records.filter((r) => r.type === "event" && r.fields[1] === "wake").map((r) => (r.fields[3] as { op: number }).op);
    expect(wakes).toEqual([memWaiter.op, vcpuWaiter.op]);
    expect(vmm.takeResult(x.op)?.errno).toBe(0);
  });

  it("a failed LOCK_ALL returns through lockfail, releasing the memsegs lock it took", () => {
    const { io, bench, vmm, vm } = setup({ faultFreezeVcpu: 0 });
    settle(bench, vmm, io("VM_RUN", vcpuArg("VM_RUN", 0)));
    const x = io("VM_MMAP_MEMSEG", argBytes("VM_MMAP_MEMSEG"));
    const g = io("VM_GET_MEMSEG", argBytes("VM_GET_MEMSEG"));
    expect(settle(bench, vmm, x).errno).toBe(EBUSY);
    expect(settle(bench, vmm, g).errno).toBe(0);
    expect(vm().memX).toBe(-1);
    expect(vm().memS).toEqual([]);
    expect(bench.clock.pending).toBe(0);
    expect(vmm.invariants()).toEqual([]);
  });
});

describe("command effects", () => {
  it("VM_ALLOC_MEMSEG: EEXIST for the same segment again, EINVAL for another length or a bad one", () => {
    const { io, bench, vmm } = setup();
    expect(settle(bench, vmm, io("VM_ALLOC_MEMSEG", memseg(0, 1n << 20n))).errno).toBe(0);
    expect(settle(bench, vmm, io("VM_ALLOC_MEMSEG", memseg(0, 1n << 20n))).errno).toBe(EEXIST);
    expect(settle(bench, vmm, io("VM_ALLOC_MEMSEG", memseg(0, 2n << 20n))).errno).toBe(EINVAL);
    expect(settle(bench, vmm, io("VM_ALLOC_MEMSEG", memseg(1, 100n))).errno).toBe(EINVAL);
    expect(settle(bench, vmm, io("VM_ALLOC_MEMSEG", memseg(1, 0n))).errno).toBe(EINVAL);
    expect(settle(bench, vmm, io("VM_ALLOC_MEMSEG", memseg(99, 4096n))).errno).toBe(EINVAL);
    const got = settle(bench, vmm, io("VM_GET_MEMSEG", argBytes("VM_GET_MEMSEG", { segid: 0 })));
    expect(Buffer.from(got.out, "hex").readBigUInt64LE(8)).toBe(1n << 20n);
  });

  it("VM_REINIT keeps guest memory and needs every active vCPU suspended (EBUSY otherwise)", () => {
    const { io, bench, vmm, vm } = setup();
    settle(bench, vmm, io("VM_ALLOC_MEMSEG", memseg(0, 1n << 20n)));
    settle(bench, vmm, io("VM_ACTIVATE_CPU", vcpuArg("VM_ACTIVATE_CPU", 0)));
    expect(settle(bench, vmm, io("VM_ACTIVATE_CPU", vcpuArg("VM_ACTIVATE_CPU", 0))).errno).toBe(EBUSY);
    expect(settle(bench, vmm, io("VM_REINIT", argBytes("VM_REINIT"))).errno).toBe(EBUSY);
    expect(settle(bench, vmm, io("VM_SUSPEND", argBytes("VM_SUSPEND", { how: 1 }))).errno).toBe(0);
    expect(settle(bench, vmm, io("VM_SUSPEND", argBytes("VM_SUSPEND", { how: 1 }))).errno).toBe(37); // EALREADY
    expect(settle(bench, vmm, io("VM_REINIT", argBytes("VM_REINIT"))).errno).toBe(0);
    expect(vm().segs).toEqual({ "0": { len: String(1 << 20), sysmem: true } });
    expect(vm().active).toEqual([]);
    expect(settle(bench, vmm, io("VM_SUSPEND", argBytes("VM_SUSPEND", { how: 0 }))).errno).toBe(EINVAL);
  });

  it("VM_SET_TOPOLOGY refuses more CPUs than maxcpus; VM_GET_TOPOLOGY copies out", () => {
    const { io, bench, vmm } = setup({ maxcpus: 4 });
    expect(settle(bench, vmm, io("VM_SET_TOPOLOGY", argBytes("VM_SET_TOPOLOGY", { sockets: 2, cores: 2, threads: 2 }))).errno).toBe(EINVAL);
    expect(settle(bench, vmm, io("VM_SET_TOPOLOGY", argBytes("VM_SET_TOPOLOGY", { sockets: 1, cores: 2, threads: 2 }))).errno).toBe(0);
    const t = settle(bench, vmm, io("VM_GET_TOPOLOGY", argBytes("VM_GET_TOPOLOGY")));
    expect(t.out).toBe("0100020002000400");
  });

  it("VM_GET_CPUS checks the set size (ERANGE) and which set (EINVAL)", () => {
    const { io, bench, vmm } = setup();
    expect(settle(bench, vmm, io("VM_GET_CPUS", argBytes("VM_GET_CPUS", { which: 0, cpusetsize: 0 }))).errno).toBe(34);
    expect(settle(bench, vmm, io("VM_GET_CPUS", argBytes("VM_GET_CPUS", { which: 0, cpusetsize: 129 }))).errno).toBe(34);
    expect(settle(bench, vmm, io("VM_GET_CPUS", argBytes("VM_GET_CPUS", { which: 3, cpusetsize: 8 }))).errno).toBe(EINVAL);
    expect(settle(bench, vmm, io("VM_GET_CPUS", argBytes("VM_GET_CPUS", { which: 1, cpusetsize: 8 }))).errno).toBe(0);
  });

  it("VM_RUN returns early when the VM is destroyed under it", () => {
    const { io, bench, vmm, ctl } = setup();
    const run = io("VM_RUN", vcpuArg("VM_RUN", 0), { durationNs: 1_000_000 }) as { op: number };
    bench.clock.runUntil(10);
    const d = vmm.destroyVm(ctl, "vm0") as { op: number };
    drain(bench);
    expect(vmm.takeResult(run.op)).toMatchObject({ errno: 0, at: 10 });
    expect(vmm.takeResult(d.op)).toMatchObject({ errno: 0, at: 10 });
  });
});
