// Schemas of the snapshot chunks that are plain JSON (machine, irq) and the comparison of a
// snapshot's machine description with the bench's: a restore is refused when a device's type,
// id or configuration differs, since a state is only meaningful with the configuration it ran
// under (a PM timer of another profile or port, a test device on other ports or lines).
import { z } from "zod";
import type { MachineSpec } from "../machine/bench.ts";

const JsonValue: z.ZodType<unknown> = z.lazy(() => z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(JsonValue), z.record(z.string(), JsonValue)]));

export const DeviceSpecSchema = z.strictObject({
  type: z.string().min(1),
  id: z.string().min(1),
  config: z.record(z.string(), JsonValue).optional(),
});

export const MachineSpecSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string(),
  memory: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  devices: z.array(DeviceSpecSchema),
});

export const MachineChunkSchema = z.strictObject({ name: z.string().min(1), spec: MachineSpecSchema });

export const IrqChunkSchema = z.array(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER));

/** The first zod issue as "path: message". */
export function schemaIssue(err: z.ZodError): string {
  const i = err.issues[0];
  if (!i) return "invalid";
  return `${i.path.length ? i.path.join(".") : "(top)"}: ${i.message}`;
}

/** JSON with sorted keys, for comparing configurations (undefined members dropped as JSON does). */
export function stableJson(v: unknown): string {
  if (v === undefined) return "null";
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? "null" : stableJson(x))).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(",")}}`;
}

/**
 * How the snapshot's machine differs from the bench's in what a device state depends on (memory
 * size, the devices in order with their types, ids and configurations), or undefined. The
 * description text is not compared, nor the keys `destinationKeys` names for a device type.
 */
export function specDifference(snap: MachineSpec, live: MachineSpec, destinationKeys: (type: string) => readonly string[] = () => []): string | undefined {
  if (snap.memory !== live.memory) return `guest memory ${snap.memory} bytes in the snapshot, ${live.memory} on the bench`;
  const ids = (m: MachineSpec) => m.devices.map((d) => `${d.id} (${d.type})`).join(", ");
  if (snap.devices.length !== live.devices.length || snap.devices.some((d, i) => d.id !== live.devices[i]!.id || d.type !== live.devices[i]!.type)) {
    return `devices [${ids(snap)}] in the snapshot, [${ids(live)}] on the bench`;
  }
  for (let i = 0; i < snap.devices.length; i++) {
    const a = snap.devices[i]!.config ?? {};
    const b = JSON.parse(JSON.stringify(live.devices[i]!.config ?? {})) as Record<string, unknown>;
    const free = destinationKeys(snap.devices[i]!.type);
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      if (free.includes(k)) continue;
      if (stableJson(a[k]) !== stableJson(b[k])) {
        return `device ${snap.devices[i]!.id} has config ${k} = ${a[k] === undefined ? "(unset)" : stableJson(a[k])} in the snapshot, ${b[k] === undefined ? "(unset)" : stableJson(b[k])} on the bench`;
      }
    }
  }
  return undefined;
}
