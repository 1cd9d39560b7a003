// VM generation ID (QEMU hw/acpi/vmgenid.c, docs/specs/vmgenid.rst; Microsoft's "Virtual Machine
// Generation ID" paper). A 128-bit GUID that the guest finds in its memory: firmware loads the
// fw_cfg blob `etc/vmgenid_guid` (4096 bytes, GUID at offset 40) and writes the GUID's guest
// address into `etc/vmgenid_addr` (8 bytes, little-endian). When the ID changes — a restore, or a
// runtime change — the new GUID is written to guest memory first, then the ACPI notification is
// raised as a clock event: the GPE0 status bit (5 on QEMU's `_E05`; 0 in the 2016 spec text's
// `_E00`) and, through the guest's ACPI dispatch, Notify(VGEN, 0x80) to the guest driver.
import type { Bench } from "../../machine/bench.ts";
import type { Device, DeviceKind } from "../../machine/device.ts";
import type { ClockEvent } from "../../clock/clock.ts";
import { fromHex, toHex } from "../../clock/canonical.ts";
import { formatGuid, guidToGuestBytes, parseGuid, randomGuid } from "./guid.ts";
import { FwCfgDevice } from "../fwcfg/fwcfg.ts";

export const VMGENID_GUID_FILE = "etc/vmgenid_guid";
export const VMGENID_ADDR_FILE = "etc/vmgenid_addr";
export const VMGENID_FW_CFG_SIZE = 4096;
/** Offset of the GUID in the etc/vmgenid_guid blob (QEMU's VMGENID_GUID_OFFSET, 40). */
export const VMGENID_GUID_OFFSET = 40;

export type VmgenidProfile = "qemu" | "spec-2016";
/** GPE0 status bit the notification uses: QEMU's `_E05` (bit 5), the early spec text's `_E00`. */
export const GPE_BIT: Record<VmgenidProfile, number> = { qemu: 5, "spec-2016": 0 };

export interface VmgenidConfig {
  /** "auto" (a fresh GUID from the bench RNG at start and on every restore) or a GUID text. */
  guid?: string;
  profile?: VmgenidProfile;
  /** Device id of the ACPI PM block whose GPE0 status the notification sets (optional). */
  acpi?: string;
  /** Device id of the guest driver model to notify (optional). */
  driver?: string;
  /** Virtual ns from the GPE being raised to the guest's Notify reaching the driver. */
  dispatchNs?: number;
  /**
   * Where firmware placed the blob (guest physical address), as if the firmware had run: the blob
   * is copied there and its GUID address written to etc/vmgenid_addr. Omit to leave it to a guest
   * or a test (fw_cfg DMA write), as with QEMU started without firmware.
   */
  firmwareBlobAt?: number;
}

export interface VmgenidState {
  [key: string]: string | number | boolean;
  /** Current GUID in text order, hex. */
  guid: string;
  /** "auto" or a fixed GUID text (the device's configured property). */
  configured: string;
  /** Guest address of the 16 GUID bytes (etc/vmgenid_addr), 0 while unset. */
  addr: number;
  /** Count of GUID changes (restores and runtime changes). */
  generation: number;
  /** Notifications raised so far. */
  notifications: number;
}

export interface GpeSink {
  /** Sets a GPE0 status bit and re-evaluates the SCI. */
  setGpeStatus(bit: number): void;
}

function isGpeSink(d: unknown): d is GpeSink {
  return typeof (d as GpeSink | undefined)?.setGpeStatus === "function";
}

export class VmgenidDevice implements Device<VmgenidState> {
  readonly kind = VmgenidKind;
  state: VmgenidState;
  private readonly profile: VmgenidProfile;
  private readonly cfg: VmgenidConfig;

  constructor(readonly id: string, private readonly bench: Bench, cfg: VmgenidConfig) {
    this.cfg = cfg;
    this.profile = cfg.profile ?? "qemu";
    if (!(this.profile in GPE_BIT)) throw new Error(`vmgenid: unknown profile ${String(this.profile)} (qemu, spec-2016)`);
    const configured = cfg.guid ?? "auto";
    const guid = configured === "auto" ? randomGuid(bench.clock.rng) : parseGuid(configured);
    if (!guid) throw new Error(`vmgenid: guid must be "auto" or a GUID like 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87, got ${configured}`);
    this.state = { guid: toHex(guid), configured, addr: 0, generation: 0, notifications: 0 };

    bench.clock.on(id, "notify", (ev) => this.onNotify(ev));
    const fw = bench.findDevice("fwcfg");
    if (fw instanceof FwCfgDevice) {
      fw.addFile({ name: VMGENID_GUID_FILE, read: () => this.blob() });
      fw.addFile({
        name: VMGENID_ADDR_FILE,
        read: () => {
          const b = new Uint8Array(8);
          new DataView(b.buffer).setBigUint64(0, BigInt(this.state.addr), true);
          return b;
        },
        write: (_b, offset, bytes) => {
          const cur = new Uint8Array(8);
          new DataView(cur.buffer).setBigUint64(0, BigInt(this.state.addr), true);
          cur.set(bytes.subarray(0, 8 - offset), offset);
          this.state.addr = Number(new DataView(cur.buffer).getBigUint64(0, true) & 0x1fffffffffffffn);
        },
      });
    }
    if (cfg.firmwareBlobAt !== undefined) this.placeBlob(cfg.firmwareBlobAt);
  }

  /** What firmware does: copy the blob into guest memory at `at`, write its GUID's address to etc/vmgenid_addr. */
  placeBlob(at: number): void {
    this.bench.memory.write(at, this.blob());
    this.state.addr = at + VMGENID_GUID_OFFSET;
  }

  get guidText(): string {
    return formatGuid(fromHex(this.state.guid)!);
  }

  get gpeBit(): number {
    return GPE_BIT[this.profile];
  }

  /** The etc/vmgenid_guid blob: 4096 bytes with the GUID (guest byte order) at offset 40. */
  blob(): Uint8Array {
    const b = new Uint8Array(VMGENID_FW_CFG_SIZE);
    b.set(guidToGuestBytes(fromHex(this.state.guid)!), VMGENID_GUID_OFFSET);
    return b;
  }

  /**
   * Runtime change (the set-vm-generation-id command of the spec): a different GUID is written to
   * guest memory, then the notification is raised as a clock event. The same GUID again does
   * nothing. Returns whether the ID changed.
   */
  setGuid(text: string): boolean {
    const g = text === "auto" ? randomGuid(this.bench.clock.rng) : parseGuid(text);
    if (!g) throw new Error(`vmgenid: not a GUID: ${text}`);
    if (toHex(g) === this.state.guid) return false;
    this.change(g);
    return true;
  }

  private change(g: Uint8Array): void {
    this.state.guid = toHex(g);
    this.state.generation += 1;
    this.writeGuest();
    this.bench.clock.schedule(0, this.id, "notify", { generation: this.state.generation });
  }

  private writeGuest(): void {
    if (this.state.addr === 0) return;
    this.bench.memory.write(this.state.addr, guidToGuestBytes(fromHex(this.state.guid)!));
    this.bench.clock.trace.record(this.bench.now, "vmgenid-write", this.id, this.state.addr, this.guidText);
  }

  private onNotify(ev: ClockEvent): void {
    this.state.notifications += 1;
    const acpi = this.cfg.acpi ? this.bench.findDevice(this.cfg.acpi) : undefined;
    if (isGpeSink(acpi)) acpi.setGpeStatus(this.gpeBit);
    if (this.cfg.driver) {
      this.bench.clock.schedule(this.cfg.dispatchNs ?? 0, this.cfg.driver, "notify", { value: 0x80, generation: (ev.payload as { generation: number }).generation });
    }
  }

  /**
   * After an incoming migration / snapshot restore QEMU writes its own `guid` property into guest
   * memory and raises the ACPI event (post_load). With guid=auto that is a fresh random GUID.
   */
  afterRestore(_bench: Bench, info: { fromSnapshot: boolean }): void {
    if (!info.fromSnapshot) return;
    // The destination's own `guid` property counts (QEMU's post_load writes vms->guid of the
    // receiving process), not the one saved with the source's state.
    const configured = this.cfg.guid ?? "auto";
    this.state.configured = configured;
    let g = configured === "auto" ? randomGuid(this.bench.clock.rng) : parseGuid(configured)!;
    // A restored VM must see a new generation; a fixed GUID equal to the saved one cannot give it.
    while (configured === "auto" && toHex(g) === this.state.guid) g = randomGuid(this.bench.clock.rng);
    this.change(g);
  }
}

export const VmgenidKind: DeviceKind<VmgenidState, VmgenidConfig> = {
  type: "vmgenid",
  stateVersion: 1,
  // QEMU's post_load writes the destination's own guid property.
  destinationConfig: ["guid"],
  validate(s: unknown) {
    const o = s as Partial<VmgenidState> | null;
    if (!o || typeof o !== "object") return "not an object";
    if (typeof o.guid !== "string" || !/^[0-9a-f]{32}$/.test(o.guid)) return "guid is not 16 hex bytes";
    if (typeof o.configured !== "string" || (o.configured !== "auto" && !parseGuid(o.configured))) return "configured is neither auto nor a GUID";
    for (const k of ["addr", "generation", "notifications"] as const) {
      if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) return `${k} is not a non-negative integer`;
    }
    return undefined;
  },
  check(s: VmgenidState, ctx) {
    // The restore writes the new GUID's 16 bytes at addr (post_load): they must lie in guest memory.
    if (s.addr !== 0 && s.addr + 16 > ctx.memorySize) return `addr 0x${s.addr.toString(16)} + 16 bytes lies outside the ${ctx.memorySize}-byte guest memory`;
    return pendingNotifies(ctx.pending);
  },
  create(bench, id, config) {
    return new VmgenidDevice(id, bench, config);
  },
};

/** Pending events for a vmgenid device or driver: only "notify" with a generation number. */
function pendingNotifies(pending: readonly { seq: number; kind: string; payload: unknown }[]): string | undefined {
  for (const p of pending) {
    if (p.kind !== "notify") return `pending event ${p.kind} (seq ${p.seq}) is not one this device schedules`;
    const g = (p.payload as { generation?: unknown } | null)?.generation;
    if (!Number.isSafeInteger(g) || (g as number) < 0) return `pending notify (seq ${p.seq}) has no generation number`;
  }
  return undefined;
}

// ---- the guest driver (Linux drivers/virt/vmgenid.c) ----

export interface VmgenidDriverConfig {
  /** Device id of the vmgenid device whose ADDR method the driver evaluates. */
  vmgenid?: string;
}

export interface VmgenidDriverState {
  [key: string]: string | number;
  /** Guest address the driver mapped (0 until probed). */
  addr: number;
  /** The 16 bytes last read (hex), as the driver keeps them. */
  seen: string;
  notifications: number;
  reseeds: number;
}

/**
 * Linux's vmgenid driver: at probe it maps the 16 bytes at the address ACPI's ADDR gives and
 * feeds them to the RNG; on every notification it re-reads them and, only if they changed,
 * reseeds (add_vmfork_randomness: "crng reseeded due to virtual machine fork").
 */
export class VmgenidDriver implements Device<VmgenidDriverState> {
  readonly kind = VmgenidDriverKind;
  state: VmgenidDriverState = { addr: 0, seen: "", notifications: 0, reseeds: 0 };

  constructor(readonly id: string, private readonly bench: Bench, private readonly cfg: VmgenidDriverConfig) {
    bench.clock.on(id, "notify", () => this.onNotify());
  }

  /** Evaluates ADDR and reads the current ID (driver probe). */
  probe(): void {
    const dev = this.bench.device<VmgenidDevice>(this.cfg.vmgenid ?? "vmgenid");
    this.state.addr = dev.state.addr;
    if (this.state.addr !== 0) this.state.seen = toHex(this.bench.memory.read(this.state.addr, 16));
  }

  private onNotify(): void {
    this.state.notifications += 1;
    if (this.state.addr === 0) this.probe();
    if (this.state.addr === 0) return;
    const now = toHex(this.bench.memory.read(this.state.addr, 16));
    this.bench.clock.trace.record(this.bench.now, "vmgenid-notify", this.id, now);
    if (now === this.state.seen) return;
    this.state.seen = now;
    this.state.reseeds += 1;
    this.bench.clock.trace.record(this.bench.now, "vmgenid-reseed", this.id, now);
  }
}

export const VmgenidDriverKind: DeviceKind<VmgenidDriverState, VmgenidDriverConfig> = {
  type: "vmgenid-driver",
  stateVersion: 1,
  validate(s: unknown) {
    const o = s as Partial<VmgenidDriverState> | null;
    if (!o || typeof o !== "object") return "not an object";
    if (typeof o.seen !== "string" || !/^([0-9a-f]{32})?$/.test(o.seen)) return "seen is not empty or 16 hex bytes";
    for (const k of ["addr", "notifications", "reseeds"] as const) {
      if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) return `${k} is not a non-negative integer`;
    }
    return undefined;
  },
  check(s: VmgenidDriverState, ctx) {
    // A notification re-reads the 16 bytes at addr.
    if (s.addr !== 0 && s.addr + 16 > ctx.memorySize) return `addr 0x${s.addr.toString(16)} + 16 bytes lies outside the ${ctx.memorySize}-byte guest memory`;
    return pendingNotifies(ctx.pending);
  },
  create(bench, id, config) {
    return new VmgenidDriver(id, bench, config);
  },
};
