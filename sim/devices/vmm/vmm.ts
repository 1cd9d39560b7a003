// The vmm device kind: /dev/vmmctl and the per-VM devices of FreeBSD's vmm(4) as a bench device.
// The whole state (processes, open files, VMs, vCPUs, locks, wait queues, in-flight ioctls) is
// plain data in `state` (model.ts); waiting and running are clock events sent to (id, "wake") and
// (id, "finish") with the op id as payload, so a snapshot taken between events restores and
// continues exactly.
//
// API for tests and the scenario runner:
//   open(path, mode, pid?)            -> { fd } | { errno }      ("/dev/vmmctl", "/dev/vmm/NAME")
//   close(fd, pid?)                   -> errno
//   ioctl(fd, cmd, argBytes, opts?)   -> { status: "done", errno, out } | { status: "pending", op }
//   result(op) / takeResult(op)       -> the completion of a pending ioctl (after the clock ran)
//   onComplete(listener)              -> called with every completion of a pending ioctl
//   createVm / destroyVm              -> CREATE / DESTROY through a vmmctl descriptor by name
//   spawn / fork / exit               -> processes sharing open files (descriptor lifetime)
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind } from "../../machine/device.ts";
import {
  DEFAULT_CONFIG, initialState, type Cred, invariants, PERMISSIONS, VmmModel, type Host, type IoctlOptions, type IoctlOutcome, type OpenMode, type ResultState, type VmmConfigState,
  type VmmState,
} from "./model.ts";
import { vmmctlArgBytes } from "./ctl.ts";
import { z } from "zod";

export type VmmConfig = Partial<VmmConfigState>;

export class VmmDevice implements Device<any> {
  readonly kind = VmmKind;
  readonly model: VmmModel;
  private readonly listeners: ((r: ResultState) => void)[] = [];

  constructor(readonly id: string, private readonly bench: Bench, cfg: VmmConfig) {
    const clock = bench.clock;
    const host: Host = {
      now: () => clock.now,
      schedule: (delay, kind, payload) => clock.schedule(delay, id, kind, payload),
      cancel: (seq) => clock.cancel(seq),
      trace: (what, ...fields) => clock.trace.record(clock.now, "vmm", id, what, ...fields),
      completed: (r) => {
        for (const l of this.listeners) l(r);
      },
    };
    this.model = new VmmModel(initialState(checkConfig(cfg)), host);
    clock.on(id, "wake", (ev) => this.model.onWake((ev.payload as { op: number }).op));
    clock.on(id, "finish", (ev) => this.model.onFinish((ev.payload as { op: number }).op));
  }

  get state(): VmmState {
    return this.model.state;
  }

  set state(s: VmmState) {
    this.model.state = s;
  }

  /** open(2) with the opener's credentials (default root, not jailed). */
  open(path: string, mode: OpenMode, pid = 1, cred?: Cred): { fd: number } | { errno: number } {
    return this.model.open(path, mode, pid, cred);
  }

  close(fd: number, pid = 1): number {
    return this.model.close(fd, pid);
  }

  ioctl(fd: number, cmd: number, arg: Uint8Array, opts?: IoctlOptions): IoctlOutcome {
    return this.model.ioctl(fd, cmd, arg, opts);
  }

  result(op: number): ResultState | undefined {
    return this.model.result(op);
  }

  takeResult(op: number): ResultState | undefined {
    return this.model.takeResult(op);
  }

  /** Calls `fn` with each completion of an ioctl that returned "pending"; returns an unsubscribe. */
  onComplete(fn: (r: ResultState) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  spawn(): number {
    return this.model.spawn();
  }

  fork(pid: number): number {
    return this.model.fork(pid);
  }

  exit(pid: number): void {
    this.model.exit(pid);
  }

  /** VMMCTL_VM_CREATE through the vmmctl descriptor `fd`. */
  createVm(fd: number, name: string | Uint8Array, opts: IoctlOptions & { reserved?: number[]; flags?: number } = {}): IoctlOutcome {
    const ctl = this.model.ctl;
    return this.model.ioctl(fd, ctl.VMMCTL_VM_CREATE, vmmctlArgBytes(name, { maxNameLen: ctl.maxNameLen, reserved: opts.reserved, flags: opts.flags }), opts);
  }

  /** VMMCTL_VM_DESTROY through the vmmctl descriptor `fd` (pending while the VM drains). */
  destroyVm(fd: number, name: string | Uint8Array, opts: IoctlOptions & { reserved?: number[] } = {}): IoctlOutcome {
    const ctl = this.model.ctl;
    return this.model.ioctl(fd, ctl.VMMCTL_VM_DESTROY, vmmctlArgBytes(name, { maxNameLen: ctl.maxNameLen, reserved: opts.reserved, kind: "destroy" }), opts);
  }

  /** Every invariant violation of the current state (empty when it holds). */
  invariants(): string[] {
    return invariants(this.model.state);
  }

  /** True when no ioctl is in flight. */
  get idle(): boolean {
    return Object.keys(this.model.state.ops).length === 0;
  }
}

function checkConfig(cfg: VmmConfig): VmmConfig {
  const c = { ...DEFAULT_CONFIG, ...cfg };
  const intIn = (k: keyof VmmConfigState, min: number, max: number) => {
    const v = c[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) throw new Error(`vmm: ${k} must be a whole number in ${min}..${max}, got ${String(v)}`);
  };
  intIn("maxNameLen", 1, 4096);
  intIn("specnamelen", 1, 4096);
  intIn("maxcpus", 1, 0xfffe);
  intIn("ioctlNs", 0, Number.MAX_SAFE_INTEGER);
  intIn("maxMemsegs", 1, 1024);
  intIn("faultFreezeVcpu", -1, 0xfffe);
  intIn("hostCpus", 1, 0xffff);
  if (c.maxvmms !== undefined) intIn("maxvmms", 0, 0x7fffffff);
  if (!(PERMISSIONS as readonly unknown[]).includes(c.permissions)) throw new Error(`vmm: permissions must be one of ${PERMISSIONS.join(", ")}, got ${String(c.permissions)}`);
  for (const [k, v] of Object.entries(c.durations)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`vmm: duration of ${k} must be a whole number of ns, got ${String(v)}`);
  }
  return cfg;
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** The configuration a vmm state carries: the same bounds as a machine's device config (checkConfig). */
export const VmmConfigSchema = z.strictObject({
  maxNameLen: int(1, 4096),
  specnamelen: int(1, 4096),
  initialized: z.boolean(),
  maxcpus: int(1, 0xfffe),
  ioctlNs: int(0, Number.MAX_SAFE_INTEGER),
  durations: z.record(z.string(), int(0, Number.MAX_SAFE_INTEGER)),
  devfsNames: z.array(z.string()),
  compat4: z.boolean(),
  compat12: z.boolean(),
  compat14: z.boolean(),
  bhyveSnapshot: z.boolean(),
  maxMemsegs: int(1, 1024),
  faultFreezeVcpu: int(-1, 0xfffe),
  hostCpus: int(1, 0xffff),
  maxvmms: int(0, 0x7fffffff),
  permissions: z.enum(PERMISSIONS),
});

/** Ids below the counters that hand them out; an in-flight op has no result yet. */
function idsInRange(o: VmmState): string | undefined {
  const table = <T>(name: string, t: Record<string, T>, id: (v: T) => number, next: number): string | undefined => {
    for (const [k, v] of Object.entries(t)) {
      const n = id(v);
      if (!Number.isSafeInteger(n) || String(n) !== k) return `${name} ${k} is stored under another id (${String(n)})`;
      if (n >= next) return `${name} ${n} is not below its counter (${next}): the next one would reuse its id`;
    }
    return undefined;
  };
  const why = table("process", o.procs, (p) => p.pid, o.nextPid) ?? table("file", o.files, (f) => f.id, o.nextFile) ?? table("VM", o.vms, (v) => v.id, o.nextVm)
    ?? table("op", o.ops, (p) => p.id, o.nextOp) ?? table("result", o.results, (r) => r.op, o.nextOp);
  if (why) return why;
  for (const k of Object.keys(o.ops)) if (Object.hasOwn(o.results, k)) return `op ${k} is in flight and has a result already`;
  return undefined;
}

/**
 * Version 1 -> 2: the global `config.destroyOnClose` option became a per-VM flag (vmmdev_create's
 * VMMCTL_CREATE_DESTROY_ON_CLOSE). Under v1, a VM had `ownerFile >= 0` exactly when the option
 * was on at its creation, so those VMs were created with the flag; the rest without.
 */
export function upgradeV1(old: any): any {
  if (!old || typeof old !== "object" || old.version !== 1) return old;
  const { destroyOnClose: _gone, privDriver, jailedWithoutVmm, ...config } = (old.config ?? {}) as Record<string, unknown>;
  // v1 had one caller identity for everything: root (uid 0); privDriver false meant a jailed root
  // (no PRIV_DRIVER), jailedWithoutVmm a jail without allow.vmm. Limits: the defaults.
  const cred = { uid: 0, ...(privDriver === false || jailedWithoutVmm === true ? { jail: { allowVmm: jailedWithoutVmm !== true } } : {}) };
  const hostCpus = DEFAULT_CONFIG.hostCpus;
  const vms: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((old.vms ?? {}) as Record<string, any>)) {
    const tied = v && typeof v === "object" && Number.isSafeInteger(v.ownerFile) && v.ownerFile >= 0;
    vms[k] = v && typeof v === "object" ? { ...v, destroyOnClose: tied, uid: 0 } : v;
  }
  const files: Record<string, unknown> = {};
  for (const [k, f] of Object.entries((old.files ?? {}) as Record<string, any>)) files[k] = f && typeof f === "object" ? { ...f, cred } : f;
  return { ...old, version: 2, config: { ...config, compat14: DEFAULT_CONFIG.compat14, hostCpus, maxvmms: 4 * hostCpus }, vms, files };
}

/**
 * Version 2 -> 3: `config.permissions` (which vmm_dev.c's node modes and privilege checks) and
 * each VM's creator prison (`jailed`). A v2 state was written by a model with a root-only
 * /dev/vmmctl, so it keeps that behaviour ("root-only"); a VM's creator was jailed when its tied
 * descriptor (the only record of its creating credentials) still is, else not.
 */
export function upgradeV2(old: any): any {
  if (!old || typeof old !== "object" || old.version !== 2) return old;
  const files = (old.files ?? {}) as Record<string, any>;
  const vms: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((old.vms ?? {}) as Record<string, any>)) {
    const owner = v && typeof v === "object" ? files[String(v.ownerFile)] : undefined;
    vms[k] = v && typeof v === "object" ? { ...v, jailed: owner?.cred?.jail !== undefined && owner?.cred !== undefined } : v;
  }
  return { ...old, version: 3, config: { ...(old.config ?? {}), permissions: "root-only" }, vms };
}

/** Validates a state (shape, then the model's invariants). */
export function validateVmmState(s: unknown): string | undefined {
  const o = s as Partial<VmmState> | null;
  if (!o || typeof o !== "object") return "not an object";
  if (o.version !== 3) return `unknown vmm state layout ${String(o.version)}`;
  for (const k of ["procs", "files", "vms", "ops", "results", "busy", "config", "stats"] as const) {
    if (!o[k] || typeof o[k] !== "object") return `${k} is not an object`;
  }
  for (const k of ["nextPid", "nextFile", "nextVm", "nextOp"] as const) {
    if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 1) return `${k} is not a positive integer`;
  }
  if (!Array.isArray(o.devfs) || !o.devfs.every((n) => typeof n === "string")) return "devfs is not a list of names";
  const cfg = VmmConfigSchema.safeParse(o.config);
  if (!cfg.success) {
    const i = cfg.error.issues[0]!;
    return `config.${i.path.join(".")}: ${i.message}`;
  }
  try {
    const ids = idsInRange(o as VmmState);
    if (ids) return ids;
    const bad = invariants(o as VmmState);
    return bad.length ? bad.join("; ") : undefined;
  } catch (e) {
    return `malformed state: ${(e as Error).message}`;
  }
}

export const VmmKind: DeviceKind<any, VmmConfig> = {
  type: "vmm",
  stateVersion: 3,
  upgrades: { 1: upgradeV1, 2: upgradeV2 },
  validate: validateVmmState,
  check(s: VmmState, ctx) {
    // The configuration carried in the state must be the one this bench's device runs with.
    const live = (ctx.bench.findDevice(ctx.id) as VmmDevice | undefined)?.state.config;
    if (live) {
      for (const k of Object.keys(VmmConfigSchema.shape) as (keyof VmmConfigState)[]) {
        if (JSON.stringify(s.config[k]) !== JSON.stringify(live[k])) return `config.${k} is ${JSON.stringify(s.config[k])} in the snapshot, ${JSON.stringify(live[k])} on the bench`;
      }
    }
    // Every op that is not waiting sleeps until its own wake/finish event; no other events.
    const bySeq = new Map(ctx.pending.map((p) => [p.seq, p]));
    const named = new Set<number>();
    for (const op of Object.values(s.ops)) {
      if (op.pending === "") continue;
      const ev = bySeq.get(op.seq);
      if (!ev || ev.kind !== op.pending || (ev.payload as { op?: unknown } | null)?.op !== op.id) {
        return `op ${op.id} (${op.name}) waits for its ${op.pending} event (seq ${op.seq}), which is not pending: it would never complete`;
      }
      named.add(op.seq);
    }
    const stray = ctx.pending.find((p) => !named.has(p.seq));
    if (stray) return `pending event ${stray.kind} (seq ${stray.seq}) belongs to no op in flight`;
    return undefined;
  },
  create(bench, id, config) {
    return new VmmDevice(id, bench, config);
  },
};
