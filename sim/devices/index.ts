// Every device kind hvsim knows, by type name. Snapshots name kinds by these types.
import { DeviceKinds } from "../machine/device.ts";
import { FwCfgKind } from "./fwcfg/fwcfg.ts";
import { VmgenidKind, VmgenidDriverKind } from "./vmgenid/vmgenid.ts";

export function defaultKinds(): DeviceKinds {
  const k = new DeviceKinds();
  // One line per device kind: k.register(<kind>);
  k.register(FwCfgKind);
  k.register(VmgenidKind);
  k.register(VmgenidDriverKind);
  return k;
}
