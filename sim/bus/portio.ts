// x86 port I/O bus: 64 Ki ports, accesses of 1, 2 or 4 bytes dispatched by the region that claims
// the first port. Unclaimed ports read as all ones and ignore writes, as on real hardware. An
// access that starts on an unclaimed port but runs into a claimed one is carried out in pieces the
// way QEMU's memory core does for its background I/O region: a power-of-two piece no longer than
// the alignment of its port, all ones where unclaimed, the claiming region's handler elsewhere
// (checked on QEMU 7.2: `inl 0x67f` with the ACPI PM block at 0x680 reads 0x000001ff). Every
// access, claimed or not, appends a trace record; a device may refuse an access (IoFault), which
// is recorded too and reaches the caller the way a failed VM exit would.
//
// A machine can instead give its unclaimed ports a default handler (setDefault), as bhyve's user
// space does (usr.sbin/bhyve/inout.c: default_inout on every port no handler registered). Then
// an access goes whole to whoever handles its first port — the kernel's ioport_handler[port],
// else user space's inout_handlers[port] — with no cutting into pieces.
import type { Clock } from "../clock/clock.ts";

export type IoSize = 1 | 2 | 4;

export interface PortHandler {
  read(port: number, size: IoSize): number;
  write(port: number, size: IoSize, value: number): void;
}

export interface PortRegion {
  readonly base: number;
  readonly length: number;
  readonly owner: string;
  readonly handler: PortHandler;
}

/** A device refused an access; `errno` is what the VMM reports for the failed exit (e.g. EIO). */
export class IoFault extends Error {
  override name = "IoFault";
  constructor(readonly errno: string, message: string) {
    super(message);
  }
}

export class PortError extends RangeError {
  override name = "PortError";
}

const ONES: Record<IoSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffffffff };

export function checkIoSize(size: number): IoSize {
  if (size !== 1 && size !== 2 && size !== 4) throw new PortError(`port access size must be 1, 2 or 4 bytes, got ${size}`);
  return size;
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new PortError(`port must be in 0..0xffff, got ${port}`);
  return port;
}

export class PortBus {
  private readonly regions: (PortRegion | undefined)[] = [];
  private readonly slot = new Int32Array(0x10000).fill(-1);
  /** setDefault's handler: takes every access whose first port is unclaimed, like a claim would. */
  private fallback: Pick<PortRegion, "owner" | "handler"> | undefined;

  constructor(private readonly clock: Clock) {}

  /**
   * Routes every access whose first port is unclaimed to `handler` (whole, not in pieces) and
   * records `owner` for it; undefined restores the default (all ones, writes ignored, QEMU's pieces).
   */
  setDefault(owner: string, handler: PortHandler | undefined): void {
    this.fallback = handler ? { owner, handler } : undefined;
  }

  /** Claims [base, base+length) for `owner`; overlapping an existing claim is an error. */
  claim(base: number, length: number, owner: string, handler: PortHandler): void {
    checkPort(base);
    if (!Number.isInteger(length) || length < 1 || base + length > 0x10000) throw new PortError(`bad port range ${base}+${length}`);
    for (let p = base; p < base + length; p++) {
      const r = this.slot[p]!;
      if (r >= 0) throw new PortError(`port 0x${p.toString(16)} is already claimed by ${this.regions[r]!.owner}`);
    }
    const idx = this.regions.length;
    this.regions.push({ base, length, owner, handler });
    this.slot.fill(idx, base, base + length);
  }

  /** Releases the claim of `owner` that starts at `base` (or all of its claims when base is omitted). */
  release(owner: string, base?: number): void {
    this.regions.forEach((r, i) => {
      if (r && r.owner === owner && (base === undefined || r.base === base)) {
        this.slot.fill(-1, r.base, r.base + r.length);
        this.regions[i] = undefined;
      }
    });
  }

  /** The region claiming `port`, if any. */
  at(port: number): PortRegion | undefined {
    const r = this.slot[checkPort(port)]!;
    return r >= 0 ? this.regions[r] : undefined;
  }

  claims(): PortRegion[] {
    return this.regions.filter((r): r is PortRegion => r !== undefined).sort((a, b) => a.base - b.base);
  }

  /** Owner of the first claimed port inside an access that starts on an unclaimed port, if any. */
  private spillOwner(port: number, size: IoSize): string | undefined {
    for (let p = port + 1; p < port + size && p <= 0xffff; p++) {
      const r = this.slot[p]!;
      if (r >= 0) return this.regions[r]!.owner;
    }
    return undefined;
  }

  /** The pieces [port, size, region] of an access that starts on an unclaimed port. */
  private pieces(port: number, size: IoSize): [number, IoSize, PortRegion | undefined][] {
    const out: [number, IoSize, PortRegion | undefined][] = [];
    let done = 0;
    while (done < size) {
      const p = port + done;
      const align = p & -p || 4;
      const n = Math.min(size - done, align, 4);
      const l: IoSize = n >= 4 ? 4 : n >= 2 ? 2 : 1;
      const r = p <= 0xffff ? this.slot[p]! : -1;
      out.push([p, l, r >= 0 ? this.regions[r] : undefined]);
      done += l;
    }
    return out;
  }

  in(port: number, size: IoSize): number {
    checkPort(port);
    checkIoSize(size);
    const r = this.slot[port]!;
    const now = this.clock.now;
    const reg = r >= 0 ? this.regions[r]! : this.fallback;
    if (!reg) {
      const spill = this.spillOwner(port, size);
      if (spill === undefined) {
        this.clock.trace.record(now, "io", "in", port, size, ONES[size], null);
        return ONES[size];
      }
      let v = 0;
      try {
        for (const [p, l, reg] of this.pieces(port, size)) {
          const piece = reg ? reg.handler.read(p, l) % 2 ** (8 * l) : ONES[l];
          v += (piece < 0 ? piece + 2 ** (8 * l) : piece) * 2 ** (8 * (p - port));
        }
      } catch (e) {
        if (e instanceof IoFault) this.clock.trace.record(now, "io-fault", "in", port, size, e.errno, spill);
        throw e;
      }
      this.clock.trace.record(now, "io", "in", port, size, v, spill);
      return v;
    }
    let v: number;
    try {
      v = reg.handler.read(port, size);
    } catch (e) {
      if (e instanceof IoFault) this.clock.trace.record(now, "io-fault", "in", port, size, e.errno, reg.owner);
      throw e;
    }
    v = size === 4 ? v >>> 0 : v & ONES[size];
    this.clock.trace.record(now, "io", "in", port, size, v, reg.owner);
    return v;
  }

  out(port: number, size: IoSize, value: number): void {
    checkPort(port);
    checkIoSize(size);
    if (!Number.isInteger(value) || value < 0 || value > ONES[size]) {
      throw new PortError(`value ${value} does not fit a ${size}-byte port write`);
    }
    const r = this.slot[port]!;
    const now = this.clock.now;
    const reg = r >= 0 ? this.regions[r]! : this.fallback;
    if (!reg) {
      const spill = this.spillOwner(port, size);
      if (spill !== undefined) {
        try {
          for (const [p, l, reg] of this.pieces(port, size)) {
            if (reg) reg.handler.write(p, l, Math.floor(value / 2 ** (8 * (p - port))) % 2 ** (8 * l));
          }
        } catch (e) {
          if (e instanceof IoFault) this.clock.trace.record(now, "io-fault", "out", port, size, e.errno, spill);
          throw e;
        }
      }
      this.clock.trace.record(now, "io", "out", port, size, value, spill ?? null);
      return;
    }
    try {
      reg.handler.write(port, size, value);
    } catch (e) {
      if (e instanceof IoFault) this.clock.trace.record(now, "io-fault", "out", port, size, e.errno, reg.owner);
      throw e;
    }
    this.clock.trace.record(now, "io", "out", port, size, value, reg.owner);
  }

}
