// Every example scenario under specs/scenarios/ runs through the runner: the top-level ones pass,
// invalid/ ones are refused with the position and message in their "# expect-error:" header (or a
// .expect file next to a JSON one), failing/ ones fail at the step their "# expect-failure:" names.
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatIssue, loadScenarioFile, runScenarioFile } from "../../sim/scenario/index.ts";

const root = join(import.meta.dirname, "..", "scenarios");
const isScenario = (f: string) => /\.(ya?ml|json)$/.test(f);

describe("example scenarios", () => {
  const files = readdirSync(root).filter(isScenario).sort();
  it("there are examples", () => expect(files.length).toBeGreaterThanOrEqual(2));
  for (const f of files) {
    it(`${f} passes`, () => {
      const dir = mkdtempSync(join(tmpdir(), "hvsim-scn-"));
      try {
        const r = runScenarioFile(join(root, f), { snapshotDir: dir });
        if (r.status === "invalid") throw new Error(r.issues.map(formatIssue).join("\n"));
        if (r.status === "failed") throw new Error(JSON.stringify(r.failure));
        expect(r.traceHash).toMatch(/^[0-9a-f]{64}$/);
        // Deterministic: a second run gives the same trace hash.
        const again = runScenarioFile(join(root, f), { snapshotDir: dir });
        expect(again.status === "ok" && again.traceHash).toBe(r.traceHash);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

function expectation(file: string, tag: string): string {
  const side = file.replace(/\.[a-z]+$/, ".expect");
  if (existsSync(side)) return readFileSync(side, "utf8").trim();
  const m = new RegExp(`^# ${tag}: (.*)$`, "m").exec(readFileSync(file, "utf8"));
  if (!m) throw new Error(`${file} has no "# ${tag}:" line`);
  return m[1]!.trim();
}

describe("malformed scenarios", () => {
  const dir = join(root, "invalid");
  const files = readdirSync(dir).filter(isScenario).sort();
  it("there are negative examples", () => expect(files.length).toBeGreaterThanOrEqual(5));
  for (const f of files) {
    it(`${f} is refused at the expected line:column`, () => {
      const file = join(dir, f);
      const [pos, ...words] = expectation(file, "expect-error").split(" ");
      const r = runScenarioFile(file, { snapshotDir: "/nonexistent-dir-nothing-is-written" });
      if (r.status !== "invalid") throw new Error(`expected ${f} to be refused, got ${r.status}`);
      const first = r.issues[0]!;
      expect(`${first.line}:${first.column}`).toBe(pos);
      expect(first.message).toContain(words.join(" "));
      expect(formatIssue(first)).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:${pos}: `));
    });
  }
});

describe("failing scenarios", () => {
  const dir = join(root, "failing");
  for (const f of readdirSync(dir).filter(isScenario).sort()) {
    it(`${f} fails at the step it names`, () => {
      const m = /^step (\d+) line (\d+) expected (\S+) actual (\S+)$/.exec(expectation(join(dir, f), "expect-failure"));
      if (!m) throw new Error("bad expect-failure line");
      const r = runScenarioFile(join(dir, f));
      if (r.status !== "failed") throw new Error(`expected a failure, got ${r.status}`);
      expect(r.failure).toMatchObject({ step: Number(m[1]), line: Number(m[2]), expected: m[3], actual: m[4] });
    });
  }
});

describe("scenario loading details", () => {
  it("reports every problem, sorted by position, and creates no bench", () => {
    const file = join(root, "invalid", "bad-size.yaml");
    expect(loadScenarioFile(file).ok).toBe(false);
    expect(loadScenarioFile(join(root, "nope.yaml"))).toMatchObject({ ok: false, issues: [{ line: 1, column: 1, message: expect.stringMatching(/ENOENT/) }] });
  });
});
