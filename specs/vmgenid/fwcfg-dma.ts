// fw_cfg as firmware drives it, over a qtest session: the DMA interface (descriptor {control,
// length, address} big-endian in guest memory; its address written to 0x514/0x518 big-endian,
// the low half starting the transfer) and the file directory at selector 0x19. Facts: QEMU
// docs/specs/fw_cfg.rst and hw/acpi/vmgenid.c.
import type { QtestSession } from "../../sim/conform/types.ts";

export const FW_CFG_DMA_CTL_READ = 0x02;
export const FW_CFG_DMA_CTL_SELECT = 0x08;
export const FW_CFG_DMA_CTL_WRITE = 0x10;
/** Where the descriptor goes (guest RAM, below anything the checks read). */
export const DESC_ADDR = 0x1000;

export interface DirEntry {
  readonly name: string;
  readonly size: number;
  readonly select: number;
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bswap32 = (v: number) => ((((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0);

export async function ok(s: QtestSession, line: string): Promise<string> {
  const r = await s.command(line);
  if (!r.startsWith("OK")) throw new Error(`'${line}' answered '${r}'`);
  return r;
}

export async function readMem(s: QtestSession, addr: number, len: number): Promise<Uint8Array> {
  const r = await ok(s, `read 0x${addr.toString(16)} ${len}`);
  return Uint8Array.from(Buffer.from(r.slice(5), "hex"));
}

export async function writeMem(s: QtestSession, addr: number, bytes: Uint8Array): Promise<void> {
  await ok(s, `write 0x${addr.toString(16)} ${bytes.length} 0x${hexOf(bytes)}`);
}

/** Runs one DMA transfer; returns the control word the device wrote back (0 = done, 1 = error). */
export async function dma(s: QtestSession, control: number, length: number, addr: number): Promise<number> {
  const d = Buffer.alloc(16);
  d.writeUInt32BE(control >>> 0, 0);
  d.writeUInt32BE(length, 4);
  d.writeBigUInt64BE(BigInt(addr), 8);
  await writeMem(s, DESC_ADDR, d);
  await ok(s, "outl 0x514 0x0");
  await ok(s, `outl 0x518 0x${bswap32(DESC_ADDR).toString(16)}`);
  return Buffer.from(await readMem(s, DESC_ADDR, 4)).readUInt32BE(0);
}

/** Reads item `select` (from its start) into guest memory at `at` by DMA; returns the bytes. */
export async function dmaRead(s: QtestSession, select: number, length: number, at: number): Promise<Uint8Array> {
  const st = await dma(s, ((select << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ) >>> 0, length, at);
  if (st !== 0) throw new Error(`fw_cfg DMA read of 0x${select.toString(16)} ended with control 0x${st.toString(16)}`);
  return readMem(s, at, length);
}

/** Writes `bytes` (staged at `at`) to item `select` from its start by DMA; returns the control word back. */
export async function dmaWrite(s: QtestSession, select: number, bytes: Uint8Array, at: number): Promise<number> {
  await writeMem(s, at, bytes);
  return dma(s, ((select << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_WRITE) >>> 0, bytes.length, at);
}

export async function directory(s: QtestSession, at = 0x8000): Promise<DirEntry[]> {
  const count = Buffer.from(await dmaRead(s, 0x19, 4, at)).readUInt32BE(0);
  const raw = Buffer.from(await dmaRead(s, 0x19, 4 + 64 * count, at)).subarray(4);
  const out: DirEntry[] = [];
  for (let i = 0; i < count; i++) {
    const e = raw.subarray(64 * i, 64 * i + 64);
    const name = e.toString("latin1", 8, 64).replace(/\0.*$/s, "");
    out.push({ name, size: e.readUInt32BE(0), select: e.readUInt16BE(4) });
  }
  return out;
}

/** The directory entry of file `name`; throws naming it when the target has none. */
export async function findFile(s: QtestSession, name: string): Promise<DirEntry> {
  const e = (await directory(s)).find((d) => d.name === name);
  if (!e) throw new Error(`no ${name} in the fw_cfg directory`);
  return e;
}

/** Writes guest address `addr` to etc/vmgenid_addr as the firmware's WRITE_POINTER would. */
export async function writeVmgenidAddr(s: QtestSession, addr: number, stage = 0x2000): Promise<number> {
  const e = await findFile(s, "etc/vmgenid_addr");
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(addr));
  return dmaWrite(s, e.select, b, stage);
}

/**
 * What firmware's linker/loader does for vmgenid (QEMU hw/acpi/vmgenid.c vmgenid_build_acpi):
 * ALLOCATE etc/vmgenid_guid (4096 bytes, page-aligned: `at` is) loads the file into guest memory
 * at `at`; WRITE_POINTER etc/vmgenid_addr (offset 0, 8 bytes) stores `at` + VMGENID_GUID_OFFSET
 * (40). Returns the control word of the pointer's DMA write (0: done).
 */
export async function firmwareLoadVmgenid(s: QtestSession, at: number): Promise<number> {
  if (at % 4096 !== 0) throw new Error(`etc/vmgenid_guid is allocated page-aligned, not at 0x${at.toString(16)}`);
  const blob = await findFile(s, "etc/vmgenid_guid");
  await dmaRead(s, blob.select, blob.size, at);
  return writeVmgenidAddr(s, at + 40);
}
