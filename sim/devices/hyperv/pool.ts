// The KVP daemon's pool files (`/var/lib/hyperv/.kvp_pool_N`, Debian hyperv-daemons 6.1
// tools/hv/hv_kvp_daemon.c): a headerless array of records {char key[512]; char value[2048];}.
// The daemon reads whole records only (fread of 2560-byte items: a trailing partial record is
// ignored) and compares strings up to their NUL, so bytes after a NUL may be stale.
import { HV_KVP_EXCHANGE_MAX_KEY_SIZE, HV_KVP_EXCHANGE_MAX_VALUE_SIZE } from "../../wire/hyperv-constants.ts";
import { cstrBytes, utf8Bytes, utf8Text } from "./utf.ts";

export const POOL_KEY_SIZE = HV_KVP_EXCHANGE_MAX_KEY_SIZE;
export const POOL_VALUE_SIZE = HV_KVP_EXCHANGE_MAX_VALUE_SIZE;
export const POOL_RECORD_SIZE = POOL_KEY_SIZE + POOL_VALUE_SIZE;
/** The daemon grows its record array 50 records at a time (ENTRIES_PER_BLOCK). */
export const ENTRIES_PER_BLOCK = 50;
/** Decoder bound: more records than this is refused (a 256 MiB file). */
export const MAX_POOL_RECORDS = 100_000;

export interface PoolRecord {
  /** Key and value as text (UTF-8 up to the NUL; invalid bytes shown as U+FFFD). */
  readonly key: string;
  readonly value: string;
  /** The C strings' bytes up to the NUL. */
  readonly keyBytes: Uint8Array;
  readonly valueBytes: Uint8Array;
}

export interface PoolFile {
  readonly records: readonly PoolRecord[];
  /** Bytes after the last whole record, which the daemon ignores. */
  readonly trailing: number;
}

export type PoolResult = { readonly ok: true; readonly value: PoolFile } | { readonly ok: false; readonly error: string };

/** Decodes a pool file. Never throws; refuses inputs of more than MAX_POOL_RECORDS records. */
export function decodePoolFile(bytes: Uint8Array, opts: { maxRecords?: number } = {}): PoolResult {
  if (!(bytes instanceof Uint8Array)) return { ok: false, error: "not bytes" };
  const max = Math.min(opts.maxRecords ?? MAX_POOL_RECORDS, MAX_POOL_RECORDS);
  const n = Math.floor(bytes.length / POOL_RECORD_SIZE);
  if (n > max) return { ok: false, error: `pool file holds ${n} records, more than the limit ${max}` };
  const records: PoolRecord[] = [];
  for (let i = 0; i < n; i++) {
    const at = i * POOL_RECORD_SIZE;
    const keyBytes = cstrBytes(bytes, at, POOL_KEY_SIZE);
    const valueBytes = cstrBytes(bytes, at + POOL_KEY_SIZE, POOL_VALUE_SIZE);
    records.push({ key: utf8Text(keyBytes), value: utf8Text(valueBytes), keyBytes, valueBytes });
  }
  return { ok: true, value: { records, trailing: bytes.length - n * POOL_RECORD_SIZE } };
}

export type PoolEntry = readonly [key: string | Uint8Array, value: string | Uint8Array];

/**
 * Encodes records as the daemon writes them: each key and value as UTF-8 with its NUL in a
 * zero-filled 512 + 2048 byte record. Throws a RangeError for a key over 511 or a value over 2047
 * bytes (they could not be NUL-terminated).
 */
export function encodePoolFile(entries: readonly PoolEntry[]): Uint8Array {
  const out = new Uint8Array(entries.length * POOL_RECORD_SIZE);
  entries.forEach(([k, v], i) => {
    const kb = typeof k === "string" ? utf8Bytes(k) : k;
    const vb = typeof v === "string" ? utf8Bytes(v) : v;
    if (kb.length >= POOL_KEY_SIZE) throw new RangeError(`pool record ${i}: key of ${kb.length} bytes does not fit ${POOL_KEY_SIZE} with its NUL`);
    if (vb.length >= POOL_VALUE_SIZE) throw new RangeError(`pool record ${i}: value of ${vb.length} bytes does not fit ${POOL_VALUE_SIZE} with its NUL`);
    out.set(kb, i * POOL_RECORD_SIZE);
    out.set(vb, i * POOL_RECORD_SIZE + POOL_KEY_SIZE);
  });
  return out;
}

/** Key/value text pairs of a pool file (empty for an undecodable one). */
export function poolEntries(bytes: Uint8Array): [string, string][] {
  const r = decodePoolFile(bytes);
  return r.ok ? r.value.records.map((x) => [x.key, x.value]) : [];
}
