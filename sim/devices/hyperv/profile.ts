// Kernel profiles. `linux-6.1` reproduces what Linux 6.1 drivers/hv (hv_kvp.c, hv_snapshot.c)
// observably does, quirks included; `spec` is the behaviour those drivers intend. Every place the
// kernel model branches on the profile is one named check below, and DEVIATIONS lists them all, so
// a spec can walk the list and show each difference.

export type KernelProfile = "linux-6.1" | "spec";
export const KERNEL_PROFILES: readonly KernelProfile[] = ["linux-6.1", "spec"];

export interface Deviation {
  /** Stable name, used by the checks below and by specs. */
  readonly name: string;
  /** Where the linux-6.1 behaviour comes from. */
  readonly source: string;
  readonly linux: string;
  readonly spec: string;
}

export const DEVIATIONS: readonly Deviation[] = [
  {
    name: "kvp-get-value-size",
    source: "drivers/hv/hv_kvp.c kvp_send_key (KVP_OP_GET copies only the key)",
    linux: "a host GET reaches the daemon with value_size 0, so hv_kvp_daemon copies no value bytes",
    spec: "the daemon is asked for up to HV_KVP_EXCHANGE_MAX_VALUE_SIZE (2048) bytes",
  },
  {
    name: "kvp-get-value-offset",
    source: "drivers/hv/hv_kvp.c kvp_respond_to_host (value read through body.kvp_enum_data)",
    linux: "the answer's value is read at the ENUMERATE offset 532 while the daemon wrote it at the GET offset 528: the host sees the value shifted by 4 bytes",
    spec: "the value is read where the daemon wrote it (offset 528)",
  },
  {
    name: "kvp-utf16-length-units",
    source: "drivers/hv/hv_kvp.c kvp_send_key (utf16s_to_utf8s gets key_size/value_size, which are byte counts, as a count of UTF-16 units)",
    linux: "up to key_size (value_size) UTF-16 units are converted, i.e. twice the bytes the host declared, up to the first U+0000 — past the 512-byte key field into the value when the key has no terminator",
    spec: "at most key_size/2 (value_size/2) units are converted, and never past the field",
  },
  {
    name: "vss-hot-backup-flag",
    source: "drivers/hv/hv_snapshot.c vss_on_msg (checks the daemon reply's vss_hdr.operation, which the daemon's `error` overwrote)",
    linux: "VSS_HBU_NO_AUTO_RECOVERY is set only if the reply's first byte is VSS_OP_HOT_BACKUP (2) — never with hv_vss_daemon, whose error 0 or HV_E_FAIL lands there",
    spec: "the flag is set when the transaction being answered is a HOT_BACKUP",
  },
  {
    name: "vss-request-overwrite",
    source: "drivers/hv/hv_snapshot.c hv_vss_onchannelcallback (the request is handled by a work item; the state stays READY until it runs)",
    linux: "a second VSS packet that reaches the channel callback before the first request's work item has run is read into the same receive buffer (the state is still READY): the first transaction is never answered (in the model the work item runs workNs after the callback, so a packet already in the ring always wins)",
    spec: "the channel is not read again until the request being handled is answered",
  },
];

export const DEVIATION_NAMES: readonly string[] = DEVIATIONS.map((d) => d.name);

/** True when `profile` shows the upstream (quirky) side of deviation `name`. */
export function quirk(profile: KernelProfile, name: string): boolean {
  if (!DEVIATION_NAMES.includes(name)) throw new Error(`unknown hyperv deviation ${name}`);
  return profile === "linux-6.1";
}

export function isProfile(p: unknown): p is KernelProfile {
  return p === "linux-6.1" || p === "spec";
}
