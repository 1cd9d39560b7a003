// Shared helpers for snapshot specs: a testbox bench with activity, a full serialized view of a
// bench (to prove a failed restore changed nothing), and a container rewriter for crafted files.
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { DeviceKinds } from "../../sim/machine/device.ts";
import { canonical, toHex, type Plain } from "../../sim/clock/canonical.ts";
import { TESTBOX, TestdevKind } from "../../sim/devices/testdev/testdev.ts";
import { chunkBytes, encodeContainer, readManifest, type ChunkInput, type ChecksumAlgorithm } from "../../sim/snapshot/container.ts";

const algOf = (c: string) => c.split(":")[0] as ChecksumAlgorithm;

export function kinds(): DeviceKinds {
  const k = new DeviceKinds();
  k.register(TestdevKind);
  return k;
}

export function testbox(seed = 7, spec: MachineSpec = TESTBOX): Bench {
  return new Bench(spec, kinds(), { seed });
}

/** Some activity: registers, both timers, memory on several pages, time passing. */
export function warmUp(b: Bench): void {
  b.ports.out(0x700, 4, 0x11223344);
  b.ports.out(0x70c, 4, 700);
  b.ports.out(0x71c, 4, 1900);
  b.memory.write(0x3000, Uint8Array.from([1, 2, 3, 4, 5]));
  b.memory.writeUint(0x7ff000, 4, 0xfeedface);
  b.memory.write(0x9000, new Uint8Array(4096)); // touched but all zero: not stored
  b.clock.step(10_500); // t0's 15th tick: its interrupt line (5) is high
}

/** Everything about a bench a restore could change, as one string (all-zero pages read as untouched). */
export function benchState(b: Bench): string {
  const pages: Plain[] = [];
  for (const [i, p] of b.memory.touched()) if (p.some((x) => x !== 0)) pages.push([i, toHex(p)]);
  return canonical({
    clock: JSON.parse(JSON.stringify(b.clock.serialize())),
    hash: b.traceHash(),
    irq: b.irq.getState(),
    pages,
    devices: b.devices().map((d) => [d.id, d.state as Plain]),
  });
}

/** Re-encodes a snapshot with its chunks passed through `edit` (checksums recomputed). */
export function rewrite(bytes: Uint8Array, edit: (chunks: ChunkInput[]) => ChunkInput[], version?: number): Uint8Array {
  const r = readManifest(bytes);
  if (!r.ok) throw new Error(r.error.reason);
  const chunks: ChunkInput[] = r.value.manifest.chunks.map((c) => ({ name: c.name, type: c.type, version: c.version, encoding: c.encoding, parts: [chunkBytes(r.value, c).slice()], checksum: algOf(c.checksum) }));
  const e = encodeContainer(edit(chunks), r.value.manifest.meta, version);
  return Buffer.concat(e.parts, e.length);
}

export const json = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v), "utf8");
export const unjson = (b: Uint8Array): any => JSON.parse(Buffer.from(b).toString("utf8"));
