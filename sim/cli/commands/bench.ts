// `hvsim bench`: every benchmark suite with its in-run reference, and the regression gate.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { DEFAULT_MAX_TIME, formatSuite, loadSuites, runSuite, toJSON, type RunResult, type SuiteResult } from "../../../bench/harness.ts";
import { compareWithBaseline } from "../../../bench/gate.ts";
import { REPO_ROOT } from "../../conform/runner.ts";
import { Failure, UsageError } from "../errors.ts";

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
    .option("--compare [baseline]", `compare ratios with a baseline (default ${join("reports", "baseline-bench.json")}); exit 1 past --max-regression`)
    .option("--max-regression <pct>", "allowed drop of a case's ratio below its baseline, in percent", "25")
    .option("--update-baseline", "rewrite the committed baseline with this run")
    .option("--max-time <s>", "seconds of sampling per case", String(DEFAULT_MAX_TIME))
    .addHelpText(
      "after",
      `
Ratios, not absolute speeds, are compared: a slow machine slows a case and its reference alike.
Goals are reported, never enforced; only --compare turns a regression into exit status 1.

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
        if (!existsSync(baselineFile)) throw new Failure(`no baseline at ${baselineFile} (create one with --update-baseline)`);
        try {
          baseline = JSON.parse(readFileSync(baselineFile, "utf8")) as RunResult;
        } catch (e) {
          throw new Failure(`cannot read baseline ${baselineFile}: ${(e as Error).message}`);
        }
        if (!Array.isArray(baseline.suites)) throw new Failure(`${baselineFile} is not a benchmark result (no suites)`);
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
      const run: RunResult = { suites: results, node: process.version, date: new Date().toISOString(), maxTime };
      if (opts.json) {
        mkdirSync(dirname(opts.json), { recursive: true });
        writeFileSync(opts.json, toJSON(run));
      }
      if (opts.updateBaseline) {
        mkdirSync(dirname(DEFAULT_BASELINE), { recursive: true });
        writeFileSync(DEFAULT_BASELINE, toJSON(run));
        process.stdout.write(`baseline written: ${DEFAULT_BASELINE}\n`);
      }
      if (baseline) {
        const g = compareWithBaseline(run, baseline, maxReg);
        for (const m of g.missing) process.stdout.write(`note: ${m}\n`);
        for (const r of g.regressions) {
          process.stdout.write(`REGRESSION ${r.suite} / ${r.case}: ratio ${r.ratio.toFixed(3)} vs baseline ${r.baseline.toFixed(3)} (${r.percent.toFixed(1)}% worse, allowed ${maxReg}%)\n`);
        }
        process.stdout.write(`gate: ${g.compared} cases compared with ${baselineFile}, ${g.regressions.length} regressions\n`);
        if (g.regressions.length) process.exitCode = 1;
      }
    });
}
