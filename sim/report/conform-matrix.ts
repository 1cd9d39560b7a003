// The conformance matrix: one row per target, one cell per suite. A check the target cannot run
// at all (it lacks a capability the check needs) is not applicable: it is left out of the cell and
// of the total, so a daemon row counts only the checks that concern a daemon. Every other skip is
// counted and shown with its reason in the cell itself.
import type { CheckResult, ConformReport, TargetReport } from "../conform/runner.ts";
import { esc } from "./text.ts";

export type Verdict = "passed" | "failed" | "skipped" | "n/a";

/**
 * The runner marks capability skips `applicable: false` (sim/conform/runner.ts); reports written
 * before that field existed say so only in the reason, "<target> lacks <capability>, ...".
 */
export function verdictOf(r: CheckResult): Verdict {
  const o = r.outcome;
  if (o.status !== "skipped") return o.status;
  if (o.applicable === false) return "n/a";
  return /^\S+ lacks [a-z0-9:-]+(, [a-z0-9:-]+)*$/.test(o.detail) ? "n/a" : "skipped";
}

export interface Tally {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly na: number;
  /** passed + failed + skipped: what the total counts. */
  readonly applicable: number;
}

export function tally(results: readonly CheckResult[]): Tally {
  const t = { passed: 0, failed: 0, skipped: 0, na: 0 };
  for (const r of results) {
    const v = verdictOf(r);
    if (v === "n/a") t.na += 1;
    else t[v] += 1;
  }
  return { ...t, applicable: t.passed + t.failed + t.skipped };
}

const detailOf = (r: CheckResult) => ("detail" in r.outcome ? r.outcome.detail ?? "" : "");

function cell(t: TargetReport, xs: readonly CheckResult[]): string {
  const c = tally(xs);
  const na = xs.filter((x) => verdictOf(x) === "n/a");
  if (!c.applicable) {
    const why = na.length ? `not applicable: ${[...new Set(na.map(detailOf))].join("; ")}` : "no checks";
    return `<td class="na" data-verdict="n/a" title="${esc(why)}"></td>`;
  }
  const cls = c.failed ? "fail" : c.skipped && !c.passed ? "skip" : c.skipped ? "mixed" : "pass";
  const parts = [`${c.passed}/${c.applicable} passed`];
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  // Skip reasons are shown, not only on hover; a target that is unavailable as a whole says why
  // once, in its row header, so its cells just say "skipped".
  const reasons = t.unavailable ? [] : [...new Set(xs.filter((x) => verdictOf(x) === "skipped").map(detailOf))];
  const failed = xs.filter((x) => verdictOf(x) === "failed").map((x) => x.id);
  const title = xs.filter((x) => verdictOf(x) !== "passed").map((x) => `${x.id}: ${verdictOf(x)} — ${detailOf(x)}`).join("\n");
  return `<td class="${cls}" data-verdict="${cls}" title="${esc(title)}">${parts.join(", ")}${failed.length ? `<div class="why fail-ids">${esc(failed.join(", "))}</div>` : ""}${reasons.map((r) => `<div class="why skip-reason">skipped: ${esc(r)}</div>`).join("")}${na.length ? `<div class="why na-note">${na.length} n/a</div>` : ""}</td>`;
}

export function conformSection(r: ConformReport | undefined): string {
  if (!r) return `<p class="none">No conformance report (run <span class="mono">hvsim conform</span>).</p>`;
  const suites = [...new Set(r.targets.flatMap((t) => t.results.map((x) => x.suite)))].sort();
  const head = `<tr><th>target</th>${suites.map((s) => `<th>${esc(s)}</th>`).join("")}<th>total (applicable)</th></tr>`;
  const rows = r.targets.map((t) => {
    const cells = suites.map((s) => cell(t, t.results.filter((x) => x.suite === s)));
    const c = tally(t.results);
    const deviations = t.results.reduce((n, x) => n + (x.outcome.status !== "skipped" ? x.outcome.deviations?.length ?? 0 : 0), 0);
    const total = `${c.passed}/${c.applicable} passed${c.failed ? `, ${c.failed} failed` : ""}${c.skipped ? `, ${c.skipped} skipped` : ""}${deviations ? `<div class="why">${deviations} deviations</div>` : ""}${c.na ? `<div class="why na-note">${c.na} n/a not counted</div>` : ""}`;
    return `<tr data-target="${esc(t.target)}"><th>${esc(t.target)}${t.unavailable ? `<div class="why skip-reason">unavailable: ${esc(t.unavailable)}</div>` : ""}</th>${cells.join("")}<td class="total">${total}</td></tr>`;
  });
  const legend = `<p class="legend"><span><i class="sw pass"></i>all applicable checks passed</span><span><i class="sw mixed"></i>some skipped</span><span><i class="sw skip"></i>all skipped</span><span><i class="sw fail"></i>a check failed</span><span><i class="sw na"></i>not applicable (target lacks the capability; not counted)</span></p>`;
  const devs = r.targets.flatMap((t) => t.results.flatMap((x) => (x.outcome.status !== "skipped" ? (x.outcome.deviations ?? []).map((d) => `<li><b>${esc(t.target)}</b> ${esc(x.id)}: ${esc(d)}</li>`) : [])));
  const fails = r.targets.flatMap((t) => t.results.filter((x) => x.outcome.status === "failed").map((x) => `<li><b>${esc(t.target)}</b> ${esc(x.id)}<pre class="mono">${esc(detailOf(x))}</pre></li>`));
  return `${legend}<table id="conform-matrix">${head}${rows.join("")}</table>${devs.length ? `<h3>Deviations</h3><ul>${devs.join("")}</ul>` : ""}${fails.length ? `<h3>Failures</h3><ul>${fails.join("")}</ul>` : ""}`;
}
