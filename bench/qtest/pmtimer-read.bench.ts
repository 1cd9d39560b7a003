// PM timer reads per second, the same register (q35, PMBASE 0x600, `inl 0x608`) four ways in one
// run: the model's device read in process, the port bus in process, the qtest text protocol in
// process (QtestServer.handle), hvsim's own qtest server as a separate process (`hvsim qtest`),
// and a qtest-enabled QEMU 7.2 (`-accel qtest -qtest stdio`). Reference: QEMU's round trip.
// Goal (issue 14): hvsim's qtest server >= 1.5x QEMU's round trip, one command at a time; the
// in-process reads aim at >= 1000x. The "pipelined" cases write PIPELINE commands in one write(2)
// and read all the replies: one call is PIPELINE commands, so commands/s = hz x PIPELINE.
//
// The harness runs synchronous cases only, so a round trip is made synchronous: each child's
// stdin and stdout are named pipes (FIFOs) that this process opens with ordinary blocking file
// descriptors, and a case is one write(2) of the command plus blocking read(2)s up to the reply's
// newline — one real request/response per call, no batching, no event loop in between.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bench } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import { findAcpiPm } from "../../sim/devices/pmtimer/acpi-pm.ts";
import { QtestServer } from "../../sim/qtest/server.ts";
import { findQtestQemu, Q35_QTEST_ARGS } from "../../sim/targets/qtest/client.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const ENABLE_PM = ["outl 0xcf8 0x8000f840", "outl 0xcfc 0x601", "outl 0xcf8 0x8000f844", "outb 0xcfc 0x80", "clock_step 1000000000"];
const INL = Buffer.from("inl 0x608\n");
/** Commands per pipelined call. */
export const PIPELINE = 64;
const INL_BATCH = Buffer.from("inl 0x608\n".repeat(PIPELINE));

/** A child speaking qtest over two FIFOs, driven with blocking reads and writes. */
class SyncQtest {
  private readonly w: number;
  private readonly r: number;
  private readonly buf = Buffer.alloc(4096);
  readonly child: ChildProcess;

  constructor(dir: string, name: string, command: string, args: readonly string[]) {
    const inPath = join(dir, `${name}.in`);
    const outPath = join(dir, `${name}.out`);
    const mk = spawnSync("mkfifo", [inPath, outPath]);
    if (mk.status !== 0) throw new Error(`mkfifo failed: ${mk.stderr?.toString() ?? mk.error?.message}`);
    // Opening one end of a FIFO blocks until the other end is open; O_RDWR never blocks on Linux,
    // so hold one while the child's end and then this process's own end are opened.
    const inHold = openSync(inPath, constants.O_RDWR);
    const childIn = openSync(inPath, constants.O_RDONLY);
    const outHold = openSync(outPath, constants.O_RDWR);
    const childOut = openSync(outPath, constants.O_WRONLY);
    this.child = spawn(command, [...args], { stdio: [childIn, childOut, "ignore"], cwd: REPO });
    this.child.unref();
    this.w = openSync(inPath, constants.O_WRONLY);
    this.r = openSync(outPath, constants.O_RDONLY);
    for (const fd of [inHold, childIn, outHold, childOut]) closeSync(fd);
  }

  /** Sends one command line (with its newline) and returns the reply line. */
  roundTrip(line: Buffer): string {
    writeSync(this.w, line);
    let got = 0;
    for (;;) {
      const n = readSync(this.r, this.buf, got, this.buf.length - got, null);
      if (n === 0) throw new Error("the qtest process closed its output");
      got += n;
      if (this.buf[got - 1] === 0x0a) break;
    }
    return this.buf.toString("latin1", 0, got - 1);
  }

  /** Writes `lines` commands at once (one buffer) and reads until that many replies have arrived. */
  pipelined(batch: Buffer, lines: number): string {
    writeSync(this.w, batch);
    let got = 0;
    let seen = 0;
    while (seen < lines) {
      const n = readSync(this.r, this.buf, got, this.buf.length - got, null);
      if (n === 0) throw new Error("the qtest process closed its output");
      for (let i = got; i < got + n; i++) if (this.buf[i] === 0x0a) seen++;
      got += n;
    }
    return this.buf.toString("latin1", got - 12, got - 1);
  }

  command(line: string): string {
    return this.roundTrip(Buffer.from(line + "\n"));
  }

  close(): void {
    try {
      closeSync(this.w);
      closeSync(this.r);
    } catch {
      // already closed
    }
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

// In-process: a q35 bench with the PM block mapped at 0x600, one second into the run.
const bench = new Bench(MACHINES.q35!, defaultKinds(), { trace: false });
const server = new QtestServer(bench);
for (const l of ENABLE_PM) server.handle(l);
const pm = findAcpiPm(bench);

let hvsim: SyncQtest | undefined;
let qemu: SyncQtest | undefined;
let dir: string | undefined;
let sink = "";

function cleanup(): void {
  hvsim?.close();
  qemu?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

function expectCounter(name: string, reply: string): void {
  if (reply !== "OK 0x369e99") throw new Error(`${name}: inl 0x608 at 1 s answered '${reply}', expected 'OK 0x369e99' (QEMU 7.2)`);
}

export const suite = {
  name: "qtest: PM timer read round trip",
  reference: "qemu qtest inl",
  goal: 1.5,
  goalNote: `hvsim's qtest server >= 1.5x QEMU's qtest round trip (one command at a time); pipelined cases are ${PIPELINE} commands per call; in-process reads aim at >= 1000x`,
  available(): true | string {
    const q = findQtestQemu();
    if ("reason" in q) return q.reason;
    if (spawnSync("mkfifo", ["--version"]).status !== 0) return "mkfifo (coreutils) is not available";
    return true;
  },
  setup(): void {
    const q = findQtestQemu();
    if (!("path" in q)) throw new Error(q.reason);
    dir = mkdtempSync(join(tmpdir(), "hvsim-bench-qtest-"));
    process.once("exit", cleanup);
    hvsim = new SyncQtest(dir, "hvsim", process.execPath, [join(REPO, "sim/cli/bin.mjs"), "qtest", "--machine", "q35"]);
    qemu = new SyncQtest(dir, "qemu", q.path, Q35_QTEST_ARGS);
    for (const t of [hvsim, qemu]) for (const l of ENABLE_PM) t.command(l);
    expectCounter("hvsim qtest", hvsim.roundTrip(INL));
    expectCounter("qemu qtest", qemu.roundTrip(INL));
    expectCounter("in process", `OK 0x${pm.counter().toString(16)}`);
    for (const [name, t] of [["hvsim qtest pipelined", hvsim], ["qemu qtest pipelined", qemu]] as const) expectCounter(name, t.pipelined(INL_BATCH, PIPELINE));
  },
  cases: {
    "model device read": () => pm.counter(),
    "model port read": () => bench.ports.in(0x608, 4),
    "model qtest line (in process)": () => (sink = server.handle("inl 0x608")[0]!),
    "hvsim qtest server (process)": () => (sink = hvsim!.roundTrip(INL)),
    "qemu qtest inl": () => (sink = qemu!.roundTrip(INL)),
    [`hvsim qtest server pipelined x${PIPELINE} (process)`]: () => (sink = hvsim!.pipelined(INL_BATCH, PIPELINE)),
    [`qemu qtest inl pipelined x${PIPELINE}`]: () => (sink = qemu!.pipelined(INL_BATCH, PIPELINE)),
  },
};

export function lastReply(): string {
  return sink;
}
