// `hvsim decode <struct> [FILE|-]`: decode one message from a file or stdin and print it as JSON.
// Bytes that do not decode print the decoder's error (member, offset, reason) and exit 1.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { lookupWire, wireNames } from "../../wire/registry.ts";
import { toJson } from "../../wire/json.ts";
import { plural } from "../text.ts";
import { Failure, UsageError } from "../errors.ts";

function readInput(file: string | undefined): Uint8Array {
  if (file === undefined || file === "-") {
    if (process.stdin.isTTY) throw new UsageError("no input: give a FILE, or pipe the message's bytes to stdin");
    try {
      return readFileSync(0);
    } catch (e) {
      throw new Failure(`cannot read stdin: ${(e as Error).message}`);
    }
  }
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw new Failure(`cannot read ${file}: ${why}`);
  }
}

export function register(program: Command): void {
  program
    .command("decode")
    .description("Decode one wire message (a declared C struct) from FILE or stdin and print it as JSON.")
    .argument("<struct>", "C struct name, e.g. hv_kvp_msg (see 'hvsim layout')")
    .argument("[FILE]", "file holding the message's bytes; '-' or none reads stdin")
    .option("--exact", "refuse input longer than the message (default: trailing bytes are ignored, with a note)")
    .addHelpText(
      "after",
      `
Output: one JSON object with the members the message has (a union shows the member its
selector picks, e.g. hv_kvp_msg.body by kvp_hdr.operation). 64-bit integers print as decimal
strings; byte arrays and __u16 arrays as { "hex": ... } (little-endian bytes), plus "text"
when they hold NUL-terminated UTF-8 / UTF-16 text. Exit status: 0 decoded, 1 the bytes do not
decode or the file cannot be read (the error names the member, its offset and the reason),
2 usage error.

Examples:
  $ npx hvsim decode hv_vss_msg msg.bin
  $ head -c 7432 kvp.bin | npx hvsim decode hv_kvp_msg -`,
    )
    .action((name: string, file: string | undefined, opts: { exact?: boolean }, cmd: Command) => {
      const entry = lookupWire(name);
      if (!entry) throw new UsageError(`unknown struct '${name}'; known: ${wireNames().join(", ")}`);
      const bytes = readInput(file);
      const r = entry.codec.decode(bytes, { exact: opts.exact === true });
      if (!r.ok) {
        const e = r.error;
        throw new Failure(`cannot decode ${e.struct}: ${e.field ? `member ${e.field}` : "message"} at offset ${e.offset}: ${e.reason}`);
      }
      const cfg = cmd.configureOutput();
      const out = cfg.writeOut ?? ((s: string) => void process.stdout.write(s));
      const err = cfg.writeErr ?? ((s: string) => void process.stderr.write(s));
      out(JSON.stringify(toJson(entry.type, r.value), null, 2) + "\n");
      if (bytes.length > r.size) err(`hvsim: note: ${plural(bytes.length - r.size, "byte")} after the ${r.size}-byte message were not decoded (--exact refuses them)\n`);
    });
}
