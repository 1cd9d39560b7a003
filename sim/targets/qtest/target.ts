// The `qtest:<command>` conformance target: a process speaking QEMU's qtest protocol on its
// stdin/stdout, started afresh for every session. `<command>` is split like a shell would (quotes
// and backslashes; no expansion). `qtest:qemu` means the qtest-enabled QEMU that findQtestQemu()
// finds (scripts/build-qemu-qtest.sh) with Q35_QTEST_ARGS and `-device vmgenid`: a QEMU has only the
// q35 machine. Any other program declares the machine it implements (`machine`, q35 by default);
// the checks for that machine run against it and the others do not apply.
import { delimiter, join } from "node:path";
import type { Capability, QtestMachine, QtestSession, Target } from "../../conform/types.ts";
import type { MachineControlOptions } from "../../conform/machine-control.ts";
import { findQtestQemu, Q35_QTEST_ARGS, QtestClient } from "./client.ts";
import { openQemuControl } from "./control.ts";
import { isExecutable } from "../program.ts";

export const QEMU_SHORTHAND = "qemu";

/** Splits a command line the way sh does for words: whitespace, '...', "..." and backslash escapes. */
export function splitCommand(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in ${JSON.stringify(line)}`);
      cur += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i += 1;
      for (;;) {
        if (i >= line.length) throw new Error(`unterminated " in ${JSON.stringify(line)}`);
        const d = line[i]!;
        if (d === '"') break;
        if (d === "\\" && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) {
          cur += line[i + 1];
          i += 2;
        } else {
          cur += d;
          i += 1;
        }
      }
      inWord = true;
      i += 1;
    } else if (c === "\\") {
      if (i + 1 < line.length) cur += line[i + 1];
      inWord = true;
      i += 2;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
      i += 1;
    } else {
      cur += c;
      inWord = true;
      i += 1;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** The program's path ($PATH lookup for a bare name), or undefined when it is not there. */
export function resolveProgram(program: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (program.includes("/")) return isExecutable(program) ? program : undefined;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir && isExecutable(join(dir, program))) return join(dir, program);
  }
  return undefined;
}

/**
 * Turns what follows `qtest:` into program + arguments, or the reason it cannot run here. `env` is
 * the environment the program will get: its PATH finds a bare name, its HVSIM_QEMU_QTEST the QEMU.
 */
export function resolveQtestCommand(command: string, env: NodeJS.ProcessEnv = process.env): { argv: string[] } | { reason: string } {
  if (command.trim() === QEMU_SHORTHAND) {
    const found = findQtestQemu({ env });
    // The model's q35 carries a vmgenid device (guid=auto, QEMU's default): so does this QEMU.
    return "path" in found ? { argv: [found.path, ...Q35_QTEST_ARGS, "-device", "vmgenid"] } : { reason: found.reason };
  }
  let argv: string[];
  try {
    argv = splitCommand(command);
  } catch (e) {
    return { reason: (e as Error).message };
  }
  if (argv.length === 0) return { reason: "qtest: needs a command, e.g. qtest:qemu or qtest:/path/qemu-system-x86_64 -machine q35 -accel qtest -qtest stdio" };
  const program = resolveProgram(argv[0]!, env);
  if (!program) return { reason: `${argv[0]} is not an executable program here` };
  return { argv: [program, ...argv.slice(1)] };
}

export interface QtestTargetOptions {
  /** The machine the program implements (default q35). */
  machine?: QtestMachine;
  /** Per-command timeout in ms (default 30000: a loaded machine starting QEMU). */
  timeoutMs?: number;
  /** Extra environment for the program, over hvsim's own. */
  env?: Readonly<Record<string, string>>;
}

export function qtestTarget(command: string, options: QtestTargetOptions = {}): Target {
  const machine = options.machine ?? "q35";
  const isQemu = command.trim() === QEMU_SHORTHAND;
  // fw_cfg (and the vmgenid files behind it) exist on the q35 machine only.
  const caps: Capability[] = ["clock", "portio", "memory", "irq", ...(machine === "q35" ? (["fwcfg"] as const) : []), `machine:${machine}`, ...(isQemu ? (["vmgenid-control"] as const) : [])];
  const env: NodeJS.ProcessEnv = options.env ? { ...process.env, ...options.env } : process.env;
  let resolved: { argv: string[] } | { reason: string } | undefined;
  const resolve = () =>
    (resolved ??= isQemu && machine !== "q35" ? { reason: `qtest:${QEMU_SHORTHAND} is QEMU's q35 machine; it cannot be declared as ${machine}` } : resolveQtestCommand(command, env));
  const argvFor = (m: QtestMachine): string[] => {
    if (m !== machine) throw new Error(`qtest:${command} implements the ${machine} machine, not ${m}`);
    const r = resolve();
    if (!("argv" in r)) throw new Error(r.reason);
    return r.argv;
  };
  return {
    name: `qtest:${command}`,
    description: isQemu ? "the qtest-enabled QEMU found here (q35, qtest accelerator), one process per session" : `qtest process \`${command}\` (${machine}), one per session`,
    capabilities: new Set(caps),
    async available() {
      const r = resolve();
      return "argv" in r ? true : r.reason;
    },
    async openQtest(m): Promise<QtestSession> {
      const argv = argvFor(m);
      const client = QtestClient.spawn(argv[0]!, argv.slice(1), { env, timeoutMs: options.timeoutMs ?? 30_000, closeGraceMs: 500 });
      return {
        command: (line) => client.command(line),
        takeIrqLines: () => client.takeIrqEvents().map((e) => e.raw),
        async close() {
          await client.close();
        },
      };
    },
    // QMP next to qtest (sim/targets/qtest/control.ts): the vmgenid guid chosen at start, migration to a file.
    ...(isQemu ? { openMachineControl: async (m: QtestMachine, o: MachineControlOptions) => openQemuControl({ program: argvFor(m)[0]!, args: Q35_QTEST_ARGS, timeoutMs: options.timeoutMs }, o) } : {}),
  };
}
