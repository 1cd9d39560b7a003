// QEMU's qtest text protocol served from a bench (facts from QEMU system/qtest.c, the "QTest
// Protocol" comment and its reply formats): one command per line, words split on single spaces,
// numbers parsed like strtoul with base 0, one reply line per command ("OK ...", "FAIL ...",
// "ERR ..."), and, once `irq_intercept_in` has been issued, asynchronous "IRQ raise N" /
// "IRQ lower N" lines sent the moment a line changes (so they precede the reply of the command
// that caused them). `handle` is pure simulation: the transport (stdio, socket) lives in the CLI.
import type { Bench } from "../machine/bench.ts";
import { IoFault, type IoSize } from "../bus/portio.ts";
import { MAX_TIME, TimeError } from "../clock/time.ts";

class Bad extends Error {}

const U64_MAX = (1n << 64n) - 1n;

/**
 * The most bytes one `read` or `b64read` answers (16 MiB, a 32 MiB reply line). QEMU 7.2 has no
 * limit: it g_malloc()s the length first, so `b64read 0 100000000000` aborts it ("GLib: failed to
 * allocate 100000000000 bytes") and `read 0 0x7fffffff` keeps it busy building a 4 GiB line.
 */
export const MAX_READ = 1 << 24;

/** strtoul/strtoull with base 0 for a whole word: 0x hex, leading-0 octal, decimal; at most 2^64 - 1. */
export function parseNumber(word: string | undefined): bigint {
  if (word === undefined) throw new Bad("missing argument");
  let v: bigint;
  if (/^0[xX][0-9a-fA-F]+$/.test(word)) v = BigInt(word);
  else if (/^0[0-7]*$/.test(word)) v = BigInt("0o" + (word.slice(1) || "0"));
  else if (/^[1-9][0-9]*$/.test(word)) v = BigInt(word);
  else throw new Bad(`invalid number '${word}'`);
  // QEMU's qemu_strtou64 answers ERANGE here and its g_assert(ret == 0) aborts; hvsim says why.
  if (v > U64_MAX) throw new Bad(`number '${word}' is out of range (above 2^64 - 1)`);
  return v;
}

/**
 * The value of a number word when it is at most 2^53 - 1 (exact as a double), else undefined —
 * the same words and values as parseNumber, without a regex or a BigInt: the hot path of the
 * port commands. An invalid or larger word answers undefined; parseNumber then says why.
 */
export function parseSmall(word: string | undefined): number | undefined {
  if (word === undefined) return undefined;
  const n = word.length;
  if (n === 0) return undefined;
  let base = 10;
  let i = 0;
  if (word.charCodeAt(0) === 0x30) {
    if (n > 1 && (word.charCodeAt(1) | 0x20) === 0x78) {
      if (n === 2) return undefined;
      base = 16;
      i = 2;
    } else {
      base = 8;
      i = 1;
    }
  }
  let v = 0;
  for (; i < n; i++) {
    const c = word.charCodeAt(i);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (base === 16 && (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x57;
    else return undefined;
    if (d >= base) return undefined;
    v = v * base + d;
    if (v > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return v;
}

/** The error for a clock value past the last exact virtual time; quotes the word as given. */
function pastLimit(cmd: string, word: string): Bad {
  return new Bad(`${cmd} ${word}: past hvsim's virtual time limit of 2^53 - 1 ns (${MAX_TIME} ns, about 104 days)`);
}

/** qemu_strtoi64 with base 0: like parseNumber, with an optional sign. */
function parseSigned(word: string | undefined): bigint {
  if (word !== undefined && word.startsWith("-")) return -parseNumber(word.slice(1));
  return parseNumber(word?.startsWith("+") ? word.slice(1) : word);
}

/** line.split(" ") (words on single spaces, empty words kept), without the runtime call split makes. */
function words(line: string): string[] {
  const w: string[] = [];
  let start = 0;
  for (;;) {
    const sp = line.indexOf(" ", start);
    if (sp < 0) {
      w.push(start === 0 ? line : line.slice(start));
      return w;
    }
    w.push(line.slice(start, sp));
    start = sp + 1;
  }
}

const hex = (v: bigint | number, width: number) => v.toString(16).padStart(width, "0");

export class QtestServer {
  private intercepting = false;
  private intercepted: string | undefined;
  private pending: string[] = [];
  private readonly unlisten: () => void;

  constructor(readonly bench: Bench, private readonly irqControllers: readonly string[] = ["ioapic"]) {
    this.unlisten = bench.irq.listen((line, level) => {
      if (this.intercepting) this.pending.push(`IRQ ${level ? "raise" : "lower"} ${line}`);
    });
  }

  close(): void {
    this.unlisten();
  }

  /** Runs one command line (without its newline); returns the lines to send, IRQ lines first. */
  handle(line: string): string[] {
    const reply = this.reply(line);
    if (this.pending.length === 0) return [reply];
    const out = this.pending;
    this.pending = [];
    out.push(reply);
    return out;
  }

  /**
   * Runs one command line (without its newline); returns the text to send: the IRQ lines, then
   * the reply, each ending in '\n'. The same lines as `handle`, without an array per command.
   */
  respond(line: string): string {
    const reply = this.reply(line);
    if (this.pending.length === 0) return reply + "\n";
    let out = "";
    for (const l of this.pending) out += l + "\n";
    this.pending = [];
    return out + reply + "\n";
  }

  /** The reply line of one command; the IRQ lines it caused are left in `pending`. */
  private reply(line: string): string {
    if (this.pending.length) this.pending = [];
    // A CRLF line ending is accepted (QEMU 7.2 keeps the '\r' in the last word and aborts on it).
    if (line.endsWith("\r")) line = line.slice(0, -1);
    try {
      return this.run(words(line));
    } catch (e) {
      if (e instanceof Bad) return `FAIL ${e.message}`;
      if (e instanceof IoFault) return `FAIL ${e.errno}: ${e.message}`;
      if (e instanceof TimeError) return `FAIL ${e.message}`;
      this.pending = [];
      throw e;
    }
  }

  private port(word: string | undefined): number {
    const small = parseSmall(word);
    if (small !== undefined && small <= 0xffff) return small;
    const p = parseNumber(word);
    if (p > 0xffffn) throw new Bad(`port ${word} is above 0xffff`);
    return Number(p);
  }

  /** A guest physical address: any 64-bit value (past RAM reads zero and writes vanish, as in QEMU). */
  private addr(word: string | undefined): bigint {
    return parseNumber(word);
  }

  /** A read length: 1..MAX_READ bytes, checked before anything is allocated. */
  private readLen(cmd: string, word: string | undefined): number {
    const n = parseNumber(word);
    // QEMU 7.2 g_assert(len)s and aborts on `read ADDR 0`.
    if (n === 0n && cmd === "read") throw new Bad("read of 0 bytes");
    if (n > BigInt(MAX_READ)) throw new Bad(`${cmd} length ${word} is above hvsim's limit of ${MAX_READ} bytes (16 MiB) per read`);
    return Number(n);
  }

  /** The part of [addr, addr + len) inside RAM, as [start, count] (count 0 when none is). */
  private inRam(addr: bigint, len: bigint): [number, number] {
    const ramEnd = BigInt(this.bench.memory.size);
    if (addr >= ramEnd) return [0, 0];
    const end = addr + len < ramEnd ? addr + len : ramEnd;
    return [Number(addr), Number(end - addr)];
  }

  private memRead(addr: bigint, len: number): Uint8Array {
    // Outside RAM nothing answers: QEMU's unassigned accesses read as zero.
    const [start, count] = this.inRam(addr, BigInt(len));
    if (count === len) return this.bench.memory.read(start, len);
    const out = new Uint8Array(len);
    if (count) out.set(this.bench.memory.read(start, count));
    return out;
  }

  /** Writes `fill(len)` at addr, keeping only the part inside RAM (nothing is allocated past it). */
  private memWrite(addr: bigint, len: bigint, fill: (count: number) => Uint8Array): void {
    const [start, count] = this.inRam(addr, len);
    if (count) this.bench.memory.write(start, fill(count));
  }

  private run(w: string[]): string {
    const cmd = w[0] ?? "";
    const clock = this.bench.clock;
    switch (cmd) {
      case "outb":
      case "outw":
      case "outl": {
        const size: IoSize = cmd === "outl" ? 4 : cmd === "outw" ? 2 : 1;
        const port = this.port(w[1]);
        const small = parseSmall(w[2]);
        // The value keeps its low size * 8 bits (exact on doubles below 2^53; BigInt past that).
        const value = small !== undefined ? small % 2 ** (size * 8) : Number(parseNumber(w[2]) & ((1n << BigInt(size * 8)) - 1n));
        this.bench.ports.out(port, size, value);
        return "OK";
      }
      case "inb":
      case "inw":
      case "inl": {
        const size: IoSize = cmd === "inl" ? 4 : cmd === "inw" ? 2 : 1;
        return `OK 0x${hex(this.bench.ports.in(this.port(w[1]), size), 4)}`;
      }
      case "writeb":
      case "writew":
      case "writel":
      case "writeq": {
        const size = ({ b: 1, w: 2, l: 4, q: 8 } as const)[cmd[5] as "b" | "w" | "l" | "q"];
        const addr = this.addr(w[1]);
        const v = BigInt.asUintN(size * 8, parseNumber(w[2]));
        const b = new Uint8Array(size);
        for (let i = 0; i < size; i++) b[i] = Number((v >> BigInt(8 * i)) & 0xffn);
        this.memWrite(addr, BigInt(size), (n) => b.subarray(0, n));
        return "OK";
      }
      case "readb":
      case "readw":
      case "readl":
      case "readq": {
        const size = ({ b: 1, w: 2, l: 4, q: 8 } as const)[cmd[4] as "b" | "w" | "l" | "q"];
        const b = this.memRead(this.addr(w[1]), size);
        let v = 0n;
        for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        return `OK 0x${hex(v, 16)}`;
      }
      case "read": {
        const addr = this.addr(w[1]);
        const len = this.readLen(cmd, w[2]);
        return `OK 0x${Buffer.from(this.memRead(addr, len)).toString("hex")}`;
      }
      case "b64read": {
        const addr = this.addr(w[1]);
        return `OK ${Buffer.from(this.memRead(addr, this.readLen(cmd, w[2]))).toString("base64")}`;
      }
      // write, b64write, memset: QEMU allocates the whole length; hvsim builds only the bytes that
      // land in RAM (the rest would vanish anyway), so any 64-bit length is answered.
      case "write": {
        const addr = this.addr(w[1]);
        const len = parseNumber(w[2]);
        const data = w[3];
        if (data === undefined) throw new Bad("missing argument");
        if (data.length < 3) return "ERR invalid argument size";
        this.memWrite(addr, len, (n) => {
          const b = new Uint8Array(n);
          for (let i = 0; i < n && i * 2 + 4 <= data.length; i++) b[i] = parseInt(data.slice(i * 2 + 2, i * 2 + 4), 16) || 0;
          return b;
        });
        return "OK";
      }
      case "b64write": {
        const addr = this.addr(w[1]);
        const len = parseNumber(w[2]);
        const data = w[3];
        if (data === undefined) throw new Bad("missing argument");
        if (data.length < 3) return "ERR invalid argument size";
        const decoded = Buffer.from(data, "base64");
        this.memWrite(addr, len, (n) => {
          const b = new Uint8Array(n);
          b.set(decoded.subarray(0, n));
          return b;
        });
        return "OK";
      }
      case "memset": {
        const addr = this.addr(w[1]);
        const len = parseNumber(w[2]);
        const pattern = Number(parseNumber(w[3]) & 0xffn);
        this.memWrite(addr, len, (n) => new Uint8Array(n).fill(pattern));
        return "OK";
      }
      case "endianness":
        return "OK little";
      // QEMU 7.2 (qtest_clock_warp; replies checked on a qtest-enabled 7.2): the clock only moves
      // forward, and every clock command answers `OK <now>` — also clock_step without an argument
      // when no timer is pending (the deadline is -1), clock_step 0, and clock_set to the past.
      // QEMU keeps int64 nanoseconds (clock_step 9007199254740993 answers OK 9007199254740993
      // there); hvsim's clock stops at 2^53 - 1 ns, so a step or set past it is a FAIL naming the
      // limit and the number as written, and the clock does not move.
      case "clock_step": {
        if (w[1] !== undefined) {
          const ns = parseSigned(w[1]);
          if (ns > BigInt(MAX_TIME - clock.now)) throw pastLimit(cmd, w[1]);
          if (ns > 0n) clock.runUntil(clock.now + Number(ns));
        } else if (clock.nextAt !== undefined) {
          clock.runUntil(clock.nextAt);
        }
        return `OK ${clock.now}`;
      }
      case "clock_set": {
        const ns = parseSigned(w[1]);
        if (ns > BigInt(MAX_TIME)) throw pastLimit(cmd, w[1]!);
        if (ns > BigInt(clock.now)) clock.runUntil(Number(ns));
        return `OK ${clock.now}`;
      }
      case "irq_intercept_in":
      case "irq_intercept_out": {
        const path = w[1];
        if (path === undefined) throw new Bad("missing argument");
        const dev = this.irqControllers.find((c) => path === c || path.endsWith("/" + c));
        if (dev === undefined) return "FAIL Unknown device";
        // QEMU 7.2: intercepting the same device again is OK, another device FAILs.
        if (this.intercepting) return dev === this.intercepted ? "OK" : "FAIL IRQ intercept already enabled";
        this.intercepting = true;
        this.intercepted = dev;
        return "OK";
      }
      default:
        return `FAIL Unknown command '${cmd}'`;
    }
  }
}
