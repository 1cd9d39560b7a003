// `hvsim conform`: run conformance suites on targets and report.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { anyFailure, loadChecks, makeTarget, runConformance, type TargetRun } from "../../conform/runner.ts";
import { junitXml, summaryText } from "../../conform/report.ts";
import { defaultCandidates } from "../../conform/targets.ts";
import { DEFAULT_TARGETS_FILE, loadTargetsFile, type TargetsFile } from "../../conform/config.ts";
import { CAPABILITIES, QTEST_MACHINES, type Capability, type QtestMachine, type TargetOptions } from "../../conform/types.ts";
import { Failure, UsageError } from "../errors.ts";
import { checkOutputFile, oneStdout, writeOutputs } from "../output.ts";
import "../../targets/index.ts";

const collect = (v: string, prev: string[]) => [...prev, v];

const TARGET_KINDS = "model, qtest:<command>, hv-daemon:kvp|vss[=<program>|=asan]";

interface ConformOpts {
  target: string[];
  machine?: string;
  lacks: string[];
  targetsFile?: string;
  suite: string[];
  json: string;
  junit: string;
  seed: string;
  list?: boolean;
}

/** A planned target: what to build, and whether the user named it (then it must start). */
interface Planned {
  readonly label: string;
  readonly spec: string;
  readonly options: TargetOptions;
  readonly required: boolean;
  /** Where it was named: "--target", "hvsim.targets.yaml:7", or "default candidate". */
  readonly from: string;
}

export function register(program: Command): void {
  program
    .command("conform")
    .description("Run conformance suites on the embedded model and on real targets (QEMU over qtest, the Linux Hyper-V daemons).")
    .option("-t, --target <target>", `target to check (repeatable): ${TARGET_KINDS}, or the name of an entry in the targets file`, collect, [])
    .option("-m, --machine <machine>", `the machine the --target qtest:<command> programs implement: ${QTEST_MACHINES.join(", ")} (default q35)`)
    .option("--lacks <capability>", "a capability the --target programs do not have (repeatable), e.g. irq: the checks needing it are not applicable", collect, [])
    .option("--targets-file <file>", `a targets file (YAML or JSON) naming targets with command, machine, lacks, env, timeoutMs (default ./${DEFAULT_TARGETS_FILE} when present)`)
    .option("-s, --suite <suite>", "only this suite (repeatable), e.g. pmtimer, vmgenid, kvp, vss, vmm", collect, [])
    .option("--json <file>", "write the JSON report here ('-': standard output)", join("reports", "conform.json"))
    .option("--junit <file>", "write a JUnit XML report here ('-': standard output)", join("reports", "conform.junit.xml"))
    .option("--seed <n>", "seed for checks that draw random operation sequences", "1")
    .option("--list", "list the checks and the targets (the default candidates found here, and why any is left out), run nothing")
    .addHelpText(
      "after",
      `
Targets:
  model            hvsim's reference models, in process (always available)
  qtest:<command>  a process speaking QEMU's qtest protocol on stdio, e.g. a QEMU built
                   with the qtest accelerator (scripts/build-qemu-qtest.sh builds one)
                   implementing the --machine given (q35 unless told)
  qtest:qemu       that QEMU as found here, q35 with -device vmgenid (the default candidate);
                   for the vmgenid GUID checks with QMP too (guid chosen, migration to a file)
  hv-daemon:kvp    Debian's hv_kvp_daemon behind hvsim's device bridge
  hv-daemon:vss    Debian's hv_vss_daemon behind hvsim's device bridge (sandboxed)
  hv-daemon:kvp=<program>, hv-daemon:vss=<program>
                   any daemon binary speaking the hv_kvp / hv_vss device protocol, run
                   with -n behind the same bridge and sandbox
  hv-daemon:kvp=asan, hv-daemon:vss=asan
                   the daemons scripts/build-hv-daemons.sh builds from Debian's
                   linux-source-6.1 with ASan+UBSan; a sanitizer report fails the check
                   that was running (./asan for a program named asan)
Without --target: the targets file's entries when there is one, else the model plus every
default candidate usable here (the others are left out; --list says why). A target named
with --target or in a targets file that cannot start is a failure (exit 1, the reason printed
first), never a row of skips. --machine and --lacks describe the --target targets.

Capabilities (--lacks): ${wrap(CAPABILITIES.join(", ") + ".", 92, "Capabilities (--lacks): ".length)}
A check needing a capability the target lacks does not apply to it: it is counted as "not
applicable", kept (marked) in the JSON report and left out of JUnit. "Skipped" is a check that
applies but could not run, with the reason. A deviation is a step where the two kernel profiles
(linux-6.1 and the Hyper-V spec) differ as a named, known difference explains; it is listed, not a
failure.

Targets file (${DEFAULT_TARGETS_FILE}, read from the current directory unless --targets-file):
  targets:
    - name: mytimer                  # report and JUnit testsuite name: letters, digits, . _ -
      target: qtest:./build/mytimer  # commands run from the current directory
      machine: bhyve                 # q35 (default), bhyve, acpi or acpi24
      lacks: [irq]                   # capabilities it does not have
      env: { MYTIMER_LOG: "1" }      # extra environment for the program
      timeoutMs: 10000               # wall-clock limit of one reply
A problem in the file is reported as file:line: path: message, and nothing runs (exit 2).

Reports go to reports/ in the current directory unless --json/--junit say otherwise. Outputs
are checked before anything runs; a missing folder is created only for the default reports/
folder. JUnit has one testsuite per target (the target as given in its "target" property).
Exit status: 0 all passed, 1 any failure or a named target that cannot start, 2 usage error.

Examples:
  $ npx hvsim conform
  $ npx hvsim conform --suite pmtimer --target model --json reports/pm.json
  $ npx hvsim conform --target 'qtest:npx hvsim qtest --machine bhyve' --machine bhyve --suite pmtimer
  $ npx hvsim conform --target 'qtest:npx hvsim qtest' --lacks irq --suite pmtimer
  $ npx hvsim conform --list`,
    )
    .action(async (opts: ConformOpts) => {
      const seed = Number(opts.seed);
      if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got ${opts.seed}`);
      if (opts.machine !== undefined && !(QTEST_MACHINES as readonly string[]).includes(opts.machine)) throw new UsageError(`--machine must be one of ${QTEST_MACHINES.join(", ")}, got '${opts.machine}'`);
      for (const l of opts.lacks) if (!(CAPABILITIES as readonly string[]).includes(l)) throw new UsageError(`--lacks: unknown capability '${l}' (capabilities: ${CAPABILITIES.join(", ")})`);
      const cliOptions: TargetOptions = {
        ...(opts.machine !== undefined ? { machine: opts.machine as QtestMachine } : {}),
        ...(opts.lacks.length ? { lacks: [...new Set(opts.lacks)] as Capability[] } : {}),
      };

      // The targets file: named, or ./hvsim.targets.yaml when present.
      const unknownTarget = (t: string) => (makeTarget(t, seed) ? undefined : `unknown target '${t}' (${TARGET_KINDS})`);
      const fileName = opts.targetsFile ?? (existsSync(DEFAULT_TARGETS_FILE) ? DEFAULT_TARGETS_FILE : undefined);
      let file: TargetsFile | undefined;
      if (fileName !== undefined) {
        const loaded = loadTargetsFile(fileName, unknownTarget);
        if (!loaded.ok) {
          if (loaded.unreadable) throw new UsageError(loaded.issues[0]!, false);
          for (const i of loaded.issues) process.stderr.write(`${i}\n`);
          throw new Failure(`${fileName}: ${loaded.issues.length} problem${loaded.issues.length === 1 ? "" : "s"} in the targets file; nothing was run`, 2);
        }
        file = loaded.value;
      }

      const planned: Planned[] = [];
      if (opts.target.length) {
        const specs = opts.target.filter((n) => !file?.entries.some((e) => e.name === n));
        if (!specs.length && (opts.machine !== undefined || opts.lacks.length)) {
          throw new UsageError(`--machine and --lacks describe targets named with --target; the targets file's entries declare their own (machine:, lacks:)`);
        }
        for (const n of opts.target) {
          const e = file?.entries.find((x) => x.name === n);
          if (e) planned.push(fromEntry(e, file!));
          else {
            if (!makeTarget(n, seed)) {
              const names = file ? `, or an entry of ${file.file}: ${file.entries.map((x) => x.name).join(", ")}` : "";
              throw new UsageError(`unknown target '${n}' (${TARGET_KINDS}${names})`);
            }
            planned.push({ label: n, spec: n, options: cliOptions, required: true, from: "--target" });
          }
        }
      } else {
        if (opts.machine !== undefined || opts.lacks.length) {
          throw new UsageError(`--machine and --lacks describe targets named with --target${file ? "; the targets file's entries declare their own (machine:, lacks:)" : ""}`);
        }
        if (file) for (const e of file.entries) planned.push(fromEntry(e, file));
      }

      let checks = await loadChecks();
      const suites = [...new Set(checks.map((c) => c.suite))].sort();
      for (const s of opts.suite) if (!suites.includes(s)) throw new UsageError(`unknown suite '${s}' (suites: ${suites.join(", ")})`);
      if (opts.suite.length) checks = checks.filter((c) => opts.suite.includes(c.suite));

      // Every output is checked before any target is started or probed.
      const outs = opts.list
        ? undefined
        : {
            json: checkOutputFile(opts.json, "--json"),
            junit: checkOutputFile(opts.junit, "--junit"),
          };
      if (outs) oneStdout([outs.json, outs.junit]);

      const runs: TargetRun[] = [];
      const listing: string[] = [];
      if (planned.length) {
        for (const p of planned) {
          const target = makeTarget(p.spec, seed, p.options)!;
          const available = await target.available();
          runs.push({ target, label: p.label, required: true, options: p.options, available });
          const decl = [p.options.machine ? `machine ${p.options.machine}` : "", p.options.lacks?.length ? `lacks ${p.options.lacks.join(", ")}` : ""].filter(Boolean).join("; ");
          listing.push(`  ${p.label}${p.label !== p.spec ? ` = ${p.spec}` : ""}  (${p.from}${decl ? `; ${decl}` : ""}): ${available === true ? "ready" : `cannot start: ${available}`}`);
        }
      } else {
        for (const c of await defaultCandidates(seed)) {
          if (c.available === true && c.target) runs.push({ target: c.target, label: c.name, required: c.name === "model", available: true });
          listing.push(`  ${c.name}  (default candidate): ${c.available === true ? "found, used" : `left out: ${c.available}`}`);
        }
      }

      if (opts.list) {
        for (const c of checks) process.stdout.write(`${c.id}  [${c.suite}] ${c.title}  (needs ${c.needs.join(", ")})\n`);
        process.stdout.write(`targets${file ? ` (${file.file})` : ""}:\n${listing.join("\n")}\n`);
        return;
      }

      // A named target that cannot start: the reason comes first, before any check runs.
      for (const r of runs) if (r.required && r.available !== true) process.stderr.write(`hvsim: target ${r.label} cannot start: ${r.available}\n`);

      const tty = process.stderr.isTTY && !process.env.CI;
      const report = await runConformance(runs, checks, {
        seed,
        wallMs: () => performance.now(),
        onResult: (target, r, i, n) => {
          if (tty) process.stderr.write(`\r\x1b[K[${target}] ${i}/${n} ${r.outcome.status.padEnd(7)} ${r.id}${i === n ? "\n" : ""}`);
        },
      });
      process.exitCode = anyFailure(report) ? 1 : 0;
      const toStdout = outs!.json.kind === "stdout" || outs!.junit.kind === "stdout";
      // With a report on stdout the readable summary goes to stderr, so stdout stays parseable.
      const say = (s: string) => void (toStdout ? process.stderr : process.stdout).write(s);
      say(summaryText(report));
      writeOutputs([
        { out: outs!.json, data: JSON.stringify(report, null, 2) + "\n" },
        { out: outs!.junit, data: junitXml(report) },
      ]);
      say(`reports: ${opts.json}, ${opts.junit}\n`);
    });
}

/** Wraps `text` at `width` columns, continuation lines indented by `indent`, the first starting there. */
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let cur = "";
  for (const w of text.split(" ")) {
    if (cur && indent + cur.length + 1 + w.length > width) {
      lines.push(cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  lines.push(cur);
  return lines.join(`\n${" ".repeat(indent)}`);
}

function fromEntry(e: TargetsFile["entries"][number], file: TargetsFile): Planned {
  const options: TargetOptions = {
    ...(e.machine ? { machine: e.machine } : {}),
    ...(e.lacks.length ? { lacks: e.lacks } : {}),
    ...(Object.keys(e.env).length ? { env: e.env } : {}),
    ...(e.timeoutMs !== undefined ? { timeoutMs: e.timeoutMs } : {}),
  };
  return { label: e.name, spec: e.target, options, required: true, from: `${file.file}:${e.line}` };
}
