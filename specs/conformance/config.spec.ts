// The targets file (sim/conform/config.ts): every problem as file:line: path: message and nothing
// run (exit 2); a valid file's entries run with their machine, lacks, env and timeoutMs, picked up
// from ./hvsim.targets.yaml or --targets-file, and --target selects entries by name. The CLI runs
// as a real process; the peer is hvsim's own qtest server started through `sh -c`, so the
// environment the entry declares is what decides whether it starts.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadTargetsFile, parseTargetsFile } from "../../sim/conform/config.ts";
import type { ConformReport } from "../../sim/conform/runner.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "sim/cli/bin.mjs");
const tmp = mkdtempSync(join(tmpdir(), "hvsim-conform-config-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const ENV = { ...process.env, CI: "1", NO_COLOR: "1", HVSIM_DEBUG: "" };

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

function run(args: string[], cwd: string): Promise<Ran> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd, env: ENV, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("close", (code) => res({ code, out, err }));
  });
}

const fresh = (name: string) => mkdtempSync(join(tmp, `${name}-`));
const issues = (text: string, file = "hvsim.targets.yaml") => {
  const r = parseTargetsFile(text, file);
  return r.ok ? [] : r.issues;
};

describe("targets file: problems as file:line", () => {
  it("a machine that is not one of q35, bhyve, acpi, on its own line", () => {
    const text = ["targets:", "  - name: a", "    target: model", "  - name: b", "    target: qtest:./mytimer", "    lacks: [irq]", "    machine: z80", ""].join("\n");
    expect(issues(text)).toEqual(["hvsim.targets.yaml:7: targets[1].machine: expected one of q35, bhyve, acpi, acpi24"]);
  });

  it("every other kind of problem, each at its line", () => {
    const text = [
      "targets:", // 1
      "  - name: ok", // 2
      "    target: model", // 3
      "  - name: has space", // 4
      "    target: model", // 5
      "  - name: ok", // 6
      "    target: model", // 7
      "    lacks: [irq, wings]", // 8
      "  - name: c", // 9
      "    target: model", // 10
      "    env: { N: 1 }", // 11
      "    timeoutMs: 0", // 12
      "    colour: blue", // 13
      "  - target: model", // 14
      "  - just a string", // 15
      "",
    ].join("\n");
    expect(issues(text)).toEqual([
      expect.stringMatching(/^hvsim.targets.yaml:4: targets\[1\].name: a name is letters, digits/),
      "hvsim.targets.yaml:6: targets[2].name: 'ok' is already the name of targets[0]",
      expect.stringMatching(/^hvsim.targets.yaml:8: targets\[2\].lacks\[1\]: expected a capability: clock, portio, memory, irq, /),
      'hvsim.targets.yaml:11: targets[3].env.N: expected a string (quote numbers: "1")',
      "hvsim.targets.yaml:12: targets[3].timeoutMs: expected at least 1 ms",
      "hvsim.targets.yaml:13: targets[3]: unknown key 'colour' (keys: name, target, machine, lacks, env, timeoutMs)",
      expect.stringMatching(/^hvsim.targets.yaml:14: targets\[4\].name: missing /),
      expect.stringMatching(/^hvsim.targets.yaml:15: targets\[5\]: a target is a mapping with name and target/),
    ]);
  });

  it("syntax errors, a file that is not a mapping, no targets, an unknown target", () => {
    expect(issues("targets:\n  - name: a\n    target: [model\n")[0]).toMatch(/^hvsim.targets.yaml:3: syntax error: /);
    expect(issues("- model\n")).toEqual([expect.stringMatching(/^hvsim.targets.yaml:1: a targets file is a mapping with a 'targets:' list/)]);
    expect(issues("targets: []\n")).toEqual(["hvsim.targets.yaml:1: targets: expected at least one target"]);
    expect(issues("target:\n  - name: a\n")).toEqual([
      "hvsim.targets.yaml:1: targets: missing (expected a list of targets)",
      "hvsim.targets.yaml:1: unknown key 'target' (a targets file has only 'targets:')",
    ]);
    const r = parseTargetsFile("targets:\n  - name: a\n    target: model\n  - name: b\n    target: nonsense\n", "t.yaml", (t) => (t === "model" ? undefined : `unknown target '${t}'`));
    expect(r).toEqual({ ok: false, issues: ["t.yaml:5: targets[1].target: unknown target 'nonsense'"] });
  });

  it("JSON is read too, with its lines", () => {
    const text = '{\n  "targets": [\n    { "name": "a", "target": "model" },\n    {\n      "name": "b",\n      "target": "model",\n      "machine": "q36"\n    }\n  ]\n}\n';
    expect(issues(text, "t.json")).toEqual(["t.json:7: targets[1].machine: expected one of q35, bhyve, acpi, acpi24"]);
    const ok = parseTargetsFile('{"targets": [{"name": "a", "target": "qtest:x", "machine": "acpi", "lacks": ["irq"], "env": {"A": "1"}, "timeoutMs": 5}]}', "t.json");
    expect(ok).toEqual({ ok: true, value: { file: "t.json", entries: [{ name: "a", target: "qtest:x", machine: "acpi", lacks: ["irq"], env: { A: "1" }, timeoutMs: 5, line: 1, targetLine: 1 }] } });
  });
});

describe("README", () => {
  it("its targets file example is a valid targets file; its conformance job is YAML naming every real target", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const example = blocks.find((b) => b.startsWith("targets:"))!;
    const { makeTarget } = await import("../../sim/conform/runner.ts");
    await import("../../sim/targets/index.ts");
    expect(parseTargetsFile(example, "README.md", (t) => (makeTarget(t, 0) ? undefined : `unknown target ${t}`))).toMatchObject({ ok: true });
    const job = blocks.find((b) => b.startsWith("  conform:"))!;
    const { parse } = await import("yaml");
    const steps = (parse(`jobs:\n${job}`) as { jobs: { conform: { steps: { run?: string; uses?: string }[] } } }).jobs.conform.steps;
    const conform = steps.find((st) => st.run?.includes("hvsim conform"))!.run!;
    for (const t of ["qtest:qemu", "hv-daemon:kvp", "hv-daemon:vss", "hv-daemon:kvp=asan", "hv-daemon:vss=asan"]) expect(conform).toContain(`--target ${t}`);
    // The sanitized daemons' targets need their build, and the build needs the kernel source package.
    expect(steps.some((st) => st.run?.includes("scripts/build-hv-daemons.sh"))).toBe(true);
    expect(steps.some((st) => st.run?.includes("linux-source-6.1"))).toBe(true);
    expect(conform).toContain("--junit reports/conform.junit.xml");
    expect(steps.some((st) => st.uses?.startsWith("actions/upload-artifact@"))).toBe(true);
    expect(steps.some((st) => st.uses?.startsWith("actions/cache@"))).toBe(true);
  });
});

describe("targets file: reading", () => {
  it("a missing file or a directory is one issue, marked unreadable", () => {
    expect(loadTargetsFile(join(tmp, "none.yaml"))).toEqual({ ok: false, unreadable: true, issues: [`--targets-file ${join(tmp, "none.yaml")}: cannot read it: no such file`] });
    expect(loadTargetsFile(tmp)).toEqual({ ok: false, unreadable: true, issues: [`--targets-file ${tmp}: cannot read it: is a directory`] });
    const f = join(tmp, "ok.yaml");
    writeFileSync(f, "targets:\n  - name: a\n    target: model\n");
    expect(loadTargetsFile(f)).toMatchObject({ ok: true, value: { file: f, entries: [{ name: "a", target: "model", line: 2, targetLine: 3 }] } });
  });
});

describe.concurrent("targets file: the CLI", () => {
  it("a bad file: each problem on stderr, exit 2, nothing run and nothing written", async () => {
    const dir = fresh("bad");
    writeFileSync(join(dir, "hvsim.targets.yaml"), "targets:\n  - name: a\n    target: model\n  - name: b\n    target: model\n    machine: q99\n    lacks: [irq]\n");
    const r = await run(["conform"], dir);
    expect(r.code).toBe(2);
    expect(r.err).toBe("hvsim.targets.yaml:6: targets[1].machine: expected one of q35, bhyve, acpi, acpi24\nhvsim: hvsim.targets.yaml: 1 problem in the targets file; nothing was run\n");
    expect(r.out).toBe("");
    expect(readdirSync(dir)).toEqual(["hvsim.targets.yaml"]);
    const missing = await run(["conform", "--targets-file", "nowhere.yaml"], dir);
    expect(missing.code).toBe(2);
    expect(missing.err).toBe("hvsim: --targets-file nowhere.yaml: cannot read it: no such file\n");
  }, 120_000);

  it("entries run with their env, machine, lacks and timeoutMs; ./hvsim.targets.yaml is picked up; --target selects by name", async () => {
    const dir = fresh("good");
    // Starts hvsim's bhyve qtest server only when the entry's environment says so.
    const peer = `qtest:sh -c 'test "$HVSIM_SPEC_PEER" = go && exec "$0" "$1" qtest --machine bhyve' ${process.execPath} ${BIN}`;
    writeFileSync(
      join(dir, "hvsim.targets.yaml"),
      [
        "targets:",
        "  - name: with-env",
        `    target: "${peer.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`,
        "    machine: bhyve",
        "    lacks: [irq]",
        "    env: { HVSIM_SPEC_PEER: go }",
        "  - name: without-env",
        `    target: "${peer.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`,
        "    machine: bhyve",
        "  - name: silent",
        "    target: qtest:sleep 30",
        "    machine: bhyve",
        "    timeoutMs: 300",
        "",
      ].join("\n"),
    );
    const r = await run(["conform", "--suite", "pmtimer", "--json", "c.json", "--junit", "j.xml"], dir);
    expect(r.code).toBe(1);
    const json = JSON.parse(readFileSync(join(dir, "c.json"), "utf8")) as ConformReport;
    const [w, wo, s] = json.targets;
    expect(json.targets.map((t) => t.target)).toEqual(["with-env", "without-env", "silent"]);
    expect(w).toMatchObject({ spec: peer, machine: "bhyve", lacks: ["irq"] });
    const ran = (t: typeof w) => t!.results.filter((x) => !(x.outcome.status === "skipped" && x.outcome.applicable === false));
    expect(ran(w).length).toBeGreaterThan(0);
    expect(ran(w).every((x) => x.outcome.status === "passed")).toBe(true);
    // The same command without the environment exits at once: its checks fail.
    expect(ran(wo).every((x) => x.outcome.status === "failed" && /exited with code 1/.test(x.outcome.detail))).toBe(true);
    // A program that never answers fails at the entry's own time limit.
    expect(ran(s).every((x) => x.outcome.status === "failed" && /within 300 ms/.test(x.outcome.detail))).toBe(true);
    expect(r.out).toMatch(/^with-env: \d+ passed, 0 failed, 0 skipped, \d+ not applicable\n {2}\(target qtest:sh -c /);
    expect(readFileSync(join(dir, "j.xml"), "utf8")).toMatch(/<testsuite name="with-env" /);

    const one = await run(["conform", "--target", "with-env", "--suite", "pmtimer", "--json", "one.json", "--junit", "one.xml"], dir);
    expect(one.code, one.err).toBe(0);
    expect((JSON.parse(readFileSync(join(dir, "one.json"), "utf8")) as ConformReport).targets.map((t) => t.target)).toEqual(["with-env"]);
    const unknown = await run(["conform", "--target", "with_env"], dir);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/^hvsim: unknown target 'with_env' \(model, qtest:<command>, hv-daemon:kvp\|vss\[=<program>\|=asan\], or an entry of hvsim.targets.yaml: with-env, without-env, silent\)\n/);
    const list = await run(["conform", "--list"], dir);
    expect(list.out).toMatch(/\ntargets \(hvsim.targets.yaml\):\n {2}with-env = qtest:sh -c [^\n]* \(hvsim.targets.yaml:2; machine bhyve; lacks irq\): ready\n/);
    expect(existsSync(join(dir, "reports"))).toBe(false);
  }, 120_000);
});
