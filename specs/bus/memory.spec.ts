// Guest memory: fixed size in whole 4 KiB pages, sparse (untouched pages read zero and take no
// space), little-endian accessors (x86), bounds errors that name the address and size.
import { describe, expect, it } from "vitest";
import { GuestMemory, MemoryError, PAGE_SIZE } from "../../sim/memory/memory.ts";

describe("GuestMemory", () => {
  it("refuses sizes that are not whole pages", () => {
    expect(() => new GuestMemory(4095)).toThrow(MemoryError);
    expect(() => new GuestMemory(-4096)).toThrow(MemoryError);
    expect(new GuestMemory(128 * 1024 * 1024).size).toBe(134_217_728);
  });

  it("is sparse: reads of untouched memory are zero and allocate nothing", () => {
    const m = new GuestMemory(64 * 1024 * 1024);
    expect(m.read(0x3ff_f000, 16)).toEqual(new Uint8Array(16));
    expect(m.touchedPages).toBe(0);
    m.write(0x1fff, Uint8Array.of(1, 2)); // straddles pages 1 and 2
    expect(m.touchedPages).toBe(2);
    expect([...m.touched()].map(([i]) => i)).toEqual([1, 2]);
    expect(m.read(0x1ffe, 4)).toEqual(Uint8Array.of(0, 1, 2, 0));
  });

  it("reads and writes little-endian integers", () => {
    const m = new GuestMemory(PAGE_SIZE * 4);
    m.writeUint(0x10, 4, 0xdeadbeef);
    expect(m.read(0x10, 4)).toEqual(Uint8Array.of(0xef, 0xbe, 0xad, 0xde));
    expect(m.readUint(0x10, 2)).toBe(0xbeef);
    expect(m.readUint(0x12, 1)).toBe(0xad);
    m.writeU64(0xffc, 0x0102030405060708n); // across a page boundary
    expect(m.readU64(0xffc)).toBe(0x0102030405060708n);
    expect(m.readUint(0x1000, 4)).toBe(0x01020304);
  });

  it("refuses accesses outside [0, size) and names address and size", () => {
    const m = new GuestMemory(PAGE_SIZE * 2);
    expect(() => m.read(PAGE_SIZE * 2 - 1, 2)).toThrow(/access of 2 bytes at 0x1fff is outside the 8192-byte guest memory/);
    expect(() => m.write(-1, Uint8Array.of(0))).toThrow(MemoryError);
    expect(() => m.readUint(PAGE_SIZE * 2, 1)).toThrow(MemoryError);
    expect(m.read(PAGE_SIZE * 2, 0)).toEqual(new Uint8Array(0));
  });

  it("fill, clear and setPage", () => {
    const m = new GuestMemory(PAGE_SIZE * 2);
    m.fill(10, 3, 0x1ab);
    expect(m.read(9, 5)).toEqual(Uint8Array.of(0, 0xab, 0xab, 0xab, 0));
    m.clear();
    expect(m.touchedPages).toBe(0);
    expect(() => m.setPage(0, new Uint8Array(10))).toThrow(MemoryError);
    expect(() => m.setPage(2, new Uint8Array(PAGE_SIZE))).toThrow(MemoryError);
    m.setPage(1, new Uint8Array(PAGE_SIZE).fill(7));
    expect(m.readUint(PAGE_SIZE, 1)).toBe(7);
  });
});

describe("GuestMemory dirty-page tracking (checkpoints)", () => {
  it("rollback puts back exactly the pages written since tracking started, new pages removed", () => {
    const m = new GuestMemory(256 << 20);
    m.write(0x1000, Uint8Array.of(1, 2, 3));
    m.write(0x5000, Uint8Array.of(9));
    m.trackDirty();
    expect(m.dirtyPages).toBe(0);
    m.write(0x1001, Uint8Array.of(0xaa, 0xbb)); // an existing page
    m.write(0x1ffe, Uint8Array.of(7, 7, 7, 7)); // the same page and the next, new one
    m.fill(0x100000, 10, 0xff); // a new page far away
    expect(m.dirtyPages).toBe(3);
    expect(m.touchedPages).toBe(4);
    expect(m.rollbackDirty()).toBe(3);
    expect([...m.read(0x1000, 4)]).toEqual([1, 2, 3, 0]);
    expect([...m.read(0x1ffe, 4)]).toEqual([0, 0, 0, 0]);
    expect(m.touchedPages).toBe(2); // 0x1000 and 0x5000 only: the new pages are gone
    expect(m.readUint(0x5000, 1)).toBe(9);
    // Still tracking from the same point: a second round rolls back to it again.
    m.write(0x5000, Uint8Array.of(1));
    expect(m.rollbackDirty()).toBe(1);
    expect(m.readUint(0x5000, 1)).toBe(9);
  });

  it("clear() and setPage() are undone too; reads and untouched pages cost nothing", () => {
    const m = new GuestMemory(1 << 20);
    m.write(0, Uint8Array.of(5));
    m.write(PAGE_SIZE * 3, Uint8Array.of(6));
    m.trackDirty();
    m.read(0, 2 * PAGE_SIZE);
    expect(m.dirtyPages).toBe(0);
    m.clear();
    m.setPage(7, new Uint8Array(PAGE_SIZE).fill(1));
    expect(m.rollbackDirty()).toBe(3);
    expect([m.readUint(0, 1), m.readUint(PAGE_SIZE * 3, 1), m.readUint(PAGE_SIZE * 7, 1)]).toEqual([5, 6, 0]);
    m.stopTracking();
    expect(m.dirtyPages).toBeUndefined();
    expect(() => m.rollbackDirty()).toThrow(MemoryError);
  });
});
