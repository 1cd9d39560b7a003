import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Campaign, inputFor, minimize, parseShard, type FuzzTarget } from "../../sim/fuzz/engine.ts";
import { parserTarget, wireTarget } from "../../sim/fuzz/targets.ts";
import { lookupWire } from "../../sim/wire/registry.ts";
import { inProcessTargets, findInProcessTarget } from "../../sim/fuzz/all.ts";
import { execTarget, splitCommand } from "../../sim/targets/exec/fuzz-exec.ts";

const root = new URL("../..", import.meta.url).pathname;
const LONG = !!process.env.HVSIM_LONG;

/** A parser with a planted bug: it trusts a length byte at offset 0 (reads past the end). */
const planted: FuzzTarget = parserTarget({
  name: "planted",
  description: "trusts its length byte",
  maxLen: 64,
  generate: (rng) => {
    const n = rng.int(0, 16);
    return Uint8Array.from([n, ...rng.bytes(n)]);
  },
  parse: (b) => {
    const n = b[0] ?? 0;
    if (b.length && n > b.length - 1) throw new RangeError(`length ${n} past the end`);
    return { ok: true };
  },
});

function hvsim(args: string[]) {
  return spawnSync(process.execPath, [join(root, "sim/cli/bin.mjs"), ...args], { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
}

describe("fuzz engine", () => {
  it("input k depends on (seed, k) alone", () => {
    const t = findInProcessTarget("hv_kvp_msg")!;
    expect(Buffer.from(inputFor(t, 7, 123).bytes)).toEqual(Buffer.from(inputFor(t, 7, 123).bytes));
    expect(Buffer.from(inputFor(t, 7, 123).bytes)).not.toEqual(Buffer.from(inputFor(t, 8, 123).bytes));
  });

  it("a campaign executes exactly inputFor's bytes, and a target writing to its input changes no later input", () => {
    const kvp = findInProcessTarget("hv_kvp_msg")!;
    const seen: Uint8Array[] = [];
    // Records a copy of each input, then scribbles over it (the campaign reuses one buffer).
    const scribbler: FuzzTarget = { ...kvp, execute: (b) => (seen.push(b.slice()), b.fill(0xee), undefined) };
    const c = new Campaign(scribbler, 3, parseShard("1/2")!);
    for (let k = 0; k < 400; k++) c.next();
    expect(seen.length).toBe(400);
    expect(seen.flatMap((b, k) => (Buffer.compare(b, inputFor(kvp, 3, 1 + 2 * k).bytes) ? [k] : []))).toEqual([]);
  });

  it("inputs do not depend on the runs before them, also for a generator returning Buffers", () => {
    // Buffer#slice is a view: the pool must hold copies, or mutations would write into it.
    const t: FuzzTarget = { ...planted, name: "buffers", generate: (rng) => Buffer.from(planted.generate(rng)) };
    const alone = inputFor(t, 4, 300).bytes;
    const fresh: FuzzTarget = { ...t };
    for (let r = 0; r < 300; r++) inputFor(fresh, 4, r);
    expect(Buffer.from(inputFor(fresh, 4, 300).bytes)).toEqual(Buffer.from(alone));
  });

  it("shards cover disjoint run indices whose union is every index", () => {
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const c = new Campaign(planted, 1, parseShard(`${i}/3`)!);
      for (let k = 0; k < 5; k++) {
        c.next();
        seen.push(c.lastRun);
      }
    }
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(parseShard("3/3")).toBeUndefined();
    expect(parseShard("x")).toBeUndefined();
  });

  it("finds the planted bug and shrinks the input to the smallest one that still fails", () => {
    const c = new Campaign(planted, 1);
    let f;
    for (let i = 0; i < 5000 && !f; i++) f = c.next();
    expect(f?.verdict.kind).toBe("crash");
    // The smallest failing input is one byte: a non-zero length with nothing after it.
    expect(f!.minimized.length).toBe(1);
    expect(planted.execute(f!.minimized)?.kind).toBe("crash");
    expect(minimize(planted, Uint8Array.from([9, 1, 2]), "crash").length).toBe(1);
  });
});

describe("wire targets check encode(decode(x)) is a fixed point", () => {
  const entry = lookupWire("hv_kvp_hdr")!;
  const good = Uint8Array.from([1, 2, 0, 0]);

  it("a sound codec passes, a codec whose encoding drifts is an invariant finding", () => {
    expect(wireTarget(entry).execute(good)).toBeUndefined();
    // Each encoding adds one to the pool byte: decode(encode(v)) differs from v, and so do the bytes.
    const drift = (b: Uint8Array) => ((b[1] = (b[1]! + 1) & 0xff), b);
    const codec = { ...entry.codec, encode: (v: unknown) => drift(entry.codec.encode(v)), encodeReused: (v: unknown, slot: 0 | 1) => drift(entry.codec.encodeReused(v, slot)) };
    expect(wireTarget({ ...entry, codec }).execute(good)).toEqual({ kind: "invariant", message: "encode(decode(encode(decode(x)))) differs from encode(decode(x))" });
  });

  it("decode with view: true gives views of the input with the copies' content; encodeReused gives encode's bytes", () => {
    const msg = lookupWire("hv_kvp_ip_msg")!.codec;
    const b = new Uint8Array(msg.size);
    b[0] = 5;
    b.set([0x41, 0, 0x42, 0], 2); // adapter_id "AB"
    const v = msg.decode(b, { view: true });
    const w = msg.decode(b);
    if (!v.ok || !w.ok) throw new Error("does not decode");
    const adapter = (x: typeof v.value) => (x as { kvp_ip_val: { adapter_id: Uint16Array } }).kvp_ip_val.adapter_id;
    expect([...adapter(v.value).subarray(0, 3)]).toEqual([0x41, 0x42, 0]);
    expect(adapter(v.value).buffer).toBe(b.buffer); // a view
    expect(adapter(w.value).buffer).not.toBe(b.buffer); // a copy
    expect(Buffer.compare(msg.encodeReused(v.value, 0), msg.encode(w.value))).toBe(0);
    expect(Buffer.compare(msg.encodeReused(w.value, 1), b)).toBe(0);
    // An odd address cannot hold a Uint16Array view: copied instead, same content.
    const odd = new Uint8Array(msg.size + 1);
    odd.set(b, 1);
    const o = msg.decode(odd.subarray(1), { view: true });
    expect(o.ok && [...adapter(o.value).subarray(0, 3)]).toEqual([0x41, 0x42, 0]);
  });
});

describe("in-process decoders never throw", () => {
  // Whole-file formats (a snapshot, a YAML scenario, a vmm bench per input) cost far more per
  // input than a decoder: they get a tenth of the inputs. Long mode: HVSIM_LONG=1 (npm run test:long).
  const HEAVY = new Set(["snapshot", "scenario", "vmmctl"]);
  for (const t of inProcessTargets()) {
    const runs = (LONG ? 1_000_000 : 3_000) / (HEAVY.has(t.name) ? 10 : 1);
    it(`${t.name}: ${runs} inputs, no finding`, () => {
      const c = new Campaign(t, 20261122);
      const found: string[] = [];
      for (let i = 0; i < runs; i++) {
        const f = c.next();
        if (f) found.push(`${f.verdict.kind}: ${f.verdict.message}`);
      }
      expect(found).toEqual([]);
    }, LONG ? 3_600_000 : 60_000);
  }
});

describe("exec: targets", () => {
  it("splits commands with quotes", () => {
    expect(splitCommand(`sh -c 'echo "a b"' x`)).toEqual(["sh", "-c", 'echo "a b"', "x"]);
  });

  it("reports a signal as a finding and shrinks the file", () => {
    // Crashes (SIGSEGV) on inputs longer than 20 bytes; the shrunk input has exactly 21.
    const t = execTarget(`sh -c '[ $(wc -c < "$1") -gt 20 ] && kill -SEGV $$; exit 0' sh @@`, { maxLen: 64 });
    try {
      expect(t.execute(new Uint8Array(5))).toBeUndefined();
      expect(t.execute(new Uint8Array(40))?.kind).toBe("signal");
      expect(minimize(t, new Uint8Array(40).fill(7), "signal", 200).length).toBe(21);
    } finally {
      t.close?.();
    }
  });

  it("reports a time-out as a hang and a sanitizer line as a sanitizer finding", () => {
    const hang = execTarget("sleep 5", { timeoutMs: 200 });
    const san = execTarget(`sh -c 'echo "==1==ERROR: AddressSanitizer: heap-buffer-overflow" >&2'`);
    try {
      expect(hang.execute(new Uint8Array(1))?.kind).toBe("hang");
      expect(san.execute(new Uint8Array(1))).toMatchObject({ kind: "sanitizer", message: expect.stringContaining("AddressSanitizer") });
    } finally {
      hang.close?.();
      san.close?.();
    }
  });
});

describe("hvsim fuzz CLI", () => {
  it("saves a shrunk finding with its seed, and --replay reproduces it", () => {
    const dir = mkdtempSync(join(tmpdir(), "hvsim-fuzz-spec-"));
    const cmd = `exec:sh -c '[ $(wc -c < "$1") -gt 20 ] && kill -SEGV $$; exit 0' sh @@`;
    // A generous --timeout: on a loaded machine a `sh` run can take seconds, and an input that
    // hangs instead of crashing would stop the shrinking this test is about.
    const r = hvsim(["fuzz", cmd, "--runs", "300", "--seed", "5", "--corpus", dir, "--export", "3", "--timeout", "30000"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/finding: signal: killed by SIGSEGV/);
    const sub = readdirSync(dir).find((d) => d.startsWith("exec"))!;
    const files = readdirSync(join(dir, sub));
    expect(readdirSync(join(dir, sub, "inputs")).length).toBe(3);
    const bin = files.find((f) => f.endsWith(".bin") && !f.endsWith(".orig.bin"))!;
    expect(readFileSync(join(dir, sub, bin)).length).toBe(21);
    const meta = JSON.parse(readFileSync(join(dir, sub, bin.replace(/\.bin$/, ".json")), "utf8"));
    expect(meta).toMatchObject({ seed: 5, kind: "signal" });
    const again = hvsim(["fuzz", "--replay", join(dir, sub, bin), "--timeout", "30000"]);
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/regenerates the original input: yes/);
    expect(again.stdout).toMatch(/still fails: signal/);
  });

  it("usage errors exit 2 with one line and no stack trace", () => {
    const r = hvsim(["fuzz", "no_such_struct"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown fuzz target 'no_such_struct'/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
    expect(hvsim(["fuzz", "hv_vss_msg", "--shard", "2/2"]).status).toBe(2);
  });

  it("a clean target runs its inputs and exits 0 with execs/s in the summary", () => {
    const r = hvsim(["fuzz", "hv_vss_msg", "--runs", "2000"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/2000 execs in .* execs\/s\), 0 findings/);
  });
});
