// A hand-made kernel-to-daemon KVP message for the real-daemon specs: struct hv_kvp_msg is 7432
// bytes with the operation at byte 0 and the pool at byte 1 (include/uapi/linux/hyperv.h).
export function kvpMsg(op: number, pool: number): Uint8Array {
  const m = new Uint8Array(7432);
  m[0] = op;
  m[1] = pool;
  return m;
}
