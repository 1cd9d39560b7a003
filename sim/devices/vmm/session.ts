// A vmm control-device session for conformance checks (capability "vmm"): the operations a check
// drives — open/close as some credentials, ioctl, CREATE/DESTROY by name, and letting the clock run
// until a pending ioctl has completed — over one fresh bench holding one vmm device. Only the model
// implements it here (no FreeBSD target exists on this machine); a real target would implement the
// same interface over /dev/vmmctl.
import { Bench } from "../../machine/bench.ts";
import { DeviceKinds } from "../../machine/device.ts";
import { VmmKind, type VmmConfig, type VmmDevice } from "./vmm.ts";
import type { Cred, IoctlOptions, IoctlOutcome, OpenMode } from "./model.ts";
import { vmmctlCommands, type VmmctlCommands } from "./ctl.ts";

export interface VmmOpenOptions {
  /** The device's configuration (hw.vmm.maxvmms, vmm initialised or not, ...). */
  readonly config?: VmmConfig;
}

/** The completion of an ioctl: its errno, the bytes copied out, and when it completed (ns). */
export interface VmmResult {
  readonly errno: number;
  readonly out: Uint8Array;
  readonly at: number;
}

export interface VmmSession {
  /** The vmmctl command numbers for this target's VM_MAX_NAMELEN. */
  readonly ctl: VmmctlCommands;
  open(path: string, mode: OpenMode, cred?: Cred): { fd: number } | { errno: number };
  close(fd: number): number;
  ioctl(fd: number, cmd: number, arg: Uint8Array, opts?: IoctlOptions): IoctlOutcome;
  createVm(fd: number, name: string, opts?: { flags?: number; reserved?: number[] }): IoctlOutcome;
  destroyVm(fd: number, name: string, opts?: { reserved?: number[] }): IoctlOutcome;
  /** Runs the clock until `r` has completed (bounded) and returns its result. */
  settle(r: IoctlOutcome): VmmResult;
  /** Runs the clock until nothing is pending (bounded). */
  quiesce(): void;
  /** Ends the session (the bench goes away). */
  dispose(): Promise<void>;
}

const MAX_EVENTS = 100_000;

/** A session on a fresh bench with one vmm device (the model). */
export function modelVmmSession(opts: VmmOpenOptions = {}, seed = 0): VmmSession {
  const kinds = new DeviceKinds();
  kinds.register(VmmKind);
  const bench = new Bench(
    { name: "vmm-conform", description: "vmm control device", memory: 4096, devices: [{ type: "vmm", id: "vmm", config: (opts.config ?? {}) as Record<string, unknown> }] },
    kinds,
    { seed },
  );
  const vmm = bench.device<VmmDevice>("vmm");
  const run = (until: () => boolean) => {
    let n = 0;
    while (!until() && bench.clock.nextAt !== undefined) {
      if (++n > MAX_EVENTS) throw new Error("vmm session: the clock did not go quiet");
      bench.clock.runNext();
    }
  };
  return {
    ctl: vmmctlCommands(vmm.state.config.maxNameLen),
    open: (path, mode, cred) => vmm.open(path, mode, 1, cred),
    close: (fd) => vmm.close(fd),
    ioctl: (fd, cmd, arg, o) => vmm.ioctl(fd, cmd, arg, o),
    createVm: (fd, name, o = {}) => vmm.createVm(fd, name, o),
    destroyVm: (fd, name, o = {}) => vmm.destroyVm(fd, name, o),
    settle(r) {
      if (r.status === "done") return { errno: r.errno, out: r.out, at: bench.clock.now };
      run(() => vmm.result(r.op) !== undefined);
      const res = vmm.takeResult(r.op);
      if (!res) throw new Error(`vmm session: op ${r.op} never completed`);
      return { errno: res.errno, out: Uint8Array.from(Buffer.from(res.out, "hex")), at: res.at };
    },
    quiesce: () => run(() => false),
    async dispose() {},
  };
}
