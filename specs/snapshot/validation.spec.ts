// Issue 16: a restore is all-or-nothing and validated. Each bad snapshot below is a valid one with
// one chunk's JSON edited and every checksum re-sealed by the container's own writer (rewrite), so
// only validation can refuse it. Each case is checked twice: in process, where the live bench
// (memory, device states, clock, interrupt lines, port claims, trace) must be byte-identical after
// the refused restore; and through the real CLI (`hvsim run` with a `restore:` step), which must
// exit 1 naming the chunk and the reason, with no stack trace.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { resolveMachine, scenarioKinds } from "../../sim/scenario/machines.ts";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";
import { type ChunkInput } from "../../sim/snapshot/container.ts";
import { argBytes, cmdOf, vcpuArg } from "../../sim/devices/vmm/args.ts";
import type { VmmDevice } from "../../sim/devices/vmm/vmm.ts";
import type { VmgenidDevice } from "../../sim/devices/vmgenid/vmgenid.ts";
import { benchState, json, rewrite, unjson } from "./helpers.ts";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "sim", "cli", "bin.mjs");

function machine(name: string): MachineSpec {
  const m = resolveMachine(name);
  if (!m) throw new Error(`no machine ${name}`);
  return m;
}

function bench(name: string, seed = 3): Bench {
  return new Bench(machine(name), scenarioKinds(), { seed });
}

/** benchState plus the port claims (a part-way restore can leave a claim behind). */
function liveState(b: Bench): string {
  return benchState(b) + JSON.stringify(b.ports.claims().map((r) => [r.owner, r.base, r.length]));
}

/** Edits the JSON of chunk `name` (re-sealed by the container writer). */
function editChunk(bytes: Uint8Array, name: string, edit: (v: any) => void): Uint8Array {
  let seen = false;
  const out = rewrite(bytes, (chunks: ChunkInput[]) =>
    chunks.map((c) => {
      if (c.name !== name) return c;
      seen = true;
      const v = unjson(c.parts[0]!);
      edit(v);
      return { ...c, parts: [json(v)] };
    }),
  );
  if (!seen) throw new Error(`no chunk ${name}`);
  return out;
}

// ---- the valid snapshots the bad ones are made from ----

/** q35 with vmgenid placed in memory, PMBASE 0x600 + ACPI_EN, TMR_EN set (an overflow event armed). */
function q35Busy(seed = 3): Bench {
  const b = bench("q35", seed);
  b.device<VmgenidDevice>("vmgenid").placeBlob(0x3000);
  // PCI config of 00:1f.0 through 0xcf8/0xcfc: PMBASE (0x40) = 0x601, ACPI_CNTL (0x44) = ACPI_EN.
  b.ports.out(0xcf8, 4, 0x8000f840);
  b.ports.out(0xcfc, 4, 0x601);
  b.ports.out(0xcf8, 4, 0x8000f844);
  b.ports.out(0xcfc, 1, 0x80);
  b.ports.out(0x600, 2, 0x0001); // clear TMR_STS (latched at reset): overflow_time moves on
  b.ports.out(0x602, 2, 0x0001); // PM1_EN = TMR_EN: the tmr-overflow event is armed
  b.clock.step(1_000_000);
  return b;
}

/** bhyve-host with a VM and ioctls in flight (one running to its finish event, others waiting). */
function vmmBusy(seed = 3): Bench {
  const b = bench("bhyve-host", seed);
  const vmm = b.device<VmmDevice>("vmm");
  const ctl = (vmm.open("/dev/vmmctl", "rw") as { fd: number }).fd;
  vmm.createVm(ctl, "v1");
  const fd = (vmm.open("/dev/vmm/v1", "rw") as { fd: number }).fd;
  vmm.ioctl(fd, cmdOf("VM_SET_REGISTER"), vcpuArg("VM_SET_REGISTER", 0, { regnum: 1, regval: 5n }), { caller: "a" });
  vmm.ioctl(fd, cmdOf("VM_ALLOC_MEMSEG"), argBytes("VM_ALLOC_MEMSEG", { segid: 0, len: 4096n }), { caller: "b" });
  vmm.ioctl(fd, cmdOf("VM_GET_REGISTER"), vcpuArg("VM_GET_REGISTER", 0, { regnum: 1 }), { caller: "c" });
  b.clock.step(10);
  return b;
}

function testboxBusy(seed = 3): Bench {
  const b = bench("testbox", seed);
  b.ports.out(0x700, 4, 0x11223344);
  b.ports.out(0x70c, 4, 700);
  b.ports.out(0x71c, 4, 1900);
  b.clock.step(10_500);
  return b;
}

interface Case {
  /** The edge of issue 16 (the row of the closing note's table). */
  edge: string;
  machine: string;
  make: (seed?: number) => Bench;
  /** Builds the bad snapshot from a valid one. */
  bad: (valid: Uint8Array, src: Bench) => Uint8Array;
  /** Chunk the refusal names and a pattern of its reason. */
  where: string;
  reason: RegExp;
}

const firstOp = (s: any) => Object.values(s.ops as Record<string, any>)[0]!;

const CASES: Case[] = [
  {
    edge: "vmgenid address past guest memory",
    machine: "q35", make: q35Busy,
    bad: (v, src) => editChunk(v, "device:vmgenid", (s) => { s.addr = src.memory.size - 8; }),
    where: "device:vmgenid", reason: /addr 0x7fffff8 \+ 16 bytes lies outside the 134217728-byte guest memory/,
  },
  {
    edge: "vmm ioctlNs of the wrong type",
    machine: "bhyve-host", make: vmmBusy,
    bad: (v) => editChunk(v, "device:vmm", (s) => { s.config.ioctlNs = "1000"; }),
    where: "device:vmm", reason: /config\.ioctlNs: Invalid input: expected number, received string/,
  },
  {
    edge: "vmm maxcpus 0",
    machine: "bhyve-host", make: vmmBusy,
    bad: (v) => editChunk(v, "device:vmm", (s) => { s.config.maxcpus = 0; }),
    where: "device:vmm", reason: /config\.maxcpus: Too small: expected number to be >=1/,
  },
  {
    edge: "vmm negative name length",
    machine: "bhyve-host", make: vmmBusy,
    bad: (v) => editChunk(v, "device:vmm", (s) => { s.config.maxNameLen = -1; }),
    where: "device:vmm", reason: /config\.maxNameLen: Too small/,
  },
  {
    edge: "vmm op id reused by the one in flight",
    machine: "bhyve-host", make: vmmBusy,
    bad: (v) => editChunk(v, "device:vmm", (s) => { s.nextOp = Math.max(...Object.values(s.ops as Record<string, any>).map((o) => o.id)); }),
    where: "device:vmm", reason: /op \d+ is not below its counter \(\d+\): the next one would reuse its id/,
  },
  {
    edge: "vmm config differs from the bench's (valid but different ioctlNs)",
    machine: "bhyve-host", make: vmmBusy,
    bad: (v) => editChunk(v, "device:vmm", (s) => { s.config.ioctlNs = 7; }),
    where: "device:vmm", reason: /config\.ioctlNs is 7 in the snapshot, 1000 on the bench/,
  },
  {
    edge: "vmm finish event dropped",
    machine: "bhyve-host", make: vmmBusy,
    bad: (v) => {
      let seq = -1;
      editChunk(v, "device:vmm", (s) => { seq = Object.values(s.ops as Record<string, any>).find((o) => o.pending === "finish")!.seq; });
      return editChunk(v, "clock", (c) => { c.pending = c.pending.filter((p: any) => p.seq !== seq); });
    },
    where: "device:vmm", reason: /waits for its finish event \(seq \d+\), which is not pending: it would never complete/,
  },
  {
    edge: "testdev timer period 0 with its tick pending",
    machine: "testbox", make: testboxBusy,
    bad: (v) => editChunk(v, "device:t0", (s) => { s.timer.period = 0; }),
    where: "device:t0", reason: /timer\.period is 0 while a tick is pending/,
  },
  {
    edge: "PMBASE colliding with another device's ports",
    machine: "q35", make: q35Busy,
    // PMBASE 0x501: the 128-port block at 0x500 covers fw_cfg's 0x510..0x514.
    bad: (v) => editChunk(v, "device:lpc", (s) => { s.config.$hex = patchHex(s.config.$hex, 0x40, "0105"); }),
    where: "device:lpc", reason: /PMBASE 0x500 maps the ACPI PM block over ports 0x510\.\. claimed by fwcfg/,
  },
  {
    edge: "ACPI PM overflow event dropped",
    machine: "q35", make: q35Busy,
    bad: (v) => editChunk(v, "clock", (c) => { c.pending = c.pending.filter((p: any) => !(p.target === "acpi" && p.kind === "tmr-overflow")); }),
    where: "device:acpi", reason: /timerSeq \d+ names no pending tmr-overflow event/,
  },
  {
    edge: "ACPI PM overflow event and its handle both dropped",
    machine: "q35", make: q35Busy,
    bad: (v) => {
      const noEvent = editChunk(v, "clock", (c) => { c.pending = c.pending.filter((p: any) => !(p.target === "acpi" && p.kind === "tmr-overflow")); });
      return editChunk(noEvent, "device:acpi", (s) => { s.timerSeq = -1; s.timerAt = -1; });
    },
    where: "device:acpi", reason: /TMR_EN is set and TMR_STS clear, but no tmr-overflow event is armed/,
  },
];

/** Replaces bytes at `offset` of a hex string. */
function patchHex(hex: string, offset: number, bytes: string): string {
  return hex.slice(0, 2 * offset) + bytes + hex.slice(2 * offset + bytes.length);
}

function hvsim(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", HVSIM_DEBUG: "" } });
  const all = r.stdout + r.stderr;
  expect(all).not.toMatch(/\n\s+at .*:\d+:\d+\)?\n/);
  return { code: r.status, out: r.stdout, err: r.stderr, all };
}

describe("restore validation (issue 16): refused before the live bench is touched", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "hvsim-restore-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the valid snapshots restore (so each refusal below is the one edit's doing)", () => {
    for (const make of [q35Busy, vmmBusy, testboxBusy]) {
      const src = make();
      const dst = make(99);
      const r = restoreSnapshot(dst, saveSnapshot(src));
      expect(r.ok, JSON.stringify(!r.ok && r.error)).toBe(true);
    }
    // The q35 source really has an overflow event armed and the vmm source a finish event pending.
    const q = q35Busy();
    expect(q.clock.pendingEvents().some((e) => e.target === "acpi" && e.kind === "tmr-overflow")).toBe(true);
    expect(vmmBusy().clock.pendingEvents().some((e) => e.target === "vmm" && e.kind === "finish")).toBe(true);
    expect(firstOp(vmmBusy().device<VmmDevice>("vmm").state)).toBeDefined();
  });

  for (const c of CASES) {
    it(`${c.edge}: refused naming ${c.where}; the live bench is byte-identical`, () => {
      const src = c.make();
      const bad = c.bad(saveSnapshot(src), src);
      const live = c.make(42);
      live.clock.step(123);
      const before = liveState(live);
      const r = restoreSnapshot(live, bad);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.where).toBe(c.where);
      expect(r.error.reason).toMatch(c.reason);
      expect(liveState(live)).toBe(before);
      // The bench still runs as before.
      expect(() => live.clock.step(1000)).not.toThrow();
    });
  }

  // One edge per device kind through the CLI (each is a process start; the in-process cases above
  // cover every edge).
  const CLI_CASES = ["vmgenid address past guest memory", "vmm ioctlNs of the wrong type", "vmm finish event dropped", "testdev timer period 0 with its tick pending", "PMBASE colliding with another device's ports", "ACPI PM overflow event dropped"];

  it("through the CLI: `hvsim run` with a restore: step exits 1 naming the chunk and the reason", () => {
    expect(CASES.filter((c) => CLI_CASES.includes(c.edge))).toHaveLength(CLI_CASES.length);
    for (const [i, c] of CASES.entries()) {
      if (!CLI_CASES.includes(c.edge)) continue;
      const src = c.make();
      const file = join(dir, `bad-${i}.snap`);
      writeFileSync(file, c.bad(saveSnapshot(src), src));
      const scen = join(dir, `restore-${i}.yaml`);
      writeFileSync(scen, `name: restore ${c.edge}\nmachine: ${c.machine}\nsteps:\n  - restore: ${JSON.stringify(file)}\n`);
      const r = hvsim(["run", "-q", scen]);
      expect(r.code, `${c.edge}: ${r.all}`).toBe(1);
      expect(r.all).toContain(`snapshot chunk "${c.where}"`);
      expect(r.all).toMatch(c.reason);
    }
  }, 120_000);

  it("a snapshot from a machine whose device config differs (PM timer overridden to another profile and port) is refused", () => {
    // Saved on the stock acpi machine (pmtimer: profile acpi at 0x408) ...
    const src = bench("acpi");
    src.clock.step(5000);
    const file = join(dir, "acpi.snap");
    writeFileSync(file, saveSnapshot(src));
    // ... restored in process into an acpi machine whose pmtimer is a qemu-profile timer at 0x608.
    const spec = machine("acpi");
    const over: MachineSpec = { ...spec, devices: spec.devices.map((d) => (d.id === "pmtimer" ? { ...d, config: { ...d.config, profile: "qemu", port: 0x608 } } : d)) };
    const live = new Bench(over, scenarioKinds(), { seed: 5 });
    const before = liveState(live);
    const r = restoreSnapshot(live, saveSnapshot(src));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toEqual({ where: "machine", reason: "snapshot's machine differs from the bench's: device pmtimer has config port = 1032 in the snapshot, 1544 on the bench" });
    expect(liveState(live)).toBe(before);
    // ... and through the CLI, the scenario overriding the device.
    const scen = join(dir, "override.yaml");
    writeFileSync(scen, `name: override\nmachine: acpi\ndevices:\n  pmtimer: { profile: qemu, port: 0x608 }\nsteps:\n  - restore: ${JSON.stringify(file)}\n`);
    const cli = hvsim(["run", "-q", scen]);
    expect(cli.code).toBe(1);
    expect(cli.all).toContain('snapshot chunk "machine": snapshot\'s machine differs from the bench\'s: device pmtimer has config port = 1032 in the snapshot, 1544 on the bench');
    // The same scenario without the override restores it.
    const ok = join(dir, "same.yaml");
    writeFileSync(ok, `name: same\nmachine: acpi\nsteps:\n  - restore: ${JSON.stringify(file)}\n`);
    expect(hvsim(["run", "-q", ok]).code).toBe(0);
  }, 60_000);

  it("a machine chunk whose memory size disagrees with the memory chunk is refused", () => {
    const src = testboxBusy();
    const bad = editChunk(saveSnapshot(src), "machine", (m) => { m.spec.memory = 32 << 20; });
    const live = testboxBusy(8);
    const before = liveState(live);
    const r = restoreSnapshot(live, bad);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toEqual({ where: "machine", reason: `the machine description says ${32 << 20} bytes of guest memory, the memory chunk ${16 << 20}` });
    expect(liveState(live)).toBe(before);
  });

  it("a machine chunk that is not a machine description is refused by its schema", () => {
    const src = testboxBusy();
    const bad = editChunk(saveSnapshot(src), "machine", (m) => { m.spec.devices[0].id = 5; });
    const r = restoreSnapshot(testboxBusy(8), bad);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.where).toBe("machine");
    if (!r.ok) expect(r.error.reason).toMatch(/^not a machine description \{name, spec\}: spec\.devices\.0\.id: /);
  });
});
