// The seeded random differential of the KVP and VSS services (issue 11/12): random operation
// sequences drawn from a seed are sent to a target's Hyper-V session and to the model's, and every
// host-visible answer is compared field by field. The first mismatch that no named daemon deviation
// explains is shrunk (greedy one-op and chunk deletion, replayed on fresh sessions) to a minimal
// sequence, printed as a replayable transcript (JSON, one op a line).
//
// Ops whose outcome on Debian's daemon is undefined or environment-dependent carry the name of a
// `debian-6.1` daemon deviation (DAEMON_DEVIATIONS). A mismatch on such an op is reported by that
// name, never hidden, and ends the sequence (the two daemons' states may differ from then on). A
// better daemon that agrees with the model there simply produces no deviation.
import { Rng } from "../clock/rng.ts";
import type { KvpRequest, VssOpName } from "../devices/hyperv/index.ts";
import type { CrashPoint, HvAnswer, HypervOpenOptions, HypervSession } from "./hyperv-session.ts";
import type { Target } from "./types.ts";

export interface DaemonDeviation {
  readonly name: string;
  /** The upstream line that decides it (Linux 6.1.192). */
  readonly source: string;
  readonly debian: string;
}

/** Where Debian's 6.1 daemons (hyperv-daemons 6.1.192) leave the defined behaviour the model follows. */
export const DAEMON_DEVIATIONS: readonly DaemonDeviation[] = [
  {
    name: "kvp-pool-out-of-range",
    source: "tools/hv/hv_kvp_daemon.c:1472 (pool = hv_msg->kvp_hdr.pool, never checked) -> kvp_file_info[pool] (:126 lock, :179 update)",
    debian: "a pool number 5-255 indexes past kvp_file_info[5]: undefined (garbage lock fd, crash or a silent HV_S_CONT); the model answers HV_S_CONT",
  },
  {
    name: "kvp-negative-index",
    source: "tools/hv/hv_kvp_daemon.c:407 kvp_pool_enumerate (index is an int compared only with num_records, then record[index] at :411)",
    debian: "an ENUMERATE index >= 2^31 is a negative int: records[index] is read out of bounds",
  },
  {
    name: "kvp-unterminated-field",
    source: "tools/hv/hv_kvp_daemon.c:298-299 kvp_key_delete (record moves by strcpy; _FORTIFY_SOURCE checks the 512/2048-byte fields)",
    debian:
      "a DELETE that moves a record whose key or value fills its field with no NUL copies it with strcpy past the field: Debian's fortified build (__strcpy_chk) aborts with SIGABRT (\"buffer overflow detected\"); the model truncates to 511/2047 bytes + NUL. SET, ENUMERATE and DELETE of the last record agree (memcmp/memcpy over the sizes). Shown with raw daemon-side messages in specs/hyperv/kvp-unterminated.spec.ts; not reachable from the host: drivers/hv/hv_kvp.c:389 kzalloc()s the message and :431/:467/:478/:488 convert at most 2047/511 bytes, so the daemon always gets a NUL; the differential therefore only draws keys and values at and past those limits",
  },
];

export const DAEMON_DEVIATION_NAMES: readonly string[] = DAEMON_DEVIATIONS.map((d) => d.name);

export type DiffOp =
  | { kvp: KvpRequest; deviation?: string }
  | { vss: VssOpName }
  /**
   * The daemon is killed during the request at `point` (CrashPoint: right after its read, or in
   * the write of its answer after applying it; default before-apply), then started again (one op,
   * so a shrink keeps them together).
   */
  | { crash: { kvp: KvpRequest } | { vss: VssOpName }; point?: CrashPoint }
  /**
   * VSS: the daemon answers `late` 1000 s late, after the kernel's own timeout (30 s, 900 s for a
   * FREEZE): its write fails and it reopens the device, thawing first what it left frozen
   * (hv_vss_daemon.c:346-349, :247-256).
   */
  | { late: VssOpName };

/** How late a `late` op's answer is written: past every kernel timeout (VSS_FREEZE_TIMEOUT 900 s). */
const LATE_NS = 1000 * 1_000_000_000;

const KEYS = ["a", "b", "hvsim-key", "ü", "ωmega", "✓", "𝄞", ""];
const VALUES: (string | { u32: number } | { u64: bigint })[] = ["", "v", "value", "ωmega ✓", "𝄞𝄞", { u32: 0 }, { u32: 4294967295 }];
const VSS_OPS: VssOpName[] = ["create", "delete", "hot-backup", "get-dm-info", "bu-complete", "freeze", "thaw", "auto-recover"];

function pick<T>(r: Rng, xs: readonly T[]): T {
  return xs[r.int(0, xs.length - 1)]!;
}

/** UTF-16 units of the longest key/value the daemon can store (512/2048 bytes with the NUL). */
function longString(r: Rng, units: number): string {
  const base = pick(r, ["k", "ü"]);
  return base.repeat(Math.max(1, units + r.int(-2, 1)));
}

function kvpOp(r: Rng, inRange: boolean): DiffOp {
  const pool = inRange ? r.int(0, 4) : r.int(5, 255);
  const dev = inRange ? undefined : "kvp-pool-out-of-range";
  const key = r.int(0, 9) === 0 ? longString(r, 254) : pick(r, KEYS);
  const withDev = (req: KvpRequest): DiffOp => (dev ? { kvp: req, deviation: dev } : { kvp: req });
  if (r.int(0, 14) === 0) {
    // The guest's own adapter (as the host sends it, upper case), another case, or an unknown one.
    const adapterId = pick(r, ["00:15:5D:00:00:01", "00:15:5d:00:00:01", "00:15:5D:00:00:02", "", "{00000000-0000-0000-0000-000000000000}"]);
    return r.int(0, 1) ? { kvp: { op: "get-ip-info", adapterId } } : { kvp: { op: "set-ip-info", adapterId, ipAddr: "192.0.2.77", subNet: "255.255.255.0" } };
  }
  switch (r.int(0, 9)) {
    case 0:
    case 1:
    case 2: {
      const value = r.int(0, 9) === 0 ? longString(r, 1022) : pick(r, VALUES);
      if (typeof value === "object" && "u64" in value) return withDev({ op: "set", pool, key, value: { u32: 1 } });
      return withDev({ op: "set", pool, key, value });
    }
    case 3:
    case 4:
      return withDev({ op: "get", pool, key });
    case 5:
      return withDev({ op: "delete", pool, key });
    case 6:
    case 7:
    case 8:
      return withDev({ op: "enumerate", pool, index: r.int(0, 12) });
    default:
      return { kvp: { op: "enumerate", pool: r.int(0, 4), index: 0x80000000 + r.int(0, 0x7fffffff) }, deviation: "kvp-negative-index" };
  }
}

/** `n` random operations for `service`, from `seed`. */
export function generateOps(service: "kvp" | "vss", seed: number, n: number): DiffOp[] {
  const r = new Rng(seed);
  const out: DiffOp[] = [];
  for (let i = 0; i < n; i++) {
    const roll = r.int(0, 99);
    if (roll < 3) {
      // A SET killed after-apply is in the pool for the restarted daemon, before-apply it is not.
      const crash: { kvp: KvpRequest } | { vss: VssOpName } =
        service === "kvp"
          ? r.int(0, 1)
            ? { kvp: { op: "enumerate", pool: r.int(0, 1), index: 0 } }
            : { kvp: { op: "set", pool: r.int(0, 1), key: pick(r, KEYS), value: "crash" } }
          : { vss: pick(r, ["hot-backup", "freeze", "thaw"] as VssOpName[]) };
      out.push({ crash, point: r.int(0, 1) ? "after-apply" : "before-apply" });
    } else if (service === "vss" && roll < 6) out.push({ late: pick(r, ["freeze", "thaw", "hot-backup"] as VssOpName[]) });
    else if (service === "vss") out.push({ vss: pick(r, VSS_OPS) });
    else out.push(kvpOp(r, roll >= 6));
  }
  return out;
}

/** An answer as compared: status in hex, IC flags, every decoded field (transaction id left out). */
export function flatAnswer(a: HvAnswer | undefined): Record<string, unknown> {
  if (!a) return { answer: "none" };
  const out: Record<string, unknown> = { status: `0x${(a.status >>> 0).toString(16)}`, icflags: a.flags };
  for (const [k, v] of Object.entries(a.result)) out[k] = typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v;
  return out;
}

/** The fields in which two answers differ, as "field: target X, model Y". */
export function diffAnswers(t: Record<string, unknown>, m: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(t), ...Object.keys(m)])].sort();
  const out: string[] = [];
  for (const k of keys) {
    const a = JSON.stringify(t[k]), b = JSON.stringify(m[k]);
    if (a !== b) out.push(`${k}: target ${a ?? "absent"}, model ${b ?? "absent"}`);
  }
  return out;
}

async function step(s: HypervSession, op: DiffOp): Promise<Record<string, unknown>> {
  if ("kvp" in op) return flatAnswer(await s.kvp(op.kvp));
  if ("vss" in op) return { ...flatAnswer(await s.vss(op.vss)), ioctls: s.takeIoctls(), frozen: s.frozen() };
  if ("late" in op) {
    s.delayNextAnswer(LATE_NS);
    const a = flatAnswer(await s.vss(op.late));
    await s.settled();
    return { ...a, ioctls: s.takeIoctls(), frozen: s.frozen(), after: s.state() };
  }
  const a = flatAnswer(await s.crashDuring(op.crash, op.point));
  await s.restart();
  return { ...a, restarted: s.state(), ...("vss" in op.crash ? { ioctls: s.takeIoctls(), frozen: s.frozen() } : {}) };
}

export interface Replay {
  /** Per op: the target's and the model's answers (until the replay stopped). */
  readonly answers: { target: Record<string, unknown>; model: Record<string, unknown> }[];
  /** Index and field differences of the first mismatch no deviation explains. */
  readonly mismatch?: { index: number; fields: string[] };
  /** Deviation names met (a named op whose answers differed). */
  readonly deviations: string[];
  /** Set when a session failed outright (the daemon vanished, a wait gave up). */
  readonly error?: { index: number; message: string };
}

export const DIFF_MOUNTS = [
  { fsname: "/dev/vda1", dir: "/", type: "ext4", opts: "rw,relatime" },
  { fsname: "/dev/vdb1", dir: "/data", type: "xfs", opts: "rw" },
];

async function open(t: Target, service: "kvp" | "vss", o: HypervOpenOptions): Promise<HypervSession> {
  const s = await t.openHyperv!(service, o);
  await s.registered();
  await s.negotiate();
  if (service === "vss") s.takeIoctls();
  return s;
}

/** Plays `ops` on fresh sessions of `target` and `model`, comparing answer by answer. */
export async function replay(target: Target, model: Target, service: "kvp" | "vss", ops: readonly DiffOp[]): Promise<Replay> {
  const o: HypervOpenOptions = { profile: "linux-6.1", ...(service === "vss" ? { mounts: DIFF_MOUNTS } : {}) };
  const answers: Replay["answers"] = [];
  const deviations = new Set<string>();
  let ts = await open(target, service, o);
  let ms = await open(model, service, o);
  // A named deviation leaves the two daemons in states that may differ: both start afresh.
  const afresh = async (dev: string): Promise<void> => {
    deviations.add(dev);
    await ts.close();
    await ms.close();
    ts = await open(target, service, o);
    ms = await open(model, service, o);
  };
  try {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      let ta: Record<string, unknown>;
      try {
        ta = await step(ts, op);
      } catch (e) {
        const dev = "kvp" in op ? op.deviation : undefined;
        if (dev) {
          answers.push({ target: { error: (e as Error).message }, model: await step(ms, op) });
          await afresh(dev);
          continue;
        }
        return { answers, deviations: [...deviations].sort(), error: { index: i, message: (e as Error).message } };
      }
      const ma = await step(ms, op);
      answers.push({ target: ta, model: ma });
      const fields = diffAnswers(ta, ma);
      if (!fields.length) continue;
      const dev = "kvp" in op ? op.deviation : undefined;
      if (dev) {
        await afresh(dev);
        continue;
      }
      return { answers, deviations: [...deviations].sort(), mismatch: { index: i, fields } };
    }
    return { answers, deviations: [...deviations].sort() };
  } finally {
    await ts.close();
    await ms.close();
  }
}

const failing = (r: Replay): boolean => r.mismatch !== undefined || r.error !== undefined;

/** Shrinks a failing sequence by deletions while it still fails (at most `budget` replays). */
export async function shrink(target: Target, model: Target, service: "kvp" | "vss", ops: readonly DiffOp[], budget = 40): Promise<{ ops: DiffOp[]; replay: Replay; replays: number }> {
  let best = [...ops];
  let bestR = await replay(target, model, service, best);
  let used = 1;
  const stop = bestR.mismatch?.index ?? bestR.error?.index;
  if (stop !== undefined) best = best.slice(0, stop + 1);
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && used < budget; chunk >>= 1) {
    for (let at = best.length - 1 - chunk; at >= 0 && used < budget; at -= chunk) {
      const cand = [...best.slice(0, Math.max(0, at)), ...best.slice(at + chunk)];
      if (!cand.length) continue;
      const r = await replay(target, model, service, cand);
      used++;
      if (failing(r)) {
        const end = (r.mismatch?.index ?? r.error?.index)! + 1;
        best = cand.slice(0, end);
        bestR = r;
      }
    }
  }
  return { ops: best, replay: bestR, replays: used };
}

/** A replayable transcript: one JSON op a line, `# ` comments for the answers of the last op. */
export function transcript(service: "kvp" | "vss", seed: number, ops: readonly DiffOp[], r: Replay): string {
  const lines = [`# hvsim ${service} differential, seed ${seed}, ${ops.length} ops (replay: replayDifferential(target, model, "${service}", ops))`];
  for (const op of ops) lines.push(JSON.stringify(op, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)));
  const last = r.answers[r.answers.length - 1];
  if (r.mismatch && last) lines.push(`# target ${JSON.stringify(last.target)}`, `# model  ${JSON.stringify(last.model)}`);
  if (r.error) lines.push(`# target failed: ${r.error.message}`);
  return lines.join("\n");
}

/** Parses a transcript back into ops. */
export function parseTranscript(text: string): DiffOp[] {
  return text
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("#"))
    .map((l) => JSON.parse(l) as DiffOp);
}

export interface DifferentialResult {
  readonly sequences: number;
  readonly ops: number;
  readonly deviations: string[];
  /** The shrunk failure, if any. */
  readonly failure?: { seed: number; fields: string[]; transcript: string; replays: number };
  /** Model answers of every sequence (for per-seed pins). */
  readonly modelAnswers: unknown[];
}

/** `sequences` sequences of `length` ops from `seed` (sequence k uses seed + k). */
export async function runDifferential(target: Target, model: Target, service: "kvp" | "vss", seed: number, sequences: number, length: number): Promise<DifferentialResult> {
  const deviations = new Set<string>();
  const modelAnswers: unknown[] = [];
  let ops = 0;
  for (let k = 0; k < sequences; k++) {
    const s = seed + k;
    const seq = generateOps(service, s, length);
    const r = await replay(target, model, service, seq);
    ops += r.answers.length;
    modelAnswers.push(r.answers.map((a) => a.model));
    for (const d of r.deviations) deviations.add(d);
    if (failing(r)) {
      const sh = await shrink(target, model, service, seq);
      const first = r.mismatch?.fields ?? [`error: ${r.error?.message}`];
      const fields = failing(sh.replay) ? (sh.replay.mismatch?.fields ?? [`error: ${sh.replay.error?.message}`]) : [...first, "(did not reproduce on replay: the target is not deterministic here)"];
      return { sequences: k + 1, ops, deviations: [...deviations].sort(), failure: { seed: s, fields, transcript: transcript(service, s, sh.ops, sh.replay), replays: sh.replays }, modelAnswers };
    }
  }
  return { sequences, ops, deviations: [...deviations].sort(), modelAnswers };
}
