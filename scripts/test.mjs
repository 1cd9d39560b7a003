#!/usr/bin/env node
// `npm test`: lint, type-check, then every spec and property under vitest with v8 coverage
// (fails under 85% line coverage of sim/). Ends with one plain line read by CI:
//   N passed, N failed, N skipped
// counted from vitest's JSON report, not from its own console summary.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };
const extra = process.argv.slice(2);

function step(label, cmd, args) {
  process.stdout.write(`\n== ${label}\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env });
  return r.status ?? 1;
}

let failedSteps = [];
if (step("lint (eslint)", bin("eslint"), ["."]) !== 0) failedSteps.push("lint");
if (step("typecheck (tsc)", bin("tsc"), ["--noEmit", "-p", "."]) !== 0) failedSteps.push("typecheck");

const outDir = join(root, ".cache", "test");
mkdirSync(outDir, { recursive: true });
const jsonOut = join(outDir, "vitest.json");
if (existsSync(jsonOut)) rmSync(jsonOut);
const vitestStatus = step("specs and properties (vitest, v8 coverage)", bin("vitest"), [
  "run", "--coverage", "--reporter=default", "--reporter=json", `--outputFile.json=${jsonOut}`, ...extra,
]);

let passed = 0, failed = 0, skipped = 0;
if (existsSync(jsonOut)) {
  const report = JSON.parse(readFileSync(jsonOut, "utf8"));
  passed = report.numPassedTests ?? 0;
  failed = report.numFailedTests ?? 0;
  skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  // A suite that failed to load counts as a failure even though it has no test results.
  for (const file of report.testResults ?? []) {
    if (file.status === "failed" && (file.assertionResults ?? []).length === 0) failed += 1;
  }
} else {
  failed += 1;
}
if (vitestStatus !== 0 && failed === 0) failedSteps.push("vitest (coverage threshold or run error)");
failed += failedSteps.length;
if (failedSteps.length) process.stdout.write(`\nfailed steps: ${failedSteps.join(", ")}\n`);
process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed === 0 && vitestStatus === 0 ? 0 : 1);
