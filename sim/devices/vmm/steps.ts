// Scenario steps for the vmm device (registered through sim/scenario/plugins.ts). One step type,
// `vmm`, whose value names the action:
//
//   - vmm: open            path: /dev/vmmctl   mode: rw   as: ctl   [uid: 1001] [gid: 1001]
//                          [groups: [978]] [jail: {allowVmm: false}] [expect: EPERM]
//                          (credentials: default root, no groups, not jailed; 978 is GID_VMM)
//   - vmm: create          fd: $ctl   name: guest   [flags: 1]   [reserved: [0, 1]]   [expect: EEXIST]
//                          (flags: VMMCTL_CREATE_DESTROY_ON_CLOSE = 1; reserved: up to 15 words)
//   - vmm: destroy         fd: $ctl   name: guest   [expect: EINVAL]   [wait: false, as: op]
//   - vmm: ioctl           fd: $vm    cmd: VM_SET_REGISTER   vcpu: 0   args: {regnum: 3, regval: 7}
//                          [bytes: "hex"] [duration: 1000] [caller: t1] [wait: false, as: op]
//                          [expect: 0] [copyout: {regval: 7}]
//   - vmm: wait            op: $op   [expect: 0]           (runs the clock until the op completes)
//   - vmm: close           fd: $ctl   [expect: EBADF]
//   - vmm: spawn / fork / exit   [pid: N]   [as: child]
//   - vmm: check           [vms: [guest]]                (invariants hold; the VMs that exist)
//
// Descriptors, pids and op ids are numbers or $variables stored with `as:`. Errnos are names
// (EINVAL) or numbers; without `expect` a step expects 0. `pid` (default 1) and `device`
// (default "vmm") are accepted by every action that acts for a process.
import { z } from "zod";
import { registerStep, StepAssertion, StepError, type StepContext } from "../../scenario/registry.ts";
import { codec } from "../../wire/codec.ts";
import { parseIntText } from "../../scenario/values.ts";
import { toHex } from "../../clock/canonical.ts";
import { errnoName, errnoValue } from "./errno.ts";
import { argBytes, vcpuArg } from "./args.ts";
import { ioctlByName } from "./table.ts";
import { hexCmd } from "./ioccom.ts";
import { VmmDevice } from "./vmm.ts";
import type { IoctlOutcome } from "./model.ts";

const ref = z.union([z.number().int(), z.string().regex(/^\$[A-Za-z_][A-Za-z0-9_]*$/, "a $variable")]);
const errno = z.union([z.number().int().nonnegative(), z.string()]).refine((v) => errnoValue(v) !== undefined, { message: "an errno name (EINVAL, EEXIST, ...) or number" });
const varName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a variable name is letters, digits and _");
const scalar = z.union([z.number().int(), z.string().regex(/^-?(0x[0-9a-fA-F]+|[0-9]+)$/, "a whole number")]);
const common = { device: z.string().optional(), pid: ref.optional() };

/**
 * Load-time checks of an ioctl step (a malformed scenario, not a failed run): the command name is
 * known, and every args/copyout value fits its struct member (signed or unsigned, as written).
 */
function checkIoctlAtLoad(a: { cmd: string | number; args?: Record<string, number | string>; copyout?: Record<string, number | string> }, ctx: z.RefinementCtx): void {
  if (typeof a.cmd !== "string" || /^0x[0-9a-f]+$/i.test(a.cmd)) return;
  const def = ioctlByName(a.cmd);
  if (!def) {
    ctx.addIssue({ code: "custom", path: ["cmd"], message: `unknown vmm ioctl ${a.cmd}` });
    return;
  }
  const fields = def.arg ? codec(def.arg).fields : [];
  for (const key of ["args", "copyout"] as const) {
    for (const [name, v] of Object.entries(a[key] ?? {})) {
      const f = fields.find((x) => x.path === name);
      if (!f || f.type.kind !== "prim") continue; // named at run time with the member list
      const n = typeof v === "number" ? BigInt(v) : parseIntText(v);
      if (n === undefined) continue;
      const bits = BigInt(f.size * 8);
      if (n < -(1n << (bits - 1n)) || n >= 1n << bits) {
        ctx.addIssue({ code: "custom", path: [key, name], message: `${name} ${String(v)} does not fit the ${f.size}-byte member ${def.arg!.name}.${name}` });
      }
    }
  }
}

const Schema = z.discriminatedUnion("vmm", [
  z.strictObject({
    vmm: z.literal("open"),
    path: z.string(),
    mode: z.enum(["r", "w", "rw"]).default("rw"),
    uid: z.number().int().min(0).max(0xffffffff).optional(),
    gid: z.number().int().min(0).max(0xffffffff).optional(),
    groups: z.array(z.number().int().min(0).max(0xffffffff)).max(1024).optional(),
    jail: z.strictObject({ allowVmm: z.boolean() }).optional(),
    as: varName.optional(),
    expect: errno.optional(),
    ...common,
  }),
  z.strictObject({ vmm: z.literal("close"), fd: ref, expect: errno.optional(), ...common }),
  z.strictObject({
    vmm: z.literal("create"),
    fd: ref,
    name: z.string(),
    flags: z.number().int().min(0).max(0xffffffff).optional(),
    reserved: z.array(z.number().int()).max(15).optional(),
    expect: errno.optional(),
    ...common,
  }),
  z.strictObject({ vmm: z.literal("destroy"), fd: ref, name: z.string(), reserved: z.array(z.number().int()).max(16).optional(), wait: z.boolean().default(true), as: varName.optional(), expect: errno.optional(), ...common }),
  z.strictObject({
    vmm: z.literal("ioctl"),
    fd: ref,
    cmd: z.union([z.string(), z.number().int().nonnegative()]),
    vcpu: z.number().int().optional(),
    args: z.record(z.string(), scalar).optional(),
    bytes: z.string().regex(/^([0-9a-fA-F]{2})*$/, "hex bytes").optional(),
    duration: z.number().int().nonnegative().optional(),
    caller: z.string().optional(),
    wait: z.boolean().default(true),
    as: varName.optional(),
    expect: errno.optional(),
    copyout: z.record(z.string(), scalar).optional(),
    ...common,
  }).superRefine(checkIoctlAtLoad),
  z.strictObject({ vmm: z.literal("wait"), op: ref, expect: errno.optional(), device: z.string().optional() }),
  z.strictObject({ vmm: z.literal("spawn"), as: varName.optional(), device: z.string().optional() }),
  z.strictObject({ vmm: z.literal("fork"), as: varName.optional(), ...common }),
  z.strictObject({ vmm: z.literal("exit"), ...common }),
  z.strictObject({ vmm: z.literal("check"), vms: z.array(z.string()).optional(), device: z.string().optional() }),
]);

type Args = z.output<typeof Schema>;

function dev(ctx: StepContext, id = "vmm"): VmmDevice {
  const d = ctx.bench.findDevice(id);
  if (!(d instanceof VmmDevice)) throw new StepError(`no vmm device ${JSON.stringify(id)} on machine ${ctx.bench.machine.name}`);
  return d;
}

function num(ctx: StepContext, v: number | string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v === "number") return v;
  const x = ctx.vars.get(v.slice(1));
  if (x === undefined) throw new StepError(`no stored value ${v} (store one with as: ${v.slice(1)})`);
  return Number(x);
}

function checkErrno(got: number, want: string | number | undefined): void {
  const w = want === undefined ? 0 : errnoValue(want)!;
  if (got !== w) throw new StepAssertion(errnoName(w), errnoName(got));
}

/** Runs the clock until op `op` has completed; returns its errno and out bytes. */
function waitFor(ctx: StepContext, d: VmmDevice, op: number): { errno: number; out: string } {
  for (let guard = 0; ; guard++) {
    const r = d.takeResult(op);
    if (r) return { errno: r.errno, out: r.out };
    if (d.state.ops[String(op)] === undefined) throw new StepError(`op ${op} is not in flight and has no result (already taken?)`);
    if (ctx.bench.clock.nextAt === undefined) throw new StepError(`op ${op} is waiting but nothing is scheduled: it would never complete`);
    if (guard > 1_000_000) throw new StepError(`op ${op} did not complete`);
    ctx.bench.clock.runNext();
  }
}

function settle(ctx: StepContext, d: VmmDevice, r: IoctlOutcome, wait: boolean, as: string | undefined): { errno: number; out: string } | undefined {
  if (r.status === "done") return { errno: r.errno, out: toHex(r.out) };
  if (!wait) {
    if (as) ctx.vars.set(as, r.op);
    ctx.note(`op ${r.op} in flight`);
    return undefined;
  }
  return waitFor(ctx, d, r.op);
}

function execute(a: Args, ctx: StepContext): void {
  const d = dev(ctx, a.device);
  const pid = "pid" in a ? num(ctx, a.pid, 1) : 1;
  switch (a.vmm) {
    case "open": {
      const r = d.open(a.path, a.mode, pid, { uid: a.uid ?? 0, ...(a.gid !== undefined ? { gid: a.gid } : {}), ...(a.groups ? { groups: a.groups } : {}), ...(a.jail ? { jail: a.jail } : {}) });
      checkErrno("errno" in r ? r.errno : 0, a.expect);
      if ("fd" in r && a.as) ctx.vars.set(a.as, r.fd);
      return;
    }
    case "close":
      return checkErrno(d.close(num(ctx, a.fd, -1), pid), a.expect);
    case "create": {
      const r = d.createVm(num(ctx, a.fd, -1), a.name, { pid, reserved: a.reserved, flags: a.flags });
      return checkErrno(r.status === "done" ? r.errno : -1, a.expect);
    }
    case "destroy": {
      const r = settle(ctx, d, d.destroyVm(num(ctx, a.fd, -1), a.name, { pid, reserved: a.reserved }), a.wait, a.as);
      if (r) checkErrno(r.errno, a.expect);
      return;
    }
    case "ioctl": {
      const def = typeof a.cmd === "string" && !/^0x/i.test(a.cmd) ? ioctlByName(a.cmd) : undefined;
      const cmd = def ? def.cmd : Number(a.cmd);
      if (typeof a.cmd === "string" && !def && !/^0x[0-9a-f]+$/i.test(a.cmd)) throw new StepError(`unknown vmm ioctl ${a.cmd}`);
      const values = Object.fromEntries(Object.entries(a.args ?? {}).map(([k, v]) => [k, BigInt(v)]));
      let arg: Uint8Array;
      if (a.bytes !== undefined) arg = Uint8Array.from(Buffer.from(a.bytes, "hex"));
      else if (def && a.vcpu !== undefined) arg = vcpuArg(def.name, a.vcpu, values);
      else if (def) arg = argBytes(def.name, values);
      else arg = new Uint8Array(0);
      ctx.note(`${def?.name ?? "ioctl"} ${hexCmd(cmd)}`);
      const r = settle(ctx, d, d.ioctl(num(ctx, a.fd, -1), cmd, arg, { pid, caller: a.caller, durationNs: a.duration }), a.wait, a.as);
      if (!r) return;
      checkErrno(r.errno, a.expect);
      if (a.copyout) {
        if (!def?.arg) throw new StepError("copyout: needs a command with an argument struct");
        const dec = codec(def.arg).decode(Uint8Array.from(Buffer.from(r.out, "hex")));
        if (!dec.ok) throw new StepAssertion(`${def.arg.name} copied out`, "no output");
        for (const [k, v] of Object.entries(a.copyout)) {
          const got = (dec.value as Record<string, unknown>)[k];
          if (got === undefined || BigInt(got as number | bigint) !== BigInt(v)) throw new StepAssertion(`${k} = ${String(v)}`, `${k} = ${String(got)}`);
        }
      }
      return;
    }
    case "wait": {
      const r = waitFor(ctx, d, num(ctx, a.op, -1));
      return checkErrno(r.errno, a.expect);
    }
    case "spawn": {
      const p = d.spawn();
      if (a.as) ctx.vars.set(a.as, p);
      return;
    }
    case "fork": {
      const p = d.fork(pid);
      if (a.as) ctx.vars.set(a.as, p);
      return;
    }
    case "exit":
      return d.exit(pid);
    case "check": {
      const bad = d.invariants();
      if (bad.length) throw new StepAssertion("the vmm invariants hold", bad.join("; "));
      if (a.vms) {
        const got = Object.values(d.state.vms).map((v) => v.name).sort();
        const want = [...a.vms].sort();
        if (JSON.stringify(got) !== JSON.stringify(want)) throw new StepAssertion(`VMs ${JSON.stringify(want)}`, JSON.stringify(got));
      }
      return;
    }
  }
}

registerStep("vmm", Schema, execute, {
  describe: (a) => `vmm ${a.vmm}${"name" in a ? ` ${a.name}` : ""}${"cmd" in a ? ` ${String(a.cmd)}` : ""}`,
});
