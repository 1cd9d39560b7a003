// Fuzzing the REAL daemons through the device bridge (sim/targets/hvdaemon/fuzz.ts): malformed
// kernel-to-daemon messages, a daemon exit/signal/hang is a finding, the daemon is restarted after
// each. Hand-made messages pin the verdicts (layout of struct hv_kvp_msg per include/uapi/linux/
// hyperv.h: operation at byte 0, pool at byte 1; sizeof 7432; pools 0-4, KVP_OP_ENUMERATE 3);
// skipped with the reason where the daemons cannot be bridged.
import { afterEach, describe, expect, it } from "vitest";
import { DaemonFuzzer, runDaemonCampaign } from "../../sim/targets/hvdaemon/fuzz.ts";
import { daemonAvailable } from "../../sim/targets/hvdaemon/target.ts";
import { kvpMsg } from "./kvp-msg.ts";

const avail = daemonAvailable();
const skip = avail !== true;
const why = skip ? ` [skipped: ${avail}]` : "";

const fuzzers: DaemonFuzzer[] = [];
afterEach(async () => {
  await Promise.all(fuzzers.splice(0).map((f) => f.close()));
});

describe("hvsim fuzz hv-daemon:* (real daemons)", () => {
  it.skipIf(skip)(`KVP: a valid ENUMERATE is answered; an out-of-range pool index makes hv_kvp_daemon exit; the fuzzer restarts it${why}`, async () => {
    const f = new DaemonFuzzer("kvp", 3000);
    fuzzers.push(f);
    expect(await f.execute(kvpMsg(3, 0))).toBeUndefined();
    const v = await f.execute(kvpMsg(3, 5));
    expect(v?.kind).toBe("crash");
    expect(v?.message).toMatch(/exited \(code 1, signal none\) on op 3 pool 5; last syslog: Failed to acquire the lock pool: 5/);
    expect(await f.execute(kvpMsg(3, 4))).toBeUndefined(); // restarted and registered again
    expect(f.restarts).toBe(1);
  });

  it.skipIf(skip)(`KVP: a SET whose key_size is huge (0xae000000) kills hv_kvp_daemon with SIGSEGV (found by the campaign, seed 1 run 93)${why}`, async () => {
    const f = new DaemonFuzzer("kvp", 3000);
    fuzzers.push(f);
    const m = kvpMsg(1, 0);
    // hv_kvp_msg.body.kvp_set.data.key_size: byte offset 8 (after the 4-byte header union and value_type).
    new DataView(m.buffer).setUint32(8, 0xae000000, true);
    const v = await f.execute(m);
    expect(v?.kind).toBe("signal");
    expect(v?.message).toMatch(/signal SIGSEGV\) on op 1 pool 0/);
  });

  it.skipIf(skip)(`KVP: a campaign on fork-server children finds what one restarting the daemon finds, input for input${why}`, async () => {
    // The fork server's child is forked from the registered daemon with the pool files emptied:
    // the state a fresh daemon has after registering. Both campaigns must agree on every verdict,
    // message (last syslog line included) and shrunk input; seed 1 has exits and a SIGSEGV in
    // its first 200 runs.
    const o = { seed: 1, runs: 200, deadline: Infinity, shard: { index: 0, count: 1 }, timeoutMs: 3000 };
    const forked = await runDaemonCampaign("kvp", { ...o, forkServer: true });
    const restarted = await runDaemonCampaign("kvp", { ...o, forkServer: false });
    const view = (r: typeof forked) => r.findings.map((f) => ({ run: f.run, verdict: f.verdict, minimized: Buffer.from(f.minimized).toString("hex") }));
    expect(forked.findings.map((f) => f.verdict.kind)).toContain("signal");
    expect(view(forked)).toEqual(view(restarted));
    expect([forked.execs, forked.restarts]).toEqual([restarted.execs, restarted.restarts]);
  });

  it.skipIf(skip)(`VSS: a short campaign runs and every finding carries a minimized input${why}`, async () => {
    const r = await runDaemonCampaign("vss", { seed: 3, runs: 40, deadline: Infinity, shard: { index: 0, count: 1 }, timeoutMs: 3000 });
    expect(r.execs).toBeGreaterThanOrEqual(40);
    for (const f of r.findings) expect(f.minimized.length).toBe(12);
  });
});
