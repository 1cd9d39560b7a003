// How QEMU's memory core carries one port access to the registers behind it (facts from QEMU 7.2
// softmmu/physmem.c flatview_read_continue / flatview_write_continue / memory_access_size and
// softmmu/memory.c memory_region_access_valid / access_with_adjusted_size; checked against a
// qtest-enabled QEMU 7.2 on the q35 PM block and the PCI configuration ports):
//  - an access is carried out in pieces, low address first. A piece starts in the register that
//    decodes its first byte and is as long as what is left of the access, bounded by that
//    register's valid.max_access_size (4 when unspecified) and by the alignment of the piece's
//    offset inside the register, rounded down to a power of two. It is NOT cut at the register's
//    end: I/O registers see full-width accesses (address_space_translate_internal only clips RAM);
//  - a piece no register decodes goes to the background I/O region (valid.max 4, aligned on the
//    port number): it reads all ones and drops writes;
//  - a piece the register does not accept (shorter than valid.min_access_size, or misaligned)
//    reads 0 and drops its write (a decode error, which port I/O does not report);
//  - an accepted piece is widened to impl.min_access_size and split at impl.max_access_size: the
//    handler is called at the piece's offset with the wider size, and the piece keeps the low
//    bytes of what it returns.
// Blocks must start at a port aligned to 4 (offsets then align like port numbers).
import type { IoSize } from "./portio.ts";

export interface Register {
  readonly name: string;
  readonly offset: number;
  readonly length: number;
  readonly validMin: 1 | 2 | 4;
  readonly validMax: 1 | 2 | 4;
  /** impl.min_access_size (1 when the handler takes any width). */
  readonly implMin: 1 | 2 | 4;
  /** impl.max_access_size (4 unless the handler is byte-wide). */
  readonly implMax: 1 | 2 | 4;
  /** `addr` is the offset inside the register; the result's low `size` bytes are used. */
  read(addr: number, size: number): number;
  write(addr: number, size: number, value: number): void;
}

/** The low `bytes` bytes of a non-negative integer (no 32-bit sign games). */
const low = (x: number, bytes: number) => x % 2 ** (8 * bytes);
const ones = (bytes: number) => 2 ** (8 * bytes) - 1;
const pow2floor = (n: number) => (n >= 4 ? 4 : n >= 2 ? 2 : 1);
const alignOf = (a: number) => a & -a;

/** The first register (list order is priority) decoding block offset `off`. */
function find(regs: readonly Register[], off: number): Register | undefined {
  for (const r of regs) if (off >= r.offset && off < r.offset + r.length) return r;
  return undefined;
}

function pieceSize(max: number, addr: number, left: number): number {
  const a = alignOf(addr);
  if (a !== 0 && a < max) max = a;
  return pow2floor(Math.min(left, max));
}

const accepts = (r: Register, addr: number, l: number) => l >= r.validMin && l <= r.validMax && (addr & (l - 1)) === 0;

/** Reads `size` bytes at block offset `off` the way QEMU's memory core would. */
export function blockRead(regs: readonly Register[], off: number, size: IoSize): number {
  let v = 0;
  let done = 0;
  while (done < size) {
    const o = off + done;
    const r = find(regs, o);
    let l: number;
    let piece = 0;
    if (!r) {
      l = pieceSize(4, o, size - done);
      piece = ones(l);
    } else {
      const addr = o - r.offset;
      l = pieceSize(r.validMax, addr, size - done);
      if (accepts(r, addr, l)) {
        const w = Math.max(Math.min(l, r.implMax), r.implMin);
        for (let i = 0; i < l; i += w) piece += low(r.read(addr + i, w), w) * 2 ** (8 * i);
        piece = low(piece, l);
      }
    }
    v += piece * 2 ** (8 * done);
    done += l;
  }
  return v;
}

/** Writes `size` bytes at block offset `off` the way QEMU's memory core would. */
export function blockWrite(regs: readonly Register[], off: number, size: IoSize, value: number): void {
  let done = 0;
  while (done < size) {
    const o = off + done;
    const r = find(regs, o);
    if (!r) {
      done += pieceSize(4, o, size - done);
      continue;
    }
    const addr = o - r.offset;
    const l = pieceSize(r.validMax, addr, size - done);
    if (accepts(r, addr, l)) {
      const piece = low(Math.floor(value / 2 ** (8 * done)), l);
      const w = Math.max(Math.min(l, r.implMax), r.implMin);
      for (let i = 0; i < l; i += w) r.write(addr + i, w, low(Math.floor(piece / 2 ** (8 * i)), w));
    }
    done += l;
  }
}
