// A model of hv_vss_daemon (Debian hyperv-daemons 6.1, tools/hv/hv_vss_daemon.c) as a daemon
// endpoint: 12-byte REGISTER1, a first read of exactly 4 bytes (the kernel's version; anything else
// is exit 1), then 12-byte requests answered with one 12-byte write each. FREEZE/THAW walk a mount
// table given as data the way vss_operate walks /proc/mounts: only /dev/ sources, loop-backed,
// read-only and vfat mounts skipped, "/" last; FIFREEZE's EBUSY and FITHAW's EINVAL count as
// success; a failed freeze thaws everything and answers HV_E_FAIL. Failures are injectable per
// mount point. Like the daemon's `fs_frozen` (hv_vss_daemon.c:163/174 set after each successful
// FIFREEZE, :178-179 cleared by a THAW without error, :188-189 by a failed FREEZE's thaw), the model
// tracks whether it left filesystems frozen; a reopen of the device (a failed read :308-311 or
// write :346-349) closes it and, when frozen, thaws first (:247-256), exiting with status 1 if that
// thaw fails. A crash (SIGKILL) thaws nothing, and a new process starts with fs_frozen false.
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind } from "../../machine/device.ts";
import { HV_E_FAIL, VSS_OP_FREEZE, VSS_OP_HOT_BACKUP, VSS_OP_REGISTER, VSS_OP_REGISTER1, VSS_OP_THAW } from "../../wire/hyperv-constants.ts";
import { V, VSS_MSG_SIZE, rd32, wr32 } from "./frames.ts";
import { HVT_RESULT, EBUSY, EINVAL, type HvtResult } from "./endpoint.ts";
import { DaemonProcess, type DaemonPhase, type Directive } from "./daemon-process.ts";

export interface Mount {
  [k: string]: any;
  /** mnt_fsname, e.g. /dev/sda1 (only /dev/ sources are considered). */
  fsname: string;
  /** mnt_dir. */
  dir: string;
  /** mnt_type, e.g. ext4, vfat. */
  type: string;
  /** mnt_opts split at commas (ro is skipped). */
  opts: string[];
  /** The block device is a loop device (/sys/dev/block/M:m/loop or through slaves/). */
  loop?: boolean;
  /** The filesystem behind the mount (defaults to fsname): two mounts of one device share it. */
  fs?: string;
}

/** Injected errno per mount point and operation ("open" fails the open(dir)). */
export type MountFailures = Record<string, { freeze?: number; thaw?: number; open?: number }>;

export type VssDaemonPhase = DaemonPhase;

export interface VssDaemonState {
  [k: string]: any;
  phase: VssDaemonPhase;
  afterClose: "reopen" | "exit";
  gen: number;
  inHandshake: boolean;
  kernelVersion: number | null;
  buf: Uint8Array;
  mounts: Mount[];
  failures: MountFailures;
  /** Filesystems currently frozen (by fs id): the kernel's state, which outlives the process. */
  frozen: string[];
  /** The daemon's own fs_frozen flag (hv_vss_daemon.c:31): it believes it left filesystems frozen. */
  fsFrozen: boolean;
  /** Every FIFREEZE/FITHAW issued: [op, dir, result errno (0 ok)]. */
  ioctls: [string, string, number][];
  script: Directive[];
  answerSeq: number | null;
  exitStatus: number | null;
  stats: { requests: number; answers: number; reopens: number; crashes: number };
}

export interface VssDaemonConfig {
  kernel?: string;
  autostart?: boolean;
  toKernelNs?: number;
  opNs?: number;
  register?: "REGISTER1" | "REGISTER";
  mounts?: Mount[];
  failures?: MountFailures;
  script?: Directive[];
}

export const DEFAULT_MOUNTS: Mount[] = [
  { fsname: "/dev/sda1", dir: "/", type: "ext4", opts: ["rw", "relatime"] },
  { fsname: "/dev/sda15", dir: "/boot/efi", type: "vfat", opts: ["rw"] },
  { fsname: "/dev/sdb1", dir: "/data", type: "xfs", opts: ["rw"] },
  { fsname: "proc", dir: "/proc", type: "proc", opts: ["rw"] },
];

export class VssDaemonModel extends DaemonProcess<VssDaemonState> implements Device<VssDaemonState> {
  readonly kind = VssDaemonKind;
  state: VssDaemonState;
  private readonly opNs: number;
  private readonly regOp: number;

  constructor(id: string, bench: Bench, cfg: VssDaemonConfig) {
    super(id, bench, "vss", cfg.kernel ?? "hv-utils", cfg.toKernelNs ?? 1_000);
    this.opNs = cfg.opNs ?? 50_000;
    this.regOp = cfg.register === "REGISTER" ? VSS_OP_REGISTER : VSS_OP_REGISTER1;
    this.state = {
      phase: "stopped",
      afterClose: "exit",
      gen: 0,
      inHandshake: true,
      kernelVersion: null,
      buf: new Uint8Array(VSS_MSG_SIZE),
      mounts: (cfg.mounts ?? DEFAULT_MOUNTS).map((m) => ({ ...m, opts: [...m.opts] })),
      failures: { ...(cfg.failures ?? {}) },
      frozen: [],
      fsFrozen: false,
      ioctls: [],
      script: [...(cfg.script ?? [])],
      answerSeq: null,
      exitStatus: null,
      stats: { requests: 0, answers: 0, reopens: 0, crashes: 0 },
    };
    bench.clock.on(id, HVT_RESULT, (ev) => this.onResult(ev.payload as HvtResult));
    bench.clock.on(id, "start", () => this.start());
    bench.clock.on(id, "answer", (ev) => this.onAnswerDue(ev));
    if (cfg.autostart ?? true) bench.clock.schedule(0, id, "start", null);
  }

  start(): void {
    if (this.running) return;
    const s = this.state;
    s.gen++;
    s.inHandshake = true;
    s.kernelVersion = null;
    s.exitStatus = null;
    s.fsFrozen = false; // a static of the new process (hv_vss_daemon.c:31)
    this.trace("daemon-start", "vss");
    this.openDevice();
  }

  /** Sets an injected failure for a mount point (errno; 0 or undefined clears it). */
  failAt(dir: string, f: { freeze?: number; thaw?: number; open?: number }): void {
    this.state.failures[dir] = { ...f };
  }

  protected override reopen(): void {
    const s = this.state;
    s.stats.reopens++;
    s.phase = "closing";
    s.afterClose = "reopen";
    this.call({ call: "close" });
  }

  /**
   * reopen_vss_fd (hv_vss_daemon.c:247-256): the device is closed; with fs_frozen set the daemon
   * thaws everything before it opens the device again, and exits with EXIT_FAILURE when that thaw
   * fails (or leaves fs_frozen set).
   */
  protected override closed(): void {
    const s = this.state;
    if (s.afterClose === "reopen" && s.fsFrozen) {
      const err = this.operate(VSS_OP_THAW);
      this.trace("daemon-thaw-on-reopen", "vss", err ? "failed" : "succeeded");
      if (err || s.fsFrozen) return this.exit(1);
    }
    super.closed();
  }

  private onResult(r: HvtResult): void {
    const s = this.state;
    if ((r.tag ?? 0) !== s.gen || !this.running) return;
    switch (s.phase) {
      case "opening": {
        if (r.ret < 0) return this.exit(1);
        s.phase = "registering";
        s.inHandshake = true;
        const m = new Uint8Array(VSS_MSG_SIZE);
        m[V.op] = this.regOp;
        this.call({ call: "write", bytes: m });
        return;
      }
      case "registering":
        if (r.ret !== VSS_MSG_SIZE) {
          s.afterClose = "exit";
          s.phase = "closing";
          this.call({ call: "close" });
          return;
        }
        return this.pollDevice();
      case "polling":
        s.phase = "reading";
        this.call({ call: "read", len: VSS_MSG_SIZE });
        return;
      case "reading": {
        if (s.inHandshake) {
          if (r.ret !== 4 || !r.bytes) {
            this.trace("daemon-bad-negotiation", "vss", r.ret);
            return this.exit(1);
          }
          s.kernelVersion = rd32(r.bytes, 0);
          s.inHandshake = false;
          this.trace("daemon-registered", "vss", s.kernelVersion);
          return this.pollDevice();
        }
        if (r.ret !== VSS_MSG_SIZE || !r.bytes) return this.reopen();
        return this.handle(r.bytes);
      }
      case "writing":
        return this.written(r.ret, VSS_MSG_SIZE);
      case "closing":
        return this.closed();
      default:
        return;
    }
  }

  private handle(bytes: Uint8Array): void {
    const s = this.state;
    s.buf = bytes.slice(0, VSS_MSG_SIZE);
    const op = s.buf[V.op]!;
    const d = this.beginRequest();
    if (!d) return;
    let error = 0;
    if (op === VSS_OP_FREEZE || op === VSS_OP_THAW) {
      if (this.operate(op)) error = HV_E_FAIL;
      this.trace("daemon-vss-op", op === VSS_OP_FREEZE ? "FREEZE" : "THAW", error ? "failed" : "succeeded");
    } else if (op !== VSS_OP_HOT_BACKUP) {
      this.trace("daemon-illegal-op", "vss", op);
    }
    wr32(s.buf, V.error, error);
    this.work(d, this.opNs);
  }

  // ---- vss_operate / vss_do_freeze ----

  /** One FIFREEZE/FITHAW on a mount point: 0 on success (or the tolerated errno), 1 on failure. */
  private doFreeze(m: Mount, freeze: boolean): number {
    const s = this.state;
    const f = s.failures[m.dir] ?? {};
    const name = freeze ? "FIFREEZE" : "FITHAW";
    if (f.open) {
      s.ioctls.push([`open`, m.dir, f.open]);
      return 1;
    }
    const fs = m.fs ?? m.fsname;
    const frozen = s.frozen.includes(fs);
    let errno = (freeze ? f.freeze : f.thaw) ?? 0;
    if (!errno) {
      if (freeze && frozen) errno = EBUSY;
      else if (!freeze && !frozen) errno = EINVAL;
    }
    s.ioctls.push([name, m.dir, errno]);
    if (!errno) {
      if (freeze) s.frozen.push(fs);
      else s.frozen = s.frozen.filter((x) => x !== fs);
      return 0;
    }
    // A partition mounted twice: the second FREEZE gets EBUSY, the second THAW EINVAL.
    if ((freeze && errno === EBUSY) || (!freeze && errno === EINVAL)) return 0;
    return 1;
  }

  /** vss_operate: returns non-zero on failure (after thawing everything for a failed freeze). */
  private operate(op: number): number {
    const freeze = op === VSS_OP_FREEZE;
    let error = 0;
    let rootSeen: Mount | undefined;
    for (const m of this.state.mounts) {
      if (!m.fsname.startsWith("/dev/")) continue;
      if (m.loop) continue;
      if (m.opts.includes("ro")) continue;
      if (m.type === "vfat") continue;
      if (m.dir === "/") {
        rootSeen = m;
        continue;
      }
      error |= this.doFreeze(m, freeze);
      if (freeze) {
        if (error) return this.freezeFailed(error);
        this.state.fsFrozen = true; // :163
      }
    }
    if (rootSeen) {
      error |= this.doFreeze(rootSeen, freeze);
      if (freeze) {
        if (error) return this.freezeFailed(error);
        this.state.fsFrozen = true; // :174
      }
    }
    if (!freeze && !error) this.state.fsFrozen = false; // :178-179
    return error;
  }

  /** vss_operate's err: label (:182-189): thaw everything, fs_frozen = false. */
  private freezeFailed(error: number): number {
    this.operate(VSS_OP_THAW);
    this.state.fsFrozen = false;
    return error;
  }
}

export const VssDaemonKind: DeviceKind<VssDaemonState, VssDaemonConfig> = {
  type: "hv-vss-daemon",
  stateVersion: 1,
  validate(s: unknown) {
    const o = s as Partial<VssDaemonState> | null;
    if (!o || typeof o !== "object") return "not an object";
    if (!["stopped", "opening", "registering", "polling", "reading", "working", "writing", "closing", "exited"].includes(o.phase as string)) return "phase is invalid";
    if (!(o.buf instanceof Uint8Array) || o.buf.length !== VSS_MSG_SIZE) return `buf is not ${VSS_MSG_SIZE} bytes`;
    if (!Array.isArray(o.mounts) || !o.mounts.every((m) => m && typeof m.fsname === "string" && typeof m.dir === "string" && typeof m.type === "string" && Array.isArray(m.opts))) return "mounts is malformed";
    if (!Array.isArray(o.frozen) || !Array.isArray(o.ioctls) || !Array.isArray(o.script)) return "lists are malformed";
    if (o.fsFrozen !== undefined && typeof o.fsFrozen !== "boolean") return "fsFrozen is not a boolean"; // absent in snapshots before it existed: false
    if (!o.failures || typeof o.failures !== "object") return "failures is not an object";
    return undefined;
  },
  create(bench, id, config) {
    return new VssDaemonModel(id, bench, config);
  },
};
