// `hvsim bench`: every benchmark suite with its in-run reference, and the regression gate.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { DEFAULT_MAX_TIME, RESULT_FORMAT, formatSuite, loadSuites, runSuite, toJSON, type RunResult, type SuiteResult } from "../../../bench/harness.ts";
import { DEFAULT_TOLERANCE_PCT, checkBaseline, compareWithBaseline, formatGate } from "../../../bench/gate.ts";
import { REPO_ROOT } from "../../conform/runner.ts";
import { UsageError } from "../errors.ts";

const DEFAULT_BASELINE = join(REPO_ROOT, "reports", "baseline-bench.json");

interface BenchOpts {
  json?: string;
  compare?: string | boolean;
  maxRegression: string;
  updateBaseline?: boolean;
  maxTime: string;
}

export function register(program: Command): void {
  program
    .command("bench")
    .argument("[suite...]", "only suites whose name or file contains one of these")
    .description("Run the benchmark suites (PM timer hot read, scheduler, wire codecs, snapshot save/restore, KVP round trips, qtest round trips when a QEMU is available): ops/s, ±rme and each case's ratio to its in-run reference.")
    .option("--json <file>", "also write the results as JSON (machine-readable; the same shape as the baseline)")
    .option("--compare [baseline]", `compare ratios with a baseline (default ${join("reports", "baseline-bench.json")}); exit 1 when a case's whole ratio interval is below baseline x (1 - --max-regression)`)
    .option("--max-regression <pct>", "tolerance: how far below its baseline ratio a case's whole 95% interval must lie to count as a regression, in percent", String(DEFAULT_TOLERANCE_PCT))
    .option("--update-baseline", "rewrite the committed baseline with this run")
    .option("--max-time <s>", "seconds of sampling per case", String(DEFAULT_MAX_TIME))
    .addHelpText(
      "after",
      `
Ratios, not absolute speeds, are compared: a slow machine slows a case and its reference alike.
The cases of a suite are sampled in interleaved rounds (a short timed batch each); a ratio is the
median of the per-round ratios with a distribution-free 95% interval, shown as [low, high] and
±noise next to every verdict. Goals are reported, never enforced; only --compare turns a
regression into exit status 1. A missing or malformed baseline is a usage error (exit 2).
Test hook (not for normal use): HVSIM_BENCH_INJECT_SLOWDOWN=<case or suite/case>:<factor> makes
that case's timed batches take <factor> times as long, to check that the gate catches it.

Examples:
  $ npx hvsim bench
  $ npx hvsim bench pmtimer scheduler --json reports/bench.json
  $ npx hvsim bench --compare --max-regression 20
  $ npx hvsim bench --update-baseline`,
    )
    .action(async (filter: string[], opts: BenchOpts) => {
      const maxTime = Number(opts.maxTime);
      if (!(maxTime > 0)) throw new UsageError(`--max-time must be a positive number of seconds, got ${opts.maxTime}`);
      const maxReg = Number(opts.maxRegression);
      if (!(maxReg >= 0)) throw new UsageError(`--max-regression must be a percentage >= 0, got ${opts.maxRegression}`);
      const baselineFile = opts.compare === true ? DEFAULT_BASELINE : typeof opts.compare === "string" ? opts.compare : undefined;
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
        process.stdout.write(formatSuite(r) + "\n");
      }
      let run: RunResult = { format: RESULT_FORMAT, suites: results, node: process.version, date: new Date().toISOString(), maxTime };
      const g = baseline ? compareWithBaseline(run, baseline, maxReg) : undefined;
      if (g) {
        run = { ...run, gate: { baseline: baselineFile!, tolerancePct: maxReg, compared: g.compared, regressions: g.regressions.length, baselineFormat: baseline!.format ?? 1 } };
      }
      if (opts.json) {
        mkdirSync(dirname(opts.json), { recursive: true });
        writeFileSync(opts.json, toJSON(run));
      }
      if (opts.updateBaseline) {
        mkdirSync(dirname(DEFAULT_BASELINE), { recursive: true });
        writeFileSync(DEFAULT_BASELINE, toJSON(run));
        process.stdout.write(`baseline written: ${DEFAULT_BASELINE}\n`);
      }
      if (g) {
        if (baseline!.format === undefined) process.stdout.write(`note: ${baselineFile} is an older result without intervals; its ratios are compared (refresh it with --update-baseline)\n`);
        process.stdout.write(formatGate(g));
        process.stdout.write(`gate: ${g.compared} cases compared with ${baselineFile} (regression = whole interval below baseline x ${(1 - maxReg / 100).toFixed(2)}), ${g.regressions.length} regressions\n`);
        if (g.regressions.length) process.exitCode = 1;
      }
    });
}
