// Per-seed pins of the random conformance checks (the Hyper-V random differential and the pmtimer
// random scripts), in the spirit of fast-check's no-regression tests: each check runs on the model
// for a few seeds through a recording target, and the SHA-256 of everything the check was answered
// (every Hyper-V answer, every qtest reply, in order) plus its outcome status is pinned in
// specs/conformance/seed-pins.json. A change to a generator, the RNG, a model's behaviour or the
// answer format moves a hash and so shows up as a reviewed change.
// To re-pin after a deliberate change: HVSIM_UPDATE_PINS=1 npx vitest run specs/conformance/seed-pins.spec.ts
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { modelTarget } from "../../sim/conform/model-target.ts";
import type { Check } from "../../sim/conform/types.ts";
import { tapTarget } from "./wrap-target.ts";
import { checks as diffChecks } from "../hyperv/differential.check.ts";
import { checks as pmChecks } from "../pmtimer/pmtimer.check.ts";
import { checks as widthChecks } from "../pmtimer/q35-widths.check.ts";

const pinFile = join(import.meta.dirname, "seed-pins.json");
const pinned = JSON.parse(readFileSync(pinFile, "utf8")) as Record<string, string>;
const update = process.env.HVSIM_UPDATE_PINS === "1";
const SEEDS = [1, 2, 3];
const IDS = ["kvp/random-differential", "vss/random-differential", "pmtimer/q35-random-steps", "pmtimer/q35-random-ops"];
const all: Check[] = [...diffChecks, ...pmChecks, ...widthChecks];
const seen: Record<string, string> = {};

async function hashOf(c: Check, seed: number): Promise<string> {
  const model = modelTarget(seed);
  const h = createHash("sha256");
  const rec = tapTarget(model, () => ({
    reply(line, cmd) {
      h.update(`${cmd} -> ${line}\n`);
      return line;
    },
    answer(a, what) {
      h.update(`${what} -> ${JSON.stringify({ s: a.status, f: a.flags, r: a.result }, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v))}\n`);
      return a;
    },
  }));
  const o = await c.run({ target: rec, model, seed });
  h.update(`outcome ${o.status}`);
  return h.digest("hex");
}

describe("pinned answer hashes of the random conformance checks, per seed", () => {
  it("every pin is of a listed check and seed", () => {
    if (update) return;
    expect(Object.keys(pinned).sort()).toEqual(IDS.flatMap((id) => SEEDS.map((s) => `${id}@${s}`)).sort());
  });
  for (const id of IDS) {
    for (const seed of SEEDS) {
      it(`${id} seed ${seed} keeps its hash`, async () => {
        const c = all.find((x) => x.id === id);
        expect(c, id).toBeDefined();
        const h = await hashOf(c!, seed);
        seen[`${id}@${seed}`] = h;
        if (update) writeFileSync(pinFile, JSON.stringify({ ...pinned, ...seen }, null, 2) + "\n");
        else expect(h).toBe(pinned[`${id}@${seed}`]);
      });
    }
  }
});
