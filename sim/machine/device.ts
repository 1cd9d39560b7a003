// Devices are state + handlers. A device's state is plain data (sim/clock/canonical.ts) that a
// snapshot stores as is; its handlers are functions of (state, input, now) wired to ports, memory
// and clock events by the device's `attach`. A DeviceKind declares the state's version and how to
// upgrade states written by older versions, so old snapshots keep restoring.
import type { Plain } from "../clock/canonical.ts";
import type { Bench, DeviceSpec } from "./bench.ts";
import type { ClockState } from "../clock/clock.ts";

/** A pending clock event as a snapshot holds it. */
export type PendingEvent = ClockState["pending"][number];

/**
 * What a restore is about to install, for a kind's cross-checks (DeviceKind.check): read it, never
 * change it nor the live bench.
 */
export interface RestoreCheck {
  /** The live bench (its machine description, port claims, devices); not yet changed. */
  readonly bench: Bench;
  /** The device being checked and its configuration on the bench's machine. */
  readonly id: string;
  readonly spec: DeviceSpec;
  /** Guest memory size in bytes. */
  readonly memorySize: number;
  /** The snapshot's clock state (time, pending events). */
  readonly clock: ClockState;
  /** The pending events of the snapshot's clock addressed to this device. */
  readonly pending: readonly PendingEvent[];
  /** Every device's snapshot state (upgraded and valid), by device id. */
  readonly states: ReadonlyMap<string, Plain>;
}

export interface DeviceKind<S extends Plain = any, C = any> {
  /** Stable type name stored in snapshots, e.g. "pmtimer". */
  readonly type: string;
  /** Version of the state layout this code writes. */
  readonly stateVersion: number;
  /** upgrades[v] turns a state written by version v into version v + 1. */
  readonly upgrades?: Readonly<Record<number, (old: any) => Plain>>;
  /** Describes what is wrong with a state of the current version, or undefined if it is valid. */
  validate(state: unknown): string | undefined;
  /**
   * Configuration keys that are properties of the receiving side of a restore, as in a migration
   * (vmgenid's `guid`: QEMU's post_load writes the destination's own): they may differ between the
   * snapshot's machine and the bench's. Every other key must be equal for a restore.
   */
  readonly destinationConfig?: readonly string[];
  /**
   * Cross-checks a valid state against the machine and the snapshot's clock before a restore
   * touches anything: guest addresses inside memory, ports it will claim free, the clock events
   * its handles name pending (and no stray ones). Describes the first problem, or undefined.
   */
  check?(state: any, ctx: RestoreCheck): string | undefined;
  /** Creates the device on `bench` with its configuration: initial state plus wiring. */
  create(bench: Bench, id: string, config: C): Device<S>;
}

export interface RestoreInfo {
  /** True when the state came from a snapshot file (as opposed to a reset). */
  readonly fromSnapshot: boolean;
}

export interface Device<S extends Plain = any> {
  /** Unique within the bench, e.g. "pmtimer", "vmgenid", "lpc". */
  readonly id: string;
  readonly kind: DeviceKind<S>;
  /** The whole device state: plain data, replaced wholesale on restore. */
  state: S;
  /**
   * Called once every device's state has been replaced by a restore, before the clock runs again:
   * re-derive mappings from state (port claims), and do what the real device does on restore
   * (vmgenid: a new generation ID and a notification).
   */
  afterRestore?(bench: Bench, info: RestoreInfo): void;
}

export class DeviceKinds {
  private readonly kinds = new Map<string, DeviceKind>();

  register(kind: DeviceKind): void {
    if (this.kinds.has(kind.type)) throw new Error(`device kind ${kind.type} is registered twice`);
    this.kinds.set(kind.type, kind);
  }

  get(type: string): DeviceKind | undefined {
    return this.kinds.get(type);
  }

  types(): string[] {
    return [...this.kinds.keys()].sort();
  }
}

/**
 * Brings a state written by `fromVersion` up to the kind's current version through its upgrade
 * functions. Returns the reason when that cannot be done (newer than this code, a missing step).
 */
export function upgradeState(kind: DeviceKind, fromVersion: number, state: Plain): { ok: true; state: Plain } | { ok: false; reason: string } {
  if (!Number.isInteger(fromVersion) || fromVersion < 1) return { ok: false, reason: `invalid state version ${fromVersion}` };
  if (fromVersion > kind.stateVersion) {
    return { ok: false, reason: `state version ${fromVersion} is newer than this hvsim understands (${kind.type} v${kind.stateVersion})` };
  }
  let s = state;
  for (let v = fromVersion; v < kind.stateVersion; v++) {
    const up = kind.upgrades?.[v];
    if (!up) return { ok: false, reason: `no upgrade of ${kind.type} state from version ${v} to ${v + 1}` };
    try {
      s = up(s);
    } catch (e) {
      return { ok: false, reason: `upgrading ${kind.type} state from version ${v} failed: ${(e as Error).message}` };
    }
  }
  const why = kind.validate(s);
  return why === undefined ? { ok: true, state: s } : { ok: false, reason: `invalid ${kind.type} state: ${why}` };
}
