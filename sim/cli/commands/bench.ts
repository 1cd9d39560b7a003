// `hvsim bench`: every benchmark suite with its in-run reference, and the regression gate.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { DEFAULT_MAX_TIME, RESULT_FORMAT, formatSuite, loadSuites, runSuite, toJSON, type RunResult, type SuiteResult } from "../../../bench/harness.ts";
import { DEFAULT_TOLERANCE_PCT, checkBaseline, compareWithBaseline, formatGate } from "../../../bench/gate.ts";
import { REPO_ROOT } from "../../conform/runner.ts";
import { UsageError } from "../errors.ts";
import { plural } from "../text.ts";
import { checkOutputFile, oneStdout, writeOutput, type Output } from "../output.ts";

const DEFAULT_BASELINE = join(REPO_ROOT, "reports", "baseline-bench.json");

const isFile = (p: string) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

interface BenchOpts {
  json?: string;
  compare?: string | boolean;
  baseline?: string;
  maxRegression: string;
  updateBaseline?: boolean;
  maxTime: string;
}

export function register(program: Command): void {
  program
    .command("bench")
    .argument("[suite...]", "only suites whose name or file contains one of these")
    .description("Run the benchmark suites (PM timer hot read, scheduler, wire codecs, snapshot save/restore, KVP round trips, qtest round trips when a QEMU is available): ops/s, ±rme and each case's ratio to its in-run reference.")
    .option("--json <file>", "also write the results as JSON (machine-readable; the same shape as the baseline; '-': standard output)")
    .option("--compare [baseline.json]", "compare ratios with the baseline (--baseline, or this .json file); exit 1 when a case's whole ratio interval is below baseline x (1 - --max-regression)")
    .option("--baseline <file>", `the baseline --compare reads and --update-baseline writes (default: the committed ${join("reports", "baseline-bench.json")})`)
    .option("--max-regression <pct>", "tolerance: how far below its baseline ratio a case's whole 95% interval must lie to count as a regression, in percent", String(DEFAULT_TOLERANCE_PCT))
    .option("--update-baseline", "write this run as the baseline (--baseline, default the committed one)")
    .option("--max-time <s>", "seconds of sampling per case", String(DEFAULT_MAX_TIME))
    .addHelpText(
      "after",
      `
Ratios, not absolute speeds, are compared: a slow machine slows a case and its reference alike.
The cases of a suite are sampled in interleaved rounds (a short timed batch each); a ratio is the
median of the per-round ratios with a distribution-free 95% interval, shown as [low, high] and
±noise next to every verdict. Goals are reported, never enforced; only --compare turns a
regression into exit status 1. A missing or malformed baseline is a usage error (exit 2).
A word after --compare that is not an existing file and does not end in .json is a suite name,
never a baseline path: 'bench --compare pmtimer' compares the pmtimer suites with the default
baseline; 'bench --compare --baseline FILE' or 'bench --compare FILE.json' compare with FILE.
Test hook (not for normal use): HVSIM_BENCH_INJECT_SLOWDOWN=<case or suite/case>:<factor> makes
that case's timed batches take <factor> times as long, to check that the gate catches it.

Examples:
  $ npx hvsim bench
  $ npx hvsim bench pmtimer scheduler --json reports/bench.json
  $ npx hvsim bench --compare --max-regression 20
  $ npx hvsim bench --update-baseline`,
    )
    .action(async (suiteArgs: string[], opts: BenchOpts) => {
      let filter = suiteArgs;
      const maxTime = Number(opts.maxTime);
      if (!(maxTime > 0)) throw new UsageError(`--max-time must be a positive number of seconds, got ${opts.maxTime}`);
      const maxReg = Number(opts.maxRegression);
      if (!(maxReg >= 0)) throw new UsageError(`--max-regression must be a percentage >= 0, got ${opts.maxRegression}`);
      // `--compare X`: X is a baseline path only if it is an existing file or ends in .json; otherwise
      // commander took a suite name as the option's optional value, and it goes back to the suites.
      let compare = opts.compare;
      if (typeof compare === "string" && !compare.endsWith(".json") && !isFile(compare)) {
        filter = [compare, ...filter];
        compare = true;
      }
      if (typeof compare === "string" && opts.baseline !== undefined && compare !== opts.baseline) {
        throw new UsageError(`--compare ${compare} and --baseline ${opts.baseline} name two different baselines; give one`);
      }
      const baselinePath = typeof compare === "string" ? compare : opts.baseline ?? DEFAULT_BASELINE;
      const baselineFile = compare ? baselinePath : undefined;
      const jsonOut = opts.json !== undefined ? checkOutputFile(opts.json, "--json") : undefined;
      const baselineOut: Output | undefined = opts.updateBaseline ? checkOutputFile(baselinePath, "--update-baseline", { allowStdout: false }) : undefined;
      oneStdout([jsonOut]);
      // With the JSON on stdout the readable tables go to stderr, so stdout stays parseable.
      const say = (t: string) => void (jsonOut?.kind === "stdout" ? process.stderr : process.stdout).write(t);
      let baseline: RunResult | undefined;
      if (baselineFile) {
        if (!existsSync(baselineFile)) throw new UsageError(`no baseline at ${baselineFile} (create one with --update-baseline)`);
        let parsed: unknown;
        try {
          parsed = JSON.parse(readFileSync(baselineFile, "utf8"));
        } catch (e) {
          throw new UsageError(`cannot read baseline ${baselineFile}: ${(e as Error).message}`);
        }
        const problem = checkBaseline(parsed);
        if (problem) throw new UsageError(`baseline ${baselineFile} is malformed: ${problem}`);
        baseline = parsed as RunResult;
      }
      const suites = await loadSuites(filter);
      if (!suites.length) throw new UsageError(`no benchmark suite matches ${filter.join(", ")}`);
      const tty = process.stderr.isTTY && !process.env.CI;
      const results: SuiteResult[] = [];
      for (const s of suites) {
        const r = await runSuite(s, {
          maxTime,
          onProgress: (ev) => {
            if (!tty) return;
            if (ev.type === "case-start" || ev.type === "case-cycle") process.stderr.write(`\r\x1b[K${ev.suite}: ${ev.case}${ev.type === "case-cycle" ? ` (${ev.samples} samples)` : ""}`);
          },
        });
        if (tty) process.stderr.write("\r\x1b[K");
        results.push(r);
        say(formatSuite(r) + "\n");
      }
      let run: RunResult = { format: RESULT_FORMAT, suites: results, node: process.version, date: new Date().toISOString(), maxTime };
      const g = baseline ? compareWithBaseline(run, baseline, maxReg) : undefined;
      if (g) {
        run = { ...run, gate: { baseline: baselineFile!, tolerancePct: maxReg, compared: g.compared, regressions: g.regressions.length, baselineFormat: baseline!.format ?? 1 } };
      }
      if (jsonOut) writeOutput(jsonOut, toJSON(run));
      if (baselineOut) {
        writeOutput(baselineOut, toJSON(run));
        say(`baseline written: ${baselinePath}\n`);
      }
      if (g) {
        if (baseline!.format === undefined) say(`note: ${baselineFile} is an older result without intervals; its ratios are compared (refresh it with --update-baseline)\n`);
        say(formatGate(g));
        say(`gate: ${plural(g.compared, "case")} compared with ${baselineFile} (regression = whole interval below baseline x ${(1 - maxReg / 100).toFixed(2)}), ${plural(g.regressions.length, "regression")}\n`);
        if (g.regressions.length) process.exitCode = 1;
      }
    });
}
