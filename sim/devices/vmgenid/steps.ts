// Scenario steps for the VM generation ID:
//   - vmgenid: firmware        blob: 0x3000     # firmware loads the blob and writes etc/vmgenid_addr
//   - vmgenid: set             guid: <GUID|auto> # the runtime change (set-vm-generation-id)
//   - vmgenid: probe                             # the guest driver evaluates ADDR and reads the ID
//   - vmgenid: check           guid: <GUID>, generation: N, notifications: N, reseeds: N
// Optional `device:` / `driver:` name other device ids (default "vmgenid" / "vmgenid-driver").
import { z } from "zod";
import { registerStep, StepAssertion, StepError, type StepContext } from "../../scenario/registry.ts";
import { VmgenidDevice, VmgenidDriver, VMGENID_GUID_OFFSET } from "./vmgenid.ts";
import { parseGuid } from "./guid.ts";

const count = z.number().int().nonnegative();
const guid = z.string().refine((g) => g === "auto" || parseGuid(g) !== undefined, "guid must be \"auto\" or a GUID like 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87");
const ids = { device: z.string().optional(), driver: z.string().optional() };

const Schema = z.discriminatedUnion("vmgenid", [
  z.strictObject({ vmgenid: z.literal("firmware"), blob: count, ...ids }),
  z.strictObject({ vmgenid: z.literal("set"), guid, changed: z.boolean().optional(), ...ids }),
  z.strictObject({ vmgenid: z.literal("probe"), ...ids }),
  z.strictObject({
    vmgenid: z.literal("check"),
    guid: z.string().optional(),
    generation: count.optional(),
    notifications: count.optional(),
    reseeds: count.optional(),
    ...ids,
  }),
]);

function dev(ctx: StepContext, id = "vmgenid"): VmgenidDevice {
  const d = ctx.bench.findDevice(id);
  if (!(d instanceof VmgenidDevice)) throw new StepError(`machine ${ctx.bench.machine.name} has no vmgenid device ${id}`);
  return d;
}

function drv(ctx: StepContext, id = "vmgenid-driver"): VmgenidDriver {
  const d = ctx.bench.findDevice(id);
  if (!(d instanceof VmgenidDriver)) throw new StepError(`machine ${ctx.bench.machine.name} has no vmgenid driver ${id}`);
  return d;
}

function same(what: string, expected: string | number, actual: string | number): void {
  if (expected !== actual) throw new StepAssertion(`${what} ${expected}`, `${what} ${actual}`);
}

registerStep(
  "vmgenid",
  Schema,
  (a, ctx) => {
    const d = dev(ctx, a.device);
    switch (a.vmgenid) {
      case "firmware":
        d.placeBlob(a.blob);
        ctx.note(`vmgenid blob at 0x${a.blob.toString(16)}, GUID at 0x${(a.blob + VMGENID_GUID_OFFSET).toString(16)}`);
        return;
      case "set": {
        const changed = d.setGuid(a.guid);
        if (a.changed !== undefined && changed !== a.changed) throw new StepAssertion(`changed ${a.changed}`, `changed ${changed}`);
        return;
      }
      case "probe":
        drv(ctx, a.driver).probe();
        return;
      case "check": {
        if (a.guid !== undefined) same("guid", a.guid, d.guidText);
        if (a.generation !== undefined) same("generation", a.generation, d.state.generation);
        if (a.notifications !== undefined) same("notifications", a.notifications, drv(ctx, a.driver).state.notifications);
        if (a.reseeds !== undefined) same("reseeds", a.reseeds, drv(ctx, a.driver).state.reseeds);
        return;
      }
    }
  },
  { describe: (a) => `vmgenid ${a.vmgenid}` },
);
