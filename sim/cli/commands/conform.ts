// `hvsim conform`: run conformance suites on targets and report.
import { join } from "node:path";
import type { Command } from "commander";
import { loadChecks, makeTarget, runConformance, counts } from "../../conform/runner.ts";
import { junitXml, summaryText } from "../../conform/report.ts";
import { defaultTargetNames } from "../../conform/targets.ts";
import type { QtestMachine, Target } from "../../conform/types.ts";
import { UsageError } from "../errors.ts";
import { checkOutputFile, oneStdout, writeOutputs } from "../output.ts";
import "../../targets/index.ts";

const QTEST_MACHINES = ["q35", "bhyve", "acpi", "acpi24"] as const satisfies readonly QtestMachine[];

const collect = (v: string, prev: string[]) => [...prev, v];

export function register(program: Command): void {
  program
    .command("conform")
    .description("Run conformance suites on the embedded model and on real targets (QEMU over qtest, the Linux Hyper-V daemons).")
    .option("-t, --target <target>", "target to check (repeatable): model, qtest:<command>, hv-daemon:kvp|vss[=<program>|=asan]", collect, [])
    .option("-m, --machine <machine>", "the machine a qtest:<command> target implements: q35, bhyve, acpi or acpi24", "q35")
    .option("-s, --suite <suite>", "only this suite (repeatable), e.g. pmtimer, vmgenid, kvp, vss, vmm", collect, [])
    .option("--json <file>", "write the JSON report here ('-': standard output)", join("reports", "conform.json"))
    .option("--junit <file>", "write a JUnit XML report here ('-': standard output)", join("reports", "conform.junit.xml"))
    .option("--seed <n>", "seed for checks that draw random operation sequences", "1")
    .option("--list", "list the checks and the targets found here, run nothing")
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
Without --target: the model plus every real target whose programs are installed.
A check a target cannot run (missing capability or program) is reported as skipped with the
reason, never as passed. A deviation is a step where the two kernel profiles (linux-6.1 and the
Hyper-V spec) differ as a named, known difference explains; it is listed, not a failure.
Outputs are checked before anything runs; a missing folder is created only for the default
reports/ folder. Exit status: 0 all passed, 1 any failure, 2 usage error.

Examples:
  $ npx hvsim conform
  $ npx hvsim conform --suite pmtimer --target model --json reports/pm.json
  $ npx hvsim conform --target 'qtest:npx hvsim qtest --machine bhyve' --machine bhyve --suite pmtimer`,
    )
    .action(async (opts: { target: string[]; machine: string; suite: string[]; json: string; junit: string; seed: string; list?: boolean }) => {
      const seed = Number(opts.seed);
      if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got ${opts.seed}`);
      if (!(QTEST_MACHINES as readonly string[]).includes(opts.machine)) throw new UsageError(`--machine must be one of ${QTEST_MACHINES.join(", ")}, got '${opts.machine}'`);
      const machine = opts.machine as QtestMachine;
      const outs = opts.list
        ? undefined
        : {
            json: checkOutputFile(opts.json, "--json"),
            junit: checkOutputFile(opts.junit, "--junit"),
          };
      if (outs) oneStdout([outs.json, outs.junit]);
      const names = opts.target.length ? opts.target : await defaultTargetNames();
      const targets: Target[] = names.map((n) => {
        const t = makeTarget(n, seed, { machine });
        if (!t) throw new UsageError(`unknown target '${n}' (model, qtest:<command>, hv-daemon:kvp, hv-daemon:vss, hv-daemon:kvp=<program>, hv-daemon:kvp=asan)`);
        return t;
      });
      let checks = await loadChecks();
      const suites = [...new Set(checks.map((c) => c.suite))].sort();
      for (const s of opts.suite) if (!suites.includes(s)) throw new UsageError(`unknown suite '${s}' (suites: ${suites.join(", ")})`);
      if (opts.suite.length) checks = checks.filter((c) => opts.suite.includes(c.suite));
      if (opts.list) {
        for (const c of checks) process.stdout.write(`${c.id}  [${c.suite}] ${c.title}  (needs ${c.needs.join(", ")})\n`);
        process.stdout.write(`targets: ${names.join(", ")}\n`);
        return;
      }
      const tty = process.stderr.isTTY && !process.env.CI;
      const report = await runConformance(targets, checks, {
        seed,
        wallMs: () => performance.now(),
        onResult: (target, r, i, n) => {
          if (tty) process.stderr.write(`\r\x1b[K[${target}] ${i}/${n} ${r.outcome.status.padEnd(7)} ${r.id}${i === n ? "\n" : ""}`);
        },
      });
      const failed = report.targets.some((t) => counts(t).failed > 0);
      process.exitCode = failed ? 1 : 0;
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
