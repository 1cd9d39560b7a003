// A small, busy clock workload shared by the clock specs and the two-process hash check
// (specs/clock/fixtures/hash-run.ts). Every handler keeps its state in event payloads and the clock
// (time, RNG), never in closures, so that a serialized clock continues exactly like the original.
import { Clock } from "../../sim/clock/clock.ts";

/** Registers the workload's handlers on `clock` and schedules its first events. */
export function install(clock: Clock, arm = true): Clock {
  // A periodic timer: re-arms itself every 1000 ns, counting in its payload.
  clock.on("timer", "tick", (ev, c) => {
    const n = (ev.payload as { n: number }).n;
    c.schedule(1000, "timer", "tick", { n: n + 1 });
    // Every 3rd tick raises an "irq" due now (same step, after this event).
    if (n % 3 === 0) c.schedule(0, "dev", "irq", { from: n, big: BigInt(n) * 10n ** 20n });
  });
  // A device whose completions come after random delays, with random bytes.
  clock.on("dev", "irq", (ev, c) => {
    const delay = c.rng.int(0, 2500);
    c.schedule(delay, "dev", "done", { data: c.rng.bytes(5), of: (ev.payload as { from: number }).from });
  });
  clock.on("dev", "done", () => {});
  // A watchdog that is re-armed on every "kick" and cancelled when its predecessor is pending.
  clock.on("wd", "kick", (ev, c) => {
    const prev = (ev.payload as { prev: number | null }).prev;
    if (prev !== null) c.cancel(prev);
    const seq = c.schedule(4000, "wd", "bite", null);
    c.schedule(1500 + c.rng.int(0, 1000), "wd", "kick", { prev: seq });
  });
  clock.on("wd", "bite", () => {});
  if (arm) {
    clock.schedule(0, "timer", "tick", { n: 0 });
    clock.schedule(10, "wd", "kick", { prev: null });
  }
  return clock;
}

/** External inputs: step sizes, some zero, some landing exactly on event times. */
export const STEPS: readonly number[] = [0, 1000, 333, 667, 0, 2500, 1, 4999, 10_000, 12_345, 1000, 7, 50_000, 3];

/** Runs `steps` on the clock. */
export function drive(clock: Clock, steps: readonly number[] = STEPS): void {
  for (const s of steps) clock.step(s);
}

/** The trace hash of the full workload from `seed`. */
export function workloadHash(seed: number): string {
  const c = install(new Clock({ seed }));
  drive(c);
  return c.trace.hash();
}
