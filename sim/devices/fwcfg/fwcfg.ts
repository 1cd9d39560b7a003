// QEMU's fw_cfg interface on x86 I/O ports (QEMU docs/specs/fw_cfg.rst, hw/nvram/fw_cfg.c):
// selector 0x510 (16-bit), data 0x511 (8-bit reads advance an offset in the selected item), and
// the DMA address register 0x514 (high 32 bits) / 0x518 (low 32 bits; writing it runs the
// transfer), both big-endian. Items: 0x00 signature "QEMU", 0x01 feature bits (traditional +
// DMA), 0x19 the file directory (count u32 BE, then {size u32 BE, select u16 BE, reserved u16,
// name[56]}), files from 0x20 on. Files belong to other devices, which supply their bytes.
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind } from "../../machine/device.ts";
import type { IoSize } from "../../bus/portio.ts";
import { blockRead, blockWrite, type Register } from "../../bus/regions.ts";

export const FW_CFG_PORT_SEL = 0x510;
export const FW_CFG_PORT_DATA = 0x511;
export const FW_CFG_PORT_DMA = 0x514;
export const FW_CFG_SIGNATURE = 0x00;
export const FW_CFG_ID = 0x01;
export const FW_CFG_FILE_DIR = 0x19;
export const FW_CFG_FILE_FIRST = 0x20;
export const FW_CFG_VERSION_TRADITIONAL = 0x01;
export const FW_CFG_VERSION_DMA = 0x02;
export const FW_CFG_DMA_CTL_ERROR = 0x01;
export const FW_CFG_DMA_CTL_READ = 0x02;
export const FW_CFG_DMA_CTL_SKIP = 0x04;
export const FW_CFG_DMA_CTL_SELECT = 0x08;
export const FW_CFG_DMA_CTL_WRITE = 0x10;
/** "QEMU CFG" read back from the DMA register, so firmware can detect DMA support. */
const DMA_SIGNATURE = Buffer.from("QEMU CFG", "latin1");
const FILE_NAME_MAX = 56;

export interface FwCfgFile {
  readonly name: string;
  /** Current contents (derived from the owner's state). */
  read(bench: Bench): Uint8Array;
  /** Present for writable files: bytes written at `offset`. */
  write?(bench: Bench, offset: number, bytes: Uint8Array): void;
}

export interface FwCfgState {
  [key: string]: number;
  selector: number;
  offset: number;
  dmaHigh: number;
}

export class FwCfgDevice implements Device<FwCfgState> {
  readonly kind = FwCfgKind;
  state: FwCfgState = { selector: 0, offset: 0, dmaHigh: 0 };
  private readonly files: FwCfgFile[] = [];

  constructor(readonly id: string, private readonly bench: Bench) {
    // QEMU's fw_cfg I/O regions (hw/nvram/fw_cfg.c, 7.2): "fwcfg" at 0x510, 2 bytes, accepting
    // byte accesses and 16-bit writes (a byte read at either port reads a data byte, a 16-bit write
    // at 0x510 selects, byte writes are ignored since QEMU 2.4, 32-bit accesses are refused), and "fwcfg.dma" at 0x514, 8 bytes,
    // big-endian, any aligned read returning bytes of "QEMU CFG", only 32-bit writes at 0x514/0x518
    // taken. Wider or unaligned port accesses are cut into pieces as QEMU's memory core does
    // (sim/bus/regions.ts): `inl 0x511` reads the data byte, 0xffff from the unassigned 0x512 and
    // 'Q' from 0x514 — 0x51ffff03 on a QEMU 7.2 right after selecting item 1.
    const regs: Register[] = [
      {
        // No valid.max_access_size: pieces of up to 4 bytes arrive and all but the two accepted
        // shapes are refused (a refused read is 0, a refused write is dropped).
        name: "fwcfg", offset: 0, length: 2, validMin: 1, validMax: 4, implMin: 1, implMax: 4,
        read: (_addr, size) => (size === 1 ? this.readByte() : 0),
        write: (addr, size, v) => {
          if (size === 2 && addr === 0) this.select(v);
        },
      },
      {
        name: "fwcfg.dma", offset: FW_CFG_PORT_DMA - FW_CFG_PORT_SEL, length: 8, validMin: 1, validMax: 4, implMin: 1, implMax: 4,
        read: (addr, size) => {
          let v = 0;
          for (let i = 0; i < size; i++) v = v * 256 + (DMA_SIGNATURE[addr + i] ?? 0);
          // Big-endian register: the guest's little-endian IN sees the bytes swapped.
          return swap(v, size as IoSize);
        },
        write: (addr, size, value) => {
          if (size === 4 && (addr === 0 || addr === 4)) this.dmaWrite(addr, 4, value);
        },
      },
    ];
    bench.ports.claim(FW_CFG_PORT_SEL, 12, id, {
      read: (port, size) => blockRead(regs, port - FW_CFG_PORT_SEL, size),
      write: (port, size, value) => blockWrite(regs, port - FW_CFG_PORT_SEL, size, value),
    });
  }

  /** Adds a file; its selector is FW_CFG_FILE_FIRST + the order of addition. */
  addFile(file: FwCfgFile): number {
    if (Buffer.byteLength(file.name) >= FILE_NAME_MAX) throw new Error(`fw_cfg file name too long: ${file.name}`);
    if (this.files.some((f) => f.name === file.name)) throw new Error(`fw_cfg file ${file.name} added twice`);
    this.files.push(file);
    return FW_CFG_FILE_FIRST + this.files.length - 1;
  }

  selectorOf(name: string): number | undefined {
    const i = this.files.findIndex((f) => f.name === name);
    return i < 0 ? undefined : FW_CFG_FILE_FIRST + i;
  }

  private select(sel: number): void {
    this.state.selector = sel & 0xffff;
    this.state.offset = 0;
  }

  /** Contents of the selected item, or undefined for an item that does not exist. */
  item(sel: number): Uint8Array | undefined {
    if (sel === FW_CFG_SIGNATURE) return Uint8Array.from(Buffer.from("QEMU", "latin1"));
    if (sel === FW_CFG_ID) return Uint8Array.from([FW_CFG_VERSION_TRADITIONAL | FW_CFG_VERSION_DMA, 0, 0, 0]);
    if (sel === FW_CFG_FILE_DIR) return this.directory();
    const f = this.files[sel - FW_CFG_FILE_FIRST];
    return f?.read(this.bench);
  }

  directory(): Uint8Array {
    const sorted = this.files.map((f, i) => ({ f, sel: FW_CFG_FILE_FIRST + i })).sort((a, b) => (a.f.name < b.f.name ? -1 : a.f.name > b.f.name ? 1 : 0));
    const out = Buffer.alloc(4 + 64 * sorted.length);
    out.writeUInt32BE(sorted.length, 0);
    sorted.forEach(({ f, sel }, i) => {
      const at = 4 + 64 * i;
      out.writeUInt32BE(f.read(this.bench).length, at);
      out.writeUInt16BE(sel, at + 4);
      out.write(f.name, at + 8, FILE_NAME_MAX, "latin1");
    });
    return Uint8Array.from(out);
  }

  private readByte(): number {
    const data = this.item(this.state.selector);
    if (!data || this.state.offset >= data.length) return 0;
    return data[this.state.offset++]!;
  }

  private dmaWrite(off: number, size: IoSize, value: number): void {
    const v = swap(value, size); // the register is big-endian
    if (off === 0 && size === 4) this.state.dmaHigh = v;
    else if (off === 4 && size === 4) this.runDma(this.state.dmaHigh * 2 ** 32 + v);
  }

  /** Runs the DMA descriptor at guest address `addr` ({control, length, address}, big-endian). */
  private runDma(addr: number): void {
    const mem = this.bench.memory;
    this.state.dmaHigh = 0;
    const desc = mem.read(addr, 16);
    const dv = new DataView(desc.buffer);
    const control = dv.getUint32(0);
    const length = dv.getUint32(4);
    const target = Number(dv.getBigUint64(8));
    let error = false;
    if (control & FW_CFG_DMA_CTL_SELECT) this.select(control >>> 16);
    const data = this.item(this.state.selector);
    if (control & FW_CFG_DMA_CTL_READ) {
      const out = new Uint8Array(length);
      if (data) out.set(data.subarray(this.state.offset, this.state.offset + length));
      mem.write(target, out);
      this.state.offset += length;
    } else if (control & FW_CFG_DMA_CTL_WRITE) {
      const file = this.files[this.state.selector - FW_CFG_FILE_FIRST];
      if (!file?.write || !data || this.state.offset + length > data.length) error = true;
      else {
        file.write(this.bench, this.state.offset, mem.read(target, length));
        this.state.offset += length;
      }
    } else if (control & FW_CFG_DMA_CTL_SKIP) {
      this.state.offset += length;
    }
    const back = new Uint8Array(4);
    new DataView(back.buffer).setUint32(0, error ? FW_CFG_DMA_CTL_ERROR : 0);
    mem.write(addr, back);
    this.bench.clock.trace.record(this.bench.now, "fwcfg-dma", this.id, control, length, target, error ? "error" : "ok");
  }
}

function swap(v: number, size: IoSize): number {
  if (size === 1) return v;
  if (size === 2) return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}

export const FwCfgKind: DeviceKind<FwCfgState> = {
  type: "fwcfg",
  stateVersion: 1,
  validate(s: unknown) {
    const o = s as Partial<FwCfgState> | null;
    if (!o || typeof o !== "object") return "not an object";
    for (const k of ["selector", "offset", "dmaHigh"] as const) {
      if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) return `${k} is not a non-negative integer`;
    }
    if (o.selector! > 0xffff) return "selector out of range";
    return undefined;
  },
  create(bench, id) {
    return new FwCfgDevice(id, bench);
  },
};
