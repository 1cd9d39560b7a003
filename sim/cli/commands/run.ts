// `hvsim run FILE`: runs a scenario, printing the trace as it happens and the final trace hash.
// Exit 0 when every step passes, 1 on a failed assertion or step, 2 on a malformed scenario.
import { mkdirSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import type { Command } from "commander";
import { plural } from "../text.ts";
import { Failure, UsageError } from "../errors.ts";
import { checkExistingDir, checkOutputFile, OutputWriter, type Output } from "../output.ts";
import { formatIssue, formatRecord, formatFailure, jsonlRecord, loadScenarioFile, runScenario } from "../../scenario/index.ts";

/** Buffers JSONL lines and writes them in large pieces to a temporary renamed into place at the end. */
class LineSink {
  private readonly w: OutputWriter;
  private buf: string[] = [];
  private chars = 0;
  constructor(out: Output) {
    this.w = new OutputWriter(out);
  }
  push(line: string): void {
    this.buf.push(line);
    this.chars += line.length + 1;
    if (this.chars >= 1 << 20) this.flush();
  }
  flush(): void {
    if (this.buf.length) this.w.write(this.buf.join("\n") + "\n");
    this.buf = [];
    this.chars = 0;
  }
  close(): void {
    this.flush();
    this.w.commit();
  }
  discard(): void {
    this.w.discard();
  }
}

function parseSeed(s: string): number {
  const t = s.trim();
  const n = /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t, 16) : /^[0-9]+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`--seed must be a whole number (decimal or 0x hex), got ${s}`);
  return n;
}

export function register(program: Command): void {
  program
    .command("run")
    .description("Run a scenario (YAML or JSON): machine, seed and timed steps with expectations")
    .argument("<file>", "scenario file (.yaml, .yml or .json; - reads standard input)")
    .option("--seed <n>", "override the scenario's seed")
    .option("--trace <out.jsonl>", "also write every trace record as one JSON object per line ('-': standard output, and the readable output goes to stderr)")
    .option("--snapshot-dir <dir>", "existing directory for relative snapshot file names in save/restore steps (default: the scenario's folder; for - the current directory)")
    .option("-q, --quiet", "print only the result and the trace hash, not the trace")
    .addHelpText(
      "after",
      `
A scenario names a machine, a seed and steps, e.g.:

  machine: testbox
  seed: 7
  steps:
    - outl: [0x70c, 1000]      # port write [port, value]; also out: PORT, size: N, value: V
    - step: 5500               # advance the clock 5500 ns (until: NS runs to an absolute time)
    - inl: 0x70c               # port read; also in: PORT, size: N
      expect: 5
    - save: snap.bin           # snapshot; restore: snap.bin brings it back

Step types: step, until, in, inb, inw, inl, out, outb, outw, outl, read, write, save, restore,
assert (plus those device modules register). Any step may carry at: NS (run the clock there
first) and note: TEXT.

Every output (--trace, each save: file) is checked before the first step runs: a directory, a
missing folder or an unwritable place is exit 2 and nothing runs.

Exit status: 0 all steps passed, 1 an assertion or step failed, 2 the scenario is malformed
or an output cannot be written.

Example:
  $ npx hvsim run specs/scenarios/testbox-basics.yaml --trace out.jsonl`,
    )
    .action((file: string, opts: { seed?: string; trace?: string; quiet?: boolean; snapshotDir?: string }) => {
      const seed = opts.seed === undefined ? undefined : parseSeed(opts.seed);
      if (opts.snapshotDir !== undefined) checkExistingDir(opts.snapshotDir, "--snapshot-dir");
      const traceOut = opts.trace !== undefined ? checkOutputFile(opts.trace, "--trace") : undefined;
      // With the JSONL trace on stdout, the readable output goes to stderr.
      const out = (s: string) => void (traceOut?.kind === "stdout" ? process.stderr : process.stdout).write(s);
      const loaded = loadScenarioFile(file);
      if (!loaded.ok) {
        for (const i of loaded.issues) process.stderr.write(`${formatIssue(i)}\n`);
        throw new Failure(`${file}: malformed scenario (${loaded.issues.length} problem${loaded.issues.length === 1 ? "" : "s"}); nothing was run`, 2);
      }
      const scn = loaded.scenario;
      const dir = opts.snapshotDir ?? (file === "-" ? "." : dirname(file));
      for (const st of scn.steps) {
        if (st.type !== "save") continue;
        const name = (st.args as { save?: unknown }).save;
        if (typeof name !== "string" || !name) continue; // the step's own validation reports it
        const o = checkOutputFile(isAbsolute(name) ? name : join(dir, name), `${file}:${st.line}: save:`, { allowStdout: false });
        if (o.createParent) mkdirSync(o.createParent, { recursive: true });
      }
      // Nothing is printed or written until the bench is built: a device override that cannot be
      // built is a malformed scenario, with no trace file left behind.
      let sink: LineSink | undefined;
      let r;
      try {
        r = runScenario(scn, {
          seed,
          snapshotDir: opts.snapshotDir,
          onStart: () => {
            if (!opts.quiet) out(`# ${scn.name}: machine ${scn.machine.name}, seed ${seed ?? scn.seed}, ${plural(scn.steps.length, "step")}\n`);
            sink = traceOut ? new LineSink(traceOut) : undefined;
          },
          onTrace: opts.quiet && !traceOut ? undefined : (rec) => {
            if (!opts.quiet) out(`${formatRecord(rec)}\n`);
            sink?.push(jsonlRecord(rec));
          },
          onNote: opts.quiet ? undefined : (t) => out(`# ${t}\n`),
        });
      } catch (e) {
        sink?.discard();
        throw e;
      }
      sink?.close();
      if (r.status === "invalid") {
        for (const i of r.issues) process.stderr.write(`${formatIssue(i)}\n`);
        throw new Failure(`${file}: malformed scenario; nothing was run`, 2);
      }
      out(`trace hash: ${r.traceHash}\n`);
      if (r.status === "failed") throw new Failure(formatFailure(file, r.failure), 1);
      out(`ok: ${plural(scn.steps.length, "step")} passed (t=${r.bench.clock.now} ns, ${plural(r.bench.clock.trace.count, "trace record")})\n`);
    });
}
