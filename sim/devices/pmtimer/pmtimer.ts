// A stand-alone ACPI PM timer port (X_PM_TMR_BLK): one counter register, profiles bit-exact to
// their sources (see ticks.ts for the arithmetic):
//   bhyve  freebsd-src sys/amd64/vmm/io/vpmtmr.c: 32-bit, baseval + (sbinuptime() - baseuptime)
//          / freq_sbt (freq_sbt = 1199), the in-kernel handler of IO_PMTMR 0x408 and of that port
//          only (sys/amd64/vmm/vmm_ioport.c: ioport_handler[IO_PMTMR] = vpmtmr_handler). It accepts
//          only a 4-byte IN (`if (!in || bytes != 4) return (-1);`); any other width, and every OUT,
//          makes emulate_inout_port return EIO from the VM_RUN ioctl — here an IoFault("EIO").
//          Ports 0x409-0x40b have no kernel handler: their accesses go to bhyve's user space
//          (the bhyve-inout device, bhyve-inout.ts), so this profile claims 0x408 alone.
//   qemu   the QEMU counter without its PM register block: muldiv64(ns, 3579545, 1e9) & 0xffffff
//          (accesses as QEMU's acpi-tmr region: any width, low bytes of the counter).
//   acpi   the ideal counter floor(ns * 3579545 / 1e9), 24 bits, or 32 with the FADT's
//          TMR_VAL_EXT flag (config tmrValExt); byte lanes for narrower reads; writes ignored.
//
// State (v1): { baseNs, baseval }. The counter is baseval + ticks(baseNs -> now) mod 2^bits —
// baseNs is the virtual time the counter was (re)based at (bhyve's baseuptime, a host uptime in
// ns; bhyve converts it and now separately, see bhyveTicks), 0 at creation.
//
// Restore (afterRestore with fromSnapshot) follows the `restore` option. A restore brings back the
// clock of the save, so the two policies are:
//   monotonic       the state is kept as saved: the counter continues exactly as if the run had
//                   not been interrupted, sub-tick remainder included. (A downstream bhyve fix
//                   saves the current value and re-bases baseuptime at the restore; that drops the
//                   sub-tick remainder, at most one tick, and is not modelled separately.)
//   bhyve-upstream  bhyve saves only baseval (always 0) and never re-bases baseuptime, so after a
//                   restore the counter counts from when the destination VM was created:
//                   baseNs = now - restoreUptimeNs (the destination VM's uptime at restore,
//                   config or the device's `restoreUptimeNs` field; default 0), baseval kept.
//                   A guest that saw a large value before the save sees a small one after.
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind, RestoreInfo } from "../../machine/device.ts";
import { IoFault, type IoSize } from "../../bus/portio.ts";
import { BhyveTickCache, PmTickCache } from "./ticks.ts";

/** bhyve's IO_PMTMR. */
export const IO_PMTMR = 0x408;

export type PmTimerProfile = "bhyve" | "qemu" | "acpi";
export type RestorePolicy = "monotonic" | "bhyve-upstream";

export interface PmTimerConfig {
  profile?: PmTimerProfile;
  /** Port of the counter (default 0x408). */
  port?: number;
  /** acpi profile: FADT TMR_VAL_EXT, a 32-bit counter (default true); otherwise 24 bits. */
  tmrValExt?: boolean;
  /** Default: bhyve-upstream for the bhyve profile, monotonic otherwise. */
  restore?: RestorePolicy;
  /** bhyve-upstream: the destination VM's uptime when the snapshot is restored, ns (default 0). */
  restoreUptimeNs?: number;
}

export interface PmTimerState {
  [key: string]: number;
  /** Virtual time the counter is based at (bhyve's baseuptime); may precede 0 after a restore. */
  baseNs: number;
  /** Counter value at baseNs (bhyve's baseval). */
  baseval: number;
}

const PROFILES: readonly PmTimerProfile[] = ["bhyve", "qemu", "acpi"];
const POLICIES: readonly RestorePolicy[] = ["monotonic", "bhyve-upstream"];

export class PmTimer implements Device<PmTimerState> {
  readonly kind = PmTimerKind;
  state: PmTimerState = { baseNs: 0, baseval: 0 };
  readonly profile: PmTimerProfile;
  readonly port: number;
  /** Counter width in bits: 32 (bhyve, acpi with TMR_VAL_EXT) or 24. */
  readonly bits: 24 | 32;
  readonly restorePolicy: RestorePolicy;
  /** bhyve-upstream: the destination VM's uptime at restore (a property of the destination, not state). */
  restoreUptimeNs: number;
  /** The counter register at virtual time `ns` (the hot path: reads state, changes nothing). */
  readonly counterAt: (ns: number) => number;

  constructor(readonly id: string, private readonly bench: Bench, cfg: PmTimerConfig) {
    const profile = cfg.profile ?? "bhyve";
    if (!PROFILES.includes(profile)) throw new Error(`pmtimer: unknown profile ${String(profile)} (${PROFILES.join(", ")})`);
    this.profile = profile;
    this.port = cfg.port ?? IO_PMTMR;
    this.bits = profile === "bhyve" || (profile === "acpi" && (cfg.tmrValExt ?? true)) ? 32 : 24;
    this.restorePolicy = cfg.restore ?? (profile === "bhyve" ? "bhyve-upstream" : "monotonic");
    if (!POLICIES.includes(this.restorePolicy)) throw new Error(`pmtimer: unknown restore policy ${String(this.restorePolicy)} (${POLICIES.join(", ")})`);
    this.restoreUptimeNs = cfg.restoreUptimeNs ?? 0;
    if (!Number.isSafeInteger(this.restoreUptimeNs) || this.restoreUptimeNs < 0) throw new Error(`pmtimer: restoreUptimeNs must be a non-negative integer, got ${cfg.restoreUptimeNs}`);
    this.state.baseNs = bench.now;
    this.counterAt = this.makeCounter();
    // vmm_ioport.c dispatches on the first port of an access: bhyve handles IO_PMTMR alone.
    bench.ports.claim(this.port, profile === "bhyve" ? 1 : 4, id, {
      read: (port, size) => this.read(port, size),
      write: (port, size) => this.write(port, size),
    });
  }

  private makeCounter(): (ns: number) => number {
    // One closure per profile, so the hot path has no profile test; the state is read at each call
    // because a restore replaces it wholesale.
    if (this.profile === "bhyve") {
      const c = new BhyveTickCache();
      return (ns) => (this.state.baseval + c.ticks(ns, this.state.baseNs)) >>> 0;
    }
    const c = new PmTickCache();
    if (this.bits === 32) return (ns) => (this.state.baseval + c.ticks(ns - this.state.baseNs)) >>> 0;
    return (ns) => (this.state.baseval + c.ticks(ns - this.state.baseNs)) & 0xffffff;
  }

  /** The counter register now. */
  counter(): number {
    return this.counterAt(this.bench.clock.now);
  }

  private read(port: number, size: IoSize): number {
    if (this.profile === "bhyve") {
      // vpmtmr_handler: `if (!in || bytes != 4) return (-1);`
      if (size !== 4) throw new IoFault("EIO", `bhyve vpmtmr: ${size}-byte IN at 0x${port.toString(16)} refused (only a 4-byte IN)`);
      return this.counter();
    }
    const off = port - this.port;
    const v = this.counter();
    if (this.profile === "qemu") return v % 2 ** (8 * size); // acpi-tmr: the handler ignores the offset
    return Math.floor(v / 2 ** (8 * off)) % 2 ** (8 * size);
  }

  private write(port: number, size: IoSize): void {
    if (this.profile === "bhyve") throw new IoFault("EIO", `bhyve vpmtmr: ${size}-byte OUT at 0x${port.toString(16)} refused`);
  }

  afterRestore(_bench: Bench, info: RestoreInfo): void {
    if (!info.fromSnapshot) return;
    const now = this.bench.clock.now;
    // monotonic: nothing to do — the saved state at the saved time continues exactly.
    if (this.restorePolicy === "bhyve-upstream") this.state = { baseNs: now - this.restoreUptimeNs, baseval: this.state.baseval };
  }
}

export const PmTimerKind: DeviceKind<PmTimerState, PmTimerConfig> = {
  type: "pmtimer",
  stateVersion: 1,
  // The destination VM's uptime at restore is a property of the destination.
  destinationConfig: ["restoreUptimeNs"],
  validate(s: unknown) {
    const o = s as Partial<PmTimerState> | null;
    if (!o || typeof o !== "object") return "not an object";
    if (!Number.isSafeInteger(o.baseNs)) return "baseNs is not an integer time";
    const v = o.baseval;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) return "baseval is not a 32-bit unsigned integer";
    return undefined;
  },
  create(bench, id, config) {
    return new PmTimer(id, bench, config);
  },
};
