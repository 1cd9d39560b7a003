// `hvsim layout [--json] [NAME...]`: size, alignment and every member's offset of the declared wire
// structs, as a table or as one JSON object { name: { size, align, fields: [{ name, offset, size }] } }.
import type { Command } from "commander";
import { lookupWire, wireEntries, wireNames, type WireEntry } from "../../wire/registry.ts";
import type { WireType } from "../../wire/types.ts";
import { UsageError } from "../errors.ts";

export interface LayoutJson {
  size: number;
  align: number;
  fields: { name: string; offset: number; size: number }[];
}

export function layoutJson(e: WireEntry): LayoutJson {
  return {
    size: e.codec.size,
    align: e.codec.align,
    fields: e.codec.fields.map((f) => ({ name: f.path, offset: f.offset, size: f.size })),
  };
}

const PRIM_C: Record<string, string> = {
  u8: "__u8",
  i8: "__s8",
  char: "char",
  u16: "__u16",
  i16: "__s16",
  u32: "__u32",
  i32: "int",
  u64: "__u64",
  i64: "__s64",
};

/** The C spelling of a member's type; unnamed aggregates (declared as "<anonymous ...>") print as such. */
export function cType(t: WireType): string {
  switch (t.kind) {
    case "prim":
      return PRIM_C[t.name] ?? t.name;
    case "array":
      return `${cType(t.elem)}[${t.length}]`;
    case "flex":
      return `${cType(t.elem)}[]`;
    case "struct":
    case "union":
      return t.name.startsWith("<") ? `${t.kind} <anonymous>` : `${t.kind} ${t.name}`;
  }
}

export function layoutTable(e: WireEntry): string {
  const t = e.type;
  const rows = e.codec.fields.map((f) => [String(f.offset), String(f.size), cType(f.type), f.path]);
  const head = ["offset", "size", "type", "member"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `  ${r[0]!.padStart(w[0]!)}  ${r[1]!.padStart(w[1]!)}  ${r[2]!.padEnd(w[2]!)}  ${r[3]}`.trimEnd();
  const src = `${e.header.project} ${e.header.path}`;
  return [
    `struct ${t.name}: size ${t.size}, align ${t.align}${t.packed ? ", packed" : ""}  (${src})`,
    line(head),
    ...rows.map(line),
  ].join("\n");
}

function select(names: string[]): WireEntry[] {
  if (names.length === 0) return wireEntries();
  const unknown = names.filter((n) => !lookupWire(n));
  if (unknown.length) {
    throw new UsageError(`unknown struct${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `'${n}'`).join(", ")}; known: ${wireNames().join(", ")}`);
  }
  return names.map((n) => lookupWire(n)!);
}

export function register(program: Command): void {
  program
    .command("layout")
    .description("Show the declared wire structs: size, alignment and every member's offset, size and C type.")
    .argument("[NAME...]", "C struct names (default: every declared struct)")
    .option("--json", "print one JSON object: { NAME: { size, align, fields: [{ name, offset, size }] } }")
    .addHelpText(
      "after",
      `
Members are listed by their C path (nested members dotted, e.g. body.kvp_enum_data.data.value);
members of anonymous unions appear under their own names, and every union member is listed.

Examples:
  $ npx hvsim layout hv_kvp_msg
  $ npx hvsim layout --json hv_vss_msg vmmctl_vm_create`,
    )
    .action((names: string[], opts: { json?: boolean }, cmd: Command) => {
      const entries = select(names);
      const out = cmd.configureOutput().writeOut ?? ((s: string) => void process.stdout.write(s));
      if (opts.json) {
        const obj: Record<string, LayoutJson> = {};
        for (const e of entries) obj[e.name] = layoutJson(e);
        out(JSON.stringify(obj, null, 2) + "\n");
        return;
      }
      out(entries.map(layoutTable).join("\n\n") + "\n");
    });
}
