// A damaged or incompatible snapshot is refused with a typed error naming the chunk and the reason,
// and the live bench is left exactly as it was.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TESTBOX } from "../../sim/devices/testdev/testdev.ts";
import type { MachineSpec } from "../../sim/machine/bench.ts";
import {
  describeIssue, HEADER_SIZE, inspectContainer, parseSnapshot, readManifest, restoreSnapshot, restoreSnapshotFile, saveSnapshot, type SnapshotIssue,
} from "../../sim/snapshot/index.ts";
import { benchState, json, rewrite, testbox, unjson, warmUp } from "./helpers.ts";

function fixture() {
  const a = testbox();
  warmUp(a);
  const snap = saveSnapshot(a);
  const m = readManifest(snap);
  if (!m.ok) throw new Error("fixture does not parse");
  return { snap, manifest: m.value.manifest, dataStart: m.value.dataStart };
}

const tmp = mkdtempSync(join(tmpdir(), "hvsim-corrupt-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function liveBench(spec: MachineSpec) {
  const live = testbox(3, spec);
  live.ports.out(0x704, 4, 0x5a5a);
  live.ports.out(0x70c, 4, 250);
  live.memory.writeUint(0x4000, 4, 77);
  live.memory.writeUint(0x3000, 4, 99); // a page the snapshot has too: restoreSnapshotFile reuses it
  live.clock.step(1234);
  return live;
}

/**
 * Restores `bytes` into a live, running bench — from memory (restoreSnapshot) and from a file
 * (restoreSnapshotFile, which verifies memory through a small buffer) — and checks both refuse it
 * with the same error and leave the bench unchanged.
 */
function refused(bytes: Uint8Array, spec: MachineSpec = TESTBOX): SnapshotIssue {
  const live = liveBench(spec);
  const before = benchState(live);
  const r = restoreSnapshot(live, bytes);
  expect(benchState(live)).toBe(before);
  live.clock.step(1000); // and it still runs
  if (r.ok) throw new Error("restore unexpectedly succeeded");

  const file = join(tmp, "s.snap");
  writeFileSync(file, bytes);
  const live2 = liveBench(spec);
  const before2 = benchState(live2);
  const r2 = restoreSnapshotFile(live2, file);
  expect(benchState(live2)).toBe(before2);
  expect(r2).toEqual(r);
  return r.error;
}

describe("snapshot corruption and incompatibility", () => {
  const { snap, manifest, dataStart } = fixture();

  it("truncation at every chunk boundary and inside every chunk names the first chunk cut", () => {
    for (const c of manifest.chunks) {
      const start = dataStart + c.offset;
      const atStart = refused(snap.subarray(0, start));
      expect(atStart.where).toBe(c.name);
      expect(atStart.reason).toMatch(/^missing/);
      const mid = refused(snap.subarray(0, start + Math.floor(c.length / 2)));
      expect(mid.where).toBe(c.name);
      expect(mid.reason).toMatch(new RegExp(`^truncated: ${Math.floor(c.length / 2)} of ${c.length} bytes`));
    }
    expect(refused(snap.subarray(0, snap.length - 1))).toMatchObject({ where: manifest.chunks.at(-1)!.name });
    expect(refused(snap.subarray(0, dataStart - 3))).toMatchObject({ where: "manifest", reason: expect.stringMatching(/^truncated/) });
    expect(refused(snap.subarray(0, 20))).toMatchObject({ where: "header", reason: expect.stringMatching(/^truncated/) });
    expect(refused(snap.subarray(0, 0))).toMatchObject({ where: "header" });
  });

  it("a flipped bit in any chunk is a checksum mismatch naming that chunk", () => {
    for (const c of manifest.chunks) {
      for (const at of [0, Math.floor(c.length / 2), c.length - 1]) {
        const bad = Uint8Array.from(snap);
        bad[dataStart + c.offset + at]! ^= 0x10;
        const e = refused(bad);
        expect(e).toEqual({ where: c.name, reason: expect.stringMatching(/^checksum mismatch/) });
        expect(describeIssue(e)).toMatch(new RegExp(`^snapshot chunk "${c.name}": checksum mismatch`));
        const rep = inspectContainer(bad);
        expect(rep.ok).toBe(false);
        expect(rep.chunks.filter((x) => x.status !== "ok").map((x) => [x.name, x.status])).toEqual([[c.name, "checksum mismatch"]]);
      }
    }
  });

  it("a flipped bit in the manifest or its checksum is a manifest checksum mismatch", () => {
    for (const at of [HEADER_SIZE, HEADER_SIZE + 40, dataStart - 1, 16, 47]) {
      const bad = Uint8Array.from(snap);
      bad[at]! ^= 0x01;
      expect(refused(bad)).toEqual({ where: "manifest", reason: expect.stringMatching(/^checksum mismatch/) });
    }
  });

  it("a flipped bit in the header's magic, version or manifest length is reported on the header or manifest", () => {
    const magic = Uint8Array.from(snap);
    magic[3]! ^= 0x20;
    expect(refused(magic)).toMatchObject({ where: "header", reason: expect.stringMatching(/bad magic/) });
    const ver = Uint8Array.from(snap);
    ver[8]! ^= 0x01; // version 1 -> 0
    expect(refused(ver)).toMatchObject({ where: "header", reason: "invalid container version 0" });
    const len = Uint8Array.from(snap);
    len[12]! ^= 0x01;
    expect(refused(len).where).toBe("manifest");
    const big = Uint8Array.from(snap);
    big[15]! ^= 0x80;
    expect(refused(big)).toMatchObject({ where: "header", reason: expect.stringMatching(/implausible/) });
  });

  it("trailing bytes after the last chunk are refused", () => {
    expect(refused(Buffer.concat([snap, Buffer.from([0])]))).toMatchObject({ where: "file", reason: "1 unexpected bytes after the last chunk" });
  });

  it("a newer container version is refused before anything else is read", () => {
    const v2 = rewrite(snap, (c) => c, 2);
    expect(refused(v2)).toEqual({ where: "header", reason: "container version 2 is newer than this hvsim reads (up to 1)" });
    expect(inspectContainer(v2).ok).toBe(false);
  });

  it("a newer device state version names the device chunk", () => {
    const bad = rewrite(snap, (cs) => cs.map((c) => (c.name === "device:t1" ? { ...c, version: 4 } : c)));
    expect(inspectContainer(bad).ok).toBe(true); // the container itself is sound
    expect(refused(bad)).toEqual({ where: "device:t1", reason: "state version 4 is newer than this hvsim understands (testdev v3)" });
  });

  it("newer clock, memory and machine chunk versions are refused naming the chunk", () => {
    for (const name of ["clock", "memory", "machine", "irq"]) {
      const bad = rewrite(snap, (cs) => cs.map((c) => (c.name === name ? { ...c, version: 2 } : c)));
      expect(refused(bad)).toEqual({ where: name, reason: expect.stringMatching(/chunk version 2 is newer than this hvsim reads \(up to 1\)/) });
    }
  });

  it("an unknown chunk or a missing required chunk is refused", () => {
    const extra = rewrite(snap, (cs) => [...cs, { name: "cpu", type: "vcpu", version: 1, encoding: "binary", parts: [new Uint8Array(8)] }]);
    expect(refused(extra)).toMatchObject({ where: "cpu", reason: expect.stringMatching(/^unknown chunk/) });
    for (const name of ["machine", "clock", "memory"]) {
      expect(refused(rewrite(snap, (cs) => cs.filter((c) => c.name !== name)))).toMatchObject({ where: name, reason: expect.stringMatching(/^missing/) });
    }
  });

  it("device set mismatches name the chunk: a device missing from the snapshot, an extra one, a different type", () => {
    const noT1 = rewrite(snap, (cs) => cs.filter((c) => c.name !== "device:t1"));
    expect(refused(noT1)).toMatchObject({ where: "device:t1", reason: expect.stringMatching(/^missing: machine testbox has device t1/) });
    const extra = rewrite(snap, (cs) => [...cs, { ...cs.find((c) => c.name === "device:t1")!, name: "device:t2" }]);
    expect(refused(extra)).toMatchObject({ where: "device:t2", reason: expect.stringMatching(/device t2 \(testdev\) is not on machine testbox/) });
    const retyped = rewrite(snap, (cs) => cs.map((c) => (c.name === "device:t0" ? { ...c, type: "pmtimer" } : c)));
    expect(refused(retyped)).toMatchObject({ where: "device:t0", reason: "device t0 is a pmtimer in the snapshot but a testdev on the bench" });
    // The bench's machine has a device the snapshot lacks.
    const bigger: MachineSpec = { ...TESTBOX, devices: [...TESTBOX.devices, { type: "testdev", id: "t2", config: { base: 0x720 } }] };
    expect(refused(snap, bigger)).toMatchObject({ where: "device:t2", reason: expect.stringMatching(/^missing/) });
  });

  it("a different machine or memory size is refused", () => {
    expect(refused(snap, { ...TESTBOX, name: "otherbox" })).toMatchObject({ where: "machine" });
    expect(refused(snap, { ...TESTBOX, memory: 32 << 20 })).toMatchObject({ where: "memory", reason: expect.stringMatching(/size/) });
  });

  it("an invalid device state (after upgrades) is refused naming the device", () => {
    const bad = rewrite(snap, (cs) => cs.map((c) => (c.name === "device:t0" ? { ...c, parts: [json({ ...unjson(c.parts[0]!), regs: [1, 2] })] } : c)));
    expect(refused(bad)).toEqual({ where: "device:t0", reason: "invalid testdev state: regs must be 3 u32 values" });
  });

  it("an invalid clock state or a pending event without a handler is refused naming the clock", () => {
    const edit = (f: (clock: any) => void) => rewrite(snap, (cs) => cs.map((c) => {
      if (c.name !== "clock") return c;
      const s = unjson(c.parts[0]!);
      f(s);
      return { ...c, parts: [json(s)] };
    }));
    expect(refused(edit((s) => { s.now = -1; }))).toMatchObject({ where: "clock", reason: expect.stringMatching(/invalid clock state: now/) });
    expect(refused(edit((s) => { s.pending[0].target = "ghost"; }))).toMatchObject({ where: "clock", reason: expect.stringMatching(/ghost\/tick .* has no handler/) });
  });

  it("a malformed irq chunk is refused", () => {
    const bad = rewrite(snap, (cs) => cs.map((c) => (c.name === "irq" ? { ...c, parts: [json([5, 5])] } : c)));
    expect(refused(bad)).toEqual({ where: "irq", reason: "not a list of distinct interrupt line numbers" });
  });

  it("malformed memory chunks are refused naming the memory chunk", () => {
    const mem = (f: (b: Buffer) => Buffer) => rewrite(snap, (cs) => cs.map((c) => (c.name === "memory" ? { ...c, parts: [f(Buffer.from(c.parts[0]!))] } : c)));
    expect(refused(mem((b) => { b.writeUInt32LE(4, 4); return b; }))).toMatchObject({ where: "memory", reason: expect.stringMatching(/4 pages need/) });
    expect(refused(mem((b) => { b.writeUInt32LE(0x7ff, 20); return b; }))).toMatchObject({ where: "memory", reason: expect.stringMatching(/not strictly ascending/) });
    expect(refused(mem((b) => { b.writeUInt32LE(0x9999, 24); return b; }))).toMatchObject({ where: "memory", reason: expect.stringMatching(/outside/) });
    expect(refused(mem((b) => { b.writeUInt32LE(8192, 0); return b; }))).toMatchObject({ where: "memory", reason: expect.stringMatching(/page size 8192/) });
    expect(refused(mem((b) => b.subarray(0, 10)))).toMatchObject({ where: "memory", reason: expect.stringMatching(/shorter than/) });
  });

  it("parseSnapshot reports without a bench; a clean snapshot parses", () => {
    expect(parseSnapshot(snap).ok).toBe(true);
    expect(parseSnapshot(Buffer.from("not a snapshot at all, just text"))).toMatchObject({ ok: false, error: { where: "header", reason: expect.stringMatching(/bad magic/) } });
  });
});
