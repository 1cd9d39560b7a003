// Guest physical memory: a fixed size chosen at machine creation, stored sparsely by 4 KiB page
// (pages never written read as zero and cost nothing), little-endian accessors. An access outside
// [0, size) is a MemoryError naming the address and the size.

export const PAGE_SIZE = 4096;
const PAGE_SHIFT = 12;
const PAGE_MASK = PAGE_SIZE - 1;

export class MemoryError extends RangeError {
  override name = "MemoryError";
}

export class GuestMemory {
  private readonly pages = new Map<number, Uint8Array>();
  /**
   * While a checkpoint is open: page index -> its contents when the checkpoint was taken (a copy,
   * or undefined for a page that did not exist), recorded on the first write after it. Rolling
   * back puts exactly these pages back, so its cost is the number of pages dirtied since.
   */
  private undo: Map<number, Uint8Array | undefined> | undefined;

  constructor(readonly size: number) {
    if (!Number.isSafeInteger(size) || size < 0 || size % PAGE_SIZE !== 0) {
      throw new MemoryError(`guest memory size must be a whole number of 4 KiB pages, got ${size}`);
    }
  }

  private check(addr: number, len: number): void {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0 || addr + len > this.size) {
      throw new MemoryError(
        `guest memory access of ${len} bytes at 0x${Number.isFinite(addr) ? addr.toString(16) : String(addr)} is outside the ${this.size}-byte guest memory`,
      );
    }
  }

  /** Number of pages that have been written (the sparse footprint). */
  get touchedPages(): number {
    return this.pages.size;
  }

  private page(index: number, create: true): Uint8Array;
  private page(index: number, create: false): Uint8Array | undefined;
  private page(index: number, create: boolean): Uint8Array | undefined {
    let p = this.pages.get(index);
    if (create) {
      if (this.undo !== undefined && !this.undo.has(index)) this.undo.set(index, p?.slice());
      if (!p) this.pages.set(index, (p = new Uint8Array(PAGE_SIZE)));
    }
    return p;
  }

  /** Starts (or restarts) dirty-page tracking: the memory as it is now is the rollback point. */
  trackDirty(): void {
    this.undo = new Map();
  }

  /** Pages written since trackDirty() or the last rollback (undefined when not tracking). */
  get dirtyPages(): number | undefined {
    return this.undo?.size;
  }

  /**
   * Puts back every page written since trackDirty() (or the last rollback) and keeps tracking
   * from that same point; returns the number of pages put back. Throws when not tracking.
   */
  rollbackDirty(): number {
    const undo = this.undo;
    if (!undo) throw new MemoryError("rollbackDirty without trackDirty");
    const n = undo.size;
    for (const [index, old] of undo) {
      if (old === undefined) this.pages.delete(index);
      else {
        const live = this.pages.get(index);
        // Copy into the live page where there is one (no allocation, views of it stay valid).
        if (live) live.set(old);
        else this.pages.set(index, old);
      }
    }
    undo.clear();
    return n;
  }

  /** Stops dirty-page tracking (the undo log is dropped). */
  stopTracking(): void {
    this.undo = undefined;
  }

  read(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const off = a & PAGE_MASK;
      const n = Math.min(len - done, PAGE_SIZE - off);
      const p = this.page(Math.floor(a / PAGE_SIZE), false);
      if (p) out.set(p.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  write(addr: number, bytes: Uint8Array): void {
    this.check(addr, bytes.length);
    let done = 0;
    while (done < bytes.length) {
      const a = addr + done;
      const off = a & PAGE_MASK;
      const n = Math.min(bytes.length - done, PAGE_SIZE - off);
      this.page(Math.floor(a / PAGE_SIZE), true).set(bytes.subarray(done, done + n), off);
      done += n;
    }
  }

  fill(addr: number, len: number, value: number): void {
    this.check(addr, len);
    this.write(addr, new Uint8Array(len).fill(value & 0xff));
  }

  /** Little-endian unsigned read of 1, 2, 4 (number) bytes. */
  readUint(addr: number, size: 1 | 2 | 4): number {
    const b = this.read(addr, size);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + b[i]!;
    return v;
  }

  writeUint(addr: number, size: 1 | 2 | 4, value: number): void {
    const b = new Uint8Array(size);
    let v = value;
    for (let i = 0; i < size; i++) {
      b[i] = v & 0xff;
      v = Math.floor(v / 256);
    }
    this.write(addr, b);
  }

  readU64(addr: number): bigint {
    const b = this.read(addr, 8);
    return new DataView(b.buffer).getBigUint64(0, true);
  }

  writeU64(addr: number, value: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    this.write(addr, b);
  }

  /** Touched pages in address order: [page index, contents] (the live arrays; copy before keeping). */
  *touched(): IterableIterator<[number, Uint8Array]> {
    for (const k of [...this.pages.keys()].sort((a, b) => a - b)) yield [k, this.pages.get(k)!];
  }

  /** Drops every page (all memory reads as zero again). */
  clear(): void {
    if (this.undo) for (const [i, p] of this.pages) if (!this.undo.has(i)) this.undo.set(i, p.slice());
    this.pages.clear();
  }

  /** Installs a whole page (snapshot restore); `data` must be PAGE_SIZE bytes and is taken as is. */
  setPage(index: number, data: Uint8Array): void {
    if (data.length !== PAGE_SIZE) throw new MemoryError(`a page is ${PAGE_SIZE} bytes, got ${data.length}`);
    this.check(index * PAGE_SIZE, PAGE_SIZE);
    if (this.undo && !this.undo.has(index)) this.undo.set(index, this.pages.get(index)?.slice());
    this.pages.set(index, data);
  }
}

export { PAGE_SHIFT };
