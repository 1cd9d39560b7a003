// Every example line of every `--help` ("  $ npx hvsim ...") runs here as a real shell command
// (bash -o pipefail, `hvsim` on PATH = node sim/cli/bin.mjs), in a fresh temporary directory per
// command, so an example that stops working fails this spec instead of a user.
//
// What the spec changes, and why (nothing else is changed; nothing is skipped):
//   - `conform` without --target gets `--target model`: the real targets have their own specs and
//     minutes of runtime; the example's options and outputs are what can rot.
//   - `bench` runs only the `scheduler` suite with `--max-time 0.01` (all suites take 30+ s),
//     suite names in the example are replaced by `scheduler`, and `--update-baseline` gets
//     `--baseline <tmp>` so the committed baseline is never rewritten.
//   - `fuzz --time N` becomes `--time 1`, `--runs N` becomes `--runs 30`.
//   - the files an example names are provided: msg.bin, kvp.bin (wire messages), snap.bin (a real
//     snapshot), ./my-parser (a program that reads its input file), specs/ (the repository's).
//   - `qtest --socket ... &` is started, a client sends one command and disconnects, and the
//     server must then exit 0.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { Command } from "commander";
import { buildProgram } from "../../sim/cli/main.ts";
import { lookupWire } from "../../sim/wire/registry.ts";
import { Bench } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import { saveSnapshotFile } from "../../sim/snapshot/snapshot.ts";
import { VSS_OP_HOT_BACKUP, VSS_HBU_NO_AUTO_RECOVERY } from "../../sim/wire/hyperv-constants.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "hvsim-examples-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const binDir = join(tmp, "bin");
mkdirSync(binDir);
writeFileSync(join(binDir, "hvsim"), `#!/bin/sh\nexec '${process.execPath}' '${join(ROOT, "sim/cli/bin.mjs")}' "$@"\n`);
chmodSync(join(binDir, "hvsim"), 0o755);
const ENV = { ...process.env, PATH: `${binDir}:${process.env.PATH}`, CI: "1", NO_COLOR: "1", HVSIM_DEBUG: "" };

/** Every command's --help text, as the real CLI prints it (same program object bin.mjs builds). */
async function helpTexts(): Promise<Map<string, string>> {
  let buf = "";
  const program = await buildProgram((s) => void (buf += s), (s) => void (buf += s));
  const texts = new Map<string, string>();
  const walk = (c: Command, name: string) => {
    buf = "";
    c.outputHelp();
    texts.set(name, buf);
    for (const sub of c.commands) walk(sub, name ? `${name} ${sub.name()}` : sub.name());
  };
  walk(program, "");
  return texts;
}

const HELP = await helpTexts();
const EXAMPLE = /^\s*\$ (.*\bnpx hvsim\b.*)$/;
const examplesOf = (text: string) => text.split("\n").flatMap((l) => (EXAMPLE.exec(l) ? [EXAMPLE.exec(l)![1]!] : []));

const SUITE_WORDS = new Set(["pmtimer", "scheduler", "wire", "kvp", "snapshot", "qtest", "clock", "hyperv"]);

/** The changes listed at the top of this file, per `hvsim` invocation of a line. */
function adapt(line: string, dir: string): string {
  const parts = line.replace(/\bnpx hvsim\b/g, "hvsim").split(/(\s(?:&&|\|)\s)/);
  return parts
    .map((seg) => {
      if (!seg.startsWith("hvsim ")) return seg;
      const w = seg.split(" ");
      const cmd = w[1];
      if (cmd === "conform" && !w.some((t) => t === "-t" || t === "--target") && !w.includes("--list")) w.push("--target", "model");
      if (cmd === "bench") {
        const kept = w.filter((t, i) => i < 2 || !SUITE_WORDS.has(t));
        const hadCompareSuite = w.some((t, i) => w[i - 1] === "--compare" && SUITE_WORDS.has(t));
        w.splice(0, w.length, ...kept);
        if (hadCompareSuite) w.splice(w.indexOf("--compare") + 1, 0, "scheduler");
        else w.push("scheduler");
        w.push("--max-time", "0.01");
        if (w.includes("--update-baseline")) w.push("--baseline", join(dir, "baseline.json"));
      }
      if (cmd === "fuzz") {
        for (let i = 2; i < w.length - 1; i++) {
          if (w[i] === "--time") w[i + 1] = "1";
          if (w[i] === "--runs") w[i + 1] = "30";
        }
      }
      return w.join(" ");
    })
    .join("");
}

/** Exit 1 is a correct outcome for these, not a broken example. */
function mayExit1(example: string): string | undefined {
  if (/hvsim bench .*--compare/.test(example)) return "a 0.01 s sample may fall past --max-regression";
  if (/hvsim fuzz (?!--list)(?!.*--replay)/.test(example)) return "a fuzz finding is exit 1";
  return undefined;
}

function fixtures(dir: string): void {
  const vss = new Uint8Array(lookupWire("hv_vss_msg")!.codec.size);
  vss[0] = VSS_OP_HOT_BACKUP;
  new DataView(vss.buffer).setUint32(8, VSS_HBU_NO_AUTO_RECOVERY, true);
  writeFileSync(join(dir, "msg.bin"), vss);
  writeFileSync(join(dir, "kvp.bin"), new Uint8Array(lookupWire("hv_kvp_msg")!.codec.size));
  saveSnapshotFile(new Bench(MACHINES.q35!, defaultKinds(), { seed: 1 }), join(dir, "snap.bin"));
  writeFileSync(join(dir, "my-parser"), "#!/bin/sh\n# reads the input file it is given, like a parser under test\nexec cat \"$1\" > /dev/null\n");
  chmodSync(join(dir, "my-parser"), 0o755);
  symlinkSync(join(ROOT, "specs"), join(dir, "specs"));
}

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** Runs a shell line without blocking the event loop, so the commands' examples run in parallel. */
function sh(command: string, cwd: string): Promise<Ran> {
  return new Promise((res) => {
    const p = spawn("bash", ["-o", "pipefail", "-c", command], { cwd, env: ENV, timeout: 120_000 });
    let out = "", err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("close", (code) => res({ code, out, err }));
  });
}

/** `hvsim qtest --socket PATH &`: serve, let one client send a command and leave; exit 0. */
async function socketExample(command: string, cwd: string): Promise<Ran & { reply: string }> {
  const m = /--socket (\S+)/.exec(command)!;
  const sock = join(cwd, m[1]!);
  const p = spawn("bash", ["-c", command.replace(/\s*&$/, "")], { cwd, env: ENV });
  let out = "", err = "";
  p.stdout.on("data", (d: Buffer) => (out += d.toString()));
  p.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => p.on("exit", (c) => res(c)));
  // The socket file appears at bind(), a moment before listen(): retry a refused connection.
  const talk = () =>
    new Promise<string>((res, rej) => {
      const c = connect(sock);
      let got = "";
      c.on("error", rej);
      c.on("connect", () => c.write("inl 0x608\n"));
      c.on("data", (d) => {
        got += d.toString();
        if (got.includes("\n")) c.end();
      });
      c.on("close", () => res(got));
    });
  let reply = "";
  for (let i = 0; ; i++) {
    try {
      reply = await talk();
      break;
    } catch (e) {
      if (i > 600 || p.exitCode !== null) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { code: await exited, out, err, reply };
}

const STACK = /\n\s+at .+:\d+:\d+/;

describe("every --help example runs", () => {
  it("the help texts list examples, and the in-process help is what the real CLI prints", () => {
    const all = [...HELP.values()].flatMap(examplesOf);
    expect(all.length).toBeGreaterThanOrEqual(20);
    for (const name of HELP.keys()) if (name && name !== "snapshot") expect(examplesOf(HELP.get(name)!).length, `hvsim ${name} --help has an example`).toBeGreaterThan(0);
    const r = spawnSync(process.execPath, [join(ROOT, "sim/cli/bin.mjs"), "fuzz", "--help"], { encoding: "utf8", env: ENV });
    expect(r.stdout).toBe(HELP.get("fuzz"));
  });

  describe.concurrent("per command", () => {
    for (const [name, text] of HELP) {
      const examples = examplesOf(text);
      if (!examples.length) continue;
      it(`hvsim ${name || "(top level)"} --help: ${examples.length} example(s)`, async () => {
        const dir = mkdtempSync(join(tmp, `${name.replace(/\W+/g, "_") || "top"}-`));
        fixtures(dir);
        for (const ex of examples) {
          const command = adapt(ex, dir);
          const r = / &$/.test(command) ? await socketExample(command, dir) : await sh(command, dir);
          const what = `${ex}\n  ran as: ${command}\n  exit ${r.code}\n  stderr: ${r.err.slice(0, 800)}`;
          expect(r.err, what).not.toMatch(/internal error/);
          expect(r.err, what).not.toMatch(STACK);
          if (!("reply" in r)) expect(r.out.length, what).toBeGreaterThan(0);
          if (mayExit1(ex)) expect([0, 1], what).toContain(r.code);
          else expect(r.code, what).toBe(0);
          if ("reply" in r) expect(r.reply).toMatch(/^OK 0x[0-9a-f]+\n$/);
        }
      }, 240_000);
    }
  });
});
