// Scenario steps for the Hyper-V bench (registered through sim/scenario/plugins.ts):
//
//   - kvp: set          pool: 0  key: k  value: v | {u32: 7} | {u64: "18446744073709551615"}
//   - kvp: get | delete pool: 0  key: k
//   - kvp: enumerate    pool: 2  index: 1
//   - kvp: get-ip-info  adapter: "00:15:5D:00:00:01"
//     every request: [expect: {status: HV_S_OK | HV_S_CONT | HV_E_FAIL | 0x80004005, key, value,
//                    flags}] [within: NS (default 3600 s; run the clock until answered)]
//                    [answered: false (expect no answer within `within`)] [as: NAME (stores the status)]
//     The host times a transaction out after 35 s (905 s for a FREEZE; HostConfig.timeoutNs, default
//     "hyperv"): a timed-out transaction counts as not answered by the guest. A scenario about "no
//     answer, ever" turns the host timeout off: `devices: {host: {timeoutNs: none}}`.
//   - kvp: pool         pool: 1  expect: [[key, value], ...]     (the daemon's .kvp_pool_1)
//   - vss: freeze | thaw | hot-backup | get-dm-info | create | ...   [expect] [within] [answered] [as]
//   - daemon: crash | start        [service: kvp | vss (default kvp)]
//   - daemon: delay  ns: 31000000000   /   daemon: crash-before / crash-after  (the next request)
//   - daemon: state  expect: READY   [service]    (the kernel's transaction state)
//
// Device ids default to the `hyperv` machine's: host, hv-utils, kvp-daemon, vss-daemon.
import { z } from "zod";
import { registerStep, StepAssertion, StepError, type StepContext } from "../../scenario/registry.ts";
import { NS_PER_S } from "../../clock/time.ts";
import { u64 } from "../../scenario/values.ts";
import { HV_E_FAIL, HV_S_CONT, HV_S_OK } from "../../wire/hyperv-constants.ts";
import { HypervHost, type HostAnswer, type KvpRequest, type VssOpName, VSS_OPS } from "./host.ts";
import { HvUtilsKernel } from "./kernel.ts";
import { KvpDaemonModel } from "./kvp-daemon.ts";
import { VssDaemonModel } from "./vss-daemon.ts";
import type { Service } from "./endpoint.ts";

const STATUS: Record<string, number> = { HV_S_OK, HV_S_CONT, HV_E_FAIL };
const status = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  const n = typeof v === "number" ? v : STATUS[v] ?? (/^0x[0-9a-fA-F]+$/.test(v) ? Number.parseInt(v, 16) : undefined);
  if (n === undefined) {
    ctx.addIssue({ code: "custom", message: `status must be HV_S_OK, HV_S_CONT, HV_E_FAIL or a number, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});
const varName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a variable name is letters, digits and _");
const within = z.number().int().nonnegative();
const pool = z.number().int().min(0).max(255);
const expectAnswer = z.strictObject({ status: status.optional(), key: z.string().optional(), value: z.string().optional(), flags: z.number().int().optional() });
const waitKeys = { expect: expectAnswer.optional(), within: within.optional(), answered: z.boolean().optional(), as: varName.optional() };
const U32Value = z.strictObject({ u32: z.number({ error: "u32 must be a whole number in 0..0xffffffff" }).int().min(0).max(0xffffffff) });
const U64Value = z.strictObject({ u64 });
/** A KVP value: a string, {u32: N} or {u64: N}; the issues of the form chosen are reported as they are. */
const value = z.unknown().transform((v, ctx): string | z.output<typeof U32Value> | z.output<typeof U64Value> => {
  if (typeof v === "string") return v;
  const form = v !== null && typeof v === "object" ? ("u64" in v ? U64Value : "u32" in v ? U32Value : undefined) : undefined;
  const r = form?.safeParse(v);
  if (!r?.success) {
    for (const i of r?.error.issues ?? [{ path: [], message: `a KVP value is a string, {u32: N} or {u64: N}, got ${JSON.stringify(v)}` }]) {
      ctx.addIssue({ code: "custom", path: i.path, message: i.message });
    }
    return z.NEVER;
  }
  return r.data;
});

const KvpSchema = z.discriminatedUnion("kvp", [
  z.strictObject({ kvp: z.literal("set"), pool, key: z.string(), value, ...waitKeys }),
  z.strictObject({ kvp: z.literal("get"), pool, key: z.string(), ...waitKeys }),
  z.strictObject({ kvp: z.literal("delete"), pool, key: z.string(), ...waitKeys }),
  z.strictObject({ kvp: z.literal("enumerate"), pool, index: z.number().int().nonnegative(), ...waitKeys }),
  z.strictObject({ kvp: z.literal("get-ip-info"), adapter: z.string(), family: z.number().int().optional(), ...waitKeys }),
  z.strictObject({ kvp: z.literal("pool"), pool: z.number().int().min(0).max(4), expect: z.array(z.tuple([z.string(), z.string()])) }),
]);

const VssSchema = z.strictObject({ vss: z.enum(Object.keys(VSS_OPS) as [VssOpName, ...VssOpName[]]), ...waitKeys });

const DaemonSchema = z.discriminatedUnion("daemon", [
  z.strictObject({ daemon: z.literal("crash"), service: z.enum(["kvp", "vss"]).default("kvp") }),
  z.strictObject({ daemon: z.literal("start"), service: z.enum(["kvp", "vss"]).default("kvp") }),
  z.strictObject({ daemon: z.literal("delay"), ns: within, service: z.enum(["kvp", "vss"]).default("kvp") }),
  z.strictObject({ daemon: z.literal("crash-before"), service: z.enum(["kvp", "vss"]).default("kvp") }),
  z.strictObject({ daemon: z.literal("crash-after"), service: z.enum(["kvp", "vss"]).default("kvp") }),
  z.strictObject({ daemon: z.literal("state"), expect: z.string(), service: z.enum(["kvp", "vss"]).default("kvp") }),
]);

function device<T>(ctx: StepContext, id: string, cls: abstract new (...a: any[]) => T): T {
  const d = ctx.bench.findDevice(id);
  if (!(d instanceof cls)) throw new StepError(`no ${cls.name} device "${id}" on machine ${ctx.bench.machine.name} (use machine: hyperv)`);
  return d as T;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Runs the clock until transaction `id` is answered or `limit` ns pass; checks expectations. */
function awaitAnswer(ctx: StepContext, host: HypervHost, service: Service, id: number, a: { expect?: z.output<typeof expectAnswer>; within?: number; answered?: boolean; as?: string }): void {
  const clock = ctx.bench.clock;
  const end = ctx.bench.now + (a.within ?? 3600 * NS_PER_S);
  let ans: HostAnswer | undefined;
  while (!(ans = host.answer(service, id))) {
    const next = clock.nextAt;
    if (next === undefined || next > end) break;
    clock.runNext();
  }
  if (ans?.result.timedOut) {
    if (a.answered === false) {
      ctx.note(`${service} transaction ${id}: not answered by the guest; the host timed it out at ${ans.at} ns`);
      return;
    }
    throw new StepAssertion("an answer", "host timeout", `transaction ${id} was not answered: the host gave up on it after ${ans.at - ans.sentAt} ns (host timeoutNs; devices: {host: {timeoutNs: none}} turns it off)`);
  }
  if (!ans) {
    if (a.answered === false) return;
    clock.runUntil(Math.max(ctx.bench.now, end));
    throw new StepAssertion("an answer", "no answer", `transaction ${id} was not answered within ${a.within ?? 3600 * NS_PER_S} ns`);
  }
  if (a.answered === false) throw new StepAssertion("no answer", `status ${hex(ans.status)}`);
  ctx.note(`${service} transaction ${id}: status ${hex(ans.status)}${ans.result.value !== undefined ? ` value ${JSON.stringify(ans.result.value)}` : ""}`);
  if (a.as) ctx.vars.set(a.as, ans.status);
  const e = a.expect;
  if (!e) return;
  if (e.status !== undefined && ans.status !== e.status) throw new StepAssertion(hex(e.status), hex(ans.status), `status: expected ${hex(e.status)}, got ${hex(ans.status)}`);
  for (const k of ["key", "value", "flags"] as const) {
    if (e[k] !== undefined && ans.result[k] !== e[k]) throw new StepAssertion(JSON.stringify(e[k]), JSON.stringify(ans.result[k]), `${k}: expected ${JSON.stringify(e[k])}, got ${JSON.stringify(ans.result[k])}`);
  }
}

registerStep(
  "kvp",
  KvpSchema,
  (a, ctx) => {
    if (a.kvp === "pool") {
      const d = device(ctx, "kvp-daemon", KvpDaemonModel);
      const got = d.entries(a.pool);
      if (JSON.stringify(got) !== JSON.stringify(a.expect)) throw new StepAssertion(JSON.stringify(a.expect), JSON.stringify(got));
      return;
    }
    const host = device(ctx, "host", HypervHost);
    let req: KvpRequest;
    switch (a.kvp) {
      case "set":
        req = { op: "set", pool: a.pool, key: a.key, value: a.value };
        break;
      case "get":
      case "delete":
        req = { op: a.kvp, pool: a.pool, key: a.key };
        break;
      case "enumerate":
        req = { op: "enumerate", pool: a.pool, index: a.index };
        break;
      case "get-ip-info":
        req = { op: "get-ip-info", adapterId: a.adapter, addrFamily: a.family ?? 0 };
        break;
    }
    awaitAnswer(ctx, host, "kvp", host.kvp(req), a);
  },
  { describe: (a) => `kvp ${a.kvp}` },
);

registerStep(
  "vss",
  VssSchema,
  (a, ctx) => {
    const host = device(ctx, "host", HypervHost);
    awaitAnswer(ctx, host, "vss", host.vss(a.vss), a);
  },
  { describe: (a) => `vss ${a.vss}` },
);

registerStep(
  "daemon",
  DaemonSchema,
  (a, ctx) => {
    if (a.daemon === "state") {
      const k = device(ctx, "hv-utils", HvUtilsKernel);
      const got = k.stateName(a.service);
      if (got !== a.expect) throw new StepAssertion(a.expect, got);
      return;
    }
    const d = a.service === "kvp" ? device(ctx, "kvp-daemon", KvpDaemonModel) : device(ctx, "vss-daemon", VssDaemonModel);
    switch (a.daemon) {
      case "crash":
        return d.crash();
      case "start":
        return d.start();
      case "delay":
        return d.queue({ do: "delay", ns: a.ns });
      case "crash-before":
      case "crash-after":
        return d.queue({ do: a.daemon });
    }
  },
  { describe: (a) => `daemon ${a.daemon}` },
);
