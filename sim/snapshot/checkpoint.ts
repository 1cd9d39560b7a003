// In-memory checkpoints of a running bench, for fuzzing from a warm state (in the spirit of
// Firecracker's diff snapshots): take() records the clock (time, pending events, RNG, trace
// position), interrupt lines and device states, and starts dirty-page tracking in guest memory;
// rollback() puts back the pages written since (and only those), the device states, the lines
// and the clock. Its cost grows with what changed (dirty pages, device state, pending events,
// the unfolded trace tail), not with guest RAM. The bench afterwards is the bench a full snapshot
// restore of the same moment gives (properties/snapshot/checkpoint.prop.ts proves trace and state
// byte-identical), and every device's afterRestore runs as on a full restore.
//
// One checkpoint per bench at a time. A full snapshot restore into the bench while a checkpoint is
// open rewrites pages in place behind the tracking: release the checkpoint first.
import { clonePlain, type Plain } from "../clock/canonical.ts";
import type { ClockState } from "../clock/clock.ts";
import type { Bench } from "../machine/bench.ts";

export interface RollbackSummary {
  /** Guest pages put back. */
  readonly pages: number;
  /** Devices whose state was put back. */
  readonly devices: number;
}

const open = new WeakMap<Bench, Checkpoint>();

export class Checkpoint {
  private released = false;

  private constructor(
    readonly bench: Bench,
    private readonly clock: ClockState,
    private readonly irq: readonly number[],
    private readonly states: ReadonlyMap<string, Plain>,
  ) {}

  /** Checkpoints `bench` as it is now (not from inside an event handler). */
  static take(bench: Bench): Checkpoint {
    if (open.has(bench)) throw new Error("this bench already has an open checkpoint: release it first");
    const clock = bench.clock.serialize();
    const irq = [...bench.irq.getState()];
    const states = new Map<string, Plain>(bench.devices().map((d) => [d.id, clonePlain(d.state as Plain)]));
    const cp = new Checkpoint(bench, clock, irq, states);
    bench.memory.trackDirty();
    open.set(bench, cp);
    return cp;
  }

  /** Returns the bench to the checkpoint; the checkpoint stays open for the next rollback. */
  rollback(): RollbackSummary {
    if (this.released) throw new Error("rollback of a released checkpoint");
    const b = this.bench;
    // The clock first: it validates its state and may refuse (e.g. inside a handler) before
    // anything else has changed.
    b.clock.restore(this.clock);
    const pages = b.memory.rollbackDirty();
    b.irq.setState(this.irq);
    let devices = 0;
    for (const d of b.devices()) {
      d.state = clonePlain(this.states.get(d.id)!);
      devices += 1;
    }
    for (const d of b.devices()) d.afterRestore?.(b, { fromSnapshot: true });
    return { pages, devices };
  }

  /** Ends the checkpoint: dirty-page tracking stops, the bench runs on as it is. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.bench.memory.stopTracking();
    open.delete(this.bench);
  }
}
