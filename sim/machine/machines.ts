// Machines described as data: which devices, where, with what configuration.
import type { MachineSpec } from "./bench.ts";

export const MACHINES: Record<string, MachineSpec> = {
  // One entry per machine, e.g. q35: { name: "q35", description, memory, devices: [...] },
  q35: {
    name: "q35",
    description: "QEMU q35: PCI host (0xCF8/0xCFC), ICH9 LPC at 00:1f.0 mapping the ACPI PM block (PMBASE, ACPI_EN) with QEMU's PM timer at PMBASE+8, SCI on GSI 9",
    memory: 128 * 1024 * 1024,
    devices: [
      { type: "pci-host", id: "pci", config: { resetControl: true } },
      // QEMU's ICH9 PM block; devices that notify through a GPE (vmgenid: GPE0_STS bit 5) name it
      // with `acpi: "acpi"` and call its setGpeStatus(bit).
      { type: "acpi-pm", id: "acpi" },
      { type: "ich9-lpc", id: "lpc", config: { pci: "pci", acpi: "acpi" } },
      // QEMU's fw_cfg on ports 0x510/0x511/0x514 with the vmgenid files; `-device vmgenid,guid=auto`.
      // No firmware runs: etc/vmgenid_addr stays 0 until a guest (or a test) writes it by DMA.
      { type: "fwcfg", id: "fwcfg" },
      { type: "vmgenid", id: "vmgenid", config: { guid: "auto", profile: "qemu", acpi: "acpi", driver: "vmgenid-driver" } },
      // The Linux guest's vmgenid driver (drivers/virt/vmgenid.c), notified through ACPI.
      { type: "vmgenid-driver", id: "vmgenid-driver", config: { vmgenid: "vmgenid" } },
    ],
  },
  bhyve: {
    name: "bhyve",
    description: "FreeBSD bhyve: the vpmtmr PM timer at 0x408 (32-bit, 4-byte IN only, freq_sbt 1199, upstream restore behaviour); every other port goes to bhyve's user-space default (all ones; strictIo: bhyve -e)",
    memory: 64 * 1024 * 1024,
    devices: [
      { type: "pmtimer", id: "pmtimer", config: { profile: "bhyve", port: 0x408, restore: "bhyve-upstream" } },
      // usr.sbin/bhyve/inout.c default_inout for ports no handler takes; `devices: { inout: { strictIo: true } }` is bhyve -e.
      { type: "bhyve-inout", id: "inout", config: { strictIo: false } },
    ],
  },
  "bhyve-host": {
    name: "bhyve-host",
    description: "A FreeBSD host's vmm(4) control plane: /dev/vmmctl and the /dev/vmm/NAME devices (VMMCTL_VM_CREATE/DESTROY, per-VM ioctls with their vCPU and memsegs locking)",
    memory: 1024 * 1024,
    devices: [{ type: "vmm", id: "vmm" }],
  },
  acpi: {
    name: "acpi",
    description: "An ideal ACPI PM timer at 0x408: floor(ns * 3579545 / 1e9), 32-bit (FADT TMR_VAL_EXT), monotonic across restore",
    memory: 64 * 1024 * 1024,
    devices: [{ type: "pmtimer", id: "pmtimer", config: { profile: "acpi", port: 0x408, tmrValExt: true, restore: "monotonic" } }],
  },
  acpi24: {
    name: "acpi24",
    description: "The ideal ACPI PM timer at 0x408 without TMR_VAL_EXT: floor(ns * 3579545 / 1e9) mod 2^24, monotonic across restore",
    memory: 64 * 1024 * 1024,
    devices: [{ type: "pmtimer", id: "pmtimer", config: { profile: "acpi", port: 0x408, tmrValExt: false, restore: "monotonic" } }],
  },
  hyperv: {
    name: "hyperv",
    description: "Hyper-V KVP/VSS: the host's integration-service channels, the guest's hv_utils (Linux 6.1 hv_kvp/hv_snapshot, hv_utils_transport) and models of Debian's hv_kvp_daemon/hv_vss_daemon",
    memory: 64 * 1024,
    devices: [
      { type: "hyperv-host", id: "host", config: { guest: "hv-utils" } },
      { type: "hv-utils", id: "hv-utils", config: { host: "host", profile: "linux-6.1" } },
      { type: "hv-kvp-daemon", id: "kvp-daemon", config: { kernel: "hv-utils" } },
      { type: "hv-vss-daemon", id: "vss-daemon", config: { kernel: "hv-utils" } },
    ],
  },
};

export function machineNames(): string[] {
  return Object.keys(MACHINES).sort();
}
