// Fuzz targets for the file formats and protocol parsers beyond single wire structs: host IC
// frames and negotiate bodies, KVP pool files, snapshot files, scenario files, and vmmctl ioctls
// (a command word and argument bytes sent to the /dev/vmmctl model, which must answer with an
// errno and keep its invariants).
import type { Rng } from "../clock/rng.ts";
import { Bench } from "../machine/bench.ts";
import { MACHINES } from "../machine/machines.ts";
import { defaultKinds } from "../devices/index.ts";
import { buildIcFrame, buildNegotiate, parseIcFrame, parseNegotiate } from "../devices/hyperv/frames.ts";
import { decodePoolFile, encodePoolFile } from "../devices/hyperv/pool.ts";
import { parseSnapshot, saveSnapshot } from "../snapshot/index.ts";
import { parseScenario } from "../scenario/index.ts";
import type { VmmDevice } from "../devices/vmm/vmm.ts";
import { vmmctlArgBytes } from "../devices/vmm/ctl.ts";
import { hintsFromCodec } from "./mutate.ts";
import { parserTarget, registerFuzzTarget } from "./targets.ts";
import { thrownMessage, type FuzzTarget, type Verdict } from "./engine.ts";
import { Checkpoint } from "../snapshot/checkpoint.ts";
import { lookupWire } from "../wire/registry.ts";

const text = (rng: Rng, max: number) => {
  const words = ["FullyQualifiedDomainName", "OSName", "key", "value", "ü", "x".repeat(30), "", "a b"];
  let s = "";
  const n = rng.int(0, 3);
  for (let i = 0; i < n; i++) s += words[rng.int(0, words.length - 1)]!;
  return s.slice(0, max);
};

const pipeHints = hintsFromCodec(lookupWire("vmbuspipe_hdr")!.codec);
const icHints = hintsFromCodec(lookupWire("icmsg_hdr")!.codec).map((h) => ({ ...h, offset: h.offset + 8 }));

registerFuzzTarget(
  parserTarget({
    name: "ic-frame",
    description: "host IC packet: vmbuspipe_hdr + icmsg_hdr + payload (parseIcFrame)",
    maxLen: 512,
    hints: [...pipeHints, ...icHints],
    generate: (rng) => buildIcFrame({ msgType: rng.int(0, 7), transactionId: rng.int(0, 255), payload: rng.bytes(rng.int(0, 64)) }),
    parse: (b) => parseIcFrame(b),
  }),
);

registerFuzzTarget(
  parserTarget({
    name: "ic-negotiate",
    description: "icmsg_negotiate body with its version counts (parseNegotiate)",
    maxLen: 1024,
    hints: hintsFromCodec(lookupWire("icmsg_negotiate")!.codec),
    generate: (rng) => {
      const v = () => ({ major: rng.int(0, 5), minor: rng.int(0, 1) });
      return buildNegotiate(Array.from({ length: rng.int(0, 3) }, v), Array.from({ length: rng.int(0, 3) }, v));
    },
    parse: (b) => parseNegotiate(b),
  }),
);

registerFuzzTarget(
  parserTarget({
    name: "kvp-pool",
    description: "a .kvp_pool_N file: records of key[512] + value[2048] (decodePoolFile)",
    maxLen: 2560 * 4 + 64,
    hints: [0, 1, 2].flatMap((i) => [
      { path: `[${i}].key`, offset: i * 2560, size: 512, kind: "bytes" as const },
      { path: `[${i}].value`, offset: i * 2560 + 512, size: 2048, kind: "bytes" as const },
    ]),
    generate: (rng) => encodePoolFile(Array.from({ length: rng.int(0, 3) }, () => [text(rng, 500), text(rng, 2000)] as const)),
    parse: (b) => decodePoolFile(b),
  }),
);

registerFuzzTarget(
  parserTarget({
    name: "snapshot",
    description: "an hvsim snapshot file (parseSnapshot): header, manifest, checksummed chunks",
    maxLen: 64 * 1024,
    hints: [
      { path: "version", offset: 8, size: 4, kind: "uint" },
      { path: "manifestLength", offset: 12, size: 4, kind: "uint" },
    ],
    generate: (rng) => {
      const b = new Bench(MACHINES.q35!, defaultKinds(), { seed: rng.u32() });
      b.memory.write(rng.int(0, 64) * 4096, rng.bytes(rng.int(1, 64)));
      b.clock.step(rng.int(0, 1e9));
      return saveSnapshot(b);
    },
    parse: (b) => parseSnapshot(b),
  }),
);

const SCENARIOS = [
  "name: a\nmachine: q35\nseed: 1\nsteps:\n  - inl: 0x608\n    expect: 0xffffffff\n  - step: 1000\n",
  "machine: bhyve\nsteps:\n  - until: 1000000000\n  - inl: 0x408\n  - inb: 0x408\n    fault: EIO\n",
  '{"machine": "q35", "seed": 3, "steps": [{"outl": [3320, 2147545152]}, {"read": 4096, "size": 4}]}',
];

const utf8 = new TextDecoder();

/**
 * Runs `f` with stack capture off: the YAML parser builds an Error per problem it meets and most
 * fuzz inputs have many, each capturing a stack nobody reads (messages are unchanged).
 */
function withoutStacks<T>(f: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return f();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

registerFuzzTarget(
  parserTarget({
    name: "scenario",
    description: "a scenario file, YAML or JSON (parseScenario)",
    maxLen: 4096,
    generate: (rng) => new TextEncoder().encode(SCENARIOS[rng.int(0, SCENARIOS.length - 1)]!),
    parse: (b) => withoutStacks(() => parseScenario(utf8.decode(b), "fuzz.yaml")),
  }),
);

/** Command word (u32 LE) followed by argument bytes, sent to /dev/vmmctl on a fresh bhyve host. */
const vmmTarget: FuzzTarget = {
  name: "vmmctl",
  description: "ioctl on /dev/vmmctl: u32 command word + argument bytes (errno, invariants intact)",
  maxLen: 4 + 512,
  hints: [{ path: "cmd", offset: 0, size: 4, kind: "uint" }, { path: "arg.name", offset: 4, size: 230, kind: "bytes" }],
  generate(rng) {
    // VMMCTL_VM_CREATE / DESTROY (0xC1285600 / 0xC1285601 with VM_MAX_NAMELEN 229) or a random word.
    const cmd = [0xc1285600, 0xc1285601, rng.u32()][rng.int(0, 2)]!;
    const arg = vmmctlArgBytes(text(rng, 40) || "vm0", { maxNameLen: 229 });
    const out = new Uint8Array(4 + arg.length);
    new DataView(out.buffer).setUint32(0, cmd, true);
    out.set(arg, 4);
    return out;
  },
  execute(input) {
    try {
      // Every input starts from the same warm state: a bhyve host with /dev/vmmctl open, taken
      // once and rolled back to after each input (sim/snapshot/checkpoint.ts).
      const w = (warm ??= makeWarm());
      if (typeof w === "string") return { kind: "invariant", message: w };
      try {
        return vmmInput(w.bench, w.dev, w.fd, input);
      } finally {
        w.cp.rollback();
      }
    } catch (e) {
      return { kind: "crash", message: `vmmctl model threw: ${thrownMessage(e)}` };
    }
  },
};

interface Warm {
  readonly bench: Bench;
  readonly dev: VmmDevice;
  readonly fd: number;
  readonly cp: Checkpoint;
}
let warm: Warm | string | undefined;

/** The warm state of the vmmctl target (exported for its spec). */
export function makeWarm(): Warm | string {
  const bench = new Bench(MACHINES["bhyve-host"]!, defaultKinds());
  const dev = bench.device<VmmDevice>("vmm");
  const o = dev.open("/dev/vmmctl", "rw");
  if (!("fd" in o)) return `open /dev/vmmctl failed with errno ${o.errno}`;
  return { bench, dev, fd: o.fd, cp: Checkpoint.take(bench) };
}

function vmmInput(bench: Bench, dev: VmmDevice, fd: number, input: Uint8Array): Verdict | undefined {
  const cmd = input.length >= 4 ? new DataView(input.buffer, input.byteOffset).getUint32(0, true) : 0;
  const r = dev.ioctl(fd, cmd, input.subarray(4));
  if (r.status === "pending") bench.clock.step(10_000_000_000);
  else if (!Number.isInteger(r.errno)) return { kind: "invariant", message: "ioctl returned no errno" };
  const bad = dev.invariants();
  return bad.length ? { kind: "invariant", message: `invariant broken: ${bad[0]}` } : undefined;
}
registerFuzzTarget(vmmTarget);
