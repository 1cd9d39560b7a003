// The bench: one virtual clock (with its seeded RNG and trace), guest memory, the port I/O bus and
// the devices of one machine. A machine is described as data (MachineSpec): which devices, with
// what configuration; device kinds turn that into state + wiring.
import { Clock } from "../clock/clock.ts";
import { GuestMemory } from "../memory/memory.ts";
import { PortBus } from "../bus/portio.ts";
import { IrqBus } from "../bus/irq.ts";
import type { Device, DeviceKinds } from "./device.ts";

export interface DeviceSpec {
  readonly type: string;
  readonly id: string;
  readonly config?: Record<string, unknown>;
}

export interface MachineSpec {
  /** Machine name, e.g. "q35" or "bhyve". */
  readonly name: string;
  readonly description: string;
  /** Guest memory size in bytes (a multiple of 4 KiB). */
  readonly memory: number;
  readonly devices: readonly DeviceSpec[];
}

export interface BenchOptions {
  seed?: number;
  trace?: boolean;
}

export class BenchError extends Error {
  override name = "BenchError";
}

export class Bench {
  readonly clock: Clock;
  readonly memory: GuestMemory;
  readonly ports: PortBus;
  /** Interrupt lines driven by devices (the SCI is line 9 on q35). */
  readonly irq: IrqBus;
  private readonly devs = new Map<string, Device>();

  constructor(readonly machine: MachineSpec, readonly kinds: DeviceKinds, opts: BenchOptions = {}) {
    this.clock = new Clock({ seed: opts.seed ?? 0, trace: opts.trace ?? true });
    this.memory = new GuestMemory(machine.memory);
    this.ports = new PortBus(this.clock);
    this.irq = new IrqBus(this.clock);
    for (const d of machine.devices) {
      const kind = kinds.get(d.type);
      if (!kind) throw new BenchError(`machine ${machine.name}: unknown device type ${d.type} (known: ${kinds.types().join(", ")})`);
      if (this.devs.has(d.id)) throw new BenchError(`machine ${machine.name}: two devices named ${d.id}`);
      const dev = kind.create(this, d.id, d.config ?? {});
      this.devs.set(d.id, dev);
    }
  }

  get now(): number {
    return this.clock.now;
  }

  /** The device named `id`; throws a BenchError naming the devices there are if it is absent. */
  device<D extends Device = Device>(id: string): D {
    const d = this.devs.get(id);
    if (!d) throw new BenchError(`no device ${id} on machine ${this.machine.name} (devices: ${[...this.devs.keys()].join(", ")})`);
    return d as D;
  }

  findDevice<D extends Device = Device>(id: string): D | undefined {
    return this.devs.get(id) as D | undefined;
  }

  devices(): Device[] {
    return [...this.devs.values()];
  }

  traceHash(): string {
    return this.clock.trace.hash();
  }
}
