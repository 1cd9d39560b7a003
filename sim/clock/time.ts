// Virtual time: an integer count of nanoseconds held in a `number`, exact up to 2^53 - 1.

/** The largest representable virtual time (2^53 - 1 ns, about 104 days). */
export const MAX_TIME = Number.MAX_SAFE_INTEGER;

export const NS_PER_US = 1_000;
export const NS_PER_MS = 1_000_000;
export const NS_PER_S = 1_000_000_000;

/** Error for a time or duration the clock refuses. */
export class TimeError extends RangeError {
  override name = "TimeError";
}

function describe(v: unknown): string {
  return typeof v === "number" ? String(v) : `${typeof v} ${String(v)}`;
}

/**
 * Returns `v` if it is a valid virtual time (or duration): an integer number of nanoseconds in
 * [0, 2^53). Anything else (fractional, negative, NaN, infinite, past 2^53, not a number) throws a
 * TimeError that names `what`.
 */
export function checkTime(v: unknown, what = "time"): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TimeError(`${what} must be a finite number of nanoseconds, got ${describe(v)}`);
  }
  if (!Number.isInteger(v)) throw new TimeError(`${what} must be a whole number of nanoseconds, got ${v}`);
  if (v < 0) throw new TimeError(`${what} must not be negative, got ${v}`);
  if (v > MAX_TIME) throw new TimeError(`${what} ${v} is past 2^53 - 1 ns, the last exact virtual time`);
  return v;
}

/** `a + b` as a virtual time, refusing a sum that is no longer exact. */
export function addTime(a: number, b: number, what = "time"): number {
  const s = a + b;
  if (s > MAX_TIME) throw new TimeError(`${what} ${a} + ${b} is past 2^53 - 1 ns, the last exact virtual time`);
  return s;
}
