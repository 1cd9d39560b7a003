// The vmm conformance checks (vmm.check.ts) can fail: each runs against a deliberately broken vmm
// (a wrapper target whose session swaps errnos) and must fail naming the step, while the model
// passes them all. The checks' golden errnos are upstream facts (cited in vmm.check.ts), not
// values read from the model.
import { describe, expect, it } from "vitest";
import { modelTarget } from "../../sim/conform/model-target.ts";
import { runConformance } from "../../sim/conform/runner.ts";
import type { Target } from "../../sim/conform/types.ts";
import type { VmmSession } from "../../sim/devices/vmm/session.ts";
import type { IoctlOutcome } from "../../sim/devices/vmm/model.ts";
import { EEXIST, EINVAL, ENOTTY } from "../../sim/devices/vmm/errno.ts";
import { checks } from "./vmm.check.ts";

type Swap = (errno: number, what: string) => number;

/** `s` with every errno it reports passed through `swap` (opens, closes, ioctls and their completions). */
function brokenSession(s: VmmSession, swap: Swap): VmmSession {
  const done = (r: IoctlOutcome, what: string): IoctlOutcome => (r.status === "done" ? { ...r, errno: swap(r.errno, what) } : r);
  return {
    ctl: s.ctl,
    open(path, mode, cred) {
      const r = s.open(path, mode, cred);
      return "fd" in r ? r : { errno: swap(r.errno, `open ${path}`) };
    },
    close: (fd) => swap(s.close(fd), "close"),
    ioctl: (fd, cmd, arg, o) => done(s.ioctl(fd, cmd, arg, o), "ioctl"),
    createVm: (fd, name, o) => done(s.createVm(fd, name, o), `create ${name}`),
    destroyVm: (fd, name, o) => done(s.destroyVm(fd, name, o), `destroy ${name}`),
    settle(r) {
      const res = s.settle(r);
      return { ...res, errno: r.status === "done" ? res.errno : swap(res.errno, "pending") };
    },
    quiesce: () => s.quiesce(),
    dispose: () => s.dispose(),
  };
}

function brokenTarget(swap: Swap): Target {
  const m = modelTarget();
  return { ...m, name: "broken-vmm", description: "the model with errnos swapped", openVmm: async (o) => brokenSession(await m.openVmm!(o), swap) };
}

describe("the vmm conformance checks", () => {
  it("there are checks in suite vmm, each needing the vmm capability and saying it runs on the model only", () => {
    expect(checks.length).toBeGreaterThanOrEqual(11);
    for (const c of checks) {
      expect(c.suite).toBe("vmm");
      expect(c.needs).toEqual(["vmm"]);
      expect(c.title).toMatch(/model only: no FreeBSD target exists here/);
    }
  });

  it("all pass on the model", async () => {
    const r = await runConformance([modelTarget()], checks, { seed: 0 });
    for (const x of r.targets[0]!.results) {
      expect(x.outcome.status, `${x.id}: ${x.outcome.status === "passed" ? "" : x.outcome.detail}`).toBe("passed");
      expect(x.outcome.status === "passed" && x.outcome.detail).toMatch(/^\d+ steps, .*(freebsd-src 012895d5|markjdb\/freebsd 03392358).*no FreeBSD target exists here/);
    }
  });

  it("each fails on a vmm whose errnos are all wrong, naming the step", async () => {
    // Every non-zero errno becomes another one: every golden non-zero step then mismatches.
    const t = brokenTarget((e) => (e === 0 ? 0 : e === EINVAL ? ENOTTY : EINVAL));
    const r = await runConformance([t], checks, { seed: 0 });
    for (const x of r.targets[0]!.results) {
      expect(x.outcome.status, x.id).toBe("failed");
      expect(x.outcome.status !== "skipped" && x.outcome.detail, x.id).toMatch(/^step "[^"]+": got E[A-Z]+, golden E[A-Z]+ \((freebsd-src 012895d5|markjdb\/freebsd 03392358)/);
    }
  });

  it("each fails on a vmm that reports success where the source has an error", async () => {
    const t = brokenTarget(() => 0);
    const r = await runConformance([t], checks, { seed: 0 });
    for (const x of r.targets[0]!.results) expect(x.outcome.status !== "skipped" && x.outcome.detail, x.id).toMatch(/^step "[^"]+": got 0, golden E[A-Z]+/);
  });

  it("one swapped errno (a duplicate name's EEXIST reported as EINVAL) fails the check at that step", async () => {
    const t = brokenTarget((e, what) => (e === EEXIST && what.startsWith("create") ? EINVAL : e));
    const c = checks.find((x) => x.id === "vmm/vmmctl-create-destroy")!;
    const o = await c.run({ target: t, model: modelTarget(), seed: 0 });
    expect(o).toMatchObject({ status: "failed" });
    expect(o.status === "failed" && o.detail).toMatch(/^step "create guest0 again": got EINVAL, golden EEXIST/);
  });

  it("a target without the vmm capability skips them as not applicable", async () => {
    const m = modelTarget();
    const t: Target = { ...m, name: "no-vmm", capabilities: new Set([...m.capabilities].filter((c) => c !== "vmm")) };
    const r = await runConformance([t], checks, { seed: 0 });
    for (const x of r.targets[0]!.results) expect(x.outcome).toMatchObject({ status: "skipped", applicable: false });
  });
});
