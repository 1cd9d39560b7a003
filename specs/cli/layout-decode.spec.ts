// `hvsim layout` and `hvsim decode` run as real processes (node sim/cli/bin.mjs), plus the same
// commands registered on a bare commander program in process. Golden layouts come from gcc on
// /usr/include/linux/hyperv.h (specs/helpers/gcc-layout.ts); messages are built by hand from the
// header facts (include/uapi/linux/hyperv.h: hv_vss_msg = operation byte, 7 reserved bytes, then the
// __u32 flags at offset 8).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Command, CommanderError } from "commander";
import { gccLayoutsOf, type CLayout } from "../helpers/gcc-layout.ts";
import { lookupWire, wireNames } from "../../sim/wire/registry.ts";
import { register as registerLayout } from "../../sim/cli/commands/layout.ts";
import { register as registerDecode } from "../../sim/cli/commands/decode.ts";
import { UsageError, Failure } from "../../sim/cli/errors.ts";
import { VSS_HBU_NO_AUTO_RECOVERY, VSS_OP_HOT_BACKUP, KVP_OP_SET } from "../../sim/wire/hyperv-constants.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "hvsim-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function hvsim(args: string[], input?: Uint8Array) {
  const r = spawnSync(process.execPath, ["sim/cli/bin.mjs", ...args], {
    cwd: ROOT,
    input,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", HVSIM_DEBUG: "" },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function file(name: string, bytes: Uint8Array): string {
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return p;
}

/** hv_vss_msg for HOT_BACKUP with vss_cf.flags = VSS_HBU_NO_AUTO_RECOVERY, by offset. */
function vssHotBackup(): Uint8Array {
  const b = new Uint8Array(12);
  b[0] = VSS_OP_HOT_BACKUP;
  new DataView(b.buffer).setUint32(8, VSS_HBU_NO_AUTO_RECOVERY, true);
  return b;
}

const STACK = /\n\s+at .+:\d+:\d+/;

describe("hvsim layout (process)", () => {
  it("--json hv_kvp_msg is one JSON object whose size, align and every member offset and size equal gcc's", () => {
    const r = hvsim(["layout", "--json", "hv_kvp_msg"]);
    expect(r.code).toBe(0);
    const obj = JSON.parse(r.out) as Record<string, { size: number; align: number; fields: { name: string; offset: number; size: number }[] }>;
    expect(Object.keys(obj)).toEqual(["hv_kvp_msg"]);
    const got = obj.hv_kvp_msg!;
    const g: CLayout = gccLayoutsOf([lookupWire("hv_kvp_msg")!]).layouts.get("hv_kvp_msg")!;
    expect({ size: got.size, align: got.align }).toEqual({ size: g.size, align: g.align });
    expect(Object.fromEntries(got.fields.map((f) => [f.name, f.offset]))).toEqual(g.offsets);
    expect(Object.fromEntries(got.fields.map((f) => [f.name, f.size]))).toEqual(g.sizes);
    expect(got.fields.map((f) => Object.keys(f))).toEqual(got.fields.map(() => ["name", "offset", "size"]));
    // nested members by their C path, every union member listed
    const names = got.fields.map((f) => f.name);
    for (const n of ["kvp_hdr.operation", "error", "body.kvp_enum_data.data.value", "body.kvp_get.data.value_u64", "body.kvp_register.version"]) {
      expect(names).toContain(n);
    }
  });

  it("without names lists every declared struct; the table shows offsets, sizes and C types", () => {
    const all = hvsim(["layout", "--json"]);
    expect(all.code).toBe(0);
    expect(Object.keys(JSON.parse(all.out))).toEqual(wireNames());
    const t = hvsim(["layout", "hv_vss_msg", "vmmctl_vm_create"]);
    expect(t.code).toBe(0);
    expect(t.out).toContain("struct hv_vss_msg: size 12, align 1, packed");
    expect(t.out).toMatch(/^\s+8\s+4\s+__u32\s+vss_cf\.flags$/m);
    expect(t.out).toMatch(/^\s+0\s+4\s+int\s+error$/m);
    // vmmctl_vm_create (freebsd-src main vmm_dev.h): uint32_t flags where reserved[0] was, then 15 ints
    expect(t.out).toMatch(/^\s+232\s+4\s+__u32\s+flags$/m);
    expect(t.out).toMatch(/^\s+236\s+60\s+int\[15\]\s+reserved$/m);
  });

  it("an unknown name is a usage error (exit 2) listing the valid names", () => {
    const r = hvsim(["layout", "hv_kvp_msg", "no_such_struct"]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toContain("'no_such_struct'");
    expect(r.err).toContain("hv_vss_msg");
    expect(r.err).not.toMatch(STACK);
  });

  it("--help shows an example", () => {
    const r = hvsim(["layout", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Examples?:\n\s+\$ npx hvsim layout/);
  });
});

describe("hvsim decode (process)", () => {
  it("decodes a hand-built hv_vss_msg from a file and from stdin", () => {
    const want = { vss_hdr: { operation: VSS_OP_HOT_BACKUP, reserved: { hex: "00000000000000" } }, vss_cf: { flags: VSS_HBU_NO_AUTO_RECOVERY } };
    const r = hvsim(["decode", "hv_vss_msg", file("vss.bin", vssHotBackup())]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual(want);
    const s = hvsim(["decode", "hv_vss_msg", "-"], vssHotBackup());
    expect(s.code).toBe(0);
    expect(JSON.parse(s.out)).toEqual(want);
  });

  it("truncated input exits 1 naming the member, offset and reason, without a stack trace", () => {
    const r = hvsim(["decode", "hv_vss_msg", file("short.bin", vssHotBackup().subarray(0, 10))]);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toContain("vss_cf.flags");
    expect(r.err).toContain("offset 8");
    expect(r.err).toContain("input is 10 bytes, hv_vss_msg needs 12");
    expect(r.err).not.toMatch(STACK);
  });

  it("an unknown struct exits 2, a missing file exits 1 with a clear message", () => {
    const u = hvsim(["decode", "no_such_struct", file("x.bin", new Uint8Array(4))]);
    expect(u.code).toBe(2);
    expect(u.err).toContain("unknown struct 'no_such_struct'");
    const m = hvsim(["decode", "hv_vss_msg", join(tmp, "does-not-exist.bin")]);
    expect(m.code).toBe(1);
    expect(m.err).toMatch(/cannot read .*does-not-exist\.bin: no such file/);
    expect(m.err).not.toMatch(STACK);
  });

  it("--help shows an example", () => {
    const r = hvsim(["decode", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Examples?:\n\s+\$ npx hvsim decode hv_vss_msg/);
  });
});

// ---- the same commands in process (a bare program, captured output) ----
async function run(args: string[]) {
  let out = "";
  let err = "";
  const program = new Command("hvsim").exitOverride();
  registerLayout(program);
  registerDecode(program);
  for (const c of program.commands) c.exitOverride().configureOutput({ writeOut: (s) => void (out += s), writeErr: (s) => void (err += s) });
  let error: unknown;
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    error = e;
  }
  return { out, err, error };
}

describe("layout and decode in process", () => {
  it("decode renders text, UTF-16 text, 64-bit integers and trailing-byte notes", async () => {
    // hv_kvp_msg SET: key at 16, value at 528 (UTF-8, NUL-terminated)
    const kvp = new Uint8Array(7432 + 3);
    kvp[0] = KVP_OP_SET;
    kvp.set(new TextEncoder().encode("VirtualMachineName"), 16);
    kvp.set(new TextEncoder().encode("héllo"), 528);
    const r = await run(["decode", "hv_kvp_msg", file("kvp.bin", kvp)]);
    expect(r.error).toBeUndefined();
    const data = JSON.parse(r.out).body.kvp_set.data;
    expect(data.key.text).toBe("VirtualMachineName");
    expect(data.key.hex.slice(0, 8)).toBe("56697274");
    expect(data.value.text).toBe("héllo");
    expect(r.err).toContain("3 bytes after the 7432-byte message");
    const exact = await run(["decode", "--exact", "hv_kvp_msg", file("kvp.bin", kvp)]);
    expect(exact.error).toBeInstanceOf(Failure);
    expect((exact.error as Error).message).toContain("3 trailing bytes");

    // hv_kvp_ip_msg: adapter_id (__u16[128]) at 2 holds UTF-16LE "eth0"
    const ip = new Uint8Array(7428);
    [..."eth0"].forEach((c, i) => (ip[2 + 2 * i] = c.charCodeAt(0)));
    const ipr = await run(["decode", "hv_kvp_ip_msg", file("ip.bin", ip)]);
    const ipv = JSON.parse(ipr.out).kvp_ip_val;
    expect(ipv.adapter_id.text).toBe("eth0");
    expect(ipv.adapter_id.hex.slice(0, 16)).toBe("6500740068003000");
    expect(ipv.ip_addr.text).toBeUndefined();

    // hv_start_fcopy.file_size (__u64) at 1080 prints as a decimal string
    const fc = new Uint8Array(1088);
    new DataView(fc.buffer).setBigUint64(1080, 2n ** 64n - 1n, true);
    const fcr = await run(["decode", "hv_start_fcopy", file("fc.bin", fc)]);
    expect(JSON.parse(fcr.out).file_size).toBe("18446744073709551615");
  });

  it("usage errors and failures are thrown as UsageError / Failure for main to map", async () => {
    expect((await run(["layout", "nope"])).error).toBeInstanceOf(UsageError);
    expect((await run(["decode", "nope", "x"])).error).toBeInstanceOf(UsageError);
    expect((await run(["decode", "hv_vss_msg", tmp])).error).toBeInstanceOf(Failure);
    expect(((await run(["decode", "hv_vss_msg", tmp])).error as Error).message).toContain("is a directory");
    const short = await run(["decode", "hv_kvp_msg", file("short-kvp.bin", Uint8Array.of(KVP_OP_SET, 0, 0, 0, 0, 0, 0, 0))]);
    expect((short.error as Error).message).toBe(
      "cannot decode hv_kvp_msg: member body.kvp_set.data.key_size at offset 8: input is 8 bytes, hv_kvp_msg needs 7432",
    );
    const missingArg = await run(["decode"]);
    expect(missingArg.error).toBeInstanceOf(CommanderError);
  });

  it("layout in process prints the table for every struct and JSON for the named ones", async () => {
    const t = await run(["layout"]);
    for (const n of wireNames()) expect(t.out).toContain(`struct ${n}: size`);
    const j = await run(["layout", "--json", "struct icmsg_negotiate"]);
    expect(JSON.parse(j.out)).toEqual({
      icmsg_negotiate: {
        size: 8,
        align: 1,
        fields: [
          { name: "icframe_vercnt", offset: 0, size: 2 },
          { name: "icmsg_vercnt", offset: 2, size: 2 },
          { name: "reserved", offset: 4, size: 4 },
          { name: "icversion_data", offset: 8, size: 0 },
        ],
      },
    });
  });
});
