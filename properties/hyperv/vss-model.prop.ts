// Model-based test of VSS through host, kernel and the hv_vss_daemon model against a plain
// reference: whether the eligible filesystems are frozen, and the status every request must get
// (Linux 6.1 drivers/hv/hv_snapshot.c: FREEZE/THAW/HOT_BACKUP go to the daemon, HV_E_FAIL without
// one or on a timeout — 900 s for FREEZE, 30 s otherwise; GET_DM_INFO and other ops answered by
// the kernel; hv_vss_daemon vss_operate: a failed freeze thaws everything). Random sequences mix
// injected freeze failures, slow and late answers, crashes and restarts. Properties: every
// request answered exactly once, with the reference's status; the frozen state matches.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { rig, S, type Rig } from "../../specs/hyperv/helpers.ts";
import type { Directive, KernelProfile, VssOpName } from "../../sim/devices/hyperv/index.ts";
import { HV_E_FAIL } from "../../sim/wire/hyperv-constants.ts";

type Fate = "answer" | "slow" | "late" | "crash-before" | "crash-after";
interface Model {
  up: boolean;
  frozen: boolean;
  failFreeze: boolean;
}
interface Real {
  r: Rig;
  profile: KernelProfile;
  ids: number[];
}

const EIO = 5;
const toDaemon = new Set<VssOpName>(["freeze", "thaw", "hot-backup"]);

function expected(m: Model, op: VssOpName, fate: Fate, profile: KernelProfile): { status: number; flags?: number } {
  if (!toDaemon.has(op)) return op === "get-dm-info" ? { status: 0, flags: 0 } : { status: 0 };
  if (!m.up) return { status: HV_E_FAIL };
  const applied = fate !== "crash-before";
  let status = 0;
  if (applied && op === "freeze") {
    if (m.failFreeze) {
      m.frozen = false;
      status = HV_E_FAIL;
    } else m.frozen = true;
  }
  if (applied && op === "thaw") m.frozen = false;
  if (fate === "late" || fate === "crash-before" || fate === "crash-after") status = HV_E_FAIL;
  // A late answer: the kernel has timed the request out, so the daemon's write fails and it
  // reopens the device, thawing first when it froze (tools/hv/hv_vss_daemon.c 6.1: the write
  // failure at :347-349 jumps to reopen_vss_fd, :247-256 thaws while fs_frozen).
  if (fate === "late") m.frozen = false;
  if (fate === "crash-before" || fate === "crash-after") m.up = false;
  if (op === "hot-backup" && status === 0) return { status, flags: profile === "spec" ? 5 : 0 };
  return { status };
}

function directive(op: VssOpName, fate: Fate): Directive {
  const timeout = op === "freeze" ? 900 * S : 30 * S;
  switch (fate) {
    case "answer":
      return { do: "answer" };
    case "slow":
      return { do: "delay", ns: timeout - S };
    case "late":
      return { do: "delay", ns: timeout + S };
    default:
      return { do: fate };
  }
}

class Request implements fc.Command<Model, Real> {
  constructor(readonly op: VssOpName, readonly fate: Fate) {}
  check(): boolean {
    return true;
  }
  run(m: Model, real: Real): void {
    const goes = m.up && toDaemon.has(this.op);
    const fate = goes ? this.fate : "answer";
    if (fate !== "answer") real.r.vssd!.queue(directive(this.op, fate));
    const id = real.r.host.vss(this.op);
    real.ids.push(id);
    real.r.settle(2000 * S);
    const want = expected(m, this.op, fate, real.profile);
    const got = real.r.host.state.vss.answers.filter((a) => a.id === id);
    expect(got.length, `${this.op} answered ${got.length} times`).toBe(1);
    expect(got[0]!.status, `status of ${this.op} (${fate})`).toBe(want.status);
    if (want.flags !== undefined) expect(got[0]!.result.flags).toBe(want.flags);
    check(m, real);
  }
  toString(): string {
    return `${this.op}/${this.fate}`;
  }
}

class Crash implements fc.Command<Model, Real> {
  check(m: Readonly<Model>): boolean {
    return m.up;
  }
  run(m: Model, real: Real): void {
    real.r.vssd!.crash();
    real.r.settle(2000 * S);
    m.up = false;
    check(m, real);
  }
  toString(): string {
    return "crash";
  }
}

class Restart implements fc.Command<Model, Real> {
  check(m: Readonly<Model>): boolean {
    return !m.up;
  }
  run(m: Model, real: Real): void {
    real.r.vssd!.start();
    real.r.settle(2000 * S);
    m.up = true;
    expect(real.r.kernel.stateName("vss")).toBe("READY");
    check(m, real);
  }
  toString(): string {
    return "restart";
  }
}

class FailFreeze implements fc.Command<Model, Real> {
  constructor(readonly on: boolean) {}
  check(): boolean {
    return true;
  }
  run(m: Model, real: Real): void {
    real.r.vssd!.failAt("/data", this.on ? { freeze: EIO } : {});
    m.failFreeze = this.on;
  }
  toString(): string {
    return `failFreeze(${this.on})`;
  }
}

function check(m: Model, real: Real): void {
  const s = real.r.host.state.vss;
  expect(s.unexpected).toEqual([]);
  expect(new Set(s.answers.map((a) => a.id)).size).toBe(s.answers.length);
  for (const id of real.ids) expect(real.r.host.answer("vss", id), `request ${id} unanswered`).toBeDefined();
  expect(real.r.vssd!.state.frozen.length > 0, "frozen").toBe(m.frozen);
  if (m.frozen) expect([...real.r.vssd!.state.frozen].sort()).toEqual(["/dev/sda1", "/dev/sdb1"]);
}

const ops = fc.constantFrom<VssOpName>("freeze", "freeze", "thaw", "thaw", "hot-backup", "get-dm-info", "create", "bu-complete");
const fates = fc.constantFrom<Fate>("answer", "answer", "answer", "slow", "late", "crash-before", "crash-after");
const commands = fc.commands(
  [
    fc.tuple(ops, fates).map(([o, f]) => new Request(o, f)),
    fc.tuple(ops, fates).map(([o, f]) => new Request(o, f)),
    fc.constant(new Crash()),
    fc.constant(new Restart()),
    fc.boolean().map((b) => new FailFreeze(b)),
  ],
  { maxCommands: 20 },
);

describe("VSS model-based property", () => {
  for (const profile of ["linux-6.1", "spec"] as const) {
    it(`${profile}: every request answered once with the reference status; frozen state matches`, () => {
      fc.assert(
        fc.property(commands, (cmds) => {
          const r = rig({ profile, kvpDaemon: false });
          r.host.negotiate("vss");
          r.settle();
          const real: Real = { r, profile, ids: [] };
          const model: Model = { up: true, frozen: false, failFreeze: false };
          fc.modelRun(() => ({ model, real }), cmds);
        }),
        { numRuns: process.env.HVSIM_LONG ? 300 : 50 },
      );
    });
  }
});
