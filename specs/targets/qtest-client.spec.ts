// The qtest protocol client (sim/targets/qtest/client.ts). The first part runs everywhere against
// stand-ins made of `sh`, `sleep` and `true`; the second part runs against a qtest-enabled QEMU
// (scripts/build-qemu-qtest.sh, or HVSIM_QEMU_QTEST) and is skipped, with the reason in its name,
// when there is none.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  findQtestQemu,
  q35QtestArgs,
  Q35_QTEST_ARGS,
  QtestClient,
  QtestError,
  type QtestIrqEvent,
  type QtestSpawnOptions,
} from "../../sim/targets/qtest/client.ts";

const clients: QtestClient[] = [];
function track(c: QtestClient): QtestClient {
  clients.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

const work = mkdtempSync(join(tmpdir(), "hvsim-qtest-spec-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** True once the process is gone and reaped (kill(pid, 0) fails with ESRCH). */
function reaped(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

async function rejection(p: Promise<unknown>): Promise<QtestError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(QtestError);
    return err as QtestError;
  }
  throw new Error("expected a rejection");
}

// A stand-in target: logs every command line to $1, answers like QEMU's qtest would for a few.
const FAKE = `
log=$1
while IFS= read -r l; do
  printf '%s\\n' "$l" >> "$log"
  case "$l" in
    "inl 0x608") printf 'IRQ raise 9\\nOK 0x369e99\\n' ;;
    "inb 0x71") printf 'OK 0x00ab\\n' ;;
    "inw 0x600") printf 'OK 0x0001\\n' ;;
    "inl 0x9000") printf 'OK 0xffffffff\\n' ;;
    "inl 0x1") printf 'OK 0x1ffffffff\\n' ;;
    "readb "*) printf 'OK 0x00000000000000ff\\n' ;;
    "readw "*) printf 'OK 0x000000000000beef\\n' ;;
    "readl "*) printf 'OK 0x00000000deadbeef\\n' ;;
    "readq "*) printf 'OK 0xffffffffffffffff\\n' ;;
    "read 0x0 0x3") printf 'OK 0x0102ff\\n' ;;
    "read 0x0 0x4") printf 'OK 0x0102\\n' ;;
    "b64read 0x0 0x2") printf 'OK AQI=\\n' ;;
    "clock_step") printf 'OK 2343484437\\n' ;;
    "clock_step 99") printf 'OK soon\\n' ;;
    "outb 0x71 0x0") printf 'OK 0x00\\n' ;;
    "b64read 0x0 0x3") printf 'OK AQI=\\n' ;;
    "clock_step "*|"clock_set "*) printf 'OK %s\\n' "\${l#* }" ;;
    "irq_intercept_in "*) printf 'OK\\n' ;;
    "lower") printf 'IRQ lower 9\\nOK\\n' ;;
    "bogus"*) printf "FAIL Unknown command '%s'\\n" "\${l%% *}" ;;
    "write 0x1 0x2 0x") printf 'ERR invalid argument size\\n' ;;
    "hello") printf 'hello there\\n' ;;
    "twice") printf 'OK\\nOK\\n' ;;
    "exit "*) printf 'going\\n' >&2; exit "\${l#exit }" ;;
    *) printf 'OK\\n' ;;
  esac
done
`;

let fakeCount = 0;
function fake(options: QtestSpawnOptions = {}): { client: QtestClient; log: () => string[] } {
  const logPath = join(work, `fake-${++fakeCount}.log`);
  writeFileSync(logPath, "");
  const client = track(QtestClient.spawn("sh", ["-c", FAKE, "sh", logPath], options));
  return { client, log: () => readFileSync(logPath, "utf8").split("\n").filter((l) => l !== "") };
}

describe("qtest client against stand-in processes", () => {
  it("returns raw reply lines in order, one command in flight, IRQ lines apart with their reply position", async () => {
    const seen: QtestIrqEvent[] = [];
    const { client, log } = fake({ onIrq: (e) => seen.push(e) });
    // Issued together: queued, sent one at a time, answered in order.
    const replies = await Promise.all([
      client.command("outb 0x70 0x1"),
      client.command("inl 0x608"),
      client.command("bogus 1"),
      client.command("lower"),
    ]);
    expect(replies).toEqual(["OK", "OK 0x369e99", "FAIL Unknown command 'bogus'", "OK"]);
    expect(log()).toEqual(["outb 0x70 0x1", "inl 0x608", "bogus 1", "lower"]);
    expect(client.replyCount).toBe(4);
    const expected = [
      { level: "raise", irq: 9, afterReplies: 1, during: "inl 0x608", raw: "IRQ raise 9" },
      { level: "lower", irq: 9, afterReplies: 3, during: "lower", raw: "IRQ lower 9" },
    ];
    expect(client.irqEvents).toEqual(expected);
    expect(seen).toEqual(expected);
    expect(client.takeIrqEvents()).toEqual(expected);
    expect(client.irqEvents).toEqual([]);
  });

  it("formats typed commands as QEMU's qtest expects and parses their replies", async () => {
    const { client, log } = fake();
    expect(await client.inb(0x71)).toBe(0xab);
    expect(await client.inw(0x600)).toBe(1);
    expect(await client.inl(0x9000)).toBe(0xffffffff);
    await client.outb(0x70, 0x8f);
    await client.outw(0x602, 0x1);
    await client.outl(0xcf8, 0x8000f840);
    expect(await client.readb(0x1000)).toBe(0xff);
    expect(await client.readw(0x1000)).toBe(0xbeef);
    expect(await client.readl(0x1000n)).toBe(0xdeadbeef);
    expect(await client.readq(0xfee00000)).toBe(0xffffffffffffffffn);
    await client.writeb(0x10, 0x1);
    await client.writew(0x10, 0x1234);
    await client.writel(0x10, 0xffffffff);
    await client.writeq(0xffff_ffff_ffff_fff8n, 0x1122334455667788n);
    expect(await client.read(0, 3)).toEqual(new Uint8Array([1, 2, 0xff]));
    await client.write(0x20, new Uint8Array([0xde, 0xad]));
    expect(await client.b64read(0, 2)).toEqual(new Uint8Array([1, 2]));
    await client.b64write(0x20, new Uint8Array([1, 2]));
    await client.memset(0x20, 16, 0xaa);
    expect(await client.clockStep()).toBe(2343484437);
    expect(await client.clockStep(1_000_000_000)).toBe(1_000_000_000);
    expect(await client.clockSet(5_686_000_280n)).toBe(5_686_000_280);
    await client.irqInterceptIn("ioapic");
    await client.irqInterceptOut("/machine/unattached/device[0]");
    expect(await client.commandOk("inl 0x608")).toBe("0x369e99");
    expect(log()).toEqual([
      "inb 0x71", "inw 0x600", "inl 0x9000", "outb 0x70 0x8f", "outw 0x602 0x1", "outl 0xcf8 0x8000f840",
      "readb 0x1000", "readw 0x1000", "readl 0x1000", "readq 0xfee00000",
      "writeb 0x10 0x1", "writew 0x10 0x1234", "writel 0x10 0xffffffff", "writeq 0xfffffffffffffff8 0x1122334455667788",
      "read 0x0 0x3", "write 0x20 0x2 0xdead", "b64read 0x0 0x2", "b64write 0x20 0x2 AQI=", "memset 0x20 0x10 0xaa",
      "clock_step", "clock_step 1000000000", "clock_set 5686000280",
      "irq_intercept_in ioapic", "irq_intercept_out /machine/unattached/device[0]", "inl 0x608",
    ]);
  });

  it("reports FAIL and ERR replies as errors naming the command, and stays usable", async () => {
    const { client } = fake();
    const e = await rejection(client.commandOk("bogus 1 2"));
    expect(e.kind).toBe("fail");
    expect(e.command).toBe("bogus 1 2");
    expect(e.reply).toBe("FAIL Unknown command 'bogus'");
    expect(e.message).toContain(`"bogus 1 2"`);
    const err = await rejection(client.commandOk("write 0x1 0x2 0x"));
    expect(err).toMatchObject({ kind: "fail", reply: "ERR invalid argument size" });
    expect(await client.inl(0x608)).toBe(0x369e99);
  });

  it("reports unexpected replies as malformed, naming the command", async () => {
    const { client } = fake();
    expect(await client.command("hello")).toBe("hello there");
    const e1 = await rejection(client.commandOk("hello"));
    expect(e1).toMatchObject({ kind: "malformed", command: "hello", reply: "hello there" });
    const e2 = await rejection(client.outb(0x71, 0)); // answered "OK 0x00" where a bare "OK" is due
    expect(e2).toMatchObject({ kind: "malformed", reply: "OK 0x00" });
    expect(e2.message).toContain("outb 0x71 0x0");
    const e3 = await rejection(client.inl(0x1)); // 33-bit value
    expect(e3).toMatchObject({ kind: "malformed", command: "inl 0x1" });
    const e4 = await rejection(client.read(0, 4)); // two bytes for four
    expect(e4).toMatchObject({ kind: "malformed", command: "read 0x0 0x4", reply: "OK 0x0102" });
    const e5 = await rejection(client.clockStep(99)); // answered "OK soon"
    expect(e5).toMatchObject({ kind: "malformed", command: "clock_step 99" });
    const e6 = await rejection(client.b64read(0, 3)); // answered "OK AQI=": two bytes for three
    expect(e6).toMatchObject({ kind: "malformed", command: "b64read 0x0 0x3" });
    expect(await client.inb(0x71)).toBe(0xab); // a malformed reply still was that command's reply
  });

  it("refuses to go on after a line that no command asked for", async () => {
    const { client } = fake();
    expect(await client.command("twice")).toBe("OK");
    await new Promise((r) => setTimeout(r, 100)); // let the second OK arrive
    const e = await rejection(client.command("inb 0x71"));
    expect(e).toMatchObject({ kind: "malformed", command: "inb 0x71", reply: "OK" });
    expect((await rejection(client.command("inb 0x71"))).kind).toBe("unusable");
  });

  it("rejects arguments the protocol cannot carry without sending anything", async () => {
    const { client, log } = fake();
    expect((await rejection(client.command("inb 0x71\ninb 0x71"))).kind).toBe("argument");
    const bad: [Promise<unknown>, RegExp][] = [
      [client.inb(0x10000), /port must be in 0\.\.0xffff/],
      [client.outb(0x70, 0x100), /8-bit/],
      [client.outl(0x70, -1), /32-bit/],
      [client.readq(-1), /address/],
      [client.read(0, 0), /size/], // QEMU would abort on a g_assert
      [client.write(0, new Uint8Array()), /size/],
      [client.irqInterceptIn("two words"), /QOM path/],
      [client.clockSet(-5), /ns/],
    ];
    for (const [p, message] of bad) {
      const e = await rejection(p);
      expect(e.kind).toBe("argument");
      expect(e.message).toMatch(message);
    }
    expect(await client.inb(0x71)).toBe(0xab);
    expect(log()).toEqual(["inb 0x71"]);
  });

  it("times out on a process that never answers, then refuses further commands; close() reaps it", async () => {
    const client = track(QtestClient.spawn("sleep", ["100"], { timeoutMs: 300, closeGraceMs: 200 }));
    const queued = client.command("inl 0x608");
    const second = client.command("inb 0x71");
    const e = await rejection(queued);
    expect(e.kind).toBe("timeout");
    expect(e.command).toBe("inl 0x608");
    expect(e.message).toMatch(/no reply to "inl 0x608" within 300 ms/);
    expect(await rejection(second)).toMatchObject({ kind: "unusable", command: "inb 0x71" });
    expect((await rejection(client.inb(0x71))).message).toMatch(/timed out/);
    const pid = client.pid!;
    expect(reaped(pid)).toBe(false);
    const exit = await client.close();
    expect(exit).toEqual({ code: null, signal: "SIGTERM" }); // sleep ignores stdin closing
    expect(reaped(pid)).toBe(true);
  });

  it("reports a process that dies, with its exit code and last stderr lines", async () => {
    const t = track(QtestClient.spawn("true"));
    const e = await rejection(t.command("inl 0x608"));
    expect(e.kind).toBe("exited");
    expect(e.message).toMatch(/exited with code 0/);
    expect(e.message).toContain("inl 0x608");
    expect(t.exitStatus).toEqual({ code: 0, signal: null });

    const { client } = fake();
    expect(await client.inb(0x71)).toBe(0xab);
    const dying = client.command("exit 7");
    const queued = client.command("inb 0x71");
    const e2 = await rejection(dying);
    expect(e2).toMatchObject({ kind: "exited", command: "exit 7" });
    expect(e2.message).toMatch(/exited with code 7/);
    expect(e2.message).toMatch(/last stderr lines:\n {2}going/);
    expect(await rejection(queued)).toMatchObject({ kind: "exited", command: "inb 0x71" });
    expect(client.stderrLines()).toEqual(["going"]);
    expect(await client.close()).toEqual({ code: 7, signal: null });

    const killed = track(QtestClient.spawn("sh", ["-c", "kill -KILL $$"]));
    expect((await rejection(killed.command("inb 0x71"))).message).toMatch(/killed by SIGKILL/);
  });

  it("reports a command that cannot be started", async () => {
    const client = track(QtestClient.spawn(join(work, "no-such-qemu")));
    const e = await rejection(client.command("inb 0x71"));
    expect(e.kind).toBe("spawn");
    expect(e.message).toMatch(/ENOENT/);
    expect(await client.close()).toBeUndefined();
  });

  it("close() rejects queued commands and SIGKILLs a process that ignores SIGTERM", async () => {
    const client = track(QtestClient.spawn("sh", ["-c", "trap '' TERM; exec sleep 100"], { closeGraceMs: 150 }));
    const pending = client.command("inb 0x71");
    const closing = client.close();
    expect(await rejection(pending)).toMatchObject({ kind: "closed", command: "inb 0x71" });
    expect(await closing).toEqual({ code: null, signal: "SIGKILL" });
    expect(await client.close()).toEqual({ code: null, signal: "SIGKILL" });
    expect(reaped(client.pid!)).toBe(true);
    expect((await rejection(client.inb(0x71))).kind).toBe("closed");
  });

  it("speaks the protocol over a UNIX socket", async () => {
    const path = join(work, "qtest.sock");
    const lines: string[] = [];
    let peer: Socket | undefined;
    const server: Server = createServer((s) => {
      peer = s;
      let buf = "";
      s.setEncoding("utf8");
      s.on("data", (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const l = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          lines.push(l);
          if (l === "clock_step 10") s.write("IRQ raise 4\nOK 10\n");
          else if (l === "bye") s.end();
          else s.write("OK 0x0001\n");
        }
      });
    });
    const connecting = QtestClient.connect(path, { connectTimeoutMs: 5000 }); // before the server listens
    await new Promise((r) => setTimeout(r, 120));
    await new Promise<void>((r) => server.listen(path, r));
    const client = track(await connecting);
    expect(client.pid).toBeUndefined();
    expect(await client.inw(0x600)).toBe(1);
    expect(await client.clockStep(10)).toBe(10);
    expect(client.irqEvents).toEqual([{ level: "raise", irq: 4, afterReplies: 1, during: "clock_step 10", raw: "IRQ raise 4" }]);
    expect((await rejection(client.command("bye"))).message).toMatch(/closed the connection/);
    expect(lines).toEqual(["inw 0x600", "clock_step 10", "bye"]);
    expect(await client.close()).toBeUndefined();
    peer?.destroy();
    await new Promise((r) => server.close(r));

    const e = await rejection(QtestClient.connect(join(work, "nobody.sock"), { connectTimeoutMs: 100 }));
    expect(e.kind).toBe("spawn");
    expect(e.message).toMatch(/nobody\.sock/);
  });

  it("findQtestQemu explains what is missing", () => {
    const empty = mkdtempSync(join(work, "cache-"));
    const none = findQtestQemu({ env: { HVSIM_CACHE: empty, HOME: empty } });
    expect("reason" in none && none.reason).toMatch(/no qtest-enabled QEMU in .*qemu-qtest: run scripts\/build-qemu-qtest\.sh/);
    const notExe = join(work, "not-executable");
    writeFileSync(notExe, "");
    const bad = findQtestQemu({ env: { HVSIM_QEMU_QTEST: notExe } });
    expect("reason" in bad && bad.reason).toMatch(/HVSIM_QEMU_QTEST=.* is not an executable file/);
    // An executable that does not speak qtest: `true` exits without answering.
    const dud = join(work, "dud");
    writeFileSync(dud, "#!/bin/sh\nexit 0\n");
    chmodSync(dud, 0o755);
    const r = findQtestQemu({ env: { HVSIM_QEMU_QTEST: dud } });
    expect("reason" in r && r.reason).toMatch(/does not work as a qtest QEMU: probe `clock_step 7` answered ""/);
    expect(findQtestQemu({ env: { HVSIM_QEMU_QTEST: dud }, verify: false })).toEqual({ path: dud });
  });

  it("builds the standard q35 argument list", () => {
    expect(Q35_QTEST_ARGS.join(" ")).toBe(
      "-machine q35,pit=off,hpet=off -accel qtest -display none -nodefaults -qtest stdio -qtest-log /dev/null " +
        "-L /usr/share/qemu -bios /usr/share/seabios/bios-256k.bin",
    );
    expect(q35QtestArgs(["-m", "64"]).slice(-2)).toEqual(["-m", "64"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Against a real qtest-enabled QEMU.

const qemu = findQtestQemu();
const qemuPath = "path" in qemu ? qemu.path : undefined;
const qemuTitle = qemuPath
  ? `qtest client against QEMU (${qemuPath})`
  : `qtest client against QEMU — SKIPPED: ${"reason" in qemu ? qemu.reason : ""}`;

describe.skipIf(!qemuPath)(qemuTitle, () => {
  const start = () => track(QtestClient.spawnQ35(qemuPath!, [], { timeoutMs: 20_000, closeGraceMs: 500 }));

  // ICH9 LPC (00:1f.0) config space through 0xcf8/0xcfc: PMBASE (0x40) = 0x600, ACPI_CNTL (0x44) = ACPI_EN.
  async function enablePmBlock(c: QtestClient): Promise<void> {
    expect(await c.command("outl 0xcf8 0x8000f840")).toBe("OK");
    expect(await c.command("outl 0xcfc 0x601")).toBe("OK");
    expect(await c.command("outl 0xcf8 0x8000f844")).toBe("OK");
    expect(await c.command("outb 0xcfc 0x80")).toBe("OK");
  }

  it("reads the ACPI PM timer at the golden virtual times", async () => {
    // Golden values: replies observed on a qtest-enabled QEMU 7.2 (QEMU hw/acpi/core.c) (a real
    // QEMU 7.2 run, Debian 7.2+dfsg-7+deb12u18 built by scripts/build-qemu-qtest.sh):
    // 1e9 ns -> 0x369e99; 1000000279 ns -> 0x369e99; 1000000280 ns -> 0x369e9a; 5686000280 ns -> 0x36910d.
    const c = start();
    await enablePmBlock(c);
    expect(await c.command("clock_step 1000000000")).toBe("OK 1000000000");
    expect(await c.command("inl 0x608")).toBe("OK 0x369e99");
    expect(await c.clockSet(1_000_000_279)).toBe(1_000_000_279);
    expect(await c.command("inl 0x608")).toBe("OK 0x369e99");
    expect(await c.clockSet(1_000_000_280)).toBe(1_000_000_280);
    expect(await c.inl(0x608)).toBe(0x369e9a);
    expect(await c.command("clock_set 5686000280")).toBe("OK 5686000280");
    expect(await c.inl(0x608)).toBe(0x36910d);
  });

  it("reads all ones from unmapped ports", async () => {
    const c = start();
    // The PM block is not mapped before PMBASE/ACPI_EN are programmed; nothing decodes 0x9000.
    expect(await c.command("inl 0x608")).toBe("OK 0xffffffff");
    expect(await c.command("inl 0x9000")).toBe("OK 0xffffffff");
    expect(await c.command("inb 0x9000")).toBe("OK 0x00ff");
    expect(await c.inw(0x9000)).toBe(0xffff);
  });

  it("answers FAIL to a bogus command and goes on", async () => {
    const c = start();
    expect(await c.command("bogus 1 2")).toBe("FAIL Unknown command 'bogus'");
    expect(await rejection(c.commandOk("bogus"))).toMatchObject({ kind: "fail", command: "bogus", reply: "FAIL Unknown command 'bogus'" });
    expect(await c.clockStep(5)).toBe(5);
  });

  it("sees the PM timer SCI as an intercepted IRQ line, before the reply of the clock_step that caused it", async () => {
    const c = start();
    await enablePmBlock(c);
    await c.irqInterceptIn("ioapic");
    expect(await c.inw(0x600)).toBe(0x0001); // TMR_STS set right after reset
    await c.outw(0x600, 0x0001); // clear TMR_STS: next overflow at tick 0x800000
    await c.outw(0x602, 0x0001); // TMR_EN
    const before = c.replyCount;
    expect(await c.clockStep(2_343_484_436)).toBe(2_343_484_436);
    expect(c.irqEvents).toEqual([]);
    expect(await c.clockStep(1)).toBe(2_343_484_437); // tick 0x800000 = 2,343,484,437 ns (pmtimer.md)
    expect(c.irqEvents).toEqual([{ level: "raise", irq: 9, afterReplies: before + 1, during: "clock_step 1", raw: "IRQ raise 9" }]);
  });

  it("speaks qtest over a UNIX socket served by QEMU, and close() reaps the QEMU it was given", async () => {
    const path = join(work, "qemu-qtest.sock");
    const args = Q35_QTEST_ARGS.map((a, i) => (Q35_QTEST_ARGS[i - 1] === "-qtest" ? `unix:${path},server=on,wait=off` : a));
    const child = spawn(qemuPath!, args, { stdio: ["ignore", "ignore", "pipe"] });
    const c = track(await QtestClient.connect(path, { child, closeGraceMs: 500, timeoutMs: 20_000 }));
    expect(c.pid).toBe(child.pid);
    expect(await c.command("clock_step 1000000000")).toBe("OK 1000000000");
    expect(await c.command("inl 0x608")).toBe("OK 0xffffffff");
    await c.close();
    expect(reaped(child.pid!)).toBe(true);
  });

  it("close() reaps QEMU, which lingers after its stdin closes", async () => {
    const c = start();
    expect(await c.readq(0)).toBe(0n);
    await c.writeq(0x1000, 0x1122334455667788n);
    expect(await c.read(0x1000, 8)).toEqual(new Uint8Array([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]));
    expect(await c.b64read(0x1000, 2)).toEqual(new Uint8Array([0x88, 0x77]));
    const pid = c.pid!;
    expect(reaped(pid)).toBe(false);
    const exit = await c.close();
    expect(exit?.signal === "SIGTERM" || exit?.code === 0).toBe(true);
    expect(reaped(pid)).toBe(true);
  });
});
