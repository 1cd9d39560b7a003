// Conformance: the VM generation ID as a guest sees it on q35, on a machine started with a chosen
// vmgenid `guid` and saved/restored under host-side control (capability "vmgenid-control": QEMU
// with QMP next to qtest, sim/targets/qtest/control.ts; the model, sim/conform/model-control.ts).
// The check does what firmware does (fw_cfg linker/loader: ALLOCATE etc/vmgenid_guid page-aligned
// at 0x20000, WRITE_POINTER 0x20028 into etc/vmgenid_addr), then reads the 16 bytes there.
//
// Golden values, from upstream facts rather than from the model:
// - Byte order (QEMU docs/specs/vmgenid.txt "Endian-ness Considerations": the guest expects
//   little-endian; hw/acpi/vmgenid.c byte-swaps the first three fields, qemu_uuid_bswap): the
//   GUID's time_low (4 bytes), time_mid (2) and time_hi_and_version (2) are stored little-endian,
//   the last 8 bytes as written. So
//     324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87 -> af6e4e32 d1d1 f64b bf41b9bb6c91fb87 (docs' example)
//     b6a84bd3-0d4f-4e2b-9c6e-2d2f5e3c1a90 -> d34ba8b6 4f0d 2b4e 9c6e2d2f5e3c1a90 (every field
//     asymmetric, so a swap missed in any of them shows)
//   at VGIA + 0x28 (the AML's ADDR method; docs' "GUID Storage Format": GUID at offset 40).
// - A change raises the notification: vmgenid_post_load -> vmgenid_update_guest writes the
//   destination's own guid and calls acpi_send_event(ACPI_VMGENID_CHANGE_STATUS), on q35 ICH9's
//   GPE0_STS bit 5 (0x20 at PMBASE + 0x20 = 0x620 with PMBASE 0x600, ich9.c ICH9_PMIO_GPE0_STS;
//   GPE0_EN at 0x628), and the SCI (GSI 9, `IRQ raise 9` on the intercepted ioapic) while
//   GPE0_EN bit 5 is set (acpi_update_sci: sts & en); writing 1 to the status bit clears it and
//   lowers the SCI. It happens also when the restored guid equals the saved one (post_load writes
//   and notifies unconditionally). guid=auto draws a fresh version-4, RFC 4122-variant GUID
//   (qemu_uuid_generate) in each process.
// - Nothing writes the GUID or raises GPE0 at the WRITE_POINTER itself (etc/vmgenid_addr has no
//   write callback): before the restore GPE0_STS reads 0.
// QEMU 7.2 has no runtime GUID change (the guid is a static qdev property: qom-set answers
// "Attempt to set property 'guid' ... after it was realized"); the change checked here is the one
// a guest sees, across a save and restore (QEMU: migrate to a file, -incoming).
import type { ScriptStep } from "../../sim/conform/script.ts";
import { scriptCheck } from "../../sim/conform/script.ts";
import type { Check } from "../../sim/conform/types.ts";
import { firmwareLoadVmgenid } from "./fwcfg-dma.ts";

export const G1 = "324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87";
export const G1_GUEST = "af6e4e32d1d1f64bbf41b9bb6c91fb87";
export const G2 = "b6a84bd3-0d4f-4e2b-9c6e-2d2f5e3c1a90";
export const G2_GUEST = "d34ba8b64f0d2b4e9c6e2d2f5e3c1a90";
/** Where the checks' firmware allocates etc/vmgenid_guid (page-aligned, in RAM, clear of the DMA scratch below 0x10000). */
export const BLOB_AT = 0x20000;
const GUID_AT = BLOB_AT + 40;
const READ_GUID = `read 0x${GUID_AT.toString(16)} 16`;

const firmware: ScriptStep = {
  cmd: `firmware: ALLOCATE etc/vmgenid_guid at 0x${BLOB_AT.toString(16)}, WRITE_POINTER 0x${GUID_AT.toString(16)} to etc/vmgenid_addr`,
  run: async (s) => `DMA control 0x${(await firmwareLoadVmgenid(s, BLOB_AT)).toString(16)}`,
  golden: "DMA control 0x0",
};

/** PMBASE 0x600 and ACPI_EN in the ICH9 LPC's config space (00:1f.0 offsets 0x40, 0x44). */
const pmSetup: ScriptStep[] = ["outl 0xcf8 0x8000f840", "outl 0xcfc 0x601", "outl 0xcf8 0x8000f844", "outb 0xcfc 0x80"].map((cmd) => ({ cmd, golden: "OK" }));

const restore = (guid: string): ScriptStep => ({
  cmd: `save, restore into a machine with guid=${guid}`,
  run: async (s) => {
    if (!("saveRestore" in s)) throw new Error("this session has no machine control");
    await s.saveRestore({ guid });
    return "restored";
  },
  golden: "restored",
});

/** What a restore's notification looks like from the guest, then GPE0_EN cleared again. */
const notified: ScriptStep[] = [
  { cmd: "inb 0x620", golden: "OK 0x0020" },
  { cmd: "inb 0x628", golden: "OK 0x0000" },
  { cmd: "irq_intercept_in ioapic", golden: "OK" },
  { cmd: "outb 0x628 0x20", golden: "OK", goldenIrq: ["IRQ raise 9"] },
  { cmd: "outb 0x620 0x20", golden: "OK", goldenIrq: ["IRQ lower 9"] },
  { cmd: "inb 0x620", golden: "OK 0x0000", goldenIrq: [] },
  { cmd: "outb 0x628 0x0", golden: "OK", goldenIrq: [] },
];

/** A guid=auto GUID read back: its shape (random by design), and whether it is the source's. */
export function autoShape(reply: string): string {
  const m = /^OK 0x([0-9a-f]{32})$/.exec(reply);
  if (!m) return reply;
  if (m[1] === G1_GUEST) return "the source's GUID again";
  const b = Buffer.from(m[1]!, "hex");
  // Guest order: time_hi_and_version is little-endian in bytes 6-7, so the version is byte 7's top nibble.
  return `a new GUID, version ${b[7]! >> 4}, variant ${(b[8]! & 0xc0) === 0x80 ? "RFC 4122" : `bits 0x${(b[8]! & 0xc0).toString(16)}`}`;
}

/** A q35 check on a machine started with vmgenid guid=`guid` under host-side control. */
const guidCheck = (id: string, title: string, guid: string, steps: ScriptStep[]): Check =>
  scriptCheck({ id: `vmgenid/${id}`, suite: "vmgenid", title, machine: "q35", needs: ["portio", "memory", "irq", "fwcfg"], control: { guid }, steps });

export const checks: Check[] = [
  guidCheck(
    "q35-guid-in-memory",
    `q35 vmgenid guid=${G2}: after firmware's ALLOCATE and WRITE_POINTER the 16 bytes at VGIA+0x28 hold the GUID, first three fields little-endian`,
    G2,
    [firmware, { cmd: READ_GUID, golden: `OK 0x${G2_GUEST}` }],
  ),
  guidCheck(
    "q35-guid-change-notifies",
    `q35 vmgenid ${G1} restored as ${G2}: the new GUID's bytes in memory, GPE0_STS bit 5, and the SCI (IRQ 9) once GPE0_EN bit 5 is set`,
    G1,
    [
      firmware,
      ...pmSetup,
      { cmd: READ_GUID, golden: `OK 0x${G1_GUEST}` },
      { cmd: "inb 0x620", golden: "OK 0x0000" },
      restore(G2),
      { cmd: READ_GUID, golden: `OK 0x${G2_GUEST}` },
      ...notified,
    ],
  ),
  guidCheck(
    "q35-restore-new-generation",
    `q35 vmgenid ${G1} restored with the same guid (written and notified again), then with guid=auto (a fresh random v4 GUID, notified)`,
    G1,
    [
      firmware,
      ...pmSetup,
      restore(G1),
      { cmd: READ_GUID, golden: `OK 0x${G1_GUEST}` },
      ...notified,
      restore("auto"),
      { cmd: READ_GUID, shape: autoShape, golden: "a new GUID, version 4, variant RFC 4122" },
      ...notified,
    ],
  ),
];
