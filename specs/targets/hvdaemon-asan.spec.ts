// hv-daemon:<service>=<program> and the sanitized daemons (sim/targets/hvdaemon/sanitized.ts):
// - any daemon binary runs behind the same bridge and sandbox; a missing or non-executable one
//   makes the target unavailable with the reason;
// - a sanitizer report of the daemon fails the check that was running, and the failure's detail
//   names the report (a tiny daemon compiled here with -fsanitize=address that registers like
//   hv_kvp_daemon and then overflows a stack buffer on the first SET);
// - the daemons scripts/build-hv-daemons.sh builds from Debian's linux-source-6.1 with ASan+UBSan
//   (hv-daemon:kvp=asan) pass the kvp suite's checks, and the reports they print on the
//   differential's deviation ops are the named debian-6.1 deviations, nothing else.
// Skipped with the reason where the bridge cannot run, or the sanitized build does not exist (CI
// builds it in .ci/run).
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeTarget, runConformance } from "../../sim/conform/runner.ts";
import { defaultTargetNames } from "../../sim/conform/targets.ts";
import type { Check } from "../../sim/conform/types.ts";
import { DaemonBridge } from "../../sim/targets/hvdaemon/bridge.ts";
import { compileCProgram } from "../../sim/targets/hvdaemon/build.ts";
import { DaemonFuzzer } from "../../sim/targets/hvdaemon/fuzz.ts";
import { elfNeeded, explainReport, findSanitizedDaemons, sanitizerPreload, type SanitizerReport } from "../../sim/targets/hvdaemon/sanitized.ts";
import { daemonAvailable, openRealHyperv, parseDaemonSpec } from "../../sim/targets/hvdaemon/target.ts";
import "../../sim/targets/index.ts";
import { checks as kvpChecks } from "../hyperv/kvp.check.ts";
import { checks as diffChecks } from "../hyperv/differential.check.ts";
import { kvpMsg } from "./kvp-msg.ts";

const tools = DaemonBridge.toolsAvailable();
const noTools = !tools.ok;
const whyTools = tools.ok ? "" : ` [skipped: ${tools.reason}]`;
const built = findSanitizedDaemons();
const noBuild = "reason" in built;
const whyBuild = noTools ? whyTools : "reason" in built ? ` [skipped: ${built.reason}]` : "";

const scratch = mkdtempSync(join(tmpdir(), "hvsim-asan-spec-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * A KVP "daemon" with a deliberate bug: it registers as hv_kvp_daemon does (one 7432-byte
 * struct hv_kvp_msg with operation KVP_OP_REGISTER1, then reads the kernel's reply), and on the
 * first KVP_OP_SET copies the key into an 8-byte stack buffer with 16 bytes too many.
 * Layout and constants from <linux/hyperv.h> (the installed uapi header).
 */
const BUGGY_DAEMON = `
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/hyperv.h>
volatile size_t too_many = 16;
static struct hv_kvp_msg m;
__attribute__((noinline)) static int hvsim_buggy_set(const struct hv_kvp_msg *msg)
{
	char name[8];
	memcpy(name, msg->body.kvp_set.data.key, sizeof(name) + too_many);
	return name[0];
}
int main(void)
{
	int fd = open("/dev/vmbus/hv_kvp", O_RDWR | O_CLOEXEC);
	if (fd < 0) { perror("open"); return 1; }
	memset(&m, 0, sizeof(m));
	m.kvp_hdr.operation = KVP_OP_REGISTER1;
	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m)) { perror("write"); return 1; }
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0) return 1;
		if (read(fd, &m, sizeof(m)) != (ssize_t)sizeof(m)) return 1;
		if (m.kvp_hdr.operation == KVP_OP_SET) hvsim_buggy_set(&m);
		if (m.kvp_hdr.operation != KVP_OP_REGISTER1) {
			m.error = 0x80070103; /* HV_S_CONT */
			if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m)) return 1;
		}
	}
}
`;

let buggy: string | undefined;
function buggyDaemon(): string {
  buggy ??= compileCProgram("hvsim-buggy-kvp", BUGGY_DAEMON, { flags: ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address"] });
  return buggy;
}

const byId = (id: string): Check => [...kvpChecks, ...diffChecks].find((c) => c.id === id)!;

describe("hv-daemon:<service>=<program>", () => {
  it("parses hv-daemon names: Debian's daemon, a program, the sanitized build", () => {
    expect(parseDaemonSpec("hv-daemon:kvp")).toEqual({ service: "kvp" });
    expect(parseDaemonSpec("hv-daemon:vss=/opt/my vss")).toEqual({ service: "vss", program: "/opt/my vss" });
    expect(parseDaemonSpec("hv-daemon:kvp=asan")).toEqual({ service: "kvp", program: "asan" });
    expect(parseDaemonSpec("hv-daemon:fcopy=x")).toBeUndefined();
    expect(makeTarget("hv-daemon:kvp=./d", 1)?.name).toBe("hv-daemon:kvp=./d");
    expect(makeTarget("hv-daemon:vss=asan", 1)?.capabilities.has("vss-daemon")).toBe(true);
  });

  it("a missing, non-executable or empty program makes the target unavailable with the reason", async () => {
    const missing = join(scratch, "no-such-daemon");
    expect(await makeTarget(`hv-daemon:kvp=${missing}`, 1)!.available()).toBe(`${missing} not found`);
    const plain = join(scratch, "not-executable");
    writeFileSync(plain, "#!/bin/sh\n", { mode: 0o644 });
    chmodSync(plain, 0o644);
    // root may execute a file without x bits only when some x bit is set: 0644 is refused for everyone.
    expect(await makeTarget(`hv-daemon:kvp=${plain}`, 1)!.available()).toBe(`${plain} is not executable`);
    expect(await makeTarget(`hv-daemon:vss=${scratch}`, 1)!.available()).toBe(`${scratch} is not a file`);
    expect(await makeTarget("hv-daemon:kvp=", 1)!.available()).toMatch(/^no program after '='/);
    const report = await runConformance([makeTarget(`hv-daemon:kvp=${missing}`, 1)!], [byId("kvp/register")], { seed: 1 });
    expect(report.targets[0]!.unavailable).toBe(`${missing} not found`);
    expect(report.targets[0]!.results[0]!.outcome).toMatchObject({ status: "skipped", detail: `target unavailable: ${missing} not found` });
  });

  it("a named daemon deviation explains a report only at its own source line and on its own kind of request", () => {
    // Shapes as the sanitized build prints them (tools/hv/hv_kvp_daemon.c 6.1.192 lines 179 and 411).
    const at = (frame: string): SanitizerReport => ({
      tool: "UndefinedBehaviorSanitizer",
      error: "index 5 out of bounds for type 'kvp_file_state [5]'",
      frame,
      lines: [`${frame.split(" ")[1]}:43: runtime error: index 5 out of bounds for type 'kvp_file_state [5]'`],
      run: 1,
      during: undefined,
      explainedBy: undefined,
      complete: true,
    });
    const l179 = at("kvp_update_mem_state tools/hv/hv_kvp_daemon.c:179");
    const l411 = at("kvp_pool_enumerate tools/hv/hv_kvp_daemon.c:411");
    expect(explainReport(l179, { op: "enumerate", pool: 5, index: 0 })).toBe("kvp-pool-out-of-range");
    expect(explainReport(l179, { op: "set", pool: 200, key: "k", value: "v" })).toBe("kvp-pool-out-of-range");
    expect(explainReport(l179, { op: "enumerate", pool: 4, index: 0 })).toBeUndefined();
    expect(explainReport(l179, undefined)).toBeUndefined();
    expect(explainReport(l411, { op: "enumerate", pool: 0, index: 0x80000003 })).toBe("kvp-negative-index");
    expect(explainReport(l411, { op: "enumerate", pool: 5, index: 0 })).toBeUndefined();
    expect(explainReport(at("kvp_update_mem_state tools/hv/hv_kvp_daemon.c:1790"), { op: "enumerate", pool: 5, index: 0 })).toBeUndefined();
  });

  it.skipIf(noTools)(`reads DT_NEEDED like readelf, and preloads only the ASan runtime ahead of the shim${whyTools}`, () => {
    const prog = buggyDaemon();
    const needed = elfNeeded(prog)!;
    const re = spawnSync("readelf", ["-d", prog], { encoding: "utf8" });
    if (re.status === 0) {
      const fromReadelf = [...re.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
      expect(needed).toEqual(fromReadelf);
    }
    expect(needed.some((n) => /^libasan\.so\.\d+$/.test(n))).toBe(true);
    expect(sanitizerPreload(prog)).toEqual(needed.filter((n) => n.startsWith("libasan.so")));
    expect(elfNeeded("/bin/sh")?.includes("libc.so.6")).toBe(true);
    expect(sanitizerPreload("/bin/sh")).toEqual([]);
    expect(elfNeeded(join(scratch, "no-such-file"))).toBeUndefined();
  });

  it.skipIf(noTools)(`a program behaving like hv_kvp_daemon passes kvp/register; its ASan report fails kvp/pools, naming the report${whyTools}`, async () => {
    const staged = join(scratch, "buggy-kvp");
    copyFileSync(buggyDaemon(), staged);
    chmodSync(staged, 0o755);
    expect(daemonAvailable(staged)).toBe(true);
    const t = makeTarget(`hv-daemon:kvp=${staged}`, 1)!;
    const report = await runConformance([t], [byId("kvp/register"), byId("kvp/pools")], { seed: 1 });
    const [register, pools] = report.targets[0]!.results.map((r) => r.outcome);
    expect(register?.status === "failed" ? register.detail : register?.status).toBe("passed");
    expect(pools?.status).toBe("failed");
    const detail = pools?.status === "failed" ? pools.detail : "";
    // The first line names the sanitizer report: tool, error, function and line of this file's source.
    expect(detail.split("\n")[0]).toMatch(
      /^sanitizer report \(daemon run 1 during \{"op":"set","pool":0,"key":"hvsim-a","value":"alpha"\}\): AddressSanitizer: stack-buffer-overflow on address in hvsim_buggy_set \S*hvsim-buggy-kvp\.c:13$/,
    );
    expect(detail).toMatch(/WRITE of size 24/);
  });

  it.skipIf(noTools)(`a read() from the device past the daemon's buffer is reported at the read, in the program's frame (ASan runtime ahead of the shim)${whyTools}`, async () => {
    // Registers as hv_kvp_daemon does, then reads the kernel's 7432-byte reply into 64 bytes. The
    // shim serves that read; ASan sees it only because its runtime is preloaded before the shim.
    const src = `
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <linux/hyperv.h>
static struct hv_kvp_msg m;
int main(void)
{
	int fd = open("/dev/vmbus/hv_kvp", O_RDWR | O_CLOEXEC);
	if (fd < 0) return 1;
	m.kvp_hdr.operation = KVP_OP_REGISTER1;
	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m)) return 1;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	poll(&p, 1, -1);
	volatile size_t count = sizeof(m);
	char small[64];
	ssize_t n = read(fd, small, count);
	return n > 0 ? small[0] : 1;
}
`;
    const staged = join(scratch, "short-read-kvp");
    copyFileSync(compileCProgram("hvsim-short-read-kvp", src, { flags: ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address"] }), staged);
    chmodSync(staged, 0o755);
    const report = await runConformance([makeTarget(`hv-daemon:kvp=${staged}`, 1)!], [byId("kvp/register")], { seed: 1 });
    const o = report.targets[0]!.results[0]!.outcome;
    expect(o.status).toBe("failed");
    const detail = o.status === "failed" ? o.detail : "";
    expect(detail.split("\n")[0]).toMatch(/^sanitizer report \(daemon run 1\): AddressSanitizer: stack-buffer-overflow on address in main \S*hvsim-short-read-kvp\.c:18$/);
    expect(detail).toMatch(/WRITE of size 7432/);
  });

  it.skipIf(noTools)(`a check that swallows the daemon's failure still fails on its sanitizer report${whyTools}`, async () => {
    const staged = join(scratch, "buggy-kvp-2");
    copyFileSync(buggyDaemon(), staged);
    chmodSync(staged, 0o755);
    const quiet: Check = {
      id: "spec/quiet",
      suite: "kvp",
      title: "sends one SET and reports passed whatever happens",
      needs: ["kvp-daemon"],
      async run(ctx) {
        const s = await ctx.target.openHyperv!("kvp", { profile: "linux-6.1" });
        try {
          await s.registered();
          await s.kvp({ op: "set", pool: 1, key: "k", value: "v" }).catch(() => undefined);
        } finally {
          await s.close();
        }
        return { status: "passed" };
      },
    };
    const report = await runConformance([makeTarget(`hv-daemon:kvp=${staged}`, 1)!], [quiet], { seed: 1 });
    const o = report.targets[0]!.results[0]!.outcome;
    expect(o.status).toBe("failed");
    expect(o.status === "failed" ? o.detail : "").toMatch(/^sanitizer report \(daemon run 1 during \{"op":"set","pool":1,"key":"k","value":"v"\}\): AddressSanitizer: stack-buffer-overflow/);
  });

  it.skipIf(noTools)(`the session stops waiting as soon as the report is complete, with the report${whyTools}`, async () => {
    const staged = join(scratch, "buggy-kvp-3");
    copyFileSync(buggyDaemon(), staged);
    chmodSync(staged, 0o755);
    const s = await openRealHyperv("kvp", { profile: "linux-6.1", program: staged, timeoutMs: 20_000 });
    try {
      await s.registered();
      await s.negotiate();
      const t0 = Date.now();
      // The daemon aborts on the SET; the next request meets the complete report.
      await s.kvp({ op: "set", pool: 0, key: "x", value: "y" }).catch(() => undefined);
      await expect(s.kvp({ op: "enumerate", pool: 0, index: 0 })).rejects.toThrow(/^hv-daemon:kvp: AddressSanitizer: stack-buffer-overflow on address in hvsim_buggy_set/);
      expect(Date.now() - t0).toBeLessThan(15_000);
      const reports = s.sanitizerReports();
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatchObject({ tool: "AddressSanitizer", error: "stack-buffer-overflow on address", complete: true, explainedBy: undefined });
    } finally {
      await s.close();
    }
  });
});

const fuzzers: DaemonFuzzer[] = [];
afterAll(async () => {
  await Promise.all(fuzzers.splice(0).map((f) => f.close()));
});

describe("hvsim fuzz hv-daemon:kvp=<program>", () => {
  it.skipIf(noTools)(`a sanitizer report of the fuzzed daemon is a "sanitizer" finding with the report; the daemon is restarted${whyTools}`, async () => {
    const staged = join(scratch, "buggy-kvp-fuzz");
    copyFileSync(buggyDaemon(), staged);
    chmodSync(staged, 0o755);
    const f = new DaemonFuzzer("kvp", 3000, staged);
    fuzzers.push(f);
    expect(await f.execute(kvpMsg(3, 0))).toBeUndefined(); // KVP_OP_ENUMERATE: answered
    const v = await f.execute(kvpMsg(1, 0)); // KVP_OP_SET: the deliberate overflow
    expect(v).toEqual({ kind: "sanitizer", message: expect.stringMatching(/^AddressSanitizer: stack-buffer-overflow on address in hvsim_buggy_set \S+:13 on op 1 pool 0$/) as string });
    expect(f.lastReport?.lines[0]).toMatch(/==\d+==ERROR: AddressSanitizer: stack-buffer-overflow on address 0x[0-9a-f]+/);
    expect(await f.execute(kvpMsg(3, 0))).toBeUndefined();
    expect(f.restarts).toBe(1);
  });

  it.skipIf(noTools || noBuild)(`the sanitized hv_kvp_daemon: pool 5 is a UBSan finding at tools/hv/hv_kvp_daemon.c:179${whyBuild}`, async () => {
    const f = new DaemonFuzzer("kvp", 3000, (built as { kvp: string }).kvp);
    fuzzers.push(f);
    expect(await f.execute(kvpMsg(3, 4))).toBeUndefined();
    const v = await f.execute(kvpMsg(3, 5));
    expect(v).toEqual({
      kind: "sanitizer",
      message: "UndefinedBehaviorSanitizer: index 5 out of bounds for type 'kvp_file_state [5]' in kvp_update_mem_state tools/hv/hv_kvp_daemon.c:179 on op 3 pool 5",
    });
  });
});

describe("hv-daemon:kvp=asan / hv-daemon:vss=asan (linux-source-6.1 daemons with ASan+UBSan)", () => {
  it.skipIf(noTools || noBuild)(`the sanitized build is found and listed by default${whyBuild}`, async () => {
    const names = await defaultTargetNames();
    expect(names).toContain("hv-daemon:kvp=asan");
    expect(names).toContain("hv-daemon:vss=asan");
    const found = findSanitizedDaemons() as { kvp: string };
    expect(sanitizerPreload(found.kvp)).toEqual(["libasan.so.8"].filter((n) => elfNeeded(found.kvp)!.includes(n)));
    expect(sanitizerPreload(found.kvp).length).toBe(1);
  });

  it.skipIf(noTools || noBuild)(`kvp/pools passes on the sanitized hv_kvp_daemon with the profile deviations only${whyBuild}`, async () => {
    const report = await runConformance([makeTarget("hv-daemon:kvp=asan", 1)!], [byId("kvp/pools")], { seed: 1 });
    const o = report.targets[0]!.results[0]!.outcome;
    expect(o.status === "failed" ? o.detail : o.status).toBe("passed");
    expect(o.status === "passed" ? o.deviations : undefined).toEqual(["kvp-get-value-offset", "kvp-get-value-size"]);
  });

  it.skipIf(noTools || noBuild)(
    `kvp/random-differential: the sanitizer's reports on the deviation ops are the named debian-6.1 deviations (:179, :411), listed, not failures${whyBuild}`,
    async () => {
      const report = await runConformance([makeTarget("hv-daemon:kvp=asan", 1)!], [byId("kvp/random-differential")], { seed: 1 });
      const o = report.targets[0]!.results[0]!.outcome;
      expect(o.status === "failed" ? o.detail : o.status).toBe("passed");
      expect(o.status === "passed" ? o.deviations : undefined).toEqual(["kvp-negative-index", "kvp-pool-out-of-range"]);
      const detail = o.status === "passed" ? (o.detail ?? "") : "";
      // tools/hv/hv_kvp_daemon.c (6.1.192): :179 kvp_update_mem_state indexes kvp_file_info[pool]
      // (5 entries); :411 kvp_pool_enumerate reads record[index] with a negative int index.
      expect(detail).toMatch(/kvp-pool-out-of-range: the daemon's UndefinedBehaviorSanitizer: index \d+ out of bounds for type 'kvp_file_state \[5\]' in kvp_update_mem_state tools\/hv\/hv_kvp_daemon\.c:179 \(/);
      expect(detail).toMatch(/kvp-negative-index: the daemon's AddressSanitizer: SEGV on unknown address in kvp_pool_enumerate tools\/hv\/hv_kvp_daemon\.c:411 \(/);
    },
    120_000,
  );
});
