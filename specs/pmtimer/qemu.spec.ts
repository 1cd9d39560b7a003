// q35 / QEMU profile of the ACPI PM timer, driven through the ports exactly as a qtest script
// does. Golden values: QEMU hw/acpi/core.c + hw/isa/lpc_ich9.c facts and replies of a
// qtest-enabled QEMU 7.2 (the access-width values below were
// replayed on that QEMU 7.2 with `-machine q35,pit=off,hpet=off -accel qtest`).
import { describe, expect, it } from "vitest";
import { bench, benchOf, ENABLE_PM, io, refCrossNs, refDueNs, refQemu, restore, save } from "./reference.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { findAcpiPm, raiseGpe, type AcpiPm } from "../../sim/devices/pmtimer/acpi-pm.ts";
import type { Ich9Lpc } from "../../sim/devices/pmtimer/ich9-lpc.ts";
import type { Bench } from "../../sim/machine/bench.ts";

function q35(): Bench {
  return bench("q35");
}

function enabled(): Bench {
  const b = q35();
  for (const l of ENABLE_PM) io(b, l);
  return b;
}

/** IRQ lines as qtest's irq_intercept_in reports them, with the virtual time of each. */
function irqLog(b: Bench): string[] {
  const out: string[] = [];
  b.irq.listen((line, level, at) => out.push(`${at} IRQ ${level ? "raise" : "lower"} ${line}`));
  return out;
}

describe("q35 PM timer counter (QEMU 7.2 golden values)", () => {
  it("reads all ones at 0x608 until PMBASE and ACPI_EN are programmed", () => {
    const b = q35();
    expect(io(b, "inl 0x608")).toBe(0xffffffff);
    io(b, "outl 0xcf8 0x8000f840");
    io(b, "outl 0xcfc 0x601");
    expect(io(b, "inl 0x608")).toBe(0xffffffff); // base set, ACPI_EN still clear
    io(b, "outl 0xcf8 0x8000f844");
    io(b, "outb 0xcfc 0x80");
    expect(io(b, "inl 0x608")).toBe(0);
  });

  it("matches the QEMU 7.2 qtest replies at 1e9, 1000000279, 1000000280 and 5686000280 ns", () => {
    const b = enabled();
    const at = (ns: number) => {
      b.clock.runUntil(ns);
      return io(b, "inl 0x608");
    };
    expect(at(1_000_000_000)).toBe(0x369e99);
    expect(at(1_000_000_279)).toBe(0x369e99);
    expect(at(1_000_000_280)).toBe(0x369e9a);
    expect(at(5_686_000_280)).toBe(0x36910d);
  });

  it("is muldiv64(ns, 3579545, 1e9) & 0xffffff across 2^24 wraps (BigInt reference)", () => {
    const b = enabled();
    let t = 0n;
    for (let i = 0; i < 200; i++) {
      t += BigInt(1 + ((i * 7_919_873_111) % 6_000_000_000));
      b.clock.runUntil(Number(t));
      expect(io(b, "inl 0x608")).toBe(Number(refQemu(t)));
    }
  });

  it("follows PMBASE when it moves, and unmaps when ACPI_EN is cleared", () => {
    const b = enabled();
    b.clock.runUntil(1_000_000_000);
    io(b, "outl 0xcf8 0x8000f840");
    io(b, "outl 0xcfc 0xb001");
    expect(io(b, "inl 0x608")).toBe(0xffffffff);
    expect(io(b, "inl 0xb008")).toBe(0x369e99);
    expect(findAcpiPm(b).ioBase).toBe(0xb000);
    io(b, "outl 0xcf8 0x8000f844");
    io(b, "outb 0xcfc 0x00");
    expect(io(b, "inl 0xb008")).toBe(0xffffffff);
    expect(findAcpiPm(b).ioBase).toBe(0);
  });
});

describe("ICH9 LPC configuration space (QEMU 7.2 replies)", () => {
  it("identifies as 8086:2918, ISA bridge, multi-function; PMBASE resets to 1", () => {
    const b = q35();
    io(b, "outl 0xcf8 0x8000f800");
    expect(io(b, "inl 0xcfc")).toBe(0x29188086);
    io(b, "outl 0xcf8 0x8000f808");
    expect(io(b, "inl 0xcfc")).toBe(0x06010002);
    io(b, "outl 0xcf8 0x8000f80c");
    expect(io(b, "inl 0xcfc")).toBe(0x00800000);
    io(b, "outl 0xcf8 0x8000f840");
    expect(io(b, "inl 0xcfc")).toBe(0x00000001);
  });

  it("has QEMU's PMBASE write mask: 0xffffffff reads back 0xff87, 0x600 reads back 0x600", () => {
    const b = q35();
    io(b, "outl 0xcf8 0x8000f840");
    io(b, "outl 0xcfc 0xffffffff");
    expect(io(b, "inl 0xcfc")).toBe(0xff87);
    io(b, "outl 0xcfc 0x600");
    expect(io(b, "inl 0xcfc")).toBe(0x600);
    io(b, "outl 0xcfc 0x601");
    expect(io(b, "inl 0xcfc")).toBe(0x601);
    expect(b.device<Ich9Lpc>("lpc").pmbase).toBe(0x601);
  });
});

describe("PM register block access widths (QEMU 7.2 replies, PM1_EN = 0x0120, PM1_CNT = 0x1234, GPE0_EN = 04030201, t = 1 s)", () => {
  const cases: [string, number][] = [
    ["inb 0x600", 0x01], ["inb 0x601", 0x00], ["inb 0x602", 0x20], ["inb 0x603", 0x00],
    ["inb 0x604", 0x34], ["inb 0x605", 0x34], ["inb 0x606", 0xff], ["inb 0x608", 0x99],
    ["inb 0x609", 0x99], ["inb 0x60b", 0x99], ["inb 0x60c", 0xff], ["inb 0x628", 0x01],
    ["inb 0x62b", 0x04], ["inb 0x630", 0x00], ["inb 0x638", 0xff], ["inb 0x66a", 0x08],
    ["inb 0x670", 0x03], ["inb 0x672", 0x04], ["inw 0x600", 0x0001], ["inw 0x602", 0x0120],
    ["inw 0x604", 0x1234], ["inw 0x608", 0x9e99], ["inw 0x60a", 0x9e99], ["inw 0x628", 0x0201],
    ["inw 0x605", 0xff34], ["inl 0x600", 0x01200001], ["inl 0x604", 0xffff1234], ["inl 0x608", 0x369e99],
    ["inl 0x60c", 0xffffffff], ["inl 0x628", 0x04030201], ["inl 0x668", 0x00080000], ["inl 0x670", 0x00040003],
    ["inl 0x605", 0x99ffff34], ["inl 0x601", 0x34012000], ["inl 0x602", 0x12340120], ["inl 0x606", 0x9e99ffff],
    ["inl 0x607", 0x999e99ff], ["inl 0x609", 0xff9e9999], ["inl 0x61f", 0x000000ff], ["inl 0x680", 0xffffffff],
  ];
  const b = enabled();
  for (const l of ["outw 0x604 0x1234", "outw 0x602 0x0120", "outl 0x628 0x04030201"]) io(b, l);
  b.clock.runUntil(1_000_000_000);
  for (const [cmd, want] of cases) {
    it(`${cmd} -> 0x${want.toString(16)}`, () => expect(io(b, cmd)).toBe(want));
  }

  it("PM1_CNT byte writes replace the whole register and never store SLP_EN (7.2 handler ignores the offset)", () => {
    const c = enabled();
    io(c, "outw 0x604 0x1234");
    io(c, "outb 0x605 0x56");
    expect(io(c, "inw 0x604")).toBe(0x0056);
    io(c, "outb 0x604 0x9a");
    expect(io(c, "inw 0x604")).toBe(0x009a);
    io(c, "outw 0x604 0x2001"); // SLP_EN with SLP_TYP 0: recorded, not stored
    expect(io(c, "inw 0x604")).toBe(0x0001);
  });

  it("PM1_EN ignores byte writes at odd offsets", () => {
    const c = enabled();
    io(c, "outw 0x602 0x0120");
    io(c, "outb 0x601 0xff");
    io(c, "outb 0x603 0x00");
    expect(io(c, "inw 0x602")).toBe(0x0120);
    io(c, "outb 0x602 0x00");
    expect(io(c, "inw 0x602")).toBe(0x0000);
  });

  it("an IN that starts on an unclaimed port runs on into the block (inl 0x67f with the block at 0x680)", () => {
    const c = q35();
    for (const l of ["outl 0xcf8 0x8000f840", "outl 0xcfc 0x681", "outl 0xcf8 0x8000f844", "outb 0xcfc 0x80"]) io(c, l);
    expect(io(c, "inl 0x67f")).toBe(0x000001ff);
  });
});

describe("TMR_STS and the SCI (QEMU acpi_pm1_evt_get_sts / acpi_update_sci)", () => {
  it("reads PM1_STS = 0x0001 right after reset (overflow_time 0); writing 1 clears it", () => {
    const b = enabled();
    expect(io(b, "inw 0x600")).toBe(0x0001);
    io(b, "outw 0x600 0x1");
    expect(io(b, "inw 0x600")).toBe(0x0000);
    io(b, "outw 0x600 0x0"); // writing 0 changes nothing
    expect(io(b, "inw 0x600")).toBe(0x0000);
  });

  it("raises the SCI (GSI 9) at exactly 2,343,484,437 ns from a clock event, with no register read", () => {
    const b = enabled();
    const log = irqLog(b);
    io(b, "outw 0x600 0x1");
    io(b, "outw 0x602 0x1"); // TMR_EN
    expect(b.clock.pendingEvents().map((e) => [e.at, e.target, e.kind])).toEqual([[2_343_484_437, "acpi", "tmr-overflow"]]);
    b.clock.runUntil(2_343_484_436);
    expect(log).toEqual([]);
    b.clock.runUntil(10_000_000_000); // straight past it: the event fires on its own
    expect(log).toEqual(["2343484437 IRQ raise 9"]);
    expect(b.irq.level(9)).toBe(true);
    expect(findAcpiPm(b).sciLevel).toBe(true);
    expect(b.clock.pending).toBe(0); // TMR_STS set: nothing armed any more
  });

  it("2,343,484,437 is muldiv64(2^23, 1e9, 3579545): one ns before the tick count reaches 2^23", () => {
    expect(refDueNs(1n << 23n)).toBe(2_343_484_437n);
    expect(refCrossNs(1n << 23n)).toBe(2_343_484_438n);
    expect(refDueNs(1n << 24n)).toBe(4_686_968_874n);
  });

  it("replays QEMU 7.2's transcript around the first overflow (clear at the due ns does not take)", () => {
    const b = enabled();
    const log = irqLog(b);
    io(b, "outw 0x600 0x1");
    io(b, "outw 0x602 0x1");
    b.clock.runUntil(2_343_484_436);
    expect(io(b, "inw 0x600")).toBe(0x0000);
    b.clock.runUntil(2_343_484_437);
    expect(io(b, "inw 0x600")).toBe(0x0001);
    io(b, "outw 0x600 0x1");
    expect(io(b, "inw 0x600")).toBe(0x0001);
    expect(io(b, "inl 0x608")).toBe(0x7fffff);
    b.clock.runUntil(2_343_484_438);
    io(b, "outw 0x600 0x1");
    expect(io(b, "inw 0x600")).toBe(0x0000);
    b.clock.runUntil(4_686_968_875);
    expect(io(b, "inl 0x608")).toBe(0x000000);
    expect(io(b, "inw 0x600")).toBe(0x0001);
    expect(log).toEqual(["2343484437 IRQ raise 9", "2343484438 IRQ lower 9", "4686968874 IRQ raise 9"]);
  });

  it("records the SCI edges in the trace", () => {
    const b = enabled();
    const recs: string[] = [];
    b.clock.trace.listen((r) => {
      if (r.type === "irq") recs.push(`${r.at} ${r.fields.join(" ")}`);
    });
    io(b, "outw 0x600 0x1");
    io(b, "outw 0x602 0x1");
    b.clock.runUntil(2_400_000_000);
    io(b, "outw 0x600 0x1");
    expect(recs).toEqual(["2343484437 raise 9 acpi", "2400000000 lower 9 acpi"]);
  });

  it("TMR_EN with TMR_STS already set raises the SCI at once; clearing TMR_EN lowers it", () => {
    const b = enabled();
    const log = irqLog(b);
    io(b, "outw 0x602 0x1");
    io(b, "outw 0x602 0x0");
    expect(log).toEqual(["0 IRQ raise 9", "0 IRQ lower 9"]);
  });

  it("GPE0 status set by a device raises the SCI when its enable bit is set; write-1-to-clear lowers it", () => {
    const b = enabled();
    const log = irqLog(b);
    const pm: AcpiPm = findAcpiPm(b);
    raiseGpe(b, 5); // vmgenid's _E05
    expect(io(b, "inb 0x620")).toBe(0x20);
    expect(log).toEqual([]); // GPE0_EN bit 5 clear
    io(b, "outb 0x628 0x20");
    expect(log).toEqual(["0 IRQ raise 9"]);
    io(b, "outb 0x620 0x20");
    expect(log).toEqual(["0 IRQ raise 9", "0 IRQ lower 9"]);
    expect(pm.state.gpeSts[0]).toBe(0);
    pm.setGpeEnable(12);
    pm.setGpeStatus(12); // QEMU's acpi_update_sci looks at GPE byte 0 only
    expect(pm.sciLevel).toBe(false);
    expect(io(b, "inb 0x621")).toBe(0x10);
  });

  it("routes the SCI by SCI_IRQ_SEL (1 -> GSI 10), moving a high line; a reserved selection keeps it", () => {
    const b = enabled();
    const log = irqLog(b);
    io(b, "outw 0x602 0x1"); // TMR_STS is set after reset: SCI high at once
    io(b, "outl 0xcf8 0x8000f844");
    io(b, "outb 0xcfc 0x81");
    io(b, "outb 0xcfc 0x83"); // reserved
    expect(log).toEqual(["0 IRQ raise 9", "0 IRQ lower 9", "0 IRQ raise 10"]);
    expect(findAcpiPm(b).sciGsi).toBe(10);
  });
});

describe("save / restore of the q35 PM block (device states + clock)", () => {
  /** q35's chipset part only (no vmgenid, whose restore deliberately changes the trace). */
  const chipset = (): Bench => benchOf({ ...MACHINES.q35!, name: "q35-chipset", devices: MACHINES.q35!.devices.filter((d) => ["pci-host", "acpi-pm", "ich9-lpc"].includes(d.type)) });

  it("continues with the same counter, pending overflow event, SCI and trace as an uninterrupted run", () => {
    const run = (withRestore: boolean) => {
      let b = chipset();
      for (const l of ENABLE_PM) io(b, l);
      io(b, "outw 0x600 0x1");
      io(b, "outw 0x602 0x1");
      b.clock.runUntil(1_000_000_000);
      if (withRestore) {
        const s = save(b);
        b = chipset();
        restore(b, s);
      }
      const log = irqLog(b);
      b.clock.runUntil(3_000_000_000);
      return { counter: io(b, "inl 0x608"), sts: io(b, "inw 0x600"), log, hash: b.traceHash(), irq: b.irq.getState() };
    };
    const a = run(false);
    const r = run(true);
    expect(r).toEqual(a);
    expect(a.log).toEqual(["2343484437 IRQ raise 9"]);
  });

  it("on the full q35, a restore keeps the counter and the armed overflow, and vmgenid's post-load GPE 5 reaches GPE0_STS", () => {
    const a = enabled();
    io(a, "outw 0x600 0x1");
    io(a, "outw 0x602 0x1");
    io(a, "outb 0x628 0x20"); // GPE0_EN bit 5
    a.clock.runUntil(1_000_000_000);
    const b = q35();
    restore(b, save(a));
    const log = irqLog(b);
    b.clock.runUntil(1_000_000_000); // vmgenid's notification event, due now
    expect(io(b, "inb 0x620")).toBe(0x20);
    expect(log).toEqual(["1000000000 IRQ raise 9"]);
    io(b, "outb 0x620 0x20");
    b.clock.runUntil(3_000_000_000);
    expect(log).toEqual(["1000000000 IRQ raise 9", "1000000000 IRQ lower 9", "2343484437 IRQ raise 9"]);
    expect(io(b, "inl 0x608")).toBe(Number(refQemu(3_000_000_000n)));
  });

  it("restores the mapping from the LPC's config space (PMBASE 0xb000)", () => {
    const b = q35();
    for (const l of ["outl 0xcf8 0x8000f840", "outl 0xcfc 0xb001", "outl 0xcf8 0x8000f844", "outb 0xcfc 0x80"]) io(b, l);
    const s = save(b);
    const c = q35();
    restore(c, s);
    c.clock.runUntil(1_000_000_000);
    expect(io(c, "inl 0xb008")).toBe(0x369e99);
    expect(io(c, "inl 0x608")).toBe(0xffffffff);
  });

  it("rejects a malformed state", () => {
    const pm = findAcpiPm(q35());
    expect(pm.kind.validate({ ...pm.state, overflowTime: 3 })).toMatch(/2\^23/);
    expect(pm.kind.validate({ ...pm.state, gpeSts: [1, 2] })).toMatch(/8 bytes/);
    expect(pm.kind.validate(pm.state)).toBeUndefined();
  });
});
