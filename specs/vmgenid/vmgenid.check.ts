// Conformance: fw_cfg and the vmgenid files on q35, as firmware sees them over ports and DMA. The
// observations are compared field by field between a real target and the model; against the
// model itself they are held to upstream facts (QEMU docs/specs/fw_cfg.rst, hw/nvram/fw_cfg.c,
// hw/acpi/vmgenid.c): signature "QEMU", feature bits
// traditional|DMA (0x03), DMA register signature "QEMU CFG", etc/vmgenid_guid 4096 bytes with the
// GUID at offset 40 and zeros elsewhere, etc/vmgenid_addr 8 bytes and writable by DMA, no GUID
// written to memory and no GPE raised by that write (QEMU has no write callback on it).
// The rest of the directory (QEMU also lists its ACPI tables, boot order, ...) is reported as a
// deviation, not a failure: the model only carries the files its devices own.
import type { Check, CheckContext, Outcome, QtestSession, Target } from "../../sim/conform/types.ts";
import { directory, dmaRead, ok, readMem, writeVmgenidAddr } from "./fwcfg-dma.ts";

type Observed = Record<string, string>;

const GOLDEN: Observed = {
  signature: "QEMU",
  features: "OK 0x0003",
  "dma signature": "QEMU CFG",
  "etc/vmgenid_guid size": "4096",
  "etc/vmgenid_addr size": "8",
  "guid blob": "4096 bytes, zero outside 40..55, GUID non-zero",
  "addr write status": "0x0",
  "addr read back": "2830000000000000",
  "memory at 0x3028 after the addr write": "00000000000000000000000000000000",
  "GPE0_STS after the addr write": "OK 0x0000",
  "selector port reads": "OK 0x0000",
};

async function observe(t: Target): Promise<{ obs: Observed; names: string[] }> {
  const s: QtestSession = await t.openQtest!("q35");
  const obs: Observed = {};
  try {
    await ok(s, "outw 0x510 0x0");
    let sig = "";
    for (let i = 0; i < 4; i++) sig += String.fromCharCode(parseInt((await ok(s, "inb 0x511")).slice(3), 16));
    obs.signature = sig;
    await ok(s, "outw 0x510 0x1");
    obs.features = await s.command("inb 0x511");
    const hi = Number(BigInt((await ok(s, "inl 0x514")).slice(3)));
    const lo = Number(BigInt((await ok(s, "inl 0x518")).slice(3)));
    const sigBuf = Buffer.alloc(8);
    sigBuf.writeUInt32LE(hi, 0);
    sigBuf.writeUInt32LE(lo, 4);
    obs["dma signature"] = sigBuf.toString("latin1");
    obs["selector port reads"] = await s.command("inw 0x510");
    const dir = await directory(s);
    const guidFile = dir.find((d) => d.name === "etc/vmgenid_guid");
    const addrFile = dir.find((d) => d.name === "etc/vmgenid_addr");
    obs["etc/vmgenid_guid size"] = String(guidFile?.size ?? "missing");
    obs["etc/vmgenid_addr size"] = String(addrFile?.size ?? "missing");
    if (guidFile) {
      const blob = await dmaRead(s, guidFile.select, guidFile.size, 0x10000);
      const outside = blob.some((b, i) => b !== 0 && (i < 40 || i >= 56));
      const guid = blob.subarray(40, 56).some((b) => b !== 0);
      obs["guid blob"] = `${blob.length} bytes, ${outside ? "non-zero" : "zero"} outside 40..55, GUID ${guid ? "non-zero" : "zero"}`;
    }
    if (addrFile) {
      obs["addr write status"] = `0x${(await writeVmgenidAddr(s, 0x3028)).toString(16)}`;
      obs["addr read back"] = Buffer.from(await dmaRead(s, addrFile.select, 8, 0x2100)).toString("hex");
      obs["memory at 0x3028 after the addr write"] = Buffer.from(await readMem(s, 0x3028, 16)).toString("hex");
    }
    for (const l of ["outl 0xcf8 0x8000f840", "outl 0xcfc 0x601", "outl 0xcf8 0x8000f844", "outb 0xcfc 0x80"]) await ok(s, l);
    obs["GPE0_STS after the addr write"] = await s.command("inb 0x620");
    return { obs, names: dir.map((d) => d.name) };
  } finally {
    await s.close();
  }
}

async function run(ctx: CheckContext): Promise<Outcome> {
  const got = await observe(ctx.target);
  const problems: string[] = [];
  const deviations: string[] = [];
  if (ctx.target.name === ctx.model.name) {
    for (const [k, v] of Object.entries(GOLDEN)) if (got.obs[k] !== v) problems.push(`${k}: expected '${v}' (upstream), got '${got.obs[k]}'`);
  } else {
    const want = await observe(ctx.model);
    for (const k of Object.keys(GOLDEN)) if (got.obs[k] !== want.obs[k]) problems.push(`${k}: model '${want.obs[k]}', ${ctx.target.name} '${got.obs[k]}'`);
    const extra = got.names.filter((n) => !want.names.includes(n));
    const missing = want.names.filter((n) => !got.names.includes(n));
    if (extra.length) deviations.push(`fw_cfg files only on ${ctx.target.name} (not modelled): ${extra.join(", ")}`);
    if (missing.length) deviations.push(`fw_cfg files only in the model: ${missing.join(", ")}`);
  }
  if (problems.length) return { status: "failed", detail: problems.join("\n"), deviations };
  return { status: "passed", detail: `${Object.keys(GOLDEN).length} observations`, deviations };
}

export const checks: Check[] = [
  {
    id: "vmgenid/q35-fwcfg-files",
    suite: "vmgenid",
    title: "q35 fw_cfg over ports and DMA: signature, features, DMA signature, the vmgenid files and a firmware-style write of etc/vmgenid_addr",
    needs: ["portio", "memory", "fwcfg", "machine:q35"],
    run,
  },
];
