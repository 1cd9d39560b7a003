// Every device kind hvsim knows, by type name. Snapshots name kinds by these types.
import { DeviceKinds } from "../machine/device.ts";

export function defaultKinds(): DeviceKinds {
  const k = new DeviceKinds();
  // One line per device kind: k.register(<kind>);
  return k;
}
