// `hvsim snapshot inspect FILE`: lists and verifies a snapshot using only the container layer (no
// device knowledge): header, manifest, each chunk's name, type, version, size and checksum.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { plural } from "../text.ts";
import { Failure } from "../errors.ts";
import { describeIssue, inspectContainer, type InspectReport } from "../../snapshot/container.ts";

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => "  " + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join("  ")).join("\n") + "\n";
}

function text(file: string, r: InspectReport): string {
  let s = `${file}: ${plural(r.size, "byte")}`;
  if (r.containerVersion === undefined || !r.manifest) return `${s}\n`;
  s += `, hvsim snapshot container version ${r.containerVersion}, ${plural(r.chunks.length, "chunk")}\n`;
  const meta = Object.entries(r.manifest.meta).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  if (meta) s += `meta: ${meta}\n`;
  const rows = [["chunk", "type", "version", "encoding", "offset", "length", "checksum", "status"]];
  for (const c of r.chunks) rows.push([c.name, c.type, String(c.version), c.encoding, String(c.offset), String(c.length), c.checksum.length > 24 ? `${c.checksum.slice(0, 23)}…` : c.checksum, c.status]);
  return s + table(rows);
}

export function register(program: Command): void {
  const snap = program.command("snapshot").description("Work with snapshot files");
  snap
    .command("inspect")
    .description("List a snapshot's manifest and chunks and verify every checksum (needs no device knowledge)")
    .argument("<file>", "snapshot file")
    .option("--json", "print the report as JSON")
    .addHelpText(
      "after",
      `
Exit status: 0 when the header, manifest and every chunk verify; 1 if anything is corrupt,
truncated or of a newer container version (the problems are listed, each naming its chunk).

Example:
  $ npx hvsim snapshot inspect snap.bin
  $ npx hvsim snapshot inspect snap.bin --json | jq '.chunks[] | {name, status}'`,
    )
    .action((file: string, opts: { json?: boolean }) => {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(file);
      } catch (e) {
        throw new Failure(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 1);
      }
      const r = inspectContainer(bytes);
      if (opts.json) process.stdout.write(JSON.stringify({ file, ...r }, null, 2) + "\n");
      else process.stdout.write(text(file, r));
      if (!r.ok) {
        if (!opts.json) for (const i of r.issues) process.stderr.write(`${file}: ${describeIssue(i)}\n`);
        throw new Failure(`${file}: snapshot is corrupt (${r.issues.length} problem${r.issues.length === 1 ? "" : "s"})`, 1);
      }
      if (!opts.json) process.stdout.write(`ok: header, manifest and ${plural(r.chunks.length, "chunk")} verified\n`);
    });
}
