// Golden trace hashes, pinned per example scenario (in the spirit of fast-check's no-regression
// tests): any change to device behaviour, RNG use or trace format changes a hash here, and so shows
// up as a reviewed change of specs/scenario/pinned-hashes.json rather than passing silently.
// To re-pin after a deliberate change: HVSIM_UPDATE_PINS=1 npx vitest run specs/scenario/pinned-hashes.spec.ts
// and say in the commit why the hashes moved.
import { describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runScenarioFile } from "../../sim/scenario/index.ts";

const root = join(import.meta.dirname, "..", "scenarios");
const pinFile = join(import.meta.dirname, "pinned-hashes.json");
const pinned = JSON.parse(readFileSync(pinFile, "utf8")) as Record<string, string>;
const update = process.env.HVSIM_UPDATE_PINS === "1";
const files = readdirSync(root).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
const seen: Record<string, string> = {};

function hashOf(file: string): string {
  const dir = mkdtempSync(join(tmpdir(), "hvsim-pin-"));
  try {
    const r = runScenarioFile(join(root, file), { snapshotDir: dir });
    if (r.status !== "ok") throw new Error(`${file}: ${r.status}`);
    return r.traceHash;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("pinned trace hashes of the example scenarios", () => {
  it("every example scenario has a pin and every pin an example", () => {
    if (update) return;
    expect(Object.keys(pinned).sort()).toEqual(files);
  });
  for (const f of files) {
    it(`${f} keeps its trace hash`, () => {
      const h = hashOf(f);
      seen[f] = h;
      if (update) {
        writeFileSync(pinFile, JSON.stringify({ ...pinned, ...seen }, null, 2) + "\n");
        return;
      }
      expect(h).toBe(pinned[f]);
    });
  }
});
