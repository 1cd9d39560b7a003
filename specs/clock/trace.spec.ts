// The trace on its own: record count, listeners, the hash chain across the 64 KiB block boundary,
// and state round trips (a restored trace continues to the same hash; a bad state is refused).
import { describe, expect, it } from "vitest";
import { Trace, checkTraceState, type TraceRecord } from "../../sim/clock/trace.ts";

/** Appends records 0..n-1 (each ~1 KiB of text) to `t`. */
function fill(t: Trace, from: number, to: number): void {
  for (let i = from; i < to; i++) t.record(i, "io", "out", i, "x".repeat(1000));
}

describe("Trace", () => {
  it("counts records and passes each one, with its canonical line, to listeners until unlistened", () => {
    const t = new Trace();
    const got: [TraceRecord, string][] = [];
    const stop = t.listen((r, line) => got.push([r, line]));
    t.record(5, "io", "in", 0x70, 4, 0xdeadn, null);
    stop();
    t.record(6, "io", "out", 1);
    expect(t.count).toBe(2);
    expect(got).toEqual([[{ at: 5, type: "io", fields: ["in", 0x70, 4, 0xdeadn, null] }, '[5,"io","in",112,4,{"$big":"57005"},null]']]);
  });

  it("a disabled trace records nothing", () => {
    const t = new Trace(false);
    const seen: string[] = [];
    t.listen((_r, line) => seen.push(line));
    t.record(1, "io", "x");
    expect(t.count).toBe(0);
    expect(seen).toEqual([]);
    expect(t.hash()).toBe(new Trace().hash());
  });

  it("restoring a state taken before or after a block fold continues to the same hash", () => {
    const full = new Trace();
    fill(full, 0, 200);
    for (const cut of [0, 1, 60, 64, 65, 66, 130, 199, 200]) {
      const a = new Trace();
      fill(a, 0, cut);
      const state = JSON.parse(JSON.stringify(a.getState()));
      expect(checkTraceState(state)).toBeUndefined();
      const b = new Trace();
      b.setState(state);
      expect(b.count).toBe(cut);
      expect(b.hash()).toBe(a.hash());
      fill(b, cut, 200);
      expect(b.hash(), `cut at ${cut}`).toBe(full.hash());
    }
    // 200 records of ~1 KiB: the chain has moved on from its start.
    expect(full.getState().chain).not.toBe("0".repeat(64));
  });

  it("different records or a different order give a different hash", () => {
    const a = new Trace(), b = new Trace(), c = new Trace();
    a.record(1, "io", "x");
    a.record(2, "io", "y");
    b.record(2, "io", "y");
    b.record(1, "io", "x");
    c.record(1, "io", "x");
    c.record(2, "io", "z");
    expect(new Set([a.hash(), b.hash(), c.hash()]).size).toBe(3);
  });

  it("refuses a malformed state with a TypeError and keeps its own", () => {
    const t = new Trace();
    fill(t, 0, 3);
    const before = JSON.stringify(t.getState());
    const good = t.getState();
    for (const bad of [null, { ...good, count: -1 }, { ...good, chain: "A".repeat(64) }, { ...good, tail: "x" }, { ...good, tail: "\n" }, { ...good, tail: "\n[1]\n" }, { ...good, tail: "a\n\nb\n", count: 9 }]) {
      expect(() => t.setState(bad as never)).toThrow(/invalid trace state: /);
    }
    expect(JSON.stringify(t.getState())).toBe(before);
  });
});
