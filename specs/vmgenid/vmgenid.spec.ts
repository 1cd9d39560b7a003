import { describe, expect, it } from "vitest";
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import { formatGuid, guidToGuestBytes, parseGuid } from "../../sim/devices/vmgenid/guid.ts";
import type { VmgenidDevice, VmgenidDriver } from "../../sim/devices/vmgenid/vmgenid.ts";
import { toHex } from "../../sim/clock/canonical.ts";

// Golden byte order checked on QEMU 7.2 (hw/acpi/vmgenid.c, qemu_uuid_bswap): the GUID
// 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87 is stored in guest memory as these 16 bytes.
const GUID = "324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87";
const GUID_GUEST = "af6e4e32d1d1f64bbf41b9bb6c91fb87";

function machine(guid = GUID, extra: Record<string, unknown> = {}): MachineSpec {
  return {
    name: "vmgenid-test",
    description: "fw_cfg + vmgenid + guest driver",
    memory: 1 << 20,
    devices: [
      { type: "fwcfg", id: "fwcfg" },
      { type: "vmgenid", id: "vmgenid", config: { guid, driver: "driver", ...extra } },
      { type: "vmgenid-driver", id: "driver", config: { vmgenid: "vmgenid" } },
    ],
  };
}

const bswap32 = (v: number) => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

/** Reads fw_cfg's file directory through the ports, as firmware does (QEMU docs/specs/fw_cfg.rst). */
function readDirectory(b: Bench): Map<string, { size: number; select: number }> {
  b.ports.out(0x510, 2, 0x19);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => b.ports.in(0x511, 1)));
  const count = bytes(4).readUInt32BE(0);
  const out = new Map<string, { size: number; select: number }>();
  for (let i = 0; i < count; i++) {
    const e = bytes(64);
    out.set(e.subarray(8).toString("latin1").replace(/\0+$/, ""), { size: e.readUInt32BE(0), select: e.readUInt16BE(4) });
  }
  return out;
}

/** Writes `addr` into etc/vmgenid_addr with a fw_cfg DMA write, as firmware's WRITE_POINTER does. */
function dmaWriteAddr(b: Bench, select: number, addr: number): void {
  const desc = 0x1000, src = 0x2000;
  const payload = Buffer.alloc(8);
  payload.writeBigUInt64LE(BigInt(addr));
  b.memory.write(src, payload);
  const d = Buffer.alloc(16);
  d.writeUInt32BE(((select << 16) | 0x08 | 0x10) >>> 0, 0); // SELECT | WRITE
  d.writeUInt32BE(8, 4);
  d.writeBigUInt64BE(BigInt(src), 8);
  b.memory.write(desc, d);
  b.ports.out(0x514, 4, bswap32(0));
  b.ports.out(0x518, 4, bswap32(desc));
}

describe("GUID byte order", () => {
  it("stores the first three fields little-endian, as QEMU 7.2 does", () => {
    expect(toHex(guidToGuestBytes(parseGuid(GUID)!))).toBe(GUID_GUEST);
    expect(formatGuid(parseGuid(GUID)!)).toBe(GUID);
  });
  it("refuses text that is not a GUID", () => {
    expect(parseGuid("324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb8")).toBeUndefined();
    expect(parseGuid("zz4e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87")).toBeUndefined();
  });
});

describe("fw_cfg", () => {
  it("exposes the signature, the DMA feature bit and the vmgenid files in its directory", () => {
    const b = new Bench(machine(), defaultKinds());
    b.ports.out(0x510, 2, 0x00);
    const sig = String.fromCharCode(...[0, 1, 2, 3].map(() => b.ports.in(0x511, 1)));
    expect(sig).toBe("QEMU");
    b.ports.out(0x510, 2, 0x01);
    expect(b.ports.in(0x511, 1) & 0x02).toBe(0x02);
    const dir = readDirectory(b);
    // Sizes from QEMU include/hw/acpi/vmgenid.h: the blob is 4096 bytes, the address 8.
    expect(dir.get("etc/vmgenid_guid")?.size).toBe(4096);
    expect(dir.get("etc/vmgenid_addr")?.size).toBe(8);
  });

  it("serves the GUID at offset 40 of etc/vmgenid_guid", () => {
    const b = new Bench(machine(), defaultKinds());
    const sel = readDirectory(b).get("etc/vmgenid_guid")!.select;
    b.ports.out(0x510, 2, sel);
    const blob = Buffer.from(Array.from({ length: 56 }, () => b.ports.in(0x511, 1)));
    expect(blob.subarray(40, 56).toString("hex")).toBe(GUID_GUEST);
    expect(blob.subarray(0, 40).every((x) => x === 0)).toBe(true);
  });

  it("takes etc/vmgenid_addr from a DMA write and reports success in the descriptor", () => {
    const b = new Bench(machine(), defaultKinds());
    const sel = readDirectory(b).get("etc/vmgenid_addr")!.select;
    dmaWriteAddr(b, sel, 0x3028);
    expect(b.device<VmgenidDevice>("vmgenid").state.addr).toBe(0x3028);
    expect(b.memory.readUint(0x1000, 4)).toBe(0); // control word cleared: no error
  });

  it("flags a DMA write to a read-only file as an error", () => {
    const b = new Bench(machine(), defaultKinds());
    const sel = readDirectory(b).get("etc/vmgenid_guid")!.select;
    dmaWriteAddr(b, sel, 0x3028);
    expect(Buffer.from(b.memory.read(0x1000, 4)).readUInt32BE(0)).toBe(0x01);
  });
});

describe("vmgenid", () => {
  it("firmware placement puts the GUID in guest memory at blob + 40", () => {
    const b = new Bench(machine(GUID, { firmwareBlobAt: 0x3000 }), defaultKinds());
    expect(b.device<VmgenidDevice>("vmgenid").state.addr).toBe(0x3028);
    expect(toHex(b.memory.read(0x3028, 16))).toBe(GUID_GUEST);
  });

  it("a runtime change writes memory first, then notifies; the driver reseeds once", () => {
    const b = new Bench(machine(GUID, { firmwareBlobAt: 0x3000, dispatchNs: 1000 }), defaultKinds());
    const drv = b.device<VmgenidDriver>("driver");
    drv.probe();
    const seenAtNotify: string[] = [];
    b.clock.trace.listen((r) => {
      if (r.type === "vmgenid-notify") seenAtNotify.push(String(r.fields[1]));
    });
    const next = "11111111-2222-4333-8444-555555555555";
    expect(b.device<VmgenidDevice>("vmgenid").setGuid(next)).toBe(true);
    // Memory holds the new GUID before any notification event has run.
    expect(toHex(b.memory.read(0x3028, 16))).toBe(toHex(guidToGuestBytes(parseGuid(next)!)));
    expect(drv.state.notifications).toBe(0);
    b.clock.step(999);
    expect(drv.state.notifications).toBe(0);
    b.clock.step(1);
    expect(drv.state.notifications).toBe(1);
    expect(drv.state.reseeds).toBe(1);
    expect(seenAtNotify).toEqual([toHex(guidToGuestBytes(parseGuid(next)!))]);
  });

  it("the same GUID again raises no notification", () => {
    const b = new Bench(machine(GUID, { firmwareBlobAt: 0x3000 }), defaultKinds());
    expect(b.device<VmgenidDevice>("vmgenid").setGuid(GUID)).toBe(false);
    b.clock.step(1_000_000);
    expect(b.device<VmgenidDriver>("driver").state.notifications).toBe(0);
  });

  it("guid=auto draws from the seeded RNG: same seed, same GUID; another seed, another", () => {
    const g = (seed: number) => new Bench(machine("auto"), defaultKinds(), { seed }).device<VmgenidDevice>("vmgenid").guidText;
    expect(g(7)).toBe(g(7));
    expect(g(7)).not.toBe(g(8));
    expect(g(7)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("spec-2016 profile uses GPE bit 0, qemu bit 5", () => {
    const q = new Bench(machine(GUID), defaultKinds()).device<VmgenidDevice>("vmgenid");
    const s = new Bench(machine(GUID, { profile: "spec-2016" }), defaultKinds()).device<VmgenidDevice>("vmgenid");
    expect([q.gpeBit, s.gpeBit]).toEqual([5, 0]);
  });

  it("refuses a malformed guid option with a clear error", () => {
    expect(() => new Bench(machine("not-a-guid"), defaultKinds())).toThrow(/guid must be "auto" or a GUID/);
  });
});
