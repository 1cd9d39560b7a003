// Results a CI can trust, from the real CLI (node sim/cli/bin.mjs conform) as a process:
//   - a target named with --target that cannot start is a failure (exit 1, its reason on the first
//     line of stderr), one error in JUnit, no row of skips; one that starts and dies at session
//     open fails its checks;
//   - a check the target cannot run (a capability it lacks, by kind or declared with --lacks) is
//     "not applicable": counted apart on the summary line, kept (marked) in JSON, absent from JUnit;
//   - JUnit is read back with a small XML parser (specs/conformance/junit-xml.ts): one testsuite per
//     target named without spaces or slashes, tests/failures/errors/skipped/time that add up, the
//     target as given in a property, deviations in <system-out>;
//   - reports default to reports/ in the current directory, unwritable outputs are refused before
//     any target starts, and `hvsim report` reads the same reports/;
//   - --list names every default candidate and why one is left out.
// The quickly-starting qtest peer is hvsim's own qtest server as a process (`hvsim qtest`).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { anyFailure, counts, loadChecks, makeTarget, runConformance, type ConformReport } from "../../sim/conform/runner.ts";
import { junitSuiteName, junitXml, summaryText } from "../../sim/conform/report.ts";
import { defaultCandidates, defaultTargetNames } from "../../sim/conform/targets.ts";
import { CAPABILITIES, type Capability, type Check, type Target } from "../../sim/conform/types.ts";
import { daemonAvailable } from "../../sim/targets/hvdaemon/target.ts";
import "../../sim/targets/index.ts";
import { childrenNamed, parseXml, type XmlElement } from "./junit-xml.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "sim/cli/bin.mjs");
const tmp = mkdtempSync(join(tmpdir(), "hvsim-conform-results-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const ENV = { ...process.env, CI: "1", NO_COLOR: "1", HVSIM_DEBUG: "" };

/** hvsim's own qtest server as a qtest:<command> peer. */
const SELF = (machine: string) => `qtest:${process.execPath} ${BIN} qtest --machine ${machine}`;
/** What a qtest:<command> program offers by its kind (sim/targets/qtest/target.ts; README "Targets"). */
const QTEST_CAPS = (machine: string): Capability[] => ["clock", "portio", "memory", "irq", ...(machine === "q35" ? (["fwcfg"] as const) : []), `machine:${machine}` as Capability];

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

function run(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Ran> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? tmp, env: { ...ENV, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("close", (code) => res({ code, out, err }));
  });
}

const fresh = (name: string) => mkdtempSync(join(tmp, `${name}-`));
const attr = (e: XmlElement, a: string) => {
  const v = e.attrs[a];
  if (v === undefined) throw new Error(`<${e.name}> has no ${a}`);
  return v;
};
const num = (e: XmlElement, a: string) => {
  const v = Number(attr(e, a));
  expect(Number.isFinite(v), `${e.name}.${a}=${attr(e, a)}`).toBe(true);
  return v;
};
const props = (suite: XmlElement) => Object.fromEntries(childrenNamed(childrenNamed(suite, "properties")[0]!, "property").map((p) => [attr(p, "name"), attr(p, "value")]));

const checks = await loadChecks();
const applies = (caps: readonly Capability[], suites: readonly string[]) => checks.filter((c) => suites.includes(c.suite) && c.needs.every((n) => caps.includes(n)));

describe.concurrent("hvsim conform: results a CI can trust", () => {
  it("one run, three targets: a start failure, a bhyve peer, the model; summary, JSON and JUnit agree with the checks' declarations", async () => {
    const dir = fresh("three");
    const gone = "qtest:/no/such/program";
    const bhyve = SELF("bhyve");
    const r = await run(["conform", "--target", gone, "--target", bhyve, "--target", "model", "--machine", "bhyve", "--suite", "pmtimer", "--suite", "kvp", "--junit", "j.xml", "--json", "c.json"], { cwd: dir });
    expect(r.code, r.err).toBe(1);
    // The reason comes first, before anything else the run says.
    expect(r.err.split("\n")[0]).toBe(`hvsim: target ${gone} cannot start: /no/such/program is not an executable program here`);
    const lines = r.out.split("\n");
    expect(lines).toContain(`${gone}: could not start: /no/such/program is not an executable program here`);
    // Never a row of skips for it.
    expect(r.out).not.toMatch(/target unavailable/);

    const suites = ["pmtimer", "kvp"];
    const all = checks.filter((c) => suites.includes(c.suite));
    const onBhyve = applies(QTEST_CAPS("bhyve"), suites);
    expect(onBhyve.length).toBeGreaterThan(0);
    const bhyveLine = lines.find((l) => l.startsWith(`${bhyve}: `));
    expect(bhyveLine).toBe(`${bhyve}: ${onBhyve.length} passed, 0 failed, 0 skipped, ${all.length - onBhyve.length} not applicable`);
    // Not-applicable checks are not listed as skipped; one short line says what is missing.
    const bhyveBlock = r.out.slice(r.out.indexOf(bhyveLine!), r.out.indexOf("\nmodel: "));
    expect(bhyveBlock).not.toMatch(/skipped \d+ \(/);
    expect(bhyveBlock.split("\n").filter((l) => /not applicable/.test(l))).toHaveLength(2);
    expect(lines.find((l) => l.startsWith("model: "))).toMatch(/^model: \d+ passed, 0 failed, \d+ skipped, 0 not applicable, \d+ deviations$/);

    // JSON keeps the not-applicable checks, marked; the start failure has no results.
    const json = JSON.parse(readFileSync(join(dir, "c.json"), "utf8")) as ConformReport;
    const [g, b, m] = json.targets;
    expect(g).toMatchObject({ target: gone, spec: gone, startError: "/no/such/program is not an executable program here", results: [] });
    expect(b!.results).toHaveLength(all.length);
    const na = b!.results.filter((x) => x.outcome.status === "skipped" && x.outcome.applicable === false).map((x) => x.id);
    expect(na.sort()).toEqual(all.filter((c) => !onBhyve.includes(c)).map((c) => c.id).sort());
    expect(b).toMatchObject({ machine: "bhyve" });
    expect(m!.results.every((x) => !(x.outcome.status === "skipped" && x.outcome.applicable === false))).toBe(true);

    // JUnit, read back.
    const doc = parseXml(readFileSync(join(dir, "j.xml"), "utf8"));
    expect(doc.name).toBe("testsuites");
    const ts = childrenNamed(doc, "testsuite");
    expect(ts).toHaveLength(3);
    const names = ts.map((t) => attr(t, "name"));
    for (const n of names) expect(n).toMatch(/^[^\s/\\]+$/);
    expect(new Set(names).size).toBe(3);
    expect(ts.map((t) => props(t).target)).toEqual([gone, bhyve, "model"]);
    for (const a of ["tests", "failures", "errors", "skipped", "time"]) expect(num(doc, a)).toBeCloseTo(ts.reduce((s, t) => s + num(t, a), 0), 2);
    for (const t of ts) {
      const cases = childrenNamed(t, "testcase");
      expect(num(t, "tests")).toBe(cases.length);
      expect(num(t, "failures")).toBe(cases.filter((c) => childrenNamed(c, "failure").length).length);
      expect(num(t, "errors")).toBe(cases.filter((c) => childrenNamed(c, "error").length).length);
      expect(num(t, "skipped")).toBe(cases.filter((c) => childrenNamed(c, "skipped").length).length);
      for (const c of cases) expect(num(c, "time")).toBeGreaterThanOrEqual(0);
      for (const c of cases) for (const s of childrenNamed(c, "skipped")) expect(attr(s, "message")).not.toMatch(/ lacks /);
    }
    const [gs, bs, ms] = ts;
    expect(num(gs!, "errors")).toBe(1);
    expect(attr(childrenNamed(childrenNamed(gs!, "testcase")[0]!, "error")[0]!, "message")).toMatch(/\/no\/such\/program is not an executable program here/);
    // Only the checks that apply to the bhyve peer are testcases.
    expect(childrenNamed(bs!, "testcase").map((c) => attr(c, "name")).sort()).toEqual(onBhyve.map((c) => `${c.id}: ${c.title}`).sort());
    expect(props(bs!)).toMatchObject({ machine: "bhyve", "not-applicable": String(all.length - onBhyve.length) });
    // Deviations of the model: the named known difference kvp-get-value-offset (README "Targets";
    // sim/conform/hyperv-differential.ts) shows in kvp/crash's system-out.
    const crash = childrenNamed(ms!, "testcase").find((c) => attr(c, "name").startsWith("kvp/crash: "))!;
    expect(childrenNamed(crash, "system-out")[0]?.text).toMatch(/^deviation: kvp-get-value-offset$/m);
    expect(Number(props(ms!).deviations)).toBeGreaterThan(0);
  }, 120_000);

  it("--lacks irq: the checks needing IRQ interception do not apply; the others run and pass", async () => {
    const dir = fresh("lacks");
    const q35 = SELF("q35");
    const r = await run(["conform", "--target", q35, "--lacks", "irq", "--suite", "pmtimer", "--json", "c.json", "--junit", "j.xml"], { cwd: dir });
    expect(r.code, r.out + r.err).toBe(0);
    const caps = QTEST_CAPS("q35").filter((c) => c !== "irq");
    const pm = checks.filter((c) => c.suite === "pmtimer");
    const run_ = applies(caps, ["pmtimer"]);
    const needIrq = applies(QTEST_CAPS("q35"), ["pmtimer"]).filter((c) => c.needs.includes("irq"));
    expect(needIrq.length).toBeGreaterThan(0);
    expect(run_.length).toBeGreaterThan(0);
    const json = JSON.parse(readFileSync(join(dir, "c.json"), "utf8")) as ConformReport;
    const t = json.targets[0]!;
    expect(t.lacks).toEqual(["irq"]);
    for (const c of needIrq) expect(t.results.find((x) => x.id === c.id)!.outcome).toMatchObject({ status: "skipped", applicable: false, detail: expect.stringMatching(/lacks .*irq/) as unknown });
    // Without --lacks these would have run: they are skipped only because of the declaration.
    const skippedOnlyForIrq = t.results.filter((x) => x.outcome.status === "skipped" && x.outcome.applicable === false && /lacks irq$/.test(x.outcome.detail));
    expect(skippedOnlyForIrq.map((x) => x.id).sort()).toEqual(needIrq.map((c) => c.id).sort());
    const failed = t.results.filter((x) => x.outcome.status === "failed");
    expect(failed).toEqual([]);
    const skipped = t.results.filter((x) => x.outcome.status === "skipped" && x.outcome.applicable !== false).length;
    expect(r.out.split("\n")[0]).toBe(`${q35}: ${run_.length - skipped} passed, 0 failed, ${skipped} skipped, ${pm.length - run_.length} not applicable`);
    expect(r.out).toMatch(/\n {2}\(not applicable: it lacks [^\n]*irq[^\n]*; declared: irq\)\n/);
    const junit = parseXml(readFileSync(join(dir, "j.xml"), "utf8"));
    const suite = childrenNamed(junit, "testsuite")[0]!;
    expect(props(suite).lacks).toBe("irq");
    expect(num(suite, "tests")).toBe(run_.length);
  }, 120_000);

  it("a target that starts and dies at session open fails its checks (not skipped)", async () => {
    const dying = "qtest:sh -c 'exit 3'";
    const r = await run(["conform", "--target", dying, "--machine", "bhyve", "--suite", "pmtimer", "--json", "-", "--junit", join(fresh("dies"), "j.xml")]);
    expect(r.code).toBe(1);
    const t = (JSON.parse(r.out) as ConformReport).targets[0]!;
    const applicable = t.results.filter((x) => !(x.outcome.status === "skipped" && x.outcome.applicable === false));
    expect(applicable.map((x) => x.id).sort()).toEqual(applies(QTEST_CAPS("bhyve"), ["pmtimer"]).map((c) => c.id).sort());
    for (const x of applicable) expect(x.outcome).toMatchObject({ status: "failed", detail: expect.stringMatching(/exited with code 3/) as unknown });
    expect(r.err).toMatch(new RegExp(`^${dying.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: 0 passed, ${applicable.length} failed, 0 skipped, \\d+ not applicable\\n`));
  }, 120_000);

  it("qtest:qemu with HVSIM_QEMU_QTEST pointing nowhere: exit 1, the reason first", async () => {
    const r = await run(["conform", "--target", "qtest:qemu", "--suite", "pmtimer", "--json", join(fresh("qemu"), "c.json"), "--junit", join(tmp, "qemu.xml")], { env: { HVSIM_QEMU_QTEST: "/nonexistent" } });
    expect(r.code).toBe(1);
    expect(r.err.split("\n")[0]).toBe("hvsim: target qtest:qemu cannot start: HVSIM_QEMU_QTEST=/nonexistent is not an executable file");
    expect(r.out).not.toMatch(/skipped \d+ \(/);
  }, 120_000);

  it("reports default to reports/ in the current directory; `hvsim report` reads them there", async () => {
    const dir = fresh("cwd");
    const before = existsSync(join(ROOT, "reports", "conform.json")) ? statSync(join(ROOT, "reports", "conform.json")).mtimeMs : undefined;
    const r = await run(["conform", "--target", "model", "--suite", "vmgenid"], { cwd: dir });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/\nreports: reports\/conform.json, reports\/conform.junit.xml\n$/);
    const json = JSON.parse(readFileSync(join(dir, "reports", "conform.json"), "utf8")) as ConformReport;
    expect(json.targets.map((t) => t.target)).toEqual(["model"]);
    expect(parseXml(readFileSync(join(dir, "reports", "conform.junit.xml"), "utf8")).name).toBe("testsuites");
    const after = existsSync(join(ROOT, "reports", "conform.json")) ? statSync(join(ROOT, "reports", "conform.json")).mtimeMs : undefined;
    expect(after).toBe(before); // the package's own folder is left alone
    const rep = await run(["report", "--out", "r.html"], { cwd: dir });
    expect(rep.code, rep.err).toBe(0);
    // Only vmgenid ran: the page's matrix shows that report, not a fresh run of every suite.
    const html = readFileSync(join(dir, "r.html"), "utf8");
    expect(html).toMatch(/data-target="model"/);
    expect(html).not.toMatch(/<th>pmtimer<\/th>/);
  }, 120_000);

  it("an unwritable output is refused (exit 2) before any target is started", async () => {
    for (const args of [
      ["--json", "/sys/hvsim.json"],
      ["--junit", join(tmp, "no-such-dir", "j.xml")],
    ]) {
      const r = await run(["conform", "--target", "qtest:/no/such/program", ...args]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^hvsim: --(json|junit) [^\n]+\n$/);
      expect(r.err).not.toMatch(/cannot start/);
      expect(r.out).toBe("");
    }
  }, 120_000);

  it("--lacks and --machine are checked: unknown capability, and without a --target", async () => {
    const bad = await run(["conform", "--target", "model", "--lacks", "irqs"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(`hvsim: --lacks: unknown capability 'irqs' (capabilities: ${CAPABILITIES.join(", ")})`);
    const alone = await run(["conform", "--lacks", "irq", "--list"]);
    expect(alone.code).toBe(2);
    expect(alone.err).toMatch(/--machine and --lacks describe targets named with --target/);
  }, 120_000);

  it("--list names every default candidate and why one is left out", async () => {
    const r = await run(["conform", "--list"], { env: { HVSIM_QEMU_QTEST: "/nonexistent" } });
    expect(r.code, r.err).toBe(0);
    const block = r.out.slice(r.out.indexOf("\ntargets:\n") + 1).split("\n").filter(Boolean);
    expect(block[0]).toBe("targets:");
    expect(block[1]).toBe("  model  (default candidate): found, used");
    expect(block).toContain("  qtest:qemu  (default candidate): left out: HVSIM_QEMU_QTEST=/nonexistent is not an executable file");
    const d = daemonAvailable();
    for (const s of ["kvp", "vss"]) expect(block).toContain(`  hv-daemon:${s}  (default candidate): ${d === true ? "found, used" : `left out: ${d}`}`);
  }, 120_000);
});


describe("in process: runner, targets and reports", () => {
  it("makeTarget with lacks: the capabilities go, the target's own methods stay", async () => {
    const full = makeTarget("model", 1)!;
    const t = makeTarget("model", 1, { lacks: ["irq", "fwcfg"] })!;
    expect([...full.capabilities].filter((c) => !t.capabilities.has(c)).sort()).toEqual(["fwcfg", "irq"]);
    expect(t.name).toBe("model");
    expect(await t.available()).toBe(true);
    const s = await t.openQtest!("q35");
    expect(await s.command("inl 0x608")).toMatch(/^OK 0x[0-9a-f]+$/);
    await s.close();
  });

  it("a required target that cannot start is one error and no results; a default candidate's are skips with the reason", async () => {
    const gone: Target = { name: "gone", description: "d", capabilities: new Set(["portio"]), available: () => Promise.resolve("not installed") };
    const c: Check = { id: "x/y", suite: "x", title: "t", needs: ["portio"], run: () => Promise.resolve({ status: "passed" }) };
    const r = await runConformance([{ target: gone, required: true, label: "mine" }, gone], [c], { seed: 1 });
    const [req, cand] = r.targets;
    expect(req).toMatchObject({ target: "mine", spec: "gone", startError: "not installed", results: [] });
    expect(counts(req!)).toEqual({ passed: 0, failed: 0, skipped: 0, notApplicable: 0, errors: 1, deviations: 0 });
    expect(cand!.results.map((x) => x.outcome)).toEqual([{ status: "skipped", detail: "target unavailable: not installed" }]);
    expect(anyFailure(r)).toBe(true);
    expect(anyFailure({ seed: 1, targets: [cand!] })).toBe(false);
    expect(summaryText(r)).toMatch(/^mine: could not start: not installed\ngone: 0 passed, 0 failed, 1 skipped, 0 not applicable\n {2}\(target unavailable: not installed\)\n$/);
    const x = parseXml(junitXml(r));
    expect(childrenNamed(x, "testsuite").map((s) => [attr(s, "name"), attr(s, "errors"), attr(s, "tests")])).toEqual([
      ["mine", "1", "1"],
      ["gone", "0", "1"],
    ]);
  });

  it("JUnit suite names: no spaces or slashes, unique; XML-illegal control characters escaped", () => {
    expect(junitSuiteName("qtest:node /a b/bin.mjs qtest --machine bhyve")).toBe("qtest:node_a_b_bin.mjs_qtest_--machine_bhyve");
    expect(junitSuiteName("///")).toBe("target");
    const t = (target: string) => ({ target, description: "a\u0001b", results: [] });
    const x = parseXml(junitXml({ seed: 1, targets: [t("a b"), t("a/b")] }));
    expect(childrenNamed(x, "testsuite").map((s) => attr(s, "name"))).toEqual(["a_b", "a_b-2"]);
    expect(props(childrenNamed(x, "testsuite")[0]!).description).toBe("a\\x01b");
  });

  it("default candidates: each with whether it is usable here and why not", async () => {
    const all = await defaultCandidates(1);
    expect(all[0]).toMatchObject({ name: "model", available: true });
    for (const c of all) {
      expect(c.target, c.name).toBeDefined();
      expect(c.available).toEqual(await c.target!.available());
    }
    expect(await defaultTargetNames()).toEqual(all.filter((c) => c.available === true).map((c) => c.name));
  });
});
