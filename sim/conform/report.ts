// Conformance reports: a readable per-target summary, JSON, and JUnit XML for CI dashboards.
import { counts, type ConformReport } from "./runner.ts";

export function summaryText(r: ConformReport): string {
  const lines: string[] = [];
  for (const t of r.targets) {
    const c = counts(t);
    lines.push(`${t.target}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${c.deviations ? `, ${c.deviations} deviation${c.deviations === 1 ? "" : "s"}` : ""}`);
    if (t.unavailable) lines.push(`  (target unavailable: ${t.unavailable})`);
    for (const x of t.results) {
      const o = x.outcome;
      if (o.status === "failed") lines.push(`  FAIL ${x.id}: ${x.title}\n${indent(o.detail, 6)}`);
    }
    if (!t.unavailable) {
      const reasons = new Map<string, string[]>();
      for (const x of t.results) {
        if (x.outcome.status === "skipped") reasons.set(x.outcome.detail, [...(reasons.get(x.outcome.detail) ?? []), x.id]);
      }
      for (const [why, ids] of reasons) lines.push(`  skipped ${ids.length} (${why}): ${ids.join(", ")}`);
    }
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

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function junitXml(r: ConformReport): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"];
  for (const t of r.targets) {
    const c = counts(t);
    out.push(`  <testsuite name="${xml(t.target)}" tests="${t.results.length}" failures="${c.failed}" skipped="${c.skipped}">`);
    for (const x of t.results) {
      const o = x.outcome;
      out.push(`    <testcase classname="${xml(`${t.target}.${x.suite}`)}" name="${xml(`${x.id}: ${x.title}`)}" time="${(x.ms / 1000).toFixed(3)}">`);
      if (o.status === "failed") out.push(`      <failure message="${xml(o.detail.split("\n")[0] ?? "")}">${xml(o.detail)}</failure>`);
      if (o.status === "skipped") out.push(`      <skipped message="${xml(o.detail)}"/>`);
      if (o.status !== "skipped" && o.deviations?.length) out.push(`      <system-out>${xml(o.deviations.map((d) => `deviation: ${d}`).join("\n"))}</system-out>`);
      out.push("    </testcase>");
    }
    out.push("  </testsuite>");
  }
  out.push("</testsuites>");
  return out.join("\n") + "\n";
}
