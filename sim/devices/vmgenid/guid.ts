// 128-bit GUIDs as the VM generation ID carries them. Text form is the usual 8-4-4-4-12 hex; the
// 16 bytes kept in state are in text order. In guest memory the first three fields are stored
// little-endian (QEMU hw/acpi/vmgenid.c swaps time_low, time_mid and time_hi_and_version; the
// last 8 bytes are as written), which `guidToGuestBytes` produces.
import type { Rng } from "../../clock/rng.ts";
import { toHex } from "../../clock/canonical.ts";

const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Text-order bytes of a GUID, or undefined if `text` is not one. */
export function parseGuid(text: string): Uint8Array | undefined {
  if (!GUID_RE.test(text)) return undefined;
  return Uint8Array.from(Buffer.from(text.replace(/-/g, ""), "hex"));
}

export function formatGuid(bytes: Uint8Array): string {
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The 16 bytes the guest sees: time_low, time_mid and time_hi_and_version byte-swapped. */
export function guidToGuestBytes(bytes: Uint8Array): Uint8Array {
  const b = bytes;
  return Uint8Array.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8, 16)]);
}

/** Inverse of guidToGuestBytes (the swap is its own inverse). */
export const guestBytesToGuid = guidToGuestBytes;

/** A random (version 4, RFC 4122 variant) GUID drawn from the bench's seeded RNG. */
export function randomGuid(rng: Rng): Uint8Array {
  const b = rng.bytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}
