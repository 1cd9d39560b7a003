// The port I/O bus: unclaimed ports read all ones (x86; QEMU's background I/O region reads -1),
// access sizes 1/2/4, a trace record per access, overlapping claims refused, device refusals
// (IoFault) recorded and passed on, and accesses that start unclaimed but run into a claim cut
// into pieces as QEMU does (checked on QEMU 7.2, see specs/pmtimer/qemu.spec.ts).
import { describe, expect, it } from "vitest";
import { Clock } from "../../sim/clock/clock.ts";
import { IoFault, PortBus, PortError, checkIoSize, type IoSize } from "../../sim/bus/portio.ts";

function bus() {
  const clock = new Clock({ seed: 1 });
  const ports = new PortBus(clock);
  const recs: string[] = [];
  clock.trace.listen((r) => recs.push(`${r.at} ${r.type} ${r.fields.map(String).join(" ")}`));
  return { clock, ports, recs };
}

describe("PortBus", () => {
  it("reads unclaimed ports as all ones of the access size and ignores writes", () => {
    const { ports } = bus();
    expect(ports.in(0x80, 1)).toBe(0xff);
    expect(ports.in(0x80, 2)).toBe(0xffff);
    expect(ports.in(0x80, 4)).toBe(0xffffffff);
    ports.out(0x80, 4, 0x12345678);
    expect(ports.in(0x80, 4)).toBe(0xffffffff);
  });

  it("dispatches to the claiming region and masks results to the size", () => {
    const { ports } = bus();
    const seen: [number, IoSize, number][] = [];
    ports.claim(0x100, 4, "dev", { read: (p, s) => 0x1_2345_6789 + p + s, write: (p, s, v) => void seen.push([p, s, v]) });
    expect(ports.in(0x100, 1)).toBe(0x8a); // 0x1_2345_688a
    expect(ports.in(0x101, 2)).toBe(0x688c);
    expect(ports.in(0x102, 4)).toBe(0x2345688f);
    ports.out(0x103, 1, 0xab);
    expect(seen).toEqual([[0x103, 1, 0xab]]);
    expect(ports.at(0x103)?.owner).toBe("dev");
    expect(ports.at(0x104)).toBeUndefined();
  });

  it("appends one trace record per access, claimed or not, with the virtual time", () => {
    const { clock, ports, recs } = bus();
    ports.claim(0x60, 1, "kbd", { read: () => 0x1c, write: () => undefined });
    clock.runUntil(500);
    ports.in(0x60, 1);
    ports.out(0x61, 1, 3);
    expect(recs).toEqual(["500 io in 96 1 28 kbd", "500 io out 97 1 3 null"]);
  });

  it("refuses overlapping claims, bad ranges, bad ports, sizes and values", () => {
    const { ports } = bus();
    ports.claim(0x400, 8, "a", { read: () => 0, write: () => undefined });
    expect(() => ports.claim(0x407, 2, "b", { read: () => 0, write: () => undefined })).toThrow(/0x407 is already claimed by a/);
    expect(() => ports.claim(0xffff, 2, "c", { read: () => 0, write: () => undefined })).toThrow(PortError);
    expect(() => ports.in(0x10000, 1)).toThrow(PortError);
    expect(() => ports.in(-1, 1)).toThrow(PortError);
    expect(() => ports.in(0x80, 3 as IoSize)).toThrow(/1, 2 or 4/);
    expect(() => ports.out(0x80, 1, 0x100)).toThrow(/does not fit/);
    expect(() => checkIoSize(8)).toThrow(PortError);
  });

  it("releases claims (all of an owner's, or one by base)", () => {
    const { ports } = bus();
    ports.claim(0x10, 2, "x", { read: () => 0, write: () => undefined });
    ports.claim(0x20, 2, "x", { read: () => 0, write: () => undefined });
    ports.release("x", 0x10);
    expect(ports.claims().map((r) => r.base)).toEqual([0x20]);
    ports.release("x");
    expect(ports.claims()).toEqual([]);
    expect(ports.in(0x20, 1)).toBe(0xff);
  });

  it("records a device's refusal (IoFault) and passes it on", () => {
    const { ports, recs } = bus();
    ports.claim(0x408, 4, "pmtimer", {
      read: (_p, s) => {
        if (s !== 4) throw new IoFault("EIO", "nope");
        return 7;
      },
      write: () => {
        throw new IoFault("EIO", "nope");
      },
    });
    expect(() => ports.in(0x408, 2)).toThrow(IoFault);
    expect(() => ports.out(0x408, 4, 1)).toThrow(IoFault);
    expect(recs).toEqual(["0 io-fault in 1032 2 EIO pmtimer", "0 io-fault out 1032 4 EIO pmtimer"]);
  });

  it("cuts an access that starts unclaimed into aligned pieces that reach the claim", () => {
    const { ports, recs } = bus();
    const calls: string[] = [];
    ports.claim(0x680, 4, "blk", {
      read: (p, s) => (calls.push(`in ${p.toString(16)} ${s}`), 0x04030201 % 2 ** (8 * s)),
      write: (p, s, v) => void calls.push(`out ${p.toString(16)} ${s} ${v.toString(16)}`),
    });
    // ff, then a 2-byte read at 0x680 (0x0201), then a 1-byte read at 0x682 (0x01: this handler ignores the port)
    expect(ports.in(0x67f, 4)).toBe(0x010201ff);
    expect(ports.in(0x67e, 4)).toBe(0x0201ffff);
    expect(ports.in(0x67c, 4)).toBe(0xffffffff); // aligned, entirely unclaimed: no pieces
    ports.out(0x67f, 4, 0xaabbccdd);
    expect(calls).toEqual(["in 680 2", "in 682 1", "in 680 2", "out 680 2 bbcc", "out 682 1 aa"]);
    expect(recs.at(-1)).toBe("0 io out 1663 4 2864434397 blk");
  });
});
