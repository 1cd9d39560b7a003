// `hvsim`: the command-line entry. Each command lives in sim/cli/commands/<name>.ts and exports
// register(program); main() parses, runs and maps errors to exit codes (0 ok, 1 failure, 2 usage).
import { Command, CommanderError } from "commander";
import { writeSync } from "node:fs";
import { UsageError, Failure } from "./errors.ts";
import { describeErrno } from "./output.ts";

type CommandModule = { register(program: Command): void };

/**
 * One line per command, in the order `hvsim --help` lists them. Modules load on demand: `hvsim
 * layout ...` loads only layout.ts (every command's module pulls in its own part of sim/, and
 * loading all of them costs most of a second per invocation).
 */
const COMMANDS: readonly (readonly [string, () => Promise<CommandModule>])[] = [
  ["conform", () => import("./commands/conform.ts")],
  ["fuzz", () => import("./commands/fuzz.ts")],
  ["layout", () => import("./commands/layout.ts")],
  ["decode", () => import("./commands/decode.ts")],
  ["run", () => import("./commands/run.ts")],
  ["snapshot", () => import("./commands/snapshot.ts")],
  ["bench", () => import("./commands/bench.ts")],
  ["report", () => import("./commands/report.ts")],
  ["qtest", () => import("./commands/qtest.ts")],
];

/** The program with every command, or only argv's command when argv names one. */
export async function buildProgram(out: (s: string) => void, err: (s: string) => void, argv?: readonly string[]): Promise<Command> {
  const program = new Command("hvsim");
  program
    .description("Deterministic, cycle-accurate test bench for virtual-machine devices.")
    .version("0.1.0", "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeOut: out, writeErr: err, outputError: (s, write) => write(s) })
    .exitOverride();
  program.addHelpText(
    "after",
    `
Examples:
  $ npx hvsim conform                 # every suite on the model and on the real targets found here
  $ npx hvsim layout hv_kvp_msg        # a wire struct's size, alignment and member offsets
  $ npx hvsim decode hv_vss_msg msg.bin  # one message from a file, as JSON

Run 'hvsim <command> --help' for a command's options and an example.`,
  );
  const only = COMMANDS.find(([name]) => name === argv?.[0]);
  for (const [, load] of only ? [only] : COMMANDS) (await load()).register(program);
  for (const c of program.commands) c.exitOverride().configureOutput({ writeOut: out, writeErr: err, outputError: (s, write) => write(s) });
  return program;
}

const status = () => (typeof process.exitCode === "number" ? process.exitCode : 0);

/**
 * What happens when standard output or standard error cannot be written: a reader that went away
 * (EPIPE, e.g. `hvsim layout | head -1`) ends hvsim quietly with the status decided so far (0
 * unless a failure was already recorded); any other error (ENOSPC on /dev/full, EIO) prints one
 * line on stderr and exits 1.
 */
export function stdioFailed(stream: "standard output" | "standard error", e: unknown): never {
  if ((e as NodeJS.ErrnoException).code === "EPIPE") process.exit(status());
  if (stream === "standard output") {
    try {
      writeSync(2, `hvsim: cannot write to standard output: ${describeErrno(e)}\n`);
    } catch {
      // stderr is gone too: the exit status is all that is left
    }
  }
  process.exit(1);
}

/** Installs the stdout/stderr error handlers (bin.mjs calls this before main). */
export function installStdioGuards(): void {
  process.stdout.on("error", (e) => stdioFailed("standard output", e));
  process.stderr.on("error", (e) => stdioFailed("standard error", e));
}

/** A write to fd 1 or 2 that threw synchronously (stdout on a full disk is a synchronous stream). */
function isStdioWriteError(e: unknown): boolean {
  const x = e as NodeJS.ErrnoException;
  return !(e instanceof Failure) && !(e instanceof UsageError) && x?.syscall === "write" && typeof x.code === "string" && !x.path;
}

export async function main(argv: string[]): Promise<number> {
  const out = (s: string) => void process.stdout.write(s);
  const err = (s: string) => void process.stderr.write(s);
  const program = await buildProgram(out, err, argv);
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      return 2; // commander already printed the one-line message
    }
    if (e instanceof UsageError) {
      err(`hvsim: ${e.message}\n${e.showHint ? "(run with --help for usage)\n" : ""}`);
      return 2;
    }
    if (e instanceof Failure) {
      err(`hvsim: ${e.message}\n`);
      return e.exitCode;
    }
    if (isStdioWriteError(e)) stdioFailed("standard output", e);
    if (process.env.HVSIM_DEBUG) err(`${(e as Error).stack ?? String(e)}\n`);
    else err(`hvsim: internal error: ${(e as Error).message ?? String(e)} (set HVSIM_DEBUG=1 for a stack trace)\n`);
    return 1;
  }
}
