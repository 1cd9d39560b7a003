// PCI configuration mechanism #1 (PCI Local Bus spec 3.0 §3.2.2.3.2; QEMU 7.2 hw/pci/pci_host.c,
// checked on a qtest-enabled QEMU 7.2 q35): a 32-bit CONFIG_ADDRESS register at 0xCF8 — bit 31
// enable, bits 23:16 bus, 15:11 device, 10:8 function, 7:2 register — and a 32-bit CONFIG_DATA
// window at 0xCFC-0xCFF, where byte, word and dword accesses reach config offset
// (CONFIG_ADDRESS | (port & 3)) & 0xff (QEMU ORs the port's low bits into the latch as written).
// While the enable bit is clear the data window reads all ones and ignores writes; a function
// nobody registered reads all ones too (pci_data_read on an empty slot).
//  - CONFIG_ADDRESS latches only a dword OUT at 0xCF8 (pci_host_config_write ignores any other
//    width or offset); a read of any width at 0xCF8-0xCFB returns the latch's low bytes, whatever
//    the offset (pci_host_config_read ignores it).
//  - On q35, 0xCF9 is ICH9's reset control register (a 1-byte region over the latch): it reads 0
//    and takes every access that starts there (config `resetControl`); the reset it triggers on a
//    write is not modelled.
//  - Accesses are cut into pieces as QEMU's memory core does (sim/bus/regions.ts): a dword IN at
//    0xCFD reads config bytes 1, 2-3 and then one byte of the unclaimed port 0xD00 (0xff).
//
// Functions are wiring, not state: a device registers its config-space handlers at creation (and
// again on a fresh bench), while the latch — the only state of the host — is plain data in the
// "pci-host" device.
import type { Bench } from "../machine/bench.ts";
import type { Device, DeviceKind } from "../machine/device.ts";
import type { IoSize } from "./portio.ts";
import { blockRead, blockWrite, type Register } from "./regions.ts";

export const PCI_CONFIG_ADDRESS = 0xcf8;
export const PCI_CONFIG_DATA = 0xcfc;
export const PCI_ENABLE = 0x8000_0000;
/** Bytes of conventional PCI configuration space per function. */
export const PCI_CONFIG_SPACE_SIZE = 256;

const ONES: Record<IoSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffffffff };

/** One function's configuration space as seen through the host: offset in [0, 256). */
export interface PciFunction {
  /** Little-endian read of `size` (1-4) bytes at `offset` (offset + size <= 256). */
  readConfig(offset: number, size: number): number;
  writeConfig(offset: number, size: number, value: number): void;
}

export interface PciHostConfig {
  /** Claim 0xCF9 as ICH9's reset control register (q35), reading 0. */
  resetControl?: boolean;
}

export class PciError extends RangeError {
  override name = "PciError";
}

/** CONFIG_ADDRESS value for (bus, device, function, register), enable bit set. */
export function pciConfigAddress(bus: number, dev: number, fn: number, reg: number): number {
  return (PCI_ENABLE | (bus << 16) | (dev << 11) | (fn << 8) | (reg & 0xfc)) >>> 0;
}

const key = (bus: number, dev: number, fn: number) => (bus << 8) | (dev << 3) | fn;

function checkBdf(bus: number, dev: number, fn: number): void {
  const ok = (v: number, max: number) => Number.isInteger(v) && v >= 0 && v <= max;
  if (!ok(bus, 255) || !ok(dev, 31) || !ok(fn, 7)) throw new PciError(`bad PCI address ${bus}:${dev}.${fn} (bus 0-255, device 0-31, function 0-7)`);
}

export const bdfText = (bus: number, dev: number, fn: number) =>
  `${bus.toString(16).padStart(2, "0")}:${dev.toString(16).padStart(2, "0")}.${fn}`;

export interface PciHostState {
  [key: string]: number;
  /** The CONFIG_ADDRESS latch, as last written by a dword OUT to 0xCF8 (reset 0). */
  configAddress: number;
}

export class PciHost implements Device<PciHostState> {
  readonly kind = PciHostKind;
  state: PciHostState = { configAddress: 0 };
  private readonly fns = new Map<number, { owner: string; fn: PciFunction }>();

  constructor(readonly id: string, bench: Bench, cfg: PciHostConfig = {}) {
    const regs: Register[] = [];
    if (cfg.resetControl) {
      regs.push({ name: "RST_CNT", offset: 1, length: 1, validMin: 1, validMax: 4, implMin: 1, implMax: 4, read: () => 0, write: () => undefined });
    }
    regs.push(
      {
        name: "CONFIG_ADDRESS", offset: 0, length: 4, validMin: 1, validMax: 4, implMin: 1, implMax: 4,
        read: () => this.state.configAddress,
        write: (addr, size, value) => {
          if (addr === 0 && size === 4) this.state.configAddress = value >>> 0;
        },
      },
      {
        name: "CONFIG_DATA", offset: 4, length: 4, validMin: 1, validMax: 4, implMin: 1, implMax: 4,
        read: (addr, size) => this.dataRead(addr, size),
        write: (addr, size, value) => this.dataWrite(addr, size, value),
      },
    );
    bench.ports.claim(PCI_CONFIG_ADDRESS, 8, id, {
      read: (port, size) => blockRead(regs, port - PCI_CONFIG_ADDRESS, size),
      write: (port, size, value) => blockWrite(regs, port - PCI_CONFIG_ADDRESS, size, value),
    });
  }

  /** Registers a function's config-space handlers at (bus, dev, fn); a slot takes one function. */
  register(bus: number, dev: number, fn: number, owner: string, handlers: PciFunction): void {
    checkBdf(bus, dev, fn);
    const k = key(bus, dev, fn);
    const cur = this.fns.get(k);
    if (cur) throw new PciError(`PCI function ${bdfText(bus, dev, fn)} is already registered by ${cur.owner}`);
    this.fns.set(k, { owner, fn: handlers });
  }

  /** The owners of the registered functions, by "bb:dd.f". */
  functions(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of [...this.fns.entries()].sort((a, b) => a[0] - b[0])) out[bdfText(k >> 8, (k >> 3) & 31, k & 7)] = v.owner;
    return out;
  }

  /** Config-space read straight to a function (no latch): all ones for an empty slot. */
  configRead(bus: number, dev: number, fn: number, offset: number, size: number): number {
    checkBdf(bus, dev, fn);
    const f = this.fns.get(key(bus, dev, fn));
    if (!f) return ONES[size as IoSize] ?? 0xffffffff;
    const len = Math.min(size, PCI_CONFIG_SPACE_SIZE - offset);
    return len > 0 ? f.fn.readConfig(offset, len) : 0;
  }

  configWrite(bus: number, dev: number, fn: number, offset: number, size: number, value: number): void {
    checkBdf(bus, dev, fn);
    const f = this.fns.get(key(bus, dev, fn));
    const len = Math.min(size, PCI_CONFIG_SPACE_SIZE - offset);
    if (f && len > 0) f.fn.writeConfig(offset, len, value % 2 ** (8 * len));
  }

  /** pci_host_data_read / pci_data_read: the port's low bits are ORed into the latch. */
  private dataRead(sub: number, size: number): number {
    const a = this.state.configAddress;
    if (!(a & PCI_ENABLE)) return 0xffffffff;
    const x = a | sub;
    return this.configRead((x >>> 16) & 0xff, (x >>> 11) & 0x1f, (x >>> 8) & 7, x & 0xff, size);
  }

  private dataWrite(sub: number, size: number, value: number): void {
    const a = this.state.configAddress;
    if (!(a & PCI_ENABLE)) return;
    const x = a | sub;
    this.configWrite((x >>> 16) & 0xff, (x >>> 11) & 0x1f, (x >>> 8) & 7, x & 0xff, size, value);
  }
}

export const PciHostKind: DeviceKind<PciHostState, PciHostConfig> = {
  type: "pci-host",
  stateVersion: 1,
  validate(s: unknown) {
    const o = s as Partial<PciHostState> | null;
    if (!o || typeof o !== "object") return "not an object";
    const a = o.configAddress;
    if (typeof a !== "number" || !Number.isInteger(a) || a < 0 || a > 0xffffffff) return "configAddress is not a 32-bit unsigned integer";
    return undefined;
  },
  create(bench, id, config) {
    return new PciHost(id, bench, config);
  },
};

/** The PCI host named `id` on `bench` (a clear error when the machine has none). */
export function findPciHost(bench: Bench, id = "pci"): PciHost {
  const d = bench.findDevice(id);
  if (!(d instanceof PciHost)) throw new PciError(`machine ${bench.machine.name} has no PCI host named ${id}`);
  return d;
}

/**
 * A function's 256 config bytes with QEMU's write semantics (pci_default_write_config): each
 * written byte keeps its read-only bits and takes the writable ones from the value (`wmask`).
 */
export function configBytesRead(config: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + config[offset + i]!;
  return v;
}

export function configBytesWrite(config: Uint8Array, wmask: Uint8Array, offset: number, size: number, value: number): void {
  for (let i = 0; i < size; i++) {
    const b = Math.floor(value / 2 ** (8 * i)) & 0xff;
    const m = wmask[offset + i]!;
    config[offset + i] = (config[offset + i]! & ~m) | (b & m);
  }
}
