// `hvsim report`: one self-contained HTML page under reports/.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import type { Command } from "commander";
import { renderReport, type FuzzFinding, type ReportData, type SnapshotMarker } from "../../report/html.ts";
import { markerFromNote } from "../../report/timeline.ts";
import { loadChecks, REPO_ROOT, runConformance, type ConformReport } from "../../conform/runner.ts";
import { modelTarget } from "../../conform/model-target.ts";
import { runScenarioFile } from "../../scenario/index.ts";
import { loadScenarioFile } from "../../scenario/loader.ts";
import type { TraceRecord } from "../../clock/trace.ts";
import { Failure } from "../errors.ts";

const R = (p: string) => join(REPO_ROOT, p);

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch (e) {
    throw new Failure(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

function fuzzFindings(dir: string): FuzzFinding[] {
  const out: FuzzFinding[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".json")) {
        const m = JSON.parse(readFileSync(p, "utf8")) as Partial<{ target: string; kind: string; message: string; seed: number; run: number }>;
        if (typeof m.target !== "string" || typeof m.kind !== "string") continue;
        const bin = p.replace(/\.json$/, ".bin");
        out.push({ target: m.target, kind: m.kind, message: m.message ?? "", seed: m.seed ?? 0, run: m.run ?? 0, file: bin, bytes: existsSync(bin) ? statSync(bin).size : 0 });
      }
    }
  };
  walk(dir);
  return out;
}

export function register(program: Command): void {
  program
    .command("report")
    .description("Write one self-contained HTML report: conformance matrix, a scenario timeline, benchmark ratios against the baseline, fuzz findings.")
    .option("--out <file>", "where to write it", R("reports/report.html"))
    .option("--scenario <file>", "scenario to run and plot", R("specs/scenarios/report-timeline.yaml"))
    .option("--conform <file>", "conformance JSON report (default: reports/conform.json, else a fresh run on the model)")
    .option("--bench <file>", "benchmark JSON (default: reports/bench.json when present)")
    .option("--baseline <file>", "benchmark baseline JSON (default: reports/baseline-bench.json when present)")
    .option("--fuzz <dir>", "fuzz corpus directory whose findings to list")
    .addHelpText(
      "after",
      `
The page has no scripts and fetches nothing: open it anywhere, attach it to a CI run.

Examples:
  $ npx hvsim report
  $ npx hvsim conform && npx hvsim bench --json reports/bench.json && npx hvsim report --fuzz fuzz-out`,
    )
    .action(async (opts: { out: string; scenario: string; conform?: string; bench?: string; baseline?: string; fuzz?: string }) => {
      let conform: ConformReport;
      const conformFile = opts.conform ?? (existsSync(R("reports/conform.json")) ? R("reports/conform.json") : undefined);
      if (conformFile) conform = readJson<ConformReport>(conformFile, "conformance report");
      else conform = await runConformance([modelTarget(1)], await loadChecks(), { seed: 1 });

      if (!existsSync(opts.scenario)) throw new Failure(`no such scenario: ${opts.scenario}`);
      const loaded = loadScenarioFile(opts.scenario);
      const records: TraceRecord[] = [];
      const markers: SnapshotMarker[] = [];
      // Save steps write here (relative snapshot names resolve against it); it must exist.
      const snapshotDir = join(dirname(opts.out), ".report-snapshots");
      mkdirSync(snapshotDir, { recursive: true });
      const run = runScenarioFile(opts.scenario, {
        onTrace: (r) => void records.push(r),
        onNote: (text) => {
          const m = markerFromNote(text, records.length);
          if (m) markers.push(m);
        },
        snapshotDir,
      });
      if (run.status === "invalid") throw new Failure(`scenario ${opts.scenario} is invalid: ${run.issues.map((i) => `${i.line}:${i.column} ${i.message}`).join("; ")}`);
      const scenario = {
        name: loaded.ok ? loaded.scenario.name ?? relative(REPO_ROOT, opts.scenario) : opts.scenario,
        file: relative(REPO_ROOT, opts.scenario),
        records,
        markers,
        traceHash: run.traceHash,
        status: run.status === "ok" ? "all steps passed" : `failed at step ${run.failure.step}: ${run.failure.message}`,
      };
      const benchFile = opts.bench ?? (existsSync(R("reports/bench.json")) ? R("reports/bench.json") : undefined);
      const baseFile = opts.baseline ?? (existsSync(R("reports/baseline-bench.json")) ? R("reports/baseline-bench.json") : undefined);
      const data: ReportData = {
        title: "hvsim report",
        generatedFor: `seed ${conform.seed}; targets ${conform.targets.map((t) => t.target).join(", ")}`,
        conform,
        scenario,
        ...(benchFile ? { bench: readJson(benchFile, "benchmark results") } : {}),
        ...(baseFile ? { baseline: readJson(baseFile, "benchmark baseline") } : {}),
        ...(opts.fuzz ? { fuzz: { source: opts.fuzz, findings: existsSync(opts.fuzz) ? fuzzFindings(opts.fuzz) : [] } } : {}),
      };
      mkdirSync(dirname(opts.out), { recursive: true });
      writeFileSync(opts.out, renderReport(data));
      process.stdout.write(`wrote ${opts.out}\n`);
    });
}
