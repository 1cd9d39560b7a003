// The vmm device kind is one of hvsim's device kinds (sim/devices/index.ts), so machines and
// snapshots can name it.
import { describe, expect, it } from "vitest";
import { defaultKinds } from "../../sim/devices/index.ts";
import { VmmKind } from "../../sim/devices/vmm/vmm.ts";

describe("vmm device kind", () => {
  it("is registered as type vmm", () => {
    expect(defaultKinds().get("vmm")).toBe(VmmKind);
  });
});
