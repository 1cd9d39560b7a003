// A small test device for snapshots and scenarios: four 32-bit registers on 16 ports, a periodic
// timer driven by clock events that draws from the bench RNG, writes a tick record into guest
// memory and toggles an interrupt line — so a bench with it exercises ports, memory, interrupt
// levels, pending events and the RNG at once. Its
// state is at version 3, with upgrades from the layouts of versions 1 and 2 (old snapshot fixtures
// under specs/snapshot/fixtures/ are written in them). Not part of any production machine.
//
// Ports (base + offset, any access size; values are the low bytes of the register):
//   +0  REG0   read/write scratch
//   +4  REG1   read/write scratch
//   +8  RAND   read: the last random value the timer drew; write: reseeds nothing, xors into it
//   +12 CTRL   write N: run the timer every N ns (0 stops it) — 4-byte writes only, others fault
//              with EIO; read: ticks so far (low 32 bits)
//
// State history:
//   v1 {reg0, reg1, rand, period, ticks: number}                    (timer handle not kept)
//   v2 {regs: [reg0, reg1, rand], period, ticks: number, timer}     (timer: pending seq or -1)
//   v3 {regs: [reg0, reg1, rand], timer: {period, seq: number|null}, ticks: bigint, label: string}
import type { ClockEvent } from "../../clock/clock.ts";
import type { Bench, MachineSpec } from "../../machine/bench.ts";
import type { Device, DeviceKind } from "../../machine/device.ts";
import { IoFault, type IoSize } from "../../bus/portio.ts";

export interface TestdevState {
  [key: string]: unknown;
  regs: number[];
  timer: { period: number; seq: number | null };
  ticks: bigint;
  label: string;
}

export interface TestdevConfig {
  /** First of the device's 16 ports (default 0x700). */
  base?: number;
  /** Guest address where each tick writes {ticks u32, rand u32} (default: none). */
  dma?: number;
  /** Interrupt line driven high after odd ticks and low after even ones (default: none). */
  irq?: number;
  label?: string;
}

const u32 = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

export class TestdevDevice implements Device<any> {
  readonly kind = TestdevKind;
  state: TestdevState;
  readonly base: number;
  private readonly dma: number | undefined;
  private readonly irq: number | undefined;

  constructor(readonly id: string, private readonly bench: Bench, cfg: TestdevConfig) {
    this.base = cfg.base ?? 0x700;
    this.dma = cfg.dma;
    this.irq = cfg.irq;
    this.state = { regs: [0, 0, 0], timer: { period: 0, seq: null }, ticks: 0n, label: cfg.label ?? id };
    bench.ports.claim(this.base, 16, id, {
      read: (port, size) => this.read(port - this.base, size),
      write: (port, size, value) => this.write(port - this.base, size, value),
    });
    bench.clock.on(id, "tick", (ev) => this.tick(ev));
  }

  /** A v1 state does not know its timer's sequence number: find it among the pending events. */
  afterRestore(bench: Bench): void {
    const t = this.state.timer;
    if (t.period > 0 && t.seq === null) {
      const ev = bench.clock.pendingEvents().find((e) => e.target === this.id && e.kind === "tick");
      t.seq = ev ? ev.seq : bench.clock.schedule(t.period, this.id, "tick");
    }
  }

  private read(off: number, _size: IoSize): number {
    const r = off >> 2;
    if (r < 3) return this.state.regs[r]! >>> ((off & 3) * 8);
    return Number(BigInt.asUintN(32, this.state.ticks)) >>> ((off & 3) * 8);
  }

  private write(off: number, size: IoSize, value: number): void {
    const r = off >> 2;
    if (r === 3 && size !== 4) throw new IoFault("EIO", `${this.id}: CTRL takes 4-byte writes only`);
    if (r < 2) this.state.regs[r] = value >>> 0;
    else if (r === 2) this.state.regs[2] = (this.state.regs[2]! ^ value) >>> 0;
    else this.program(value);
  }

  private program(period: number): void {
    const t = this.state.timer;
    if (t.seq !== null) this.bench.clock.cancel(t.seq);
    t.period = period;
    t.seq = period > 0 ? this.bench.clock.schedule(period, this.id, "tick") : null;
  }

  private tick(_ev: ClockEvent): void {
    const s = this.state;
    s.ticks += 1n;
    s.regs[2] = this.bench.clock.rng.u32();
    if (this.dma !== undefined) {
      this.bench.memory.writeUint(this.dma, 4, Number(BigInt.asUintN(32, s.ticks)));
      this.bench.memory.writeUint(this.dma + 4, 4, s.regs[2]!);
    }
    if (this.irq !== undefined) this.bench.irq.set(this.irq, (s.ticks & 1n) === 1n, this.id);
    s.timer.seq = this.bench.clock.schedule(s.timer.period, this.id, "tick");
  }
}

export const TestdevKind: DeviceKind<any, TestdevConfig> = {
  type: "testdev",
  stateVersion: 3,
  upgrades: {
    // v1 -> v2: the registers become a list; the pending timer's handle was not kept in v1, and a
    // v1 writer only ever had one pending tick, so it is looked up again after restore (-1 here).
    1: (s: { reg0: number; reg1: number; rand: number; period: number; ticks: number }) => ({
      regs: [s.reg0, s.reg1, s.rand], period: s.period, ticks: s.ticks, timer: -1,
    }),
    // v2 -> v3: the timer becomes {period, seq}; ticks become a 64-bit bigint; a label is added.
    2: (s: { regs: number[]; period: number; ticks: number; timer: number }) => ({
      regs: s.regs, timer: { period: s.period, seq: s.timer >= 0 ? s.timer : null }, ticks: BigInt(s.ticks), label: "upgraded",
    }),
  },
  validate(state: unknown): string | undefined {
    if (state === null || typeof state !== "object") return "not an object";
    const s = state as Partial<TestdevState>;
    if (!Array.isArray(s.regs) || s.regs.length !== 3 || !s.regs.every(u32)) return "regs must be 3 u32 values";
    if (!s.timer || typeof s.timer !== "object" || !Number.isSafeInteger(s.timer.period) || s.timer.period < 0) return "timer.period must be a time";
    if (s.timer.seq !== null && !(Number.isSafeInteger(s.timer.seq) && s.timer.seq >= 0)) return "timer.seq must be a sequence number or null";
    if (typeof s.ticks !== "bigint" || s.ticks < 0n) return "ticks must be a non-negative bigint";
    if (typeof s.label !== "string") return "label must be a string";
    return undefined;
  },
  check(s: TestdevState, ctx) {
    const ticks = ctx.pending.filter((p) => p.kind === "tick");
    const other = ctx.pending.find((p) => p.kind !== "tick");
    if (other) return `pending event ${other.kind} (seq ${other.seq}) is not one this device schedules`;
    // A tick reschedules itself `period` ns on: with period 0 it would run forever at one instant.
    if (s.timer.period === 0 && (s.timer.seq !== null || ticks.length > 0)) return "timer.period is 0 while a tick is pending (it would re-arm at the same instant forever)";
    if (s.timer.seq !== null) {
      if (!ticks.some((p) => p.seq === s.timer.seq)) return `timer.seq ${s.timer.seq} names no pending tick of this device`;
      if (ticks.length > 1) return `${ticks.length} ticks pending, the state keeps only seq ${s.timer.seq}`;
    } else if (ticks.length > 1) return `${ticks.length} ticks pending for one timer`;
    return undefined;
  },
  create(bench: Bench, id: string, config: TestdevConfig): Device {
    return new TestdevDevice(id, bench, config);
  },
};

/** A minimal machine for tests and scenarios: 16 MiB of memory and two test devices. */
export const TESTBOX: MachineSpec = {
  name: "testbox",
  description: "Minimal test machine: 16 MiB, two testdev devices (ports 0x700 and 0x710)",
  memory: 16 << 20,
  devices: [
    { type: "testdev", id: "t0", config: { base: 0x700, dma: 0x1000, irq: 5 } },
    { type: "testdev", id: "t1", config: { base: 0x710 } },
  ],
};
