// hvsim's qtest server: the same script through the server in process, through `hvsim qtest`
// as a child process (what a qtest tool sees), and through a qtest-enabled QEMU 7.2 (skipped, with
// the reason in the test name, when findQtestQemu() finds none): identical transcripts, and the
// golden replies (QEMU 7.2 observations, see script.ts) where given.
import { describe, expect, it } from "vitest";
import { findQtestQemu, QtestClient } from "../../sim/targets/qtest/client.ts";
import { runClient, runInProcess, SCRIPT, spawnHvsimQtest } from "./script.ts";

const inProcess = runInProcess(SCRIPT);
const replies = (t: string[]) => t.filter((l) => !l.startsWith("IRQ "));

describe("hvsim qtest server", () => {
  it("holds the golden replies in process", () => {
    const got = replies(inProcess);
    expect(got).toHaveLength(SCRIPT.length);
    SCRIPT.forEach((l, i) => {
      if (l.golden !== undefined) expect(`${l.cmd} -> ${got[i]}`).toBe(`${l.cmd} -> ${l.golden}`);
    });
  });

  it("raises the SCI at the overflow timer and lowers it when TMR_STS is cleared", () => {
    // Relative order in the transcript: raise right before the reply of the first bare clock_step.
    const i = SCRIPT.findIndex((l, k) => l.cmd === "clock_step" && k > 40);
    const at = inProcess.indexOf("IRQ raise 9");
    expect(at).toBeGreaterThan(0);
    expect(replies(inProcess.slice(0, at))).toHaveLength(i);
    // QEMU's first overflow after clearing TMR_STS at t < 2^23 ticks: tick 0x800000 = 2,343,484,437 ns (hw/acpi/core.c).
    expect(inProcess[at + 1]).toBe("OK 2343484437");
    expect(inProcess).toContain("IRQ lower 9");
  });

  it("gives identical replies through `hvsim qtest` on stdio", async () => {
    const got = await runClient(spawnHvsimQtest("q35"), SCRIPT);
    expect(got).toEqual(inProcess);
  }, 60_000);

  it("answers a pipelined batch (many commands in one write) in order", async () => {
    const c = spawnHvsimQtest("q35");
    const cmds = ["outl 0xcf8 0x8000f840", "outl 0xcfc 0x601", "outl 0xcf8 0x8000f844", "outb 0xcfc 0x80"];
    for (let i = 0; i < 200; i++) cmds.push(`clock_step ${1000 + i}`, "inl 0x608");
    const all = await Promise.all(cmds.map((l) => c.command(l)));
    await c.close();
    expect(all).toEqual(runInProcess(cmds.map((cmd) => ({ cmd }))));
  }, 60_000);
});

const qemu = findQtestQemu();
const qemuPath = "path" in qemu ? qemu.path : undefined;
const why = "reason" in qemu ? qemu.reason : "";

describe.skipIf(!qemuPath)(`hvsim qtest vs a qtest QEMU 7.2${qemuPath ? "" : ` (skipped: ${why})`}`, () => {
  it("replies and IRQ lines are identical, line for line", async () => {
    const [q, h] = await Promise.all([runClient(QtestClient.spawnQ35(qemuPath!, [], { timeoutMs: 30_000 }), SCRIPT), runClient(spawnHvsimQtest("q35"), SCRIPT)]);
    expect(h).toEqual(q);
  }, 90_000);
});
