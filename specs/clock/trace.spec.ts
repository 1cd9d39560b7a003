// The trace on its own: record count, listeners, the hash chain across the 64 KiB block boundary,
// and state round trips (a restored trace continues to the same hash; a bad state is refused).
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { Trace, checkTraceState, type TraceRecord } from "../../sim/clock/trace.ts";
import type { Plain } from "../../sim/clock/canonical.ts";

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

  // Records with byte payloads of every size around the block: the hash depends on the records
  // alone, not on how the run was cut into saved/restored pieces or rewound and replayed.
  const recs: [number, string, Plain[]][] = Array.from({ length: 120 }, (_, i) => [
    i * 7,
    i % 3 ? "event" : "io",
    [`dev${i % 4}`, i, new Uint8Array(((i * 977) % 7433) + 1).fill(i & 0xff), { k: i % 5 ? 1n : null, z: [true, "ü"] }],
  ]);
  const put = (t: Trace, from: number, to: number) => {
    for (let i = from; i < to; i++) t.record(recs[i]![0], recs[i]![1], ...recs[i]![2]);
  };

  it("the same records give the same hash however the run was batched, saved, restored or rewound", () => {
    const whole = new Trace();
    put(whole, 0, recs.length);
    for (const cuts of [[0], [1, 2, 3], [9, 10, 60], [17, 18, 19, 20, 119]]) {
      let t = new Trace();
      let at = 0;
      for (const c of [...cuts, recs.length]) {
        put(t, at, c);
        at = c;
        const next = new Trace();
        next.setState(JSON.parse(JSON.stringify(t.getState())));
        t = next;
      }
      expect(t.hash(), `cuts ${cuts}`).toBe(whole.hash());
    }
  });

  it("hashes bytes, not their text: a 64 KiB payload moves the chain on by itself", () => {
    const t = new Trace();
    t.record(0, "io", new Uint8Array(1 << 16));
    expect(t.getState().tail).toBe("");
    expect(t.getState().chain).not.toBe("0".repeat(64));
  });

  it("strings that differ only in lone surrogates hash differently; -0 and 0 alike", () => {
    const h = (...f: Plain[]) => {
      const t = new Trace();
      t.record(0, "io", ...f);
      return t.hash();
    };
    expect(h("\ud800")).not.toBe(h("\udc00"));
    expect(h("\ud800")).not.toBe(h("\ufffd"));
    expect(h("a\ud800")).not.toBe(h("a"));
    expect(h(-0)).toBe(h(0));
    expect(h([1, 2])).not.toBe(h([1], 2));
    expect(h({ a: 1, b: undefined })).toBe(h({ a: 1 }));
  });

  it("a state with a tail of text lines (written before the binary trace) still restores", () => {
    const legacy = { count: 2, chain: "0".repeat(64), tail: '[3,"io","x",{"$hex":"ab"}]\n[4,"io",{"$big":"5"}]\n' };
    expect(checkTraceState(legacy)).toBeUndefined();
    const a = new Trace();
    a.setState(legacy);
    const b = new Trace();
    b.record(3, "io", "x", new Uint8Array([0xab]));
    b.record(4, "io", 5n);
    expect(a.hash()).toBe(b.hash());
    expect(a.getState()).toEqual(b.getState());
  });

  it("objects encode as the format says whatever their key order, undefined members and number of shapes", () => {
    // A reference encoder for the subset used here, written from the format comment in trace.ts:
    // number 0x03 f64 | string 0x04 u32 len utf8 | object 0x08 u32 n (key, value)* sorted by key,
    // undefined members left out | record 0x09 u32 n(fields) f64 at, string type, fields.
    const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
    const f64 = (x: number) => { const b = Buffer.alloc(8); b.writeDoubleLE(x); return b; };
    const str = (x: string) => Buffer.concat([Buffer.from([4]), u32(Buffer.byteLength(x)), Buffer.from(x, "utf8")]);
    const enc = (v: unknown): Buffer => {
      if (typeof v === "number") return Buffer.concat([Buffer.from([3]), f64(v)]);
      if (typeof v === "string") return str(v);
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
      return Buffer.concat([Buffer.from([8]), u32(keys.length), ...keys.flatMap((k) => [str(k), enc(o[k])])]);
    };
    const objects: Record<string, unknown>[] = [
      { b: 2, a: "x" },
      { a: "x", b: 2 },
      { b: undefined, a: 1 },
      { b: 3, a: undefined, c: { z: 1, y: { q: "é" } } },
      { service: "kvp", call: "poll", ret: 0, revents: 65, tag: 1 },
      { service: "kvp", call: "read", ret: 7432, tag: undefined },
    ];
    // more shapes than the sink remembers (64), then the first ones again
    for (let i = 0; i < 100; i++) objects.push({ [`k${i}`]: i, [`j${99 - i}`]: "v" });
    objects.push({ b: 2, a: "x" }, { a: "x", b: 2 }, { b: undefined, a: 1 });
    const t = new Trace();
    const want: Buffer[] = [];
    objects.forEach((o, i) => {
      t.record(i, "event", o as Plain);
      want.push(Buffer.concat([Buffer.from([9]), u32(1), f64(i), str("event"), enc(o)]));
    });
    expect(t.getState().tail).toBe(Buffer.concat(want).toString("hex"));
  });

  it("the hash of an empty trace is SHA-256 of the zero chain and the count", () => {
    expect(new Trace().hash()).toBe(createHash("sha256").update("0".repeat(64)).update("#0").digest("hex"));
  });
});
