// Another device raising an ACPI GPE through the q35 PM block: vmgenid notifies the guest with
// GPE0_STS bit 5 (QEMU hw/acpi/vmgenid.c, `_E05`) via the block's setGpeStatus, which
// re-evaluates the SCI as QEMU's acpi_send_gpe_event does.
import { describe, expect, it } from "vitest";
import { benchOf, ENABLE_PM, io } from "./reference.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import type { VmgenidDevice } from "../../sim/devices/vmgenid/vmgenid.ts";

const GUID = "324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87";

describe("GPE0 bit 5 from vmgenid on q35", () => {
  it("sets GPE0_STS bit 5 on a generation change and raises the SCI once GPE0_EN bit 5 is set", () => {
    const q35 = MACHINES.q35!;
    const b = benchOf({
      ...q35,
      devices: [...q35.devices.filter((d) => d.type !== "fwcfg" && d.type !== "vmgenid"), { type: "fwcfg", id: "fwcfg" }, { type: "vmgenid", id: "vmgenid", config: { guid: GUID, acpi: "acpi" } }],
    });
    for (const l of ENABLE_PM) io(b, l);
    io(b, "outb 0x628 0x20"); // the guest's OSPM enables GPE 5
    const irq: string[] = [];
    b.irq.listen((line, level, at) => irq.push(`${at} ${level ? "raise" : "lower"} ${line}`));
    b.clock.runUntil(1_000);
    expect(b.device<VmgenidDevice>("vmgenid").setGuid("11111111-2222-3333-4444-555555555555")).toBe(true);
    b.clock.runUntil(2_000); // the notification is a clock event
    expect(io(b, "inb 0x620")).toBe(0x20);
    expect(irq).toEqual(["1000 raise 9"]);
    io(b, "outb 0x620 0x20"); // the guest's _E05 handler acknowledges
    expect(irq).toEqual(["1000 raise 9", "2000 lower 9"]);
  });
});
