// The ICH9 LPC bridge's PCI function (00:1f.0) as far as ACPI needs it — facts from QEMU
// hw/isa/lpc_ich9.c and include/hw/southbridge/ich9.h (QEMU 7.2):
//   0x00 vendor 0x8086, 0x02 device 0x2918 (ICH9 LPC), 0x08 revision 0x02, 0x0a class 0x0601
//   (ISA bridge), 0x0e header type 0x80 (multi-function).
//   0x40 PMBASE (32 bit): reset 0x00000001; the base is bits 15:7. QEMU sets the write mask of
//        the dword to bits 15:7 and then overwrites the mask of its low byte with ACPI_EN |
//        SCI_IRQ_SEL (0x87), so bits 0-2 and 7 of the low byte are writable: writing 0x601 reads
//        back 0x601, writing 0x600 reads back 0x600. Only bits 15:7 matter for the mapping.
//   0x44 ACPI_CNTL (8 bit): ACPI_EN 0x80; SCI_IRQ_SEL bits 2:0 — 0 IRQ 9, 1 IRQ 10, 2 IRQ 11,
//        4 IRQ 20, 5 IRQ 21; a reserved selection leaves the SCI on the GSI it had.
//   Every other byte from 0x40 on is plain read/write storage (QEMU's default write mask for the
//   device-specific area); in the header only command, cache line size, latency timer and
//   interrupt line are writable.
// After any config write that touches PMBASE or ACPI_CNTL (ich9_lpc_pmbase_sci_update): the ACPI
// PM block (128 ports) is mapped at PMBASE & 0xff80 when ACPI_EN is set and that base is non-zero,
// unmapped otherwise — its ports then read all ones — and the SCI is routed to the selected GSI.
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind, RestoreInfo } from "../../machine/device.ts";
import { configBytesRead, configBytesWrite, findPciHost, PCI_CONFIG_SPACE_SIZE } from "../../bus/pci.ts";
import { ACPI_PM_BLOCK_SIZE, findAcpiPm, type AcpiPm } from "./acpi-pm.ts";

export const ICH9_LPC_DEV = 0x1f;
export const ICH9_LPC_FUNC = 0;
export const ICH9_LPC_PMBASE = 0x40;
export const ICH9_LPC_ACPI_CTRL = 0x44;
export const ICH9_LPC_ACPI_EN = 0x80;
export const ICH9_LPC_SCI_IRQ_SEL_MASK = 0x07;
export const ICH9_LPC_PMBASE_MASK = 0xff80;
const SCI_GSI: Record<number, number> = { 0: 9, 1: 10, 2: 11, 4: 20, 5: 21 };

export interface Ich9LpcState {
  [key: string]: Uint8Array;
  /** The function's 256 configuration-space bytes. */
  config: Uint8Array;
}

export interface Ich9LpcConfig {
  /** Device id of the PCI host (default "pci"). */
  pci?: string;
  /** Device id of the ACPI PM block it maps (default "acpi"). */
  acpi?: string;
}

function resetConfig(): Uint8Array {
  const c = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  const put = (off: number, size: number, v: number) => {
    for (let i = 0; i < size; i++) c[off + i] = (v >>> (8 * i)) & 0xff;
  };
  put(0x00, 2, 0x8086);
  put(0x02, 2, 0x2918);
  put(0x08, 1, 0x02);
  put(0x0a, 2, 0x0601);
  put(0x0e, 1, 0x80);
  put(ICH9_LPC_PMBASE, 4, 0x00000001);
  put(ICH9_LPC_ACPI_CTRL, 1, 0x00);
  return c;
}

const WMASK: Uint8Array = (() => {
  const m = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  m[0x04] = 0x47; // command: I/O, memory, bus master, parity error response
  m[0x05] = 0x05; // command: SERR#, INTx disable
  m[0x0c] = 0xff; // cache line size
  m[0x0d] = 0xff; // latency timer
  m[0x3c] = 0xff; // interrupt line
  m.fill(0xff, 0x40);
  m[ICH9_LPC_PMBASE] = ICH9_LPC_ACPI_EN | ICH9_LPC_SCI_IRQ_SEL_MASK;
  m[ICH9_LPC_PMBASE + 1] = 0xff;
  m[ICH9_LPC_PMBASE + 2] = 0x00;
  m[ICH9_LPC_PMBASE + 3] = 0x00;
  return m;
})();

export class Ich9Lpc implements Device<Ich9LpcState> {
  readonly kind = Ich9LpcKind;
  state: Ich9LpcState = { config: resetConfig() };
  private readonly acpiId: string;

  constructor(readonly id: string, private readonly bench: Bench, cfg: Ich9LpcConfig) {
    this.acpiId = cfg.acpi ?? "acpi";
    findPciHost(bench, cfg.pci ?? "pci").register(0, ICH9_LPC_DEV, ICH9_LPC_FUNC, id, {
      readConfig: (off, size) => configBytesRead(this.state.config, off, size),
      writeConfig: (off, size, value) => this.writeConfig(off, size, value),
    });
    this.update(false);
  }

  /** PMBASE as the config space holds it. */
  get pmbase(): number {
    return configBytesRead(this.state.config, ICH9_LPC_PMBASE, 4);
  }

  get acpiCntl(): number {
    return this.state.config[ICH9_LPC_ACPI_CTRL]!;
  }

  /** Port base of the ACPI PM block, 0 while it is unmapped. */
  get pmIoBase(): number {
    return this.acpiCntl & ICH9_LPC_ACPI_EN ? this.pmbase & ICH9_LPC_PMBASE_MASK : 0;
  }

  /** GSI SCI_IRQ_SEL selects, -1 for a reserved selection (which does not move the SCI). */
  get sciGsi(): number {
    return SCI_GSI[this.acpiCntl & ICH9_LPC_SCI_IRQ_SEL_MASK] ?? -1;
  }

  private acpi(): AcpiPm {
    return findAcpiPm(this.bench, this.acpiId);
  }

  private writeConfig(off: number, size: number, value: number): void {
    configBytesWrite(this.state.config, WMASK, off, size, value);
    const end = off + size;
    if ((off < ICH9_LPC_PMBASE + 4 && end > ICH9_LPC_PMBASE) || (off <= ICH9_LPC_ACPI_CTRL && end > ICH9_LPC_ACPI_CTRL)) this.update(false);
  }

  private update(silent: boolean): void {
    const pm = this.acpi();
    pm.setIoBase(this.pmIoBase);
    // A reserved SCI_IRQ_SEL leaves the SCI where it was (QEMU returns early on -1).
    const gsi = this.sciGsi;
    if (gsi >= 0) pm.routeSci(gsi, silent);
  }

  afterRestore(_bench: Bench, _info: RestoreInfo): void {
    this.update(true);
  }
}

export const Ich9LpcKind: DeviceKind<Ich9LpcState, Ich9LpcConfig> = {
  type: "ich9-lpc",
  stateVersion: 1,
  validate(s: unknown) {
    const o = s as Partial<Ich9LpcState> | null;
    if (!o || typeof o !== "object") return "not an object";
    if (!(o.config instanceof Uint8Array) || o.config.length !== PCI_CONFIG_SPACE_SIZE) return `config is not ${PCI_CONFIG_SPACE_SIZE} bytes`;
    return undefined;
  },
  check(s: Ich9LpcState, ctx) {
    if (ctx.pending.length) return `pending event ${ctx.pending[0]!.kind} (seq ${ctx.pending[0]!.seq}) is not one this device schedules`;
    // afterRestore maps the PM block at PMBASE: its ports must be free of every other device.
    const cntl = s.config[ICH9_LPC_ACPI_CTRL]!;
    const base = cntl & ICH9_LPC_ACPI_EN ? configBytesRead(s.config, ICH9_LPC_PMBASE, 4) & ICH9_LPC_PMBASE_MASK : 0;
    if (base === 0) return undefined;
    const acpiId = (ctx.spec.config as Ich9LpcConfig | undefined)?.acpi ?? "acpi";
    for (const r of ctx.bench.ports.claims()) {
      if (r.owner === acpiId) continue;
      if (r.base < base + ACPI_PM_BLOCK_SIZE && base < r.base + r.length) {
        return `PMBASE 0x${base.toString(16)} maps the ACPI PM block over ports 0x${Math.max(base, r.base).toString(16)}.. claimed by ${r.owner}`;
      }
    }
    return undefined;
  },
  create(bench, id, config) {
    return new Ich9Lpc(id, bench, config);
  },
};
