// The qtest:<command> conformance target (sim/targets/qtest/target.ts) and `hvsim qtest --socket`.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadChecks, makeTarget, REPO_ROOT, runConformance } from "../../sim/conform/runner.ts";
import { defaultTargetNames } from "../../sim/conform/targets.ts";
import { findQtestQemu, QtestClient } from "../../sim/targets/qtest/client.ts";
import { qtestTarget, resolveQtestCommand, splitCommand } from "../../sim/targets/qtest/target.ts";
import "../../sim/targets/index.ts";
import { runClient, runInProcess, SCRIPT } from "./script.ts";

const work = mkdtempSync(join(tmpdir(), "hvsim-qtest-target-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("qtest:<command> target", () => {
  it("splits the command like sh: quotes, escapes, runs of blanks", () => {
    expect(splitCommand(`/q/qemu -machine q35,pit=off  -name 'a b' -x "c \\"d\\"" e\\ f`)).toEqual(["/q/qemu", "-machine", "q35,pit=off", "-name", "a b", "-x", 'c "d"', "e f"]);
    expect(() => splitCommand("qemu 'open")).toThrow(/unterminated/);
  });

  it("is unavailable, with the reason, when the program is not there", async () => {
    const t = qtestTarget("/nonexistent/qemu-system-x86_64 -qtest stdio");
    expect(await t.available()).toMatch(/not an executable program/);
    expect("reason" in resolveQtestCommand("")).toBe(true);
  });

  it("implements q35 unless declared otherwise: the bhyve checks do not apply", async () => {
    const t = makeTarget(`qtest:${process.execPath} ${REPO_ROOT}sim/cli/bin.mjs qtest`, 1)!;
    expect(t.capabilities.has("machine:q35")).toBe(true);
    expect(t.capabilities.has("machine:bhyve")).toBe(false);
    await expect(t.openQtest!("bhyve")).rejects.toThrow(/implements the q35 machine, not bhyve/);
  });

  it("runs the conformance checks on hvsim's own qtest server as a process, all equal to the model", async () => {
    const t = makeTarget(`qtest:${process.execPath} ${REPO_ROOT}sim/cli/bin.mjs qtest --machine q35`, 1)!;
    expect(await t.available()).toBe(true);
    const checks = (await loadChecks()).filter((c) => c.needs.includes("machine:q35"));
    expect(checks.length).toBeGreaterThan(3);
    const r = await runConformance([t], checks, { seed: 1 });
    const bad = r.targets[0]!.results.filter((x) => x.outcome.status === "failed").map((x) => `${x.id}: ${x.outcome.status === "failed" ? x.outcome.detail : ""}`);
    expect(bad).toEqual([]);
  }, 120_000);

  it("is a default candidate exactly when findQtestQemu() finds a QEMU", async () => {
    const names = await defaultTargetNames();
    expect(names.includes("qtest:qemu")).toBe("path" in findQtestQemu());
  });
});

describe("hvsim qtest --socket", () => {
  it("serves one client on a UNIX socket with the same replies, and exits when it disconnects", async () => {
    const path = join(work, "hvsim.qtest");
    const child = spawn(process.execPath, [`${REPO_ROOT}sim/cli/bin.mjs`, "qtest", "--socket", path], { stdio: ["ignore", "ignore", "pipe"] });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const c = await QtestClient.connect(path, { child, timeoutMs: 30_000, connectTimeoutMs: 30_000 });
    expect(await runClient(c, SCRIPT)).toEqual(runInProcess(SCRIPT));
    expect(await exited).toBe(0);
  }, 60_000);
});
