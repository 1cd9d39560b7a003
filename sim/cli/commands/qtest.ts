// `hvsim qtest`: serves QEMU's qtest protocol (sim/qtest/server.ts) from the embedded model on
// stdin/stdout, or on a UNIX socket for one client, so that tools written for a qtest QEMU can
// drive hvsim's machines instead. Replies are byte for byte QEMU's ("OK 0x%04x\n", "IRQ raise 9\n"
// before the reply of the command that caused it, ...). The process ends when stdin or the
// connection closes.
//
// Speed: on stdio the server reads with blocking read(2) calls and answers every complete line
// of a chunk with one write(2) — no event loop turn per command. Lines are split on '\n'; the
// server drops a trailing '\r' (QEMU keeps it and aborts).
import { existsSync, lstatSync, readSync, unlinkSync, writeSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import type { Command } from "commander";
import { Bench } from "../../machine/bench.ts";
import { MACHINES } from "../../machine/machines.ts";
import { defaultKinds } from "../../devices/index.ts";
import { QtestServer } from "../../qtest/server.ts";
import { Failure, UsageError } from "../errors.ts";

/** Splits incoming bytes into lines and answers each complete one; keeps the unfinished rest. */
export class QtestLineProcessor {
  private rest = "";

  constructor(private readonly server: QtestServer) {}

  /** Feeds a chunk; returns the text to send back (possibly ""). */
  feed(chunk: string): string {
    let buf = this.rest + chunk;
    let out = "";
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf("\n", start)) >= 0) {
      const line = buf.slice(start, nl);
      start = nl + 1;
      try {
        out += this.server.respond(line);
      } catch (e) {
        // QEMU would abort on a failed assertion; hvsim keeps the session and says why.
        out += `FAIL ${(e as Error).message}\n`;
      }
    }
    if (start > 0) buf = buf.slice(start);
    this.rest = buf;
    return out;
  }
}

function makeServer(machine: string, seed: number): QtestServer {
  const spec = MACHINES[machine];
  if (!spec) throw new UsageError(`unknown machine '${machine}' (machines: ${Object.keys(MACHINES).sort().join(", ")})`);
  return new QtestServer(new Bench(spec, defaultKinds(), { seed, trace: false }));
}

/** Reused for replies that fit (most are one short line): no Buffer per write. */
const OUT = Buffer.allocUnsafe(65536);

function writeAll(fd: number, text: string): void {
  let buf = OUT;
  let len: number;
  if (text.length <= OUT.length) {
    len = OUT.write(text, 0, "latin1");
  } else {
    buf = Buffer.from(text, "latin1");
    len = buf.length;
  }
  let off = 0;
  while (off < len) {
    try {
      off += writeSync(fd, buf, off, len - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") continue; // a non-blocking stdout that is full: try again
      throw e;
    }
  }
}

/** Serves on fds 0/1 with blocking reads; returns false when stdin is non-blocking (use streams then). */
function serveStdioSync(proc: QtestLineProcessor): boolean {
  const buf = Buffer.allocUnsafe(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") return false;
      if (code === "EOF") return true;
      throw e;
    }
    if (n === 0) return true;
    const out = proc.feed(buf.toString("latin1", 0, n));
    if (out) {
      try {
        writeAll(1, out);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EPIPE") return true;
        throw e;
      }
    }
  }
}

function serveStdioStream(proc: QtestLineProcessor): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.setEncoding("latin1");
    process.stdin.on("data", (chunk: string) => {
      const out = proc.feed(chunk);
      if (out) process.stdout.write(out);
    });
    process.stdin.on("end", () => resolve());
    process.stdin.on("error", () => resolve());
  });
}

function serveSocket(path: string, proc: QtestLineProcessor): Promise<void> {
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new Failure(`${path} exists and is not a socket`);
    unlinkSync(path);
  }
  return new Promise((resolve, reject) => {
    let client: Socket | undefined;
    const server = createServer((s) => {
      if (client) {
        s.destroy(); // one client, as QEMU's qtest chardev
        return;
      }
      client = s;
      s.setNoDelay(true);
      s.setEncoding("latin1");
      s.on("data", (chunk: string) => {
        const out = proc.feed(chunk);
        if (out) s.write(out);
      });
      const done = () => {
        server.close();
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
        resolve();
      };
      s.on("close", done);
      s.on("error", () => s.destroy());
    });
    server.on("error", (e) => reject(new Failure(`cannot serve on ${path}: ${e.message}`)));
    server.listen(path);
  });
}

export function register(program: Command): void {
  program
    .command("qtest")
    .description("Serve QEMU's qtest protocol from the embedded model (stdin/stdout, or a UNIX socket), e.g. for tools written against `qemu -qtest stdio`.")
    .option("-m, --machine <machine>", "machine to serve (q35, bhyve, ...)", "q35")
    .option("--socket <path>", "serve on this UNIX socket (one client) instead of stdin/stdout")
    .option("--seed <n>", "seed of the bench's RNG (vmgenid guid=auto, ...)", "0")
    .addHelpText(
      "after",
      `
Commands: outb/outw/outl, inb/inw/inl, readb..readq, writeb..writeq, read, write, b64read,
b64write, memset, endianness, clock_step [NS], clock_set NS, irq_intercept_in/out ioapic.
Replies and IRQ lines are formatted exactly as QEMU 7.2's qtest. Exits when the input closes.

Lines end in LF or CRLF. read/b64read answer at most 16 MiB; addresses past RAM read as zero.
The virtual clock stops at 2^53 - 1 ns: clock_step/clock_set past it answer FAIL naming the limit.

Examples:
  # enable the q35 PM block at 0x600 (LPC PMBASE, ACPI_CNTL), then read the PM timer at 1 s:
  $ printf 'outl 0xcf8 0x8000f840\\noutl 0xcfc 0x601\\noutl 0xcf8 0x8000f844\\noutb 0xcfc 0x80\\nclock_step 1000000000\\ninl 0x608\\n' | npx hvsim qtest --machine q35
  $ npx hvsim qtest --socket ./hvsim.qtest &`,
    )
    .action(async (opts: { machine: string; socket?: string; seed: string }) => {
      const seed = Number(opts.seed);
      if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got ${opts.seed}`);
      const proc = new QtestLineProcessor(makeServer(opts.machine, seed));
      if (opts.socket) {
        await serveSocket(opts.socket, proc);
        return;
      }
      if (!serveStdioSync(proc)) await serveStdioStream(proc);
    });
}
