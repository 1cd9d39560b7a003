// Raw daemon-side messages with a key or value that fills its field with no NUL (issue 12): the
// kernel never builds one (drivers/hv/hv_kvp.c:389 kzalloc()s the message and :431/:467/:478/:488
// convert at most 511/2047 bytes), so they are handed to the daemon directly
// (HvUtilsKernel.rawToDaemon) — to Debian's real hv_kvp_daemon through the device bridge and to
// hvsim's model — and the answers are compared byte for byte.
// tools/hv/hv_kvp_daemon.c (linux 6.1.192): SET (:1524 kvp_key_add_or_modify) compares with
// memcmp over key_size (:332) and stores with memcpy (:356-357); ENUMERATE (:1561 ->
// kvp_pool_enumerate :411-412) copies the whole 512/2048-byte fields back; DELETE (:1542 ->
// kvp_key_delete) needs no copy for the last record (:287-290) but moves later records up with
// strcpy (:298-299), which reads a field with no NUL past its end. Debian builds with
// _FORTIFY_SOURCE (the binary imports __strcpy_chk): the 512-byte destination overflows and the
// daemon aborts (SIGABRT) — daemon deviation kvp-unterminated-field, which the model answers
// with a defined truncation instead.
import { describe, expect, it } from "vitest";
import { K, KVP_MSG_SIZE, rd32, wr32 } from "../../sim/devices/hyperv/index.ts";
import { KVP_OP_DELETE, KVP_OP_ENUMERATE, KVP_OP_SET } from "../../sim/wire/hyperv-constants.ts";
import { ModelHypervSession, type HypervSession } from "../../sim/conform/hyperv-session.ts";
import { DAEMON_DEVIATION_NAMES } from "../../sim/conform/hyperv-differential.ts";
import { daemonAvailable, openRealHyperv, type RealHypervSession } from "../../sim/targets/hvdaemon/target.ts";

const real = daemonAvailable();
const why = real === true ? "" : ` [real daemon skipped: ${real}]`;
const HV_S_CONT = 0x80070103;
const KEY = new Uint8Array(512).fill(0x6b); // 'k' x 512, no NUL
const VALUE = new Uint8Array(2048).fill(0x76); // 'v' x 2048, no NUL

function msg(op: number, pool: number): Uint8Array {
  const m = new Uint8Array(KVP_MSG_SIZE);
  m[K.op] = op;
  m[K.pool] = pool;
  return m;
}
function set(pool: number, key: Uint8Array, value: Uint8Array): Uint8Array {
  const m = msg(KVP_OP_SET, pool);
  m.set(key, K.key);
  wr32(m, K.keySize, key.length);
  m.set(value, K.value);
  wr32(m, K.valueSize, value.length);
  return m;
}
function del(pool: number, key: Uint8Array): Uint8Array {
  const m = msg(KVP_OP_DELETE, pool);
  m.set(key, K.delKey);
  wr32(m, K.delKeySize, key.length);
  return m;
}
function enumerate(pool: number, index: number): Uint8Array {
  const m = msg(KVP_OP_ENUMERATE, pool);
  wr32(m, K.enumIndex, index);
  return m;
}
const text = (s: string) => new TextEncoder().encode(`${s}\0`);

/** What the host-independent part of an answer shows: the error, and for ENUMERATE the key/value fields. */
function view(op: number, a: Uint8Array | undefined): unknown {
  if (!a) return "no answer (the daemon died)";
  const out: Record<string, unknown> = { len: a.length, error: rd32(a, K.error) };
  if (op === KVP_OP_ENUMERATE) {
    out.key = Buffer.from(a.subarray(K.enumKey, K.enumKey + 512)).toString("latin1");
    out.value = Buffer.from(a.subarray(K.enumValue, K.enumValue + 2048)).toString("latin1");
  }
  return out;
}

/** SET the filled record (as the last), ENUMERATE it, DELETE it (last: no strcpy), SET it back between two others. */
async function script(s: HypervSession): Promise<{ label: string; got: unknown }[]> {
  await s.registered();
  const steps: [string, number, Uint8Array][] = [
    ["set filled", KVP_OP_SET, set(0, KEY, VALUE)],
    ["enumerate 0", KVP_OP_ENUMERATE, enumerate(0, 0)],
    ["enumerate 1", KVP_OP_ENUMERATE, enumerate(0, 1)],
    ["set filled again (modify)", KVP_OP_SET, set(0, KEY, VALUE)],
    ["delete filled (last record)", KVP_OP_DELETE, del(0, KEY)],
    ["enumerate 0 after delete", KVP_OP_ENUMERATE, enumerate(0, 0)],
    ["set a", KVP_OP_SET, set(0, text("a"), text("1"))],
    ["set filled after a", KVP_OP_SET, set(0, KEY, VALUE)],
    ["set c", KVP_OP_SET, set(0, text("c"), text("3"))],
  ];
  const out: { label: string; got: unknown }[] = [];
  for (const [label, op, m] of steps) out.push({ label, got: view(op, await s.rawToDaemon(m)) });
  return out;
}

const FILLED_ENUM = { len: KVP_MSG_SIZE, error: 0, key: "k".repeat(512), value: "v".repeat(2048) };

describe("KVP raw messages whose key (512 B) or value (2048 B) fills its field with no NUL", () => {
  it("the model: SET/ENUMERATE/DELETE keep the full fields (memcmp/memcpy over the sizes)", async () => {
    const s = new ModelHypervSession("kvp", {});
    const got = await script(s);
    expect(got).toEqual([
      { label: "set filled", got: { len: KVP_MSG_SIZE, error: 0 } },
      { label: "enumerate 0", got: FILLED_ENUM },
      { label: "enumerate 1", got: { len: KVP_MSG_SIZE, error: HV_S_CONT, key: "\0".repeat(512), value: "\0".repeat(2048) } },
      { label: "set filled again (modify)", got: { len: KVP_MSG_SIZE, error: 0 } },
      { label: "delete filled (last record)", got: { len: KVP_MSG_SIZE, error: 0 } },
      { label: "enumerate 0 after delete", got: { len: KVP_MSG_SIZE, error: HV_S_CONT, key: "\0".repeat(512), value: "\0".repeat(2048) } },
      { label: "set a", got: { len: KVP_MSG_SIZE, error: 0 } },
      { label: "set filled after a", got: { len: KVP_MSG_SIZE, error: 0 } },
      { label: "set c", got: { len: KVP_MSG_SIZE, error: 0 } },
    ]);
    // DELETE "a" moves the filled record up: the model truncates each field to 511/2047 bytes + NUL.
    const d = await s.rawToDaemon(del(0, text("a")));
    expect(view(KVP_OP_DELETE, d)).toEqual({ len: KVP_MSG_SIZE, error: 0 });
    const e = view(KVP_OP_ENUMERATE, await s.rawToDaemon(enumerate(0, 0))) as { key: string; value: string };
    expect([e.key.slice(0, 512), e.value.slice(0, 2048)]).toEqual([`${"k".repeat(511)}\0`, `${"v".repeat(2047)}\0`]);
    await s.close();
  });

  it.skipIf(real !== true)(`Debian's hv_kvp_daemon answers as the model does, and aborts (fortified strcpy) where the model truncates: kvp-unterminated-field${why}`, async () => {
    const m = new ModelHypervSession("kvp", {});
    const want = await script(m);
    const s: RealHypervSession = await openRealHyperv("kvp", { timeoutMs: 15_000 });
    try {
      expect(await script(s)).toEqual(want);
      // DELETE "a": hv_kvp_daemon.c:298 strcpy(record[0].key, record[1].key) with the filled key as
      // the source; __strcpy_chk finds it longer than the 512-byte field and aborts.
      expect(DAEMON_DEVIATION_NAMES).toContain("kvp-unterminated-field");
      const d = await s.rawToDaemon(del(0, text("a")));
      expect(d).toBeUndefined();
      expect(await s.bridge.exited()).toEqual({ code: null, signal: "SIGABRT" });
      expect(s.bridge.stderrLines.join("\n")).toMatch(/buffer overflow detected/);
    } finally {
      await s.close();
      await m.close();
    }
  });
});
