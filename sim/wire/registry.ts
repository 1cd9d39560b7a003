// Every declared wire struct by its C name: the codec and the upstream header it comes from. The
// CLI (layout, decode), the gcc layout spec, the round-trip properties and the fuzzer all walk this
// one list, so a struct added here is checked everywhere.
import { codec, type Codec } from "./codec.ts";
import type { StructType } from "./types.ts";
import { HYPERV_KERNEL_HEADER, HYPERV_KERNEL_STRUCTS, HYPERV_UAPI_HEADER, HYPERV_UAPI_STRUCTS } from "./hyperv.ts";
import { VMM_DEV_HEADER, VMMCTL_STRUCTS } from "./vmmctl.ts";

/** Where a declaration's upstream definition lives. */
export interface HeaderSource {
  /** Upstream project, e.g. "linux", "freebsd". */
  readonly project: string;
  /** Path of the header in that project's tree. */
  readonly path: string;
  /** True when the header is a userspace API header installed on Linux as `<linux/...>`. */
  readonly uapi: boolean;
}

export interface WireEntry {
  /** C struct name, without the `struct` keyword. */
  readonly name: string;
  readonly type: StructType;
  readonly codec: Codec<any>;
  readonly header: HeaderSource;
}

export const LINUX_UAPI_HYPERV: HeaderSource = Object.freeze({ project: "linux", path: HYPERV_UAPI_HEADER, uapi: true });
export const LINUX_KERNEL_HYPERV: HeaderSource = Object.freeze({ project: "linux", path: HYPERV_KERNEL_HEADER, uapi: false });
export const FREEBSD_VMM_DEV: HeaderSource = Object.freeze({ project: "freebsd", path: VMM_DEV_HEADER, uapi: false });

const groups: [HeaderSource, readonly StructType[]][] = [
  [LINUX_UAPI_HYPERV, HYPERV_UAPI_STRUCTS],
  [LINUX_KERNEL_HYPERV, HYPERV_KERNEL_STRUCTS],
  [FREEBSD_VMM_DEV, VMMCTL_STRUCTS],
];

function build(): ReadonlyMap<string, WireEntry> {
  const m = new Map<string, WireEntry>();
  for (const [header, types] of groups) {
    for (const type of types) {
      if (m.has(type.name)) throw new Error(`wire registry: ${type.name} declared twice`);
      m.set(type.name, Object.freeze({ name: type.name, type, codec: codec(type), header }));
    }
  }
  return m;
}

/** C name -> entry, in declaration order (header by header). */
export const WIRE_REGISTRY: ReadonlyMap<string, WireEntry> = build();

/** Every registered C struct name, in declaration order. */
export const wireNames = (): string[] => [...WIRE_REGISTRY.keys()];

export const wireEntries = (): WireEntry[] => [...WIRE_REGISTRY.values()];

export function lookupWire(name: string): WireEntry | undefined {
  return WIRE_REGISTRY.get(name.replace(/^struct\s+/, ""));
}
