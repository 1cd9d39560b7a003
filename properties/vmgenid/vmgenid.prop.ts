// VM generation ID properties on the q35 machine, over arbitrary sequences of runtime changes
// (new or repeated GUIDs, guid=auto), clock steps, and snapshot save + restore:
//  - the guest driver is never notified before the new GUID is in guest memory;
//  - after any restore the GUID differs from the saved one and exactly one notification reaches
//    the guest (QEMU hw/acpi/vmgenid.c post_load; Linux drivers/virt/vmgenid.c reseeds on change).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Bench } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";
import type { VmgenidDevice, VmgenidDriver } from "../../sim/devices/vmgenid/vmgenid.ts";
import { guidToGuestBytes } from "../../sim/devices/vmgenid/guid.ts";
import { fromHex, toHex } from "../../sim/clock/canonical.ts";

const LONG = !!process.env.HVSIM_LONG;

type Op =
  | { op: "set"; guid: string }
  | { op: "step"; ns: number }
  | { op: "save-restore" };

const guidArb = fc.oneof(
  fc.constant("auto"),
  fc.constantFrom("324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87", "11111111-2222-4333-8444-555555555555"),
  fc.uuid(),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  guidArb.map((guid) => ({ op: "set" as const, guid })),
  fc.integer({ min: 0, max: 5_000 }).map((ns) => ({ op: "step" as const, ns })),
  fc.constant({ op: "save-restore" as const }),
);

function bench(seed: number): Bench {
  const b = new Bench(MACHINES.q35!, defaultKinds(), { seed });
  b.device<VmgenidDevice>("vmgenid").placeBlob(0x3000);
  b.device<VmgenidDriver>("vmgenid-driver").probe();
  return b;
}

describe("vmgenid", () => {
  it("never notifies the guest before the new GUID is in memory; every restore brings a new GUID and one notification", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.array(opArb, { maxLength: 25 }), (seed, ops) => {
        let b = bench(seed);
        const violations: string[] = [];
        const watch = (bb: Bench) =>
          bb.clock.trace.listen((r) => {
            if (r.type !== "vmgenid-notify") return;
            const dev = bb.device<VmgenidDevice>("vmgenid");
            const inMemory = toHex(bb.memory.read(dev.state.addr, 16));
            const current = toHex(guidToGuestBytes(fromHex(dev.state.guid)!));
            if (inMemory !== current) violations.push(`notified at ${r.at} with ${inMemory} in memory, GUID is ${current}`);
          });
        let unwatch = watch(b);
        for (const o of ops) {
          if (o.op === "set") b.device<VmgenidDevice>("vmgenid").setGuid(o.guid);
          else if (o.op === "step") b.clock.step(o.ns);
          else {
            while (b.clock.pending) b.clock.runNext(); // deliver what is in flight before saving
            const savedGuid = b.device<VmgenidDevice>("vmgenid").state.guid;
            const before = b.device<VmgenidDriver>("vmgenid-driver").state.notifications;
            const bytes = saveSnapshot(b);
            unwatch();
            const fresh = new Bench(MACHINES.q35!, defaultKinds(), { seed: seed + 1 });
            const r = restoreSnapshot(fresh, bytes);
            if (!r.ok) return false;
            b = fresh;
            unwatch = watch(b);
            while (b.clock.pending) b.clock.runNext();
            const dev = b.device<VmgenidDevice>("vmgenid");
            if (dev.state.guid === savedGuid) violations.push("restore kept the saved GUID");
            const after = b.device<VmgenidDriver>("vmgenid-driver").state.notifications;
            if (after !== before + 1) violations.push(`restore delivered ${after - before} notifications`);
          }
        }
        unwatch();
        expect(violations).toEqual([]);
        return true;
      }),
      { numRuns: LONG ? 2000 : 100 },
    );
  });
});
