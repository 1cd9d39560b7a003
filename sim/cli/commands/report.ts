// `hvsim report`: one self-contained HTML page under reports/.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { Command } from "commander";
import { renderReport, type FuzzFinding, type ReportData, type SnapshotMarker } from "../../report/html.ts";
import { markerFromNote } from "../../report/timeline.ts";
import { loadChecks, REPO_ROOT, runConformance, type ConformReport } from "../../conform/runner.ts";
import { modelTarget } from "../../conform/model-target.ts";
import { runScenarioFile } from "../../scenario/index.ts";
import { loadScenarioFile } from "../../scenario/loader.ts";
import type { TraceRecord } from "../../clock/trace.ts";
import { Failure, UsageError } from "../errors.ts";
import { checkOutputFile, describeErrno, writeOutput } from "../output.ts";

const R = (p: string) => join(REPO_ROOT, p);

/** Reads an input JSON file before any work; a missing, unreadable or malformed one is exit 2. */
function readJson<T>(file: string, what: string): T {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${file}: ${describeErrno(e)}`, false);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new UsageError(`${what} ${file} is not JSON: ${(e as Error).message}`, false);
  }
}

function fuzzFindings(dir: string): FuzzFinding[] {
  const out: FuzzFinding[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".json")) {
        let m: Partial<{ target: string; kind: string; message: string; seed: number; run: number }>;
        try {
          m = JSON.parse(readFileSync(p, "utf8")) as typeof m;
        } catch {
          continue; // not a finding's sidecar
        }
        if (typeof m?.target !== "string" || typeof m.kind !== "string") continue;
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
    .option("--out <file>", "where to write it ('-': standard output)", join("reports", "report.html"))
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
      // Every input and the output are checked before the conformance run and the scenario.
      const out = checkOutputFile(opts.out, "--out");
      const conformFile = opts.conform ?? (existsSync(join("reports", "conform.json")) ? join("reports", "conform.json") : undefined);
      const conformIn = conformFile ? readJson<ConformReport>(conformFile, "conformance report") : undefined;
      const benchFile = opts.bench ?? (existsSync(join("reports", "bench.json")) ? join("reports", "bench.json") : undefined);
      const baseFile = opts.baseline ?? (existsSync(R("reports/baseline-bench.json")) ? R("reports/baseline-bench.json") : undefined);
      const bench = benchFile ? readJson<NonNullable<ReportData["bench"]>>(benchFile, "benchmark results") : undefined;
      const baseline = baseFile ? readJson<NonNullable<ReportData["baseline"]>>(baseFile, "benchmark baseline") : undefined;
      if (opts.fuzz && existsSync(opts.fuzz) && !statSync(opts.fuzz).isDirectory()) throw new UsageError(`--fuzz ${opts.fuzz}: not a directory`, false);
      if (!existsSync(opts.scenario)) throw new UsageError(`no such scenario: ${opts.scenario}`, false);
      if (!statSync(opts.scenario).isFile()) throw new UsageError(`--scenario ${opts.scenario}: not a file`, false);

      const conform = conformIn ?? (await runConformance([modelTarget(1)], await loadChecks(), { seed: 1 }));
      const loaded = loadScenarioFile(opts.scenario);
      const records: TraceRecord[] = [];
      const markers: SnapshotMarker[] = [];
      // Save steps write into a private temporary folder (relative snapshot names resolve against
      // it), removed afterwards: the report leaves nothing behind but --out.
      const snapshotDir = mkdtempSync(join(tmpdir(), "hvsim-report-"));
      let run: ReturnType<typeof runScenarioFile>;
      try {
        run = runScenarioFile(opts.scenario, {
          onTrace: (r) => void records.push(r),
          onNote: (text) => {
            const m = markerFromNote(text, records.length);
            if (m) markers.push(m);
          },
          snapshotDir,
        });
      } finally {
        rmSync(snapshotDir, { recursive: true, force: true });
      }
      if (run.status === "invalid") throw new Failure(`scenario ${opts.scenario} is invalid: ${run.issues.map((i) => `${i.line}:${i.column} ${i.message}`).join("; ")}`, 2);
      const scenario = {
        name: loaded.ok ? loaded.scenario.name ?? relative(REPO_ROOT, opts.scenario) : opts.scenario,
        file: relative(REPO_ROOT, opts.scenario),
        records,
        markers,
        traceHash: run.traceHash,
        status: run.status === "ok" ? "all steps passed" : `failed at step ${run.failure.step}: ${run.failure.message}`,
      };
      const data: ReportData = {
        title: "hvsim report",
        generatedFor: `seed ${conform.seed}; targets ${conform.targets.map((t) => t.target).join(", ")}`,
        conform,
        scenario,
        ...(bench ? { bench } : {}),
        ...(baseline ? { baseline } : {}),
        ...(opts.fuzz ? { fuzz: { source: opts.fuzz, findings: existsSync(opts.fuzz) ? fuzzFindings(opts.fuzz) : [] } } : {}),
      };
      writeOutput(out, renderReport(data));
      if (out.kind !== "stdout") process.stdout.write(`wrote ${opts.out}\n`);
    });
}
