import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  captureSnapshot, inspectContainer, parseSnapshot, restoreSnapshot, restoreSnapshotFile, saveSnapshot, saveSnapshotFile, MAGIC, HEADER_SIZE,
} from "../../sim/snapshot/index.ts";
import { benchState, rewrite, testbox, warmUp } from "./helpers.ts";

function continueRun(b: ReturnType<typeof testbox>): void {
  b.ports.in(0x708, 4);
  b.clock.step(25_000);
  b.ports.out(0x704, 2, 0xbeef);
  b.memory.writeUint(0x3002, 2, b.ports.in(0x718, 4) & 0xffff);
  b.clock.step(3_333);
  b.ports.in(0x70c, 4);
}

describe("snapshot round trip", () => {
  it("restoring into a fresh bench continues exactly as the uninterrupted run (trace hash, state)", () => {
    const a = testbox();
    warmUp(a);
    const snap = saveSnapshot(a);
    continueRun(a);

    const b = testbox(999); // a different seed: the RNG state must come from the snapshot
    const r = restoreSnapshot(b, snap);
    expect(r.ok).toBe(true);
    continueRun(b);
    expect(b.traceHash()).toBe(a.traceHash());
    expect(benchState(b)).toBe(benchState(a));
  });

  it("restoring into the same bench after it ran on rewinds it", () => {
    const a = testbox();
    warmUp(a);
    const before = benchState(a);
    const snap = saveSnapshot(a);
    continueRun(a);
    expect(benchState(a)).not.toBe(before);
    expect(restoreSnapshot(a, snap).ok).toBe(true);
    expect(benchState(a)).toBe(before);
  });

  it("files: saveSnapshotFile writes the same bytes as saveSnapshot; restoreSnapshotFile restores them", () => {
    const dir = mkdtempSync(join(tmpdir(), "hvsim-snap-"));
    try {
      const a = testbox();
      warmUp(a);
      const f = join(dir, "a.snap");
      const n = saveSnapshotFile(a, f);
      const bytes = readFileSync(f);
      expect(n).toBe(bytes.length);
      expect(Buffer.compare(bytes, saveSnapshot(a))).toBe(0);
      continueRun(a);
      const b = testbox();
      expect(restoreSnapshotFile(b, f)).toMatchObject({ ok: true, value: { time: 10_500, pages: 3 } });
      continueRun(b);
      expect(b.traceHash()).toBe(a.traceHash());
      // Adopted pages are views into the file buffer: writing them must not disturb anything else.
      b.memory.writeUint(0x3000, 4, 0);
      expect(b.memory.readUint(0x3000, 4)).toBe(0);
      expect(restoreSnapshotFile(testbox(), join(dir, "missing.snap"))).toMatchObject({ ok: false, error: { where: "file" } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("restoreSnapshotFile into a running bench reuses its pages in place and drops pages the snapshot lacks", () => {
    const dir = mkdtempSync(join(tmpdir(), "hvsim-snap-"));
    try {
      const a = testbox();
      warmUp(a);
      const before = benchState(a);
      const f = join(dir, "a.snap");
      saveSnapshotFile(a, f);
      const page3 = [...a.memory.touched()].find(([i]) => i === 3)![1];
      continueRun(a);
      a.memory.writeUint(0x3000, 4, 0xdddddddd); // an existing page, changed
      a.memory.writeUint(0x500000, 4, 1); // a page the snapshot does not have
      expect(restoreSnapshotFile(a, f).ok).toBe(true);
      expect(benchState(a)).toBe(before);
      expect([...a.memory.touched()].find(([i]) => i === 3)![1]).toBe(page3); // same array, refilled
      expect(a.memory.readUint(0x500000, 4)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a restore from caller-owned bytes copies pages: later writes do not change the bytes", () => {
    const a = testbox();
    warmUp(a);
    const snap = saveSnapshot(a);
    const copy = Uint8Array.from(snap);
    const b = testbox();
    expect(restoreSnapshot(b, snap).ok).toBe(true);
    b.memory.fill(0x3000, 4096, 0xaa);
    expect(Buffer.compare(snap, copy)).toBe(0);
  });

  it("stores only non-zero touched pages, with header, manifest and the six chunks", () => {
    const a = testbox();
    warmUp(a);
    expect(a.memory.touchedPages).toBe(4); // 0x1000 (t0 DMA), 0x3000, 0x7ff000, and the zero page 0x9000
    const snap = saveSnapshot(a);
    expect(Buffer.from(snap.subarray(0, 8)).toString("latin1")).toBe(MAGIC);
    const p = parseSnapshot(snap);
    if (!p.ok) throw new Error(p.error.reason);
    expect([...p.value.memory.indices]).toEqual([0x1, 0x3, 0x7ff]);
    expect(p.value.chunks.map((c) => [c.name, c.type, c.version, c.encoding])).toEqual([
      ["machine", "machine", 1, "json"],
      ["clock", "clock", 1, "json"],
      ["memory", "memory", 1, "binary"],
      ["irq", "irq", 1, "json"],
      ["device:t0", "testdev", 3, "json"],
      ["device:t1", "testdev", 3, "json"],
    ]);
    const mem = p.value.chunks.find((c) => c.name === "memory")!;
    expect(mem.length).toBe(16 + 3 * 4 + 3 * 4096);
    const rep = inspectContainer(snap);
    expect(rep.ok).toBe(true);
    expect(rep.chunks.every((c) => c.status === "ok")).toBe(true);
    const e = captureSnapshot(a);
    expect(e.length).toBe(snap.length);
    expect(HEADER_SIZE + Buffer.from(JSON.stringify(e.manifest)).length + e.manifest.dataLength).toBe(snap.length);
  });

  it("interrupt line levels are restored; a snapshot without an irq chunk restores with every line low", () => {
    const a = testbox();
    warmUp(a);
    expect(a.irq.getState()).toEqual([5]);
    const snap = saveSnapshot(a);
    const b = testbox();
    b.irq.set(9, true, "test");
    expect(restoreSnapshot(b, snap).ok).toBe(true);
    expect(b.irq.getState()).toEqual([5]);
    const c = testbox();
    c.irq.set(9, true, "test");
    expect(restoreSnapshot(c, rewrite(snap, (cs) => cs.filter((x) => x.name !== "irq"))).ok).toBe(true);
    expect(c.irq.getState()).toEqual([]);
  });

  it("device states with bigint survive the JSON encoding", () => {
    const a = testbox();
    a.device("t0").state.ticks = 2n ** 60n + 5n;
    const b = testbox();
    expect(restoreSnapshot(b, saveSnapshot(a)).ok).toBe(true);
    expect(b.device("t0").state.ticks).toBe(2n ** 60n + 5n);
  });

  it("the same bench state always encodes to the same bytes", () => {
    const a = testbox();
    warmUp(a);
    const b = testbox();
    warmUp(b);
    expect(Buffer.compare(saveSnapshot(a), saveSnapshot(b))).toBe(0);
  });
});
