// bhyve's user-space port I/O default: what an IN or OUT gets when no in-kernel handler took it
// (sys/amd64/vmm/vmm_ioport.c emulate_inout_port: "If there is no handler for the I/O port then
// punt to userspace") and no bhyve device registered the port. Facts from freebsd-src
// usr.sbin/bhyve/inout.c and bhyverun.c:
//   - init_inout() registers default_inout on all 65536 ports (register_default_iohandler(0,
//     MAX_IOPORTS)); devices overwrite their own ports. Dispatch is on the first port of the
//     access only (inout_handlers[port]).
//   - default_inout: an IN of 4, 2 or 1 bytes reads 0xffffffff, 0xffff or 0xff; an OUT is dropped.
//   - emulate_inout: `if (hfunc == default_inout && get_config_bool_default("x86.strictio",
//     false)) return (-1);` — with strict I/O (bhyverun.c: option -e sets x86.strictio; -w is
//     x86.strictmsr, unrelated) the access fails, vmexit_inout prints "Unhandled in[bwl] 0x....
//     at 0x..." and returns VMEXIT_ABORT: the VM exits. Here that is an IoFault("VMEXIT_ABORT"),
//     as vpmtmr's refusal is an IoFault("EIO").
// Config: { strictIo?: boolean } (default false, as bhyve_init_config sets x86.strictio).
// State: none (the default handler holds nothing).
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind } from "../../machine/device.ts";
import { IoFault, type IoSize } from "../../bus/portio.ts";

export interface BhyveInoutConfig {
  /** bhyve -e (x86.strictio): an access no handler takes makes the VM exit. */
  strictIo?: boolean;
}

export type BhyveInoutState = Record<string, never>;

const ONES: Record<IoSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffffffff };
const SUFFIX: Record<IoSize, string> = { 1: "b", 2: "w", 4: "l" };

export class BhyveInout implements Device<BhyveInoutState> {
  readonly kind = BhyveInoutKind;
  state: BhyveInoutState = {};
  readonly strictIo: boolean;

  constructor(readonly id: string, bench: Bench, cfg: BhyveInoutConfig) {
    if (cfg.strictIo !== undefined && typeof cfg.strictIo !== "boolean") throw new Error(`bhyve-inout: strictIo must be true or false, got ${JSON.stringify(cfg.strictIo)}`);
    this.strictIo = cfg.strictIo ?? false;
    bench.ports.setDefault(id, {
      read: (port, size) => {
        this.refuse("in", port, size);
        return ONES[size];
      },
      write: (port, size) => this.refuse("out", port, size),
    });
  }

  private refuse(dir: "in" | "out", port: number, size: IoSize): void {
    if (this.strictIo) throw new IoFault("VMEXIT_ABORT", `bhyve: Unhandled ${dir}${SUFFIX[size]} 0x${port.toString(16).padStart(4, "0")} (strict I/O, bhyve -e): the VM exits`);
  }
}

export const BhyveInoutKind: DeviceKind<BhyveInoutState, BhyveInoutConfig> = {
  type: "bhyve-inout",
  stateVersion: 1,
  validate(s: unknown) {
    if (!s || typeof s !== "object" || Array.isArray(s)) return "not an object";
    if (Object.keys(s).length !== 0) return "bhyve-inout has no state";
    return undefined;
  },
  create(bench, id, config) {
    return new BhyveInout(id, bench, config);
  },
};
