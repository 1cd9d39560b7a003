// Every device kind hvsim knows, by type name. Snapshots name kinds by these types.
import { DeviceKinds } from "../machine/device.ts";
import { FwCfgKind } from "./fwcfg/fwcfg.ts";
import { VmgenidKind, VmgenidDriverKind } from "./vmgenid/vmgenid.ts";
import { HvUtilsKind } from "./hyperv/kernel.ts";
import { HypervHostKind } from "./hyperv/host.ts";
import { KvpDaemonKind } from "./hyperv/kvp-daemon.ts";
import { VssDaemonKind } from "./hyperv/vss-daemon.ts";
import { PciHostKind } from "../bus/pci.ts";
import { AcpiPmKind } from "./pmtimer/acpi-pm.ts";
import { Ich9LpcKind } from "./pmtimer/ich9-lpc.ts";
import { PmTimerKind } from "./pmtimer/pmtimer.ts";
import { BhyveInoutKind } from "./pmtimer/bhyve-inout.ts";
import { VmmKind } from "./vmm/vmm.ts";

export function defaultKinds(): DeviceKinds {
  const k = new DeviceKinds();
  // One line per device kind: k.register(<kind>);
  k.register(FwCfgKind);
  k.register(VmgenidKind);
  k.register(VmgenidDriverKind);
  k.register(HypervHostKind);
  k.register(HvUtilsKind);
  k.register(KvpDaemonKind);
  k.register(VssDaemonKind);
  k.register(PciHostKind);
  k.register(AcpiPmKind);
  k.register(Ich9LpcKind);
  k.register(PmTimerKind);
  k.register(BhyveInoutKind);
  k.register(VmmKind);
  return k;
}
