// Issue 16/12 edges of the qtest server, through the real CLI (`hvsim qtest` as a child process).
// Before: `b64read 0 100000000000` answered "FAIL Invalid typed array length: ...", `read 0
// 0x7fffffff` "FAIL Cannot create a string longer than ...", a CRLF line failed, and clock values
// past 2^53 - 1 ns were not refused. What QEMU 7.2 (qtest accelerator, built here by
// scripts/build-qemu-qtest.sh) answers to the same lines, observed on this machine:
//   read 0xffffffffffffff00 16   -> OK 0x00000000000000000000000000000000  (unassigned: zeros)
//   readl 0xfffffffffffffffc     -> OK 0x0000000000000000
//   readq 0x100000000000         -> OK 0x0000000000000000
//   b64read 0x7ffffff0 32        -> OK AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
//   memset/write 0x100000000000  -> OK (the bytes vanish)
//   b64read 0 100000000000       -> aborts: "GLib: failed to allocate 100000000000 bytes"
//   read 0 0x7fffffff            -> no answer within 30 s (it builds a 4 GiB line)
//   read 0 0                     -> aborts: softmmu/qtest.c:589 assertion failed: (len)
//   read 0x10000000000000000 4   -> aborts: qtest.c:585 assertion failed: (ret == 0) (ERANGE)
//   inl 0x608\r                  -> aborts: qtest.c:495 assertion failed: (ret == 0)
//   clock_step 9007199254740993  -> OK 9007199254740993 (int64 nanoseconds)
// Where QEMU answers, hvsim answers the same; where QEMU aborts or hangs, hvsim answers one FAIL
// line naming the limit and keeps the session; clock values past hvsim's 2^53 - 1 ns are a FAIL
// naming that limit (QEMU's own limit is int64; past it its qemu_strtoi64 ERANGE aborts too).
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { findQtestQemu, QtestClient } from "../../sim/targets/qtest/client.ts";
import { runClient } from "./script.ts";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "sim", "cli", "bin.mjs");

function qtest(input: string): string[] {
  const r = spawnSync(process.execPath, [bin, "qtest", "--machine", "q35"], { input, encoding: "latin1", cwd: root, timeout: 60_000 });
  expect(r.status).toBe(0);
  return r.stdout.split("\n").slice(0, -1);
}

/** Lines QEMU 7.2 answers (observed there, see the head comment); hvsim must answer the same. */
const PAST_RAM: readonly [string, string][] = [
  ["read 0xffffffffffffff00 16", "OK 0x00000000000000000000000000000000"],
  ["readl 0xfffffffffffffffc", "OK 0x0000000000000000"],
  ["readq 0x100000000000", "OK 0x0000000000000000"],
  ["read 0x7ffffff0 32", "OK 0x0000000000000000000000000000000000000000000000000000000000000000"],
  ["b64read 0x7ffffff0 32", "OK AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],
  ["memset 0x100000000000 16 0xaa", "OK"],
  ["write 0x100000000000 2 0xaabb", "OK"],
  ["b64write 0 0 AAAA", "OK"],
];

const LIMIT = "past hvsim's virtual time limit of 2^53 - 1 ns (9007199254740991 ns, about 104 days)";

describe("hvsim qtest: out-of-range lines", () => {
  it("bounds lengths before allocating, reads zeros past RAM, accepts CRLF, refuses clock values past 2^53 - 1 ns", () => {
    const lines: [string, string][] = [
      ["b64read 0 100000000000", "FAIL b64read length 100000000000 is above hvsim's limit of 16777216 bytes (16 MiB) per read"],
      ["read 0 0x7fffffff", "FAIL read length 0x7fffffff is above hvsim's limit of 16777216 bytes (16 MiB) per read"],
      ["read 0 0", "FAIL read of 0 bytes"],
      ["read 0x10000000000000000 4", "FAIL number '0x10000000000000000' is out of range (above 2^64 - 1)"],
      ["memset 0 0xffffffffffffffff 0", "OK"],
      ...PAST_RAM,
      ["endianness\r", "OK little"],
      ["inl 0x608\r", "OK 0xffffffff"],
      ["clock_step 9007199254740993", `FAIL clock_step 9007199254740993: ${LIMIT}`],
      ["clock_set 99999999999999999999", "FAIL number '99999999999999999999' is out of range (above 2^64 - 1)"],
      ["clock_set 9007199254740992", `FAIL clock_set 9007199254740992: ${LIMIT}`],
      ["clock_set 9007199254740991", "OK 9007199254740991"],
      ["clock_step 1", `FAIL clock_step 1: ${LIMIT}`],
      ["clock_step 0", "OK 9007199254740991"],
    ];
    const got = qtest(lines.map(([l]) => l + "\n").join(""));
    expect(got.map((r, i) => `${lines[i]?.[0]} -> ${r}`)).toEqual(lines.map(([l, r]) => `${l} -> ${r}`));
  }, 60_000);

  it("the --help example reads a running PM timer", () => {
    const help = spawnSync(process.execPath, [bin, "qtest", "--help"], { encoding: "utf8", cwd: root }).stdout;
    const m = /printf '([^']*)' \| npx hvsim qtest --machine q35/.exec(help);
    expect(m).not.toBeNull();
    const got = qtest(m![1]!.replace(/\\n/g, "\n"));
    // 1 s at 3.579545 MHz: 3579545 = 0x369e99 ticks (QEMU 7.2 reads the same; see script.ts).
    expect(got.at(-1)).toBe("OK 0x369e99");
  }, 60_000);
});

const qemu = findQtestQemu();
const qemuPath = "path" in qemu ? qemu.path : undefined;

describe.skipIf(!qemuPath)(`hvsim qtest vs a qtest QEMU 7.2 past RAM${qemuPath ? "" : ` (skipped: ${"reason" in qemu ? qemu.reason : ""})`}`, () => {
  it("answers accesses past RAM as QEMU does", async () => {
    const got = await runClient(QtestClient.spawnQ35(qemuPath!, [], { timeoutMs: 30_000 }), PAST_RAM.map(([cmd]) => ({ cmd })));
    expect(got).toEqual(PAST_RAM.map(([, r]) => r));
  }, 90_000);
});
