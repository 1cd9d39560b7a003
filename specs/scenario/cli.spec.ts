// `hvsim run` and `hvsim snapshot inspect` as processes: exit codes 0/1/2, readable output, no
// stack traces.
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "sim", "cli", "bin.mjs");
const scenarios = join(root, "specs", "scenarios");

function hvsim(args: string[], cwd = root) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", HVSIM_DEBUG: "" } });
  const all = r.stdout + r.stderr;
  expect(all).not.toMatch(/\n\s+at .*:\d+:\d+\)?\n/); // no stack traces
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("hvsim CLI: run and snapshot inspect", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "hvsim-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("run: passing scenario exits 0, prints one readable line per trace record and the trace hash", () => {
    const trace = join(dir, "t.jsonl");
    const r = hvsim(["run", join(scenarios, "testbox-basics.yaml"), "--trace", trace]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\s+0\.000000000 s {2}io {5}out port=0x0700 size=4 <- 0x12345678 \[t0\]$/m);
    expect(r.out).toMatch(/0\.000005500 s {2}io {5}in  port=0x070c size=4 -> 0x00000005 \[t0\]/);
    expect(r.out).toMatch(/^trace hash: [0-9a-f]{64}$/m);
    const lines = readFileSync(trace, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ at: 0, type: "io", fields: ["out", 0x700, 4, 0x12345678, "t0"] });
    expect(lines).toHaveLength(r.out.split("\n").filter((l) => /^\s+\d+\.\d{9} s /.test(l)).length);
  });

  it("run --quiet prints only the hash and result; --seed changes nothing for a seed-independent run", () => {
    const a = hvsim(["run", "-q", join(scenarios, "testbox-basics.yaml")]);
    expect(a.code).toBe(0);
    expect(a.out.trim().split("\n")).toHaveLength(2);
    const b = hvsim(["run", "--quiet", "--seed", "123", join(scenarios, "testbox-basics.yaml")]);
    expect(b.out.split("\n")[0]).toBe(a.out.split("\n")[0]);
    expect(hvsim(["run", "--seed", "x", join(scenarios, "testbox-basics.yaml")]).code).toBe(2);
  });

  it("run: save/restore scenario writes its snapshot under --snapshot-dir, and inspect verifies it", () => {
    const r = hvsim(["run", "-q", "--snapshot-dir", dir, join(scenarios, "testbox-save-restore.yaml")]);
    expect(r.code).toBe(0);
    const snap = join(dir, "testbox-save-restore.snap");
    expect(existsSync(snap)).toBe(true);
    const i = hvsim(["snapshot", "inspect", snap]);
    expect(i.code).toBe(0);
    expect(i.out).toMatch(/hvsim snapshot container version 1, 6 chunks/);
    expect(i.out).toMatch(/memory\s+memory\s+1\s+binary\s+\d+\s+\d+\s+crc32:[0-9a-f]{8}\s+ok/);
    expect(i.out).toMatch(/device:t0\s+testdev\s+3\s+json/);
    const j = JSON.parse(hvsim(["snapshot", "inspect", "--json", snap]).out);
    expect(j).toMatchObject({ ok: true, containerVersion: 1 });
    expect(j.chunks.map((c: { name: string }) => c.name)).toEqual(["machine", "clock", "memory", "irq", "device:t0", "device:t1"]);

    // Corrupt one byte in the memory chunk: exit 1 naming it.
    const bytes = readFileSync(snap);
    const mem = j.chunks.find((c: { name: string }) => c.name === "memory");
    const dataStart = bytes.length - j.manifest.dataLength;
    bytes[dataStart + mem.offset + 100]! ^= 1;
    const bad = join(dir, "bad.snap");
    writeFileSync(bad, bytes);
    const c = hvsim(["snapshot", "inspect", bad]);
    expect(c.code).toBe(1);
    expect(c.out).toMatch(/memory .* checksum mismatch/);
    expect(c.err).toMatch(/snapshot chunk "memory": checksum mismatch/);
    const t = hvsim(["snapshot", "inspect", "--json", bad]);
    expect(t.code).toBe(1);
    expect(JSON.parse(t.out).issues[0].where).toBe("memory");
    writeFileSync(bad, bytes.subarray(0, 30));
    expect(hvsim(["snapshot", "inspect", bad])).toMatchObject({ code: 1, err: expect.stringMatching(/snapshot header: truncated/) });
    expect(hvsim(["snapshot", "inspect", join(dir, "none.snap")])).toMatchObject({ code: 1, err: expect.stringMatching(/cannot read .*ENOENT/) });
  });

  it("run: failing assertion exits 1 naming step, line, expected and actual", () => {
    const f = join(scenarios, "failing", "wrong-expect.yaml");
    const r = hvsim(["run", "-q", f]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`hvsim: ${f}:8:5: step 3 (inl 0x70c) at t=5500 ns: assertion failed: expected 0x00000006, actual 0x00000005`);
  });

  it("run: malformed scenario exits 2 with file:line:column and writes nothing", () => {
    const f = join(scenarios, "invalid", "bad-size.yaml");
    const trace = join(dir, "never.jsonl");
    const r = hvsim(["run", f, "--trace", trace]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${f}:9:11: step 3 (in): steps[2].size: size must be 1, 2 or 4 bytes`);
    expect(r.out).toBe("");
    expect(existsSync(trace)).toBe(false);
    expect(hvsim(["run", join(dir, "missing.yaml")]).code).toBe(2);
  });

  it("--help shows options and an example", () => {
    const r = hvsim(["run", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--trace <out.jsonl>/);
    expect(r.out).toMatch(/\$ npx hvsim run /);
    const s = hvsim(["snapshot", "inspect", "--help"]);
    expect(s.code).toBe(0);
    expect(s.out).toMatch(/\$ npx hvsim snapshot inspect snap.bin/);
  });
});
