// Argument bytes for the per-VM ioctls, built from the struct declarations: a zeroed struct with the
// named members set (little-endian), e.g. argBytes("VM_SET_REGISTER", { cpuid: 1, regnum: 3,
// regval: 77n }). For tests, scenarios and fuzzing seeds.
import { codec, type Codec } from "../../wire/codec.ts";
import { ioctlByName, type IoctlDef } from "./table.ts";

const codecs = new Map<string, Codec<any>>();

function codecOf(d: IoctlDef): Codec<any> | undefined {
  if (!d.arg) return undefined;
  let c = codecs.get(d.arg.name);
  if (!c) codecs.set(d.arg.name, (c = codec(d.arg)));
  return c;
}

export class ArgError extends Error {
  override name = "ArgError";
}

/** The argument of command `name` (a C name such as "VM_RUN") with `values` set by member path. */
export function argBytes(name: string, values: Readonly<Record<string, number | bigint>> = {}): Uint8Array {
  const d = ioctlByName(name);
  if (!d) throw new ArgError(`unknown vmm ioctl ${name}`);
  const c = codecOf(d);
  if (!c) {
    // _IO commands: the 8 bytes are the pointer value itself.
    const b = new Uint8Array(8);
    if (Object.keys(values).length) throw new ArgError(`${name} takes no argument struct`);
    return b;
  }
  const b = new Uint8Array(c.size);
  const dv = new DataView(b.buffer);
  for (const [path, v] of Object.entries(values)) {
    const f = c.fields.find((x) => x.path === path);
    if (!f || f.type.kind !== "prim") throw new ArgError(`${d.arg!.name} has no scalar member ${path} (members: ${c.fields.filter((x) => x.type.kind === "prim").map((x) => x.path).join(", ")})`);
    const n = BigInt(v);
    switch (f.size) {
      case 1:
        dv.setUint8(f.offset, Number(BigInt.asUintN(8, n)));
        break;
      case 2:
        dv.setUint16(f.offset, Number(BigInt.asUintN(16, n)), true);
        break;
      case 4:
        dv.setUint32(f.offset, Number(BigInt.asUintN(32, n)), true);
        break;
      default:
        dv.setBigUint64(f.offset, BigInt.asUintN(64, n), true);
    }
  }
  return b;
}

/** The usual first member (vCPU id) for the commands that read one: `argBytes(name, {<first>: id})`. */
export function vcpuArg(name: string, vcpuid: number, values: Readonly<Record<string, number | bigint>> = {}): Uint8Array {
  const d = ioctlByName(name);
  const c = d ? codecOf(d) : undefined;
  const first = c?.fields[0]?.path;
  if (!first) throw new ArgError(`${name} has no argument to carry a vCPU id`);
  return argBytes(name, { [first]: vcpuid, ...values });
}

/** The command number of a C name; throws for an unknown name. */
export function cmdOf(name: string): number {
  const d = ioctlByName(name);
  if (!d) throw new ArgError(`unknown vmm ioctl ${name}`);
  return d.cmd;
}
