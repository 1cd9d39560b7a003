// The ACPI PM register block of QEMU's ICH9 (q35) with its PM timer — facts from QEMU 7.2
// hw/acpi/core.c, hw/acpi/ich9.c and include/hw/acpi/acpi.h, and replies of a qtest-enabled
// QEMU 7.2. Accesses are cut into pieces as QEMU's memory
// core does (sim/bus/regions.ts); per register:
//
//   +0x00 PM1_STS (16 bit)  read: TMR_STS is set lazily here if now >= muldiv64(overflow_time,
//                           1e9, 3579545) ns; write: 1 clears a bit, clearing TMR_STS recomputes
//                           overflow_time.
//   +0x02 PM1_EN  (16 bit)  plain register. (acpi-evt: impl 2, valid 1..2, handler decodes
//                           offsets 0 and 2 only, so a byte at +1 or +3 reads 0 and is dropped.)
//   +0x04 PM1_CNT (16 bit)  SLP_EN (bit 13) is never stored. (acpi-cnt: impl 2, valid 1..2; the
//                           7.2 handler ignores the offset: a byte at +5 reads the low byte and a
//                           byte written there replaces the whole register.)
//   +0x08 PM1_TMR (32 bit)  muldiv64(virtual ns, 3579545, 1e9) & 0xffffff; writes ignored.
//                           (acpi-tmr: impl 4, valid 1..4, offset ignored: every byte of it reads
//                           the counter's low byte.)
//   +0x20 GPE0_STS (8 bytes, write 1 to clear), +0x28 GPE0_EN (8 bytes); byte-wide handler.
//   +0x30 SMI_EN / SMI_STS and +0x60 the TCO watchdog (32 bytes) read their reset values (0; TCO2_CNT
//   0x0008, SW_IRQ_GEN 0x03, TCO_TMR 0x0004) and ignore writes — SMM and the watchdog are not
//   modelled. Everything else in the 128-byte block reads all ones.
//
// overflow_time = next multiple of 2^23 ticks strictly greater than the tick count when TMR_STS
// was last cleared (0 after reset, so PM1_STS reads 0x0001 right after reset). After every
// register write, and when the timer fires, the SCI is re-evaluated as QEMU's acpi_update_sci:
//   level = (PM1_STS & PM1_EN & (RTC_EN | PWRBTN_EN | GBL_EN | TMR_EN)) != 0
//           || (GPE0_STS[0] & GPE0_EN[0]) != 0        (QEMU looks at the first GPE byte only)
// and, while TMR_EN is set and TMR_STS clear, a clock event is armed for
// muldiv64(overflow_time, 1e9, 3579545) ns (an event as data: target = device id, kind
// "tmr-overflow"), which re-evaluates the SCI when it fires — so the SCI rises at that exact
// virtual time without any register read. The SCI drives an interrupt line of the bench (GSI 9
// unless the LPC's SCI_IRQ_SEL says otherwise); the IrqBus records "irq raise/lower <gsi>".
//
// The block is mapped at a port base by its owner (the ICH9 LPC function: PMBASE with ACPI_EN);
// while unmapped its ports are unclaimed and read all ones.
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind, RestoreInfo } from "../../machine/device.ts";
import { PmTickCache, pmTicksToNs } from "./ticks.ts";
import { blockRead, blockWrite, type Register } from "../../bus/regions.ts";

export const ACPI_PM_BLOCK_SIZE = 128;
export const PM1_STS = 0x00;
export const PM1_EN = 0x02;
export const PM1_CNT = 0x04;
export const PM1_TMR = 0x08;
export const GPE0_STS = 0x20;
export const GPE0_EN = 0x28;
/** ICH9 GPE0 block: 16 bytes, status then enable (QEMU ICH9_PMIO_GPE0_LEN). */
export const GPE0_BYTES = 8;

export const TMR_STS = 0x0001;
export const TMR_EN = 0x0001;
export const GBL_EN = 0x0020;
export const PWRBTN_EN = 0x0100;
export const RTC_EN = 0x0400;
/** ACPI_BITMASK_PM1_COMMON_ENABLED: the PM1 enables that raise the SCI. */
export const PM1_SCI_ENABLES = RTC_EN | PWRBTN_EN | GBL_EN | TMR_EN;
export const SLP_EN = 0x2000;
export const SCI_EN = 0x0001;
/** Bits 22:0 of the tick count: TMR_STS is due each time bit 23 toggles. */
const HALF_PERIOD = 2 ** 23;
export const DEFAULT_SCI_GSI = 9;

export interface AcpiPmState {
  [key: string]: number | boolean | number[];
  pm1Sts: number;
  pm1En: number;
  pm1Cnt: number;
  /** GPE0_STS bytes 0..7. */
  gpeSts: number[];
  /** GPE0_EN bytes 0..7. */
  gpeEn: number[];
  /** Tick count at which TMR_STS is next due (QEMU tmr.overflow_time). */
  overflowTime: number;
  /** Sequence number of the pending "tmr-overflow" clock event, -1 when none is armed. */
  timerSeq: number;
  /** Virtual time of that event (-1 when none). */
  timerAt: number;
  /** The SCI level last driven. */
  sci: boolean;
}

export interface AcpiPmConfig {
  /** GSI the SCI drives until an owner routes it (default 9). */
  sciGsi?: number;
  /** Map the block at this port base at creation (for machines without an LPC function). */
  base?: number;
}

export function resetAcpiPmState(): AcpiPmState {
  return { pm1Sts: 0, pm1En: 0, pm1Cnt: 0, gpeSts: new Array<number>(GPE0_BYTES).fill(0), gpeEn: new Array<number>(GPE0_BYTES).fill(0), overflowTime: 0, timerSeq: -1, timerAt: -1, sci: false };
}

export class AcpiPm implements Device<AcpiPmState> {
  readonly kind = AcpiPmKind;
  state: AcpiPmState = resetAcpiPmState();
  private readonly ticks = new PmTickCache();
  private readonly regs: Register[];
  private base_ = 0;
  private gsi_: number;

  constructor(readonly id: string, private readonly bench: Bench, cfg: AcpiPmConfig) {
    this.gsi_ = cfg.sciGsi ?? DEFAULT_SCI_GSI;
    this.regs = this.registers();
    bench.clock.on(id, "tmr-overflow", () => {
      this.state.timerSeq = -1;
      this.state.timerAt = -1;
      this.updateSci();
    });
    // QEMU's pm_reset ends with acpi_update_sci: with overflow_time = 0 that already latches TMR_STS.
    this.updateSci();
    if (cfg.base !== undefined && cfg.base !== 0) this.setIoBase(cfg.base);
  }

  // ---- the API other devices and tests use ----

  /** The PM1_TMR register now: the 24-bit counter. */
  counter(): number {
    return this.ticks.ticks(this.bench.clock.now) & 0xffffff;
  }

  /** PM1_TMR at virtual time `ns` (the hot path: no state is touched). */
  counterAt(ns: number): number {
    return this.ticks.ticks(ns) & 0xffffff;
  }

  /** The full tick count now (QEMU acpi_pm_tmr_get_clock). */
  tickCount(): number {
    return this.ticks.ticks(this.bench.clock.now);
  }

  /** Virtual time at which TMR_STS is next due: muldiv64(overflow_time, 1e9, 3579545). */
  overflowNs(): number {
    return pmTicksToNs(this.state.overflowTime);
  }

  /** The SCI level now. */
  get sciLevel(): boolean {
    return this.state.sci;
  }

  /** The GSI the SCI drives (9 unless routed elsewhere). */
  get sciGsi(): number {
    return this.gsi_;
  }

  /** Port base the block is mapped at, 0 while unmapped. */
  get ioBase(): number {
    return this.base_;
  }

  /**
   * Sets GPE0_STS bit `bit` (0..63) and re-evaluates the SCI — how a device raises an ACPI GPE
   * event (QEMU acpi_send_gpe_event; vmgenid uses bit 5, `_E05`).
   */
  setGpeStatus(bit: number): void {
    this.checkGpeBit(bit);
    this.state.gpeSts[bit >> 3] = this.state.gpeSts[bit >> 3]! | (1 << (bit & 7));
    this.updateSci();
  }

  /** Sets or clears GPE0_EN bit `bit` (what a guest's OSPM does through the port) and re-evaluates the SCI. */
  setGpeEnable(bit: number, on = true): void {
    this.checkGpeBit(bit);
    const i = bit >> 3;
    this.state.gpeEn[i] = on ? this.state.gpeEn[i]! | (1 << (bit & 7)) : this.state.gpeEn[i]! & ~(1 << (bit & 7));
    this.updateSci();
  }

  /** PM1_STS as a read sees it (latches TMR_STS when due). */
  pm1Status(): number {
    return this.getSts();
  }

  /** Maps the block at `base` (0 unmaps), as ICH9's pm_io_base update does. */
  setIoBase(base: number): void {
    if (!Number.isInteger(base) || base < 0 || base + ACPI_PM_BLOCK_SIZE > 0x10000) throw new RangeError(`ACPI PM block base 0x${base.toString(16)} does not fit the port space`);
    if (base === this.base_) return;
    if (this.base_ !== 0) this.bench.ports.release(this.id, this.base_);
    this.base_ = base;
    if (base !== 0) {
      this.bench.ports.claim(base, ACPI_PM_BLOCK_SIZE, this.id, {
        read: (port, size) => blockRead(this.regs, port - this.base_, size),
        write: (port, size, value) => blockWrite(this.regs, port - this.base_, size, value),
      });
    }
  }

  /**
   * Routes the SCI to `gsi` (-1: not delivered anywhere). A high SCI moves with it,
   * as ich9_lpc_pmbase_sci_update does; `silent` (restore) changes levels without records.
   */
  routeSci(gsi: number, silent = false): void {
    if (gsi === this.gsi_) return;
    const old = this.gsi_;
    this.gsi_ = gsi;
    if (!this.state.sci) return;
    if (silent) {
      this.setLineSilently(old, false);
      this.setLineSilently(gsi, true);
    } else {
      if (old >= 0) this.bench.irq.set(old, false, this.id);
      if (gsi >= 0) this.bench.irq.set(gsi, true, this.id);
    }
  }

  afterRestore(_bench: Bench, _info: RestoreInfo): void {
    // The pending tmr-overflow event (if any) came back with the clock; the line must show the
    // restored level without a raise/lower record, as in an uninterrupted run.
    this.setLineSilently(this.gsi_, this.state.sci);
  }

  // ---- QEMU's register semantics ----

  private checkGpeBit(bit: number): void {
    if (!Number.isInteger(bit) || bit < 0 || bit >= GPE0_BYTES * 8) throw new RangeError(`GPE0 bit must be 0..${GPE0_BYTES * 8 - 1}, got ${bit}`);
  }

  /** acpi_pm1_evt_get_sts: the ns comparison is QEMU's own (it arms its timer in ns too). */
  private getSts(): number {
    if (this.bench.clock.now >= pmTicksToNs(this.state.overflowTime)) this.state.pm1Sts |= TMR_STS;
    return this.state.pm1Sts;
  }

  private calcOverflowTime(): void {
    this.state.overflowTime = (Math.floor(this.tickCount() / HALF_PERIOD) + 1) * HALF_PERIOD;
  }

  private writeSts(v: number): void {
    const sts = this.getSts();
    if (sts & v & TMR_STS) this.calcOverflowTime();
    this.state.pm1Sts = sts & ~v & 0xffff;
  }

  private updateSci(): void {
    const s = this.state;
    const sts = this.getSts();
    const level = (sts & s.pm1En & PM1_SCI_ENABLES) !== 0 || (s.gpeSts[0]! & s.gpeEn[0]!) !== 0;
    if (level !== s.sci) {
      s.sci = level;
      if (this.gsi_ >= 0) this.bench.irq.set(this.gsi_, level, this.id);
    }
    this.timerUpdate((s.pm1En & TMR_EN) !== 0 && (sts & TMR_STS) === 0);
  }

  /** acpi_pm_tmr_update: arm (timer_mod) or cancel (timer_del) the overflow event. */
  private timerUpdate(enable: boolean): void {
    const s = this.state;
    const clock = this.bench.clock;
    if (enable) {
      const at = Math.max(pmTicksToNs(s.overflowTime), clock.now);
      if (s.timerSeq >= 0 && s.timerAt === at) return;
      if (s.timerSeq >= 0) clock.cancel(s.timerSeq);
      s.timerSeq = clock.scheduleAt(at, this.id, "tmr-overflow");
      s.timerAt = at;
    } else if (s.timerSeq >= 0) {
      clock.cancel(s.timerSeq);
      s.timerSeq = -1;
      s.timerAt = -1;
    }
  }

  private setLineSilently(gsi: number, level: boolean): void {
    if (gsi < 0 || this.bench.irq.level(gsi) === level) return;
    const high = new Set(this.bench.irq.getState());
    if (level) high.add(gsi);
    else high.delete(gsi);
    this.bench.irq.setState([...high].sort((a, b) => a - b));
  }

  private registers(): Register[] {
    const s = () => this.state;
    return [
      {
        name: "PM1_EVT", offset: PM1_STS, length: 4, validMin: 1, validMax: 2, implMin: 2, implMax: 4,
        read: (addr) => (addr === 0 ? this.getSts() : addr === 2 ? s().pm1En : 0),
        write: (addr, _size, v) => {
          if (addr === 0) this.writeSts(v & 0xffff);
          else if (addr === 2) s().pm1En = v & 0xffff;
          else return;
          this.updateSci();
        },
      },
      {
        name: "PM1_CNT", offset: PM1_CNT, length: 2, validMin: 1, validMax: 2, implMin: 2, implMax: 4,
        read: () => s().pm1Cnt,
        write: (_addr, _size, v) => {
          const val = v & 0xffff;
          s().pm1Cnt = val & ~SLP_EN;
          if (val & SLP_EN) this.bench.clock.trace.record(this.bench.now, "acpi-sleep", this.id, (val >> 10) & 7);
        },
      },
      {
        name: "PM1_TMR", offset: PM1_TMR, length: 4, validMin: 1, validMax: 4, implMin: 4, implMax: 4,
        read: () => this.counter(),
        write: () => undefined,
      },
      {
        name: "GPE0", offset: GPE0_STS, length: 2 * GPE0_BYTES, validMin: 1, validMax: 4, implMin: 1, implMax: 1,
        read: (addr) => (addr < GPE0_BYTES ? s().gpeSts[addr]! : s().gpeEn[addr - GPE0_BYTES]!),
        write: (addr, _size, v) => {
          if (addr < GPE0_BYTES) s().gpeSts[addr] = s().gpeSts[addr]! & ~v & 0xff;
          else s().gpeEn[addr - GPE0_BYTES] = v & 0xff;
          this.updateSci();
        },
      },
      fixedBytes("SMI", 0x30, new Uint8Array(8)),
      fixedBytes("TCO", 0x60, TCO_RESET),
    ];
  }
}

/** TCO register reset values as QEMU 7.2 reads them (TCO2_CNT 0x0008, SW_IRQ_GEN 0x03, TCO_TMR 0x0004). */
const TCO_RESET = (() => {
  const b = new Uint8Array(32);
  b[0x0a] = 0x08;
  b[0x10] = 0x03;
  b[0x12] = 0x04;
  return b;
})();

/** A read-only register range holding constant bytes (not-modelled registers at their reset values). */
function fixedBytes(name: string, offset: number, bytes: Uint8Array): Register {
  return {
    name, offset, length: bytes.length, validMin: 1, validMax: 4, implMin: 1, implMax: 4,
    read: (addr, size) => {
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + (bytes[addr + i] ?? 0);
      return v;
    },
    write: () => undefined,
  };
}

function isByteArray(v: unknown, n: number): v is number[] {
  return Array.isArray(v) && v.length === n && v.every((b) => Number.isInteger(b) && b >= 0 && b <= 0xff);
}

export const AcpiPmKind: DeviceKind<AcpiPmState, AcpiPmConfig> = {
  type: "acpi-pm",
  stateVersion: 1,
  validate(st: unknown) {
    const o = st as Partial<AcpiPmState> | null;
    if (!o || typeof o !== "object") return "not an object";
    for (const k of ["pm1Sts", "pm1En", "pm1Cnt"] as const) {
      const v = o[k];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff) return `${k} is not a 16-bit register value`;
    }
    if (!isByteArray(o.gpeSts, GPE0_BYTES) || !isByteArray(o.gpeEn, GPE0_BYTES)) return `gpeSts/gpeEn are not ${GPE0_BYTES} bytes each`;
    if (!Number.isSafeInteger(o.overflowTime) || (o.overflowTime as number) < 0 || (o.overflowTime as number) % HALF_PERIOD !== 0) return "overflowTime is not a multiple of 2^23 ticks";
    if (!Number.isSafeInteger(o.timerSeq) || (o.timerSeq as number) < -1) return "timerSeq is not an event sequence number or -1";
    if (!Number.isSafeInteger(o.timerAt) || (o.timerAt as number) < -1) return "timerAt is not a time or -1";
    if (((o.timerSeq as number) < 0) !== ((o.timerAt as number) < 0)) return "timerSeq and timerAt disagree";
    if (typeof o.sci !== "boolean") return "sci is not a boolean";
    return undefined;
  },
  check(s: AcpiPmState, ctx) {
    const other = ctx.pending.find((p) => p.kind !== "tmr-overflow");
    if (other) return `pending event ${other.kind} (seq ${other.seq}) is not one this device schedules`;
    const armed = ctx.pending.filter((p) => p.kind === "tmr-overflow");
    if (s.timerSeq >= 0) {
      const ev = armed.find((p) => p.seq === s.timerSeq);
      if (!ev) return `timerSeq ${s.timerSeq} names no pending tmr-overflow event (TMR_STS would never raise the SCI)`;
      if (ev.at !== s.timerAt) return `the tmr-overflow event is due at ${ev.at} ns, timerAt says ${s.timerAt}`;
    }
    const stray = armed.find((p) => p.seq !== s.timerSeq);
    if (stray) return `a tmr-overflow event (seq ${stray.seq}) is pending that timerSeq does not name`;
    // acpi_pm_tmr_update: while TMR_EN is set and TMR_STS clear, the overflow timer is armed.
    const latched = (s.pm1Sts & TMR_STS) !== 0 || ctx.clock.now >= pmTicksToNs(s.overflowTime);
    if ((s.pm1En & TMR_EN) !== 0 && !latched && s.timerSeq < 0) return "TMR_EN is set and TMR_STS clear, but no tmr-overflow event is armed";
    return undefined;
  },
  create(bench, id, config) {
    return new AcpiPm(id, bench, config);
  },
};

/** The ACPI PM block named `id` (a clear error when there is none). */
export function findAcpiPm(bench: Bench, id = "acpi"): AcpiPm {
  const d = bench.findDevice(id);
  if (!(d instanceof AcpiPm)) throw new Error(`machine ${bench.machine.name} has no ACPI PM block named ${id}`);
  return d;
}

/**
 * Raises ACPI GPE0 status bit `bit` on the machine's PM block and re-evaluates the SCI (for
 * devices such as vmgenid that notify the guest through a GPE).
 */
export function raiseGpe(bench: Bench, bit: number, acpiId = "acpi"): void {
  findAcpiPm(bench, acpiId).setGpeStatus(bit);
}
