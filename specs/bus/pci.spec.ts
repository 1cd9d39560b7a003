// PCI configuration mechanism #1 through the q35 PCI host. Golden values: the PCI Local Bus spec
// (CONFIG_ADDRESS layout, enable bit 31, data window at 0xCFC-0xCFF) and replies of a
// qtest-enabled QEMU 7.2 q35 (latch read-back at any width, 0xCF9 reset control reading 0,
// empty slots and disabled windows reading all ones, accesses cut at alignment).
import { describe, expect, it } from "vitest";
import { bench, benchOf, io } from "../pmtimer/reference.ts";
import { findPciHost, pciConfigAddress, PciError, configBytesRead, configBytesWrite } from "../../sim/bus/pci.ts";

describe("CONFIG_ADDRESS (0xCF8)", () => {
  it("latches a dword OUT and reads back at any width as the latch's low bytes", () => {
    const b = bench("q35");
    io(b, "outl 0xcf8 0x8012f844");
    expect(io(b, "inl 0xcf8")).toBe(0x8012f844);
    expect(io(b, "inw 0xcfa")).toBe(0xf844);
    expect(io(b, "inb 0xcf8")).toBe(0x44);
    expect(io(b, "inb 0xcfa")).toBe(0x44);
    expect(io(b, "inb 0xcfb")).toBe(0x44);
    expect(findPciHost(b).state.configAddress).toBe(0x8012f844);
  });

  it("ignores narrower or offset writes", () => {
    const b = bench("q35");
    io(b, "outl 0xcf8 0x8012f844");
    io(b, "outw 0xcf8 0x1234");
    io(b, "outb 0xcfb 0x00");
    io(b, "outl 0xcfa 0x0");
    expect(io(b, "inl 0xcf8")).toBe(0x8012f844);
  });

  it("0xCF9 is q35's reset control register: every access starting there reads 0", () => {
    const b = bench("q35");
    io(b, "outl 0xcf8 0x8012f844");
    expect(io(b, "inb 0xcf9")).toBe(0);
    expect(io(b, "inw 0xcf9")).toBe(0);
    expect(io(b, "inl 0xcf9")).toBe(0);
  });

  it("pciConfigAddress builds the latch value", () => {
    expect(pciConfigAddress(0, 0x1f, 0, 0x40)).toBe(0x8000f840);
    expect(pciConfigAddress(0x12, 3, 5, 0x47)).toBe(0x80121d44);
  });
});

describe("CONFIG_DATA (0xCFC-0xCFF)", () => {
  it("reads the function at bus:dev.fn with byte/word/dword accesses at the sub-offsets", () => {
    const b = bench("q35");
    io(b, "outl 0xcf8 0x8000f800");
    expect(io(b, "inl 0xcfc")).toBe(0x29188086);
    expect(io(b, "inw 0xcfc")).toBe(0x8086);
    expect(io(b, "inw 0xcfe")).toBe(0x2918);
    expect(io(b, "inb 0xcfd")).toBe(0x80);
    expect(io(b, "inb 0xcfe")).toBe(0x18);
  });

  it("cuts unaligned accesses like QEMU: inl 0xcfd = 0xff291880, inw 0xcff = 0xff29", () => {
    const b = bench("q35");
    io(b, "outl 0xcf8 0x8000f800");
    expect(io(b, "inl 0xcfd")).toBe(0xff291880);
    expect(io(b, "inw 0xcff")).toBe(0xff29);
    expect(io(b, "inl 0xcff")).toBe(0xffffff29);
    io(b, "outl 0xcf8 0x8000f8fc");
    expect(io(b, "inl 0xcfe")).toBe(0xffff0000);
  });

  it("reads all ones for an empty slot or with the enable bit clear, and drops writes then", () => {
    const b = bench("q35");
    io(b, "outl 0xcf8 0x8000f900"); // 00:1f.1: nobody
    expect(io(b, "inl 0xcfc")).toBe(0xffffffff);
    expect(io(b, "inb 0xcfd")).toBe(0xff);
    io(b, "outl 0xcf8 0x0000f840"); // PMBASE, enable bit clear
    expect(io(b, "inl 0xcfc")).toBe(0xffffffff);
    io(b, "outl 0xcfc 0xb001");
    io(b, "outl 0xcf8 0x8000f840");
    expect(io(b, "inl 0xcfc")).toBe(0x1);
  });

  it("writes at a sub-offset reach register + (port - 0xCFC)", () => {
    const b = bench("q35");
    io(b, "outl 0xcf8 0x8000f844");
    io(b, "outb 0xcfd 0x5a"); // config 0x45: plain storage on QEMU's ICH9 LPC
    expect(io(b, "inl 0xcfc")).toBe(0x5a00);
  });
});

describe("PciHost registry", () => {
  it("lists the registered functions and refuses a second function in a slot or a bad address", () => {
    const b = bench("q35");
    const h = findPciHost(b);
    expect(h.functions()).toEqual({ "00:1f.0": "lpc" });
    const f = { readConfig: () => 0, writeConfig: () => undefined };
    expect(() => h.register(0, 0x1f, 0, "other", f)).toThrow(/already registered by lpc/);
    expect(() => h.register(0, 32, 0, "other", f)).toThrow(PciError);
    h.register(1, 2, 3, "other", { readConfig: (o, s) => o * 0x100 + s, writeConfig: () => undefined });
    expect(h.configRead(1, 2, 3, 0x10, 4)).toBe(0x1004);
    expect(h.configRead(1, 2, 4, 0x10, 4)).toBe(0xffffffff);
  });

  it("needs a PCI host on the machine", () => {
    const b = benchOf({ name: "none", description: "", memory: 4096, devices: [] });
    expect(() => findPciHost(b)).toThrow(/no PCI host/);
  });

  it("config bytes honour the write mask", () => {
    const c = new Uint8Array(256);
    const m = new Uint8Array(256);
    c[0x40] = 0x01;
    m[0x40] = 0x87;
    m[0x41] = 0xff;
    configBytesWrite(c, m, 0x40, 4, 0xffffffff);
    expect(configBytesRead(c, 0x40, 4)).toBe(0xff87);
  });
});
