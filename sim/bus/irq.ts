// Interrupt lines (GSIs) as levels. Devices drive a line; a change of level appends a trace record
// and reaches listeners — the model's equivalent of QEMU qtest's `irq_intercept_in ioapic`, which
// reports `IRQ raise N` / `IRQ lower N` on every change.
import type { Clock } from "../clock/clock.ts";

export type IrqListener = (line: number, level: boolean, at: number) => void;

export class IrqBus {
  private readonly levels = new Map<number, boolean>();
  private readonly listeners: IrqListener[] = [];

  constructor(private readonly clock: Clock) {}

  /** Drives `line` to `level`; only a change is recorded and reported. */
  set(line: number, level: boolean, source: string): void {
    if ((this.levels.get(line) ?? false) === level) return;
    this.levels.set(line, level);
    const at = this.clock.now;
    this.clock.trace.record(at, "irq", level ? "raise" : "lower", line, source);
    for (const l of this.listeners) l(line, level, at);
  }

  level(line: number): boolean {
    return this.levels.get(line) ?? false;
  }

  listen(fn: IrqListener): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Lines currently high, ascending (plain data for snapshots). */
  getState(): number[] {
    return [...this.levels.entries()].filter(([, v]) => v).map(([k]) => k).sort((a, b) => a - b);
  }

  /** Sets levels silently (restore): no records, no listeners. */
  setState(high: readonly number[]): void {
    this.levels.clear();
    for (const l of high) this.levels.set(l, true);
  }
}
