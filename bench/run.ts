// `npm run bench [-- [NAME...] [--max-time S] [--json FILE]]`: runs the benchmark suites under
// bench/ (those whose name or file contains one of NAME, or all), prints every case's ops/s, ±rme,
// ratio to the suite's reference and whether the goal is met. Goals are reported, never a failing
// exit: the exit status is 0 unless a suite cannot be loaded, a case throws, or the usage is wrong
// (2). Progress goes to stderr: a spinner on a terminal, plain lines otherwise (or when CI=true).
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import {
  BENCH_DIR, DEFAULT_MAX_TIME, RESULT_FORMAT, formatHz, formatSuite, loadSuites, runSuite, toJSON,
  type ProgressEvent, type RunResult, type SuiteResult,
} from "./harness.ts";

const USAGE = `usage: npm run bench -- [NAME...] [--max-time S] [--min-samples N] [--json FILE] [--dir DIR]

  NAME             run only suites whose name or file contains NAME (any of them)
  --max-time S     seconds of sampling per case (default ${DEFAULT_MAX_TIME})
  --min-samples N  minimum interleaved rounds (samples per case; default 10)
  --json FILE      also write the results as JSON to FILE
  --dir DIR        look for *.bench.ts under DIR instead of bench/

example: npm run bench -- scheduler --max-time 1 --json reports/bench.json
`;

export interface Output {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Draw a spinner (stderr is a terminal and not CI). */
  tty: boolean;
}

function defaultOutput(): Output {
  const ci = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false" && process.env.CI !== "0";
  return {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    tty: Boolean(process.stderr.isTTY) && !ci,
  };
}

const SPIN = ["|", "/", "-", "\\"];

function progressPrinter(o: Output): { onProgress: (ev: ProgressEvent) => void; done: () => void } {
  let frame = 0;
  let spinning = false;
  const clear = () => {
    if (spinning) o.err("\r\x1b[K");
    spinning = false;
  };
  return {
    onProgress(ev) {
      switch (ev.type) {
        case "suite-start":
          clear();
          o.err(`${ev.suite}: ${ev.cases} case${ev.cases === 1 ? "" : "s"}\n`);
          break;
        case "suite-skip":
          clear();
          o.err(`${ev.suite}: skipped (${ev.reason})\n`);
          break;
        case "case-start":
        case "case-cycle":
          if (o.tty) {
            const n = ev.type === "case-cycle" ? ` ${ev.samples} samples` : "";
            o.err(`\r\x1b[K  ${SPIN[frame++ % SPIN.length]} ${ev.case}${n}`);
            spinning = true;
          }
          break;
        case "case-done":
          clear();
          o.err(ev.error !== undefined
            ? `  ${ev.case}: error: ${ev.error}\n`
            : `  ${ev.case}: ${formatHz(ev.hz)} ops/s ±${ev.rme.toFixed(2)}% (${ev.samples} samples)\n`);
          break;
      }
    },
    done: clear,
  };
}

/** Runs the command; returns the exit status. */
export async function main(argv: readonly string[], o: Output = defaultOutput()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        "max-time": { type: "string" },
        "min-samples": { type: "string" },
        json: { type: "string" },
        dir: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    o.err(`bench: ${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    o.out(USAGE);
    return 0;
  }
  const maxTime = v["max-time"] === undefined ? DEFAULT_MAX_TIME : Number(v["max-time"]);
  if (!(Number.isFinite(maxTime) && maxTime > 0)) {
    o.err(`bench: --max-time must be a positive number of seconds, got ${v["max-time"]}\n`);
    return 2;
  }
  const minSamples = v["min-samples"] === undefined ? undefined : Number(v["min-samples"]);
  if (minSamples !== undefined && !(Number.isInteger(minSamples) && minSamples >= 1)) {
    o.err(`bench: --min-samples must be a positive integer, got ${v["min-samples"]}\n`);
    return 2;
  }
  const filter = parsed.positionals;
  let suites;
  try {
    suites = await loadSuites(filter, v.dir === undefined ? BENCH_DIR : resolve(v.dir));
  } catch (e) {
    o.err(`bench: cannot load the suites: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  if (suites.length === 0) {
    o.err(`bench: no suite matches ${filter.map((f) => JSON.stringify(f)).join(", ")}\n`);
    return 2;
  }
  const printer = progressPrinter(o);
  const results: SuiteResult[] = [];
  let failed = false;
  for (const s of suites) {
    let r: SuiteResult;
    try {
      r = await runSuite(s, { maxTime, ...(minSamples !== undefined ? { minSamples } : {}), onProgress: printer.onProgress });
    } catch (e) {
      printer.done();
      o.err(`bench: suite ${s.suite.name} failed: ${e instanceof Error ? e.message : String(e)}\n`);
      failed = true;
      continue;
    }
    printer.done();
    if (r.cases.some((c) => c.error !== undefined)) failed = true;
    results.push(r);
    o.out(`\n${formatSuite(r)}`);
  }
  const run: RunResult = { format: RESULT_FORMAT, suites: results, node: process.version, date: new Date().toISOString(), maxTime };
  if (v.json !== undefined) {
    writeFileSync(v.json, toJSON(run));
    o.err(`wrote ${v.json}\n`);
  }
  return failed ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
