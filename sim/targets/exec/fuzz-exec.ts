// `exec:<command>` fuzz target: one input per run, given on stdin, or as a file path where the
// command has `@@` (AFL's convention). A finding is a signal, a sanitizer report on stderr, or a
// time-out; the exit status alone is the program's business (a parser may reject input).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FuzzTarget, Verdict } from "../../fuzz/engine.ts";
import { Rng } from "../../clock/rng.ts";

const SANITIZER = /(ERROR: (AddressSanitizer|LeakSanitizer|MemorySanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer)|runtime error: |Sanitizer: )/;

/** Splits a command line on spaces, honouring single and double quotes. */
export function splitCommand(cmd: string): string[] {
  const out: string[] = [];
  let cur = "", q: string | undefined, any = false;
  for (const ch of cmd) {
    if (q) {
      if (ch === q) q = undefined;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      q = ch;
      any = true;
    } else if (/\s/.test(ch)) {
      if (cur || any) out.push(cur);
      cur = "";
      any = false;
    } else cur += ch;
  }
  if (q) throw new Error(`unterminated quote in command: ${cmd}`);
  if (cur || any) out.push(cur);
  return out;
}

export interface ExecTargetOptions {
  /** Per-input time limit (ms). */
  timeoutMs?: number;
  /** Inputs are drawn like this target's (structure-aware), when given. */
  like?: FuzzTarget;
  maxLen?: number;
}

export function execTarget(command: string, opts: ExecTargetOptions = {}): FuzzTarget {
  const argv = splitCommand(command);
  if (!argv.length) throw new Error("exec: needs a command, e.g. exec:./parser @@");
  const timeoutMs = opts.timeoutMs ?? 2000;
  const dir = mkdtempSync(join(tmpdir(), "hvsim-fuzz-"));
  const file = join(dir, "input");
  const usesFile = argv.includes("@@");
  const like = opts.like;
  return {
    name: `exec:${command}`,
    description: `run ${argv[0]} with each input ${usesFile ? "as a file (@@)" : "on stdin"}`,
    maxLen: opts.maxLen ?? like?.maxLen ?? 4096,
    hints: like?.hints ?? [],
    generate: (rng: Rng) => (like ? like.generate(rng) : rng.bytes(rng.int(0, opts.maxLen ?? 256))),
    execute(input): Verdict | undefined {
      if (usesFile) writeFileSync(file, input);
      const args = argv.slice(1).map((a) => (a === "@@" ? file : a));
      const r = spawnSync(argv[0]!, args, { input: usesFile ? undefined : input, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 1 << 20 });
      if (r.error && (r.error as NodeJS.ErrnoException).code === "ETIMEDOUT") return { kind: "hang", message: `no exit within ${timeoutMs} ms` };
      // A program that exits without reading all of its stdin is not at fault (EPIPE on our side).
      if (r.error && (r.error as NodeJS.ErrnoException).code !== "EPIPE") return { kind: "crash", message: `could not run ${argv[0]}: ${r.error.message}` };
      const stderr = r.stderr?.toString("utf8") ?? "";
      const san = SANITIZER.exec(stderr);
      if (san) return { kind: "sanitizer", message: stderr.slice(san.index).split("\n")[0]!.slice(0, 200) };
      if (r.signal) return { kind: "signal", message: `killed by ${r.signal}` };
      return undefined;
    },
    close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
