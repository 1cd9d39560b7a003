// The `vmm` scenario steps: the example scenario passes (its expectations come from vmm_dev.c and
// prep_devname, see the YAML), a wrong expected errno fails at its step with expected/actual, and
// malformed steps are refused when the scenario is loaded.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseScenario, runScenario, runScenarioFile } from "../../sim/scenario/index.ts";

const file = join(import.meta.dirname, "..", "scenarios", "vmm-create-destroy.yaml");

function run(text: string) {
  const l = parseScenario(text, "inline.yaml");
  if (!l.ok) return { status: "invalid" as const, issues: l.issues };
  return runScenario(l.scenario);
}

const head = "name: t\nmachine: bhyve-host\nsteps:\n  - vmm: open\n    path: /dev/vmmctl\n    as: ctl\n";

describe("vmm scenario steps", () => {
  it("the example scenario passes, deterministically", () => {
    const a = runScenarioFile(file);
    const b = runScenarioFile(file);
    if (a.status !== "ok") throw new Error(JSON.stringify(a.status === "failed" ? a.failure : a.issues));
    expect(b.status === "ok" && b.traceHash).toBe(a.traceHash);
  });

  it("a wrong expected errno fails at that step", () => {
    const text = readFileSync(file, "utf8").replace("name: guest0\n    expect: EEXIST", "name: guest0\n    expect: EINVAL");
    const r = run(text);
    expect(r.status).toBe("failed");
    if (r.status === "failed") {
      expect(r.failure.expected).toBe("EINVAL");
      expect(r.failure.actual).toBe("EEXIST");
    }
  });

  it("checks copied-out values, process steps and the VM list", () => {
    const r = run(
      head +
        "  - vmm: spawn\n    as: p\n  - vmm: open\n    path: /dev/vmmctl\n    pid: $p\n    as: c2\n  - vmm: create\n    fd: $c2\n    pid: $p\n    name: v\n" +
        "  - vmm: fork\n    pid: $p\n    as: kid\n  - vmm: exit\n    pid: $kid\n  - vmm: open\n    path: /dev/vmm/v\n    as: vm\n" +
        "  - vmm: ioctl\n    fd: $vm\n    cmd: VM_GET_TOPOLOGY\n    copyout: { maxcpus: 4 }\n  - vmm: ioctl\n    fd: $vm\n    cmd: 0xc0107699\n    bytes: \"00\"\n    expect: EFAULT\n" +
        "  - vmm: close\n    fd: 99\n    expect: EBADF\n  - vmm: check\n    vms: [v]\n",
    );
    if (r.status !== "ok") throw new Error(JSON.stringify(r.status === "failed" ? r.failure : r.issues));
  });

  it("create passes flags: VMMCTL_CREATE_DESTROY_ON_CLOSE ties the VM to the descriptor, unknown bits are EINVAL", () => {
    // vmmdev_create (freebsd-src main sys/dev/vmm/vmm_dev.c): (flags & ~VMMCTL_FLAGS_MASK) != 0
    // -> EINVAL; flagged VMs are destroyed by vmmctl_dtor at the descriptor's last close.
    const r = run(
      head +
        "  - vmm: create\n    fd: $ctl\n    name: bad\n    flags: 2\n    expect: EINVAL\n" +
        "  - vmm: create\n    fd: $ctl\n    name: tied\n    flags: 1\n  - vmm: create\n    fd: $ctl\n    name: free\n" +
        "  - vmm: close\n    fd: $ctl\n  - vmm: check\n    vms: [free]\n",
    );
    if (r.status !== "ok") throw new Error(JSON.stringify(r.status === "failed" ? r.failure : r.issues));
    // credentials on open: vmmctl is root's, 0600 (vmmdev_init); a jail without allow.vmm is EPERM
    const c = run(
      "name: t\nmachine: bhyve-host\nsteps:\n  - vmm: open\n    path: /dev/vmmctl\n    uid: 1001\n    expect: EACCES\n" +
        "  - vmm: open\n    path: /dev/vmmctl\n    jail: { allowVmm: false }\n    expect: EPERM\n  - vmm: open\n    path: /dev/vmmctl\n    jail: { allowVmm: true }\n",
    );
    if (c.status !== "ok") throw new Error(JSON.stringify(c.status === "failed" ? c.failure : c.issues));
    // CREATE has 15 reserved words now (flags took the first)
    expect(parseScenario(head + "  - vmm: create\n    fd: $ctl\n    name: x\n    reserved: [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]\n", "x.yaml").ok).toBe(false);
  });

  it("refuses unknown actions and errno names when loading", () => {
    const bad1 = parseScenario(head + "  - vmm: explode\n", "x.yaml");
    expect(bad1.ok).toBe(false);
    const bad2 = parseScenario(head + "  - vmm: close\n    fd: $ctl\n    expect: ENOPE\n", "x.yaml");
    expect(bad2.ok).toBe(false);
  });

  it("refuses an unknown command when loading; a missing variable is a step error", () => {
    const r = run(head + "  - vmm: ioctl\n    fd: $ctl\n    cmd: VM_NOPE\n");
    expect(r.status === "invalid" && r.issues.map((i) => `${i.line}:${i.column}: ${i.message}`)).toEqual(["9:10: step 2 (vmm): steps[1].cmd: unknown vmm ioctl VM_NOPE"]);
    const r2 = run(head + "  - vmm: close\n    fd: $nothere\n");
    expect(r2.status === "failed" && r2.failure.message).toMatch(/nothere/);
  });
});
