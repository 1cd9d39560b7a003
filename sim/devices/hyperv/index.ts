// Hyper-V KVP/VSS test bench: host, guest kernel (hv_utils) and daemon models as device kinds.
// A machine with all four: hypervMachine(); the kernel talks to daemons only through the endpoint
// interface (endpoint.ts), so another endpoint (the real-daemon bridge) can replace a model.
import type { MachineSpec } from "../../machine/bench.ts";
import type { KernelProfile } from "./profile.ts";
export * from "./endpoint.ts";
export * from "./profile.ts";
export * from "./frames.ts";
export * from "./pool.ts";
export * from "./utf.ts";
export { HvUtilsKernel, HvUtilsKind, prepNegotiateResp, STATE_NAMES, KVP_TIMEOUT_NS, KVP_HANDSHAKE_NS, VSS_TIMEOUT_NS, VSS_FREEZE_TIMEOUT_NS, type KernelConfig, type KernelState, type ServiceState, type HvtState } from "./kernel.ts";
export { HypervHost, HypervHostKind, KVP_OPS, VSS_OPS, decodeAnswer, type HostAnswer, type HostConfig, type HostState, type KvpRequest, type KvpOpName, type VssOpName } from "./host.ts";
export { KvpDaemonModel, KvpDaemonKind, AUTO_KEYS, DEFAULT_AUTO, type Directive, type KvpDaemonConfig, type KvpDaemonState, type Adapter } from "./kvp-daemon.ts";
export { VssDaemonModel, VssDaemonKind, DEFAULT_MOUNTS, type Mount, type MountFailures, type VssDaemonConfig, type VssDaemonState } from "./vss-daemon.ts";

export interface HypervMachineOptions {
  profile?: KernelProfile;
  /** Per-device configuration merged over the defaults. */
  host?: Record<string, unknown>;
  kernel?: Record<string, unknown>;
  kvpDaemon?: Record<string, unknown> | false;
  vssDaemon?: Record<string, unknown> | false;
}

/** A machine with devices host, hv-utils, kvp-daemon and vss-daemon (ids as named). */
export function hypervMachine(o: HypervMachineOptions = {}): MachineSpec {
  const devices: MachineSpec["devices"][number][] = [
    { type: "hyperv-host", id: "host", config: { guest: "hv-utils", ...(o.host ?? {}) } },
    { type: "hv-utils", id: "hv-utils", config: { host: "host", profile: o.profile ?? "linux-6.1", ...(o.kernel ?? {}) } },
  ];
  if (o.kvpDaemon !== false) devices.push({ type: "hv-kvp-daemon", id: "kvp-daemon", config: { kernel: "hv-utils", ...(o.kvpDaemon ?? {}) } });
  if (o.vssDaemon !== false) devices.push({ type: "hv-vss-daemon", id: "vss-daemon", config: { kernel: "hv-utils", ...(o.vssDaemon ?? {}) } });
  return { name: "hyperv", description: "Hyper-V host + hv_utils (KVP, VSS) + hv_kvp_daemon/hv_vss_daemon models", memory: 1 << 16, devices };
}

import { DeviceKinds } from "../../machine/device.ts";
import { HvUtilsKind as KernelKind } from "./kernel.ts";
import { HypervHostKind as HostKind } from "./host.ts";
import { KvpDaemonKind as KvpKind } from "./kvp-daemon.ts";
import { VssDaemonKind as VssKind } from "./vss-daemon.ts";

/** The four Hyper-V kinds alone (sim/devices/index.ts registers them with every other kind). */
export const HYPERV_KINDS = [HostKind, KernelKind, KvpKind, VssKind] as const;

export function hypervKinds(): DeviceKinds {
  const k = new DeviceKinds();
  for (const kind of HYPERV_KINDS) k.register(kind);
  return k;
}
