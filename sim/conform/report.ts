// Conformance reports: a readable per-target summary, JSON, and JUnit XML for CI dashboards.
//
// A check the target cannot run at all (it lacks a capability the check needs, by its kind or as
// declared with --lacks) is "not applicable": counted apart in the summary line, kept in JSON
// (`applicable: false`), left out of JUnit. "Skipped" is for checks that apply but could not run,
// always with the reason. A target the user named that cannot start is an error, never skips.
import { counts, type ConformReport, type TargetReport } from "./runner.ts";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** `target: N passed, N failed, N skipped, N not applicable[, N deviations]` (or why it could not start). */
export function summaryLine(t: TargetReport): string {
  if (t.startError !== undefined) return `${t.target}: could not start: ${t.startError}`;
  const c = counts(t);
  return `${t.target}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped, ${c.notApplicable} not applicable${c.deviations ? `, ${plural(c.deviations, "deviation")}` : ""}`;
}

export function summaryText(r: ConformReport): string {
  const lines: string[] = [];
  for (const t of r.targets) {
    lines.push(summaryLine(t));
    if (t.startError !== undefined) continue;
    if (t.spec !== undefined && t.spec !== t.target) lines.push(`  (target ${t.spec})`);
    if (t.unavailable) lines.push(`  (target unavailable: ${t.unavailable})`);
    for (const x of t.results) {
      const o = x.outcome;
      if (o.status === "failed") lines.push(`  FAIL ${x.id}: ${x.title}\n${indent(o.detail, 6)}`);
    }
    if (!t.unavailable) {
      const reasons = new Map<string, string[]>();
      for (const x of t.results) {
        if (x.outcome.status === "skipped" && x.outcome.applicable !== false) reasons.set(x.outcome.detail, [...(reasons.get(x.outcome.detail) ?? []), x.id]);
      }
      for (const [why, ids] of reasons) lines.push(`  skipped ${ids.length} (${why}): ${ids.join(", ")}`);
    }
    const lacking = new Set<string>();
    for (const x of t.results) {
      const o = x.outcome;
      if (o.status !== "skipped" || o.applicable !== false) continue;
      const at = o.detail.lastIndexOf(" lacks ");
      if (at >= 0) for (const cap of o.detail.slice(at + " lacks ".length).split(", ")) lacking.add(cap);
    }
    if (lacking.size) lines.push(`  (not applicable: it lacks ${[...lacking].sort().join(", ")}${t.lacks?.length ? `; declared: ${t.lacks.join(", ")}` : ""})`);
    for (const x of t.results) {
      if (x.outcome.status !== "skipped" && x.outcome.deviations?.length) {
        for (const d of x.outcome.deviations) lines.push(`  deviation ${x.id}: ${d}`);
      }
    }
  }
  if (r.targets.some((t) => counts(t).deviations > 0)) {
    lines.push("(a deviation is a step where the linux-6.1 and spec kernel profiles differ, explained by the named known difference; it is reported, not a failure)");
  }
  return lines.join("\n") + "\n";
}

function indent(s: string, n: number): string {
  return s.split("\n").map((l) => " ".repeat(n) + l).join("\n");
}

const xml = (s: string) =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    // Control characters other than tab and newline are not allowed in XML 1.0 at all.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

/** A JUnit testsuite name: the label with every run of characters other than [A-Za-z0-9._:-] as one '_'. */
export function junitSuiteName(label: string): string {
  const s = label.replace(/[^A-Za-z0-9._:-]+/g, "_").replace(/^_+|_+$/g, "");
  return s || "target";
}

const secs = (ms: number) => (ms / 1000).toFixed(3);

/**
 * JUnit XML: one <testsuite> per target, named without spaces or slashes (the target as given is
 * the `target` property), with tests/failures/errors/skipped/time; a testcase per applicable
 * check with its time, deviations in <system-out>. A named target that could not start is a
 * testsuite with one <error> testcase.
 */
export function junitXml(r: ConformReport): string {
  const used = new Set<string>();
  const suites: string[] = [];
  const total = { tests: 0, failures: 0, errors: 0, skipped: 0, ms: 0 };
  for (const t of r.targets) {
    let name = junitSuiteName(t.target);
    for (let k = 2; used.has(name); k++) name = `${junitSuiteName(t.target)}-${k}`;
    used.add(name);
    const c = counts(t);
    const applicable = t.results.filter((x) => !(x.outcome.status === "skipped" && x.outcome.applicable === false));
    const ms = t.ms ?? applicable.reduce((a, x) => a + x.ms, 0);
    const tests = t.startError !== undefined ? 1 : applicable.length;
    total.tests += tests;
    total.failures += c.failed;
    total.errors += c.errors;
    total.skipped += c.skipped;
    total.ms += ms;
    const out: string[] = [];
    out.push(`  <testsuite name="${xml(name)}" tests="${tests}" failures="${c.failed}" errors="${c.errors}" skipped="${c.skipped}" time="${secs(ms)}">`);
    const props: [string, string][] = [["target", t.spec ?? t.target], ["description", t.description], ["seed", String(r.seed)]];
    if (t.machine) props.push(["machine", t.machine]);
    if (t.lacks?.length) props.push(["lacks", t.lacks.join(",")]);
    props.push(["not-applicable", String(c.notApplicable)]);
    if (c.deviations) props.push(["deviations", String(c.deviations)]);
    out.push("    <properties>");
    for (const [k, v] of props) out.push(`      <property name="${xml(k)}" value="${xml(v)}"/>`);
    out.push("    </properties>");
    if (t.startError !== undefined) {
      out.push(`    <testcase classname="${xml(name)}" name="start" time="${secs(ms)}">`);
      out.push(`      <error message="${xml(`could not start: ${t.startError.split("\n")[0] ?? ""}`)}" type="start">${xml(t.startError)}</error>`);
      out.push("    </testcase>");
    }
    for (const x of applicable) {
      const o = x.outcome;
      out.push(`    <testcase classname="${xml(`${name}.${x.suite}`)}" name="${xml(`${x.id}: ${x.title}`)}" time="${secs(x.ms)}">`);
      if (o.status === "failed") out.push(`      <failure message="${xml(o.detail.split("\n")[0] ?? "")}">${xml(o.detail)}</failure>`);
      if (o.status === "skipped") out.push(`      <skipped message="${xml(o.detail)}"/>`);
      if (o.status !== "skipped" && o.deviations?.length) out.push(`      <system-out>${xml(o.deviations.map((d) => `deviation: ${d}`).join("\n"))}</system-out>`);
      out.push("    </testcase>");
    }
    out.push("  </testsuite>");
    suites.push(...out);
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="hvsim conform" tests="${total.tests}" failures="${total.failures}" errors="${total.errors}" skipped="${total.skipped}" time="${secs(total.ms)}">`,
    ...suites,
    "</testsuites>",
    "",
  ].join("\n");
}
