// The kernel's string conversions between the host's UTF-16LE and the daemon's UTF-8, with the
// limits and failure behaviour of Linux 6.1 fs/nls/nls_base.c (utf16s_to_utf8s, utf8s_to_utf16s,
// utf8_to_utf32, utf32_to_utf8), plus the C string helpers the daemons rely on. Everything works on
// bytes and never throws; lengths are bounded by the buffers passed in.

const PLANE_SIZE = 0x10000;
const UNICODE_MAX = 0x10ffff;
const SURROGATE_MASK = 0xfffff800;
const SURROGATE_PAIR = 0xd800;
const SURROGATE_LOW = 0x400;
const SURROGATE_BITS = 0x3ff;

/** One row per UTF-8 sequence length: lead-byte mask/value, value mask, minimum value. */
const UTF8_TABLE: readonly { cmask: number; cval: number; lmask: number; lmin: number }[] = [
  { cmask: 0x80, cval: 0x00, lmask: 0x7f, lmin: 0 },
  { cmask: 0xe0, cval: 0xc0, lmask: 0x7ff, lmin: 0x80 },
  { cmask: 0xf0, cval: 0xe0, lmask: 0xffff, lmin: 0x800 },
  { cmask: 0xf8, cval: 0xf0, lmask: 0x1fffff, lmin: 0x10000 },
  { cmask: 0xfc, cval: 0xf8, lmask: 0x3ffffff, lmin: 0x200000 },
  { cmask: 0xfe, cval: 0xfc, lmask: 0x7fffffff, lmin: 0x4000000 },
];

/** Bytes UTF-8 needs for code point u (1..6, as the kernel's table counts), or -1. */
function utf8Len(u: number): number {
  if (u < 0) return -1;
  for (let i = 0; i < UTF8_TABLE.length; i++) if (u <= UTF8_TABLE[i]!.lmask) return i + 1;
  return -1;
}

/** utf32_to_utf8: writes u into out at `at` if it fits in `maxout`; returns the byte count or -1. */
function utf32ToUtf8(u: number, out: Uint8Array, at: number, maxout: number): number {
  if (u > UNICODE_MAX || (u & SURROGATE_MASK) === SURROGATE_PAIR) return -1;
  const n = utf8Len(u);
  if (n < 0 || n > maxout || at + n > out.length) return -1;
  if (n === 1) {
    out[at] = u;
    return 1;
  }
  const lead = [0, 0, 0xc0, 0xe0, 0xf0, 0xf8, 0xfc][n]!;
  let v = u;
  for (let i = n - 1; i > 0; i--) {
    out[at + i] = 0x80 | (v & 0x3f);
    v = Math.floor(v / 64);
  }
  out[at] = lead | v;
  return n;
}

/**
 * utf16s_to_utf8s: converts at most `inlen` UTF-16LE units read from `src` at `off` (stopping at
 * U+0000 or the end of `src`) into `out` at `outOff`, writing at most `maxout` bytes. Unpaired
 * surrogates and characters that no longer fit are skipped. No terminator is written. Returns the
 * number of bytes written.
 */
export function utf16sToUtf8s(src: Uint8Array, off: number, inlen: number, out: Uint8Array, outOff: number, maxout: number): number {
  let p = off;
  let op = outOff;
  let left = inlen;
  let room = Math.min(maxout, out.length - outOff);
  const unit = (at: number) => src[at]! | (src[at + 1]! << 8);
  while (left > 0 && room > 0 && p + 1 < src.length) {
    let u = unit(p);
    if (u === 0) break;
    p += 2;
    left--;
    if (u > 0x7f) {
      if ((u & SURROGATE_MASK) === SURROGATE_PAIR) {
        if (u & SURROGATE_LOW) continue; // a lone low surrogate: skipped
        if (left <= 0) break;
        if (p + 1 >= src.length) break;
        const v = unit(p);
        if ((v & SURROGATE_MASK) !== SURROGATE_PAIR || !(v & SURROGATE_LOW)) continue; // unpaired high: skipped
        u = PLANE_SIZE + ((u & SURROGATE_BITS) << 10) + (v & SURROGATE_BITS);
        p += 2;
        left--;
      }
      const n = utf32ToUtf8(u, out, op, room);
      if (n > 0) {
        op += n;
        room -= n;
      }
    } else {
      out[op++] = u;
      room--;
    }
  }
  return op - outOff;
}

/** utf8_to_utf32: decodes one sequence of at most `inlen` bytes; returns [length, code point] or -1. */
function utf8ToUtf32(s: Uint8Array, at: number, inlen: number): [number, number] | -1 {
  const c0 = s[at]!;
  let l = c0;
  let nc = 0;
  let p = at;
  for (const t of UTF8_TABLE) {
    nc++;
    if ((c0 & t.cmask) === t.cval) {
      l = l & t.lmask;
      if (l < t.lmin || l > UNICODE_MAX || (l & SURROGATE_MASK) === SURROGATE_PAIR) return -1;
      return [nc, l];
    }
    if (inlen <= nc) return -1;
    p++;
    const c = ((s[p] ?? 0) ^ 0x80) & 0xff;
    if (c & 0xc0) return -1;
    l = l * 64 + c;
  }
  return -1;
}

/**
 * utf8s_to_utf16s: converts at most `inlen` bytes of UTF-8 from `s` at `off` (stopping at NUL) to
 * UTF-16LE units in `out` at `outOff`, at most `maxout` units. An invalid sequence returns -22
 * (-EINVAL) — units already written stay. No terminator is written. Returns the unit count.
 */
export function utf8sToUtf16s(s: Uint8Array, off: number, inlen: number, out: Uint8Array, outOff: number, maxout: number): number {
  let p = off;
  let left = inlen;
  let room = Math.min(maxout, Math.floor((out.length - outOff) / 2));
  let op = outOff;
  const put = (u: number) => {
    out[op] = u & 0xff;
    out[op + 1] = u >>> 8;
    op += 2;
  };
  while (left > 0 && room > 0 && p < s.length && s[p] !== 0) {
    if (s[p]! & 0x80) {
      const r = utf8ToUtf32(s, p, Math.min(left, s.length - p));
      if (r === -1) return -22;
      const [size, cp] = r;
      p += size;
      left -= size;
      if (cp >= PLANE_SIZE) {
        if (room < 2) break;
        const u = cp - PLANE_SIZE;
        put(SURROGATE_PAIR | ((u >> 10) & SURROGATE_BITS));
        put(SURROGATE_PAIR | SURROGATE_LOW | (u & SURROGATE_BITS));
        room -= 2;
      } else {
        put(cp);
        room--;
      }
    } else {
      put(s[p]!);
      p++;
      left--;
      room--;
    }
  }
  return (op - outOff) / 2;
}

/** strlen bounded by the buffer: bytes before the first NUL at or after `off`. */
export function cstrlen(b: Uint8Array, off: number, max = b.length - off): number {
  const end = Math.min(b.length, off + Math.max(0, max));
  let i = off;
  while (i < end && b[i] !== 0) i++;
  return i - off;
}

/** The C string at `off` (bounded by `max` bytes) as bytes. */
export function cstrBytes(b: Uint8Array, off: number, max?: number): Uint8Array {
  return b.slice(off, off + cstrlen(b, off, max));
}

const td = new TextDecoder("utf-8");
const te = new TextEncoder();

/** Display text of UTF-8 bytes (invalid sequences as U+FFFD). */
export function utf8Text(b: Uint8Array): string {
  return b.length === 0 ? "" : td.decode(b);
}

export function utf8Bytes(s: string): Uint8Array {
  return te.encode(s);
}

/** The C string at `off` decoded as UTF-8 for display. */
export function cstr(b: Uint8Array, off: number, max?: number): string {
  return utf8Text(cstrBytes(b, off, max));
}

/** A JS string as UTF-16LE code units (lone surrogates kept as they are). */
export function utf16leBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    out[2 * i] = u & 0xff;
    out[2 * i + 1] = u >>> 8;
  }
  return out;
}

/** UTF-16LE units from `off`, at most `units`, stopping at U+0000, as a JS string. */
export function utf16leText(b: Uint8Array, off: number, units: number): string {
  let s = "";
  for (let i = 0; i < units; i++) {
    const at = off + 2 * i;
    if (at + 1 >= b.length) break;
    const u = b[at]! | (b[at + 1]! << 8);
    if (u === 0) break;
    s += String.fromCharCode(u);
  }
  return s;
}
