// QEMU's qtest text protocol served from a bench (facts from QEMU system/qtest.c, the "QTest
// Protocol" comment and its reply formats): one command per line, words split on single spaces,
// numbers parsed like strtoul with base 0, one reply line per command ("OK ...", "FAIL ...",
// "ERR ..."), and, once `irq_intercept_in` has been issued, asynchronous "IRQ raise N" /
// "IRQ lower N" lines sent the moment a line changes (so they precede the reply of the command
// that caused them). `handle` is pure simulation: the transport (stdio, socket) lives in the CLI.
import type { Bench } from "../machine/bench.ts";
import { IoFault, type IoSize } from "../bus/portio.ts";
import { MemoryError } from "../memory/memory.ts";
import { TimeError } from "../clock/time.ts";

class Bad extends Error {}

/** strtoul/strtoull with base 0 for a whole word: 0x hex, leading-0 octal, decimal. */
export function parseNumber(word: string | undefined): bigint {
  if (word === undefined) throw new Bad("missing argument");
  if (/^0[xX][0-9a-fA-F]+$/.test(word)) return BigInt(word);
  if (/^0[0-7]*$/.test(word)) return BigInt("0o" + (word.slice(1) || "0"));
  if (/^[1-9][0-9]*$/.test(word)) return BigInt(word);
  throw new Bad(`invalid number '${word}'`);
}

/** qemu_strtoi64 with base 0: like parseNumber, with an optional sign. */
function parseSigned(word: string | undefined): bigint {
  if (word !== undefined && word.startsWith("-")) return -parseNumber(word.slice(1));
  return parseNumber(word?.startsWith("+") ? word.slice(1) : word);
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
    this.pending = [];
    let reply: string;
    try {
      reply = this.run(line.split(" "));
    } catch (e) {
      if (e instanceof Bad) reply = `FAIL ${e.message}`;
      else if (e instanceof IoFault) reply = `FAIL ${e.errno}: ${e.message}`;
      else if (e instanceof TimeError) reply = `FAIL ${e.message}`;
      else throw e;
    }
    const out = this.pending;
    this.pending = [];
    out.push(reply);
    return out;
  }

  private port(word: string | undefined): number {
    const p = parseNumber(word);
    if (p > 0xffffn) throw new Bad(`port ${word} is above 0xffff`);
    return Number(p);
  }

  private addr(word: string | undefined): number {
    const a = parseNumber(word);
    if (a > BigInt(Number.MAX_SAFE_INTEGER)) throw new Bad(`address ${word} is too large`);
    return Number(a);
  }

  private memRead(addr: number, len: number): Uint8Array {
    // Outside RAM nothing answers: QEMU's unassigned accesses read as zero.
    try {
      return this.bench.memory.read(addr, len);
    } catch (e) {
      if (!(e instanceof MemoryError)) throw e;
      const out = new Uint8Array(len);
      const ramEnd = this.bench.memory.size;
      if (addr < ramEnd) out.set(this.bench.memory.read(addr, ramEnd - addr));
      return out;
    }
  }

  private memWrite(addr: number, data: Uint8Array): void {
    const ramEnd = this.bench.memory.size;
    if (addr >= ramEnd) return;
    this.bench.memory.write(addr, data.subarray(0, Math.min(data.length, ramEnd - addr)));
  }

  private run(w: string[]): string {
    const cmd = w[0] ?? "";
    const clock = this.bench.clock;
    switch (cmd) {
      case "outb":
      case "outw":
      case "outl": {
        const size = ({ b: 1, w: 2, l: 4 } as const)[cmd[3] as "b" | "w" | "l"] as IoSize;
        const port = this.port(w[1]);
        const mask = (1n << BigInt(size * 8)) - 1n;
        this.bench.ports.out(port, size, Number(parseNumber(w[2]) & mask));
        return "OK";
      }
      case "inb":
      case "inw":
      case "inl": {
        const size = ({ b: 1, w: 2, l: 4 } as const)[cmd[2] as "b" | "w" | "l"] as IoSize;
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
        this.memWrite(addr, b);
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
        const len = this.addr(w[2]);
        if (len === 0) throw new Bad("read of 0 bytes");
        return `OK 0x${Buffer.from(this.memRead(this.addr(w[1]), len)).toString("hex")}`;
      }
      case "b64read":
        return `OK ${Buffer.from(this.memRead(this.addr(w[1]), this.addr(w[2]))).toString("base64")}`;
      case "write": {
        const addr = this.addr(w[1]);
        const len = this.addr(w[2]);
        const data = w[3];
        if (data === undefined) throw new Bad("missing argument");
        if (data.length < 3) return "ERR invalid argument size";
        const b = new Uint8Array(len);
        for (let i = 0; i < len; i++) {
          if (i * 2 + 4 <= data.length) b[i] = parseInt(data.slice(i * 2 + 2, i * 2 + 4), 16) || 0;
        }
        this.memWrite(addr, b);
        return "OK";
      }
      case "b64write": {
        const addr = this.addr(w[1]);
        const len = this.addr(w[2]);
        const data = w[3];
        if (data === undefined) throw new Bad("missing argument");
        if (data.length < 3) return "ERR invalid argument size";
        const decoded = Buffer.from(data, "base64");
        const b = new Uint8Array(len);
        b.set(decoded.subarray(0, len));
        this.memWrite(addr, b);
        return "OK";
      }
      case "memset": {
        const addr = this.addr(w[1]);
        const len = this.addr(w[2]);
        const pattern = Number(parseNumber(w[3]) & 0xffn);
        if (len) this.memWrite(addr, new Uint8Array(len).fill(pattern));
        return "OK";
      }
      case "endianness":
        return "OK little";
      // QEMU 7.2 (qtest_clock_warp; replies checked on a qtest-enabled 7.2): the clock only moves
      // forward, and every clock command answers `OK <now>` — also clock_step without an argument
      // when no timer is pending (the deadline is -1), clock_step 0, and clock_set to the past.
      case "clock_step": {
        if (w[1] !== undefined) {
          const ns = parseSigned(w[1]);
          if (ns > 0n) clock.runUntil(clock.now + Number(ns));
        } else if (clock.nextAt !== undefined) {
          clock.runUntil(clock.nextAt);
        }
        return `OK ${clock.now}`;
      }
      case "clock_set": {
        const ns = parseSigned(w[1]);
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
