// Conformance checks for bhyve's PM timer (and bhyve's port I/O around it) and for the ideal ACPI
// profile. No real bhyve or ideal timer runs here, so against the model every reply is held to a
// golden value from the upstream code, derived in the comment next to it:
//   freebsd-src sys/amd64/vmm/io/vpmtmr.c   vpmtmr_init: FREQ2BT(PMTMR_FREQ, &bt); freq_sbt =
//       bttosbt(bt) = ((2^63 / 3579545) << 1) >> 32 = 1199; vpmtmr_handler: `if (!in || bytes != 4)
//       return (-1);` and `*val = vpmtmr->baseval + delta / vpmtmr->freq_sbt`.
//   sys/amd64/vmm/vmm_ioport.c               ioport_handler[IO_PMTMR] = vpmtmr_handler (0x408 only);
//       a handler error returns EIO from vm_run; no handler: "punt to userspace".
//   usr.sbin/bhyve/inout.c                    default_inout: IN reads 0xff / 0xffff / 0xffffffff,
//       OUT dropped; with x86.strictio (bhyve -e) emulate_inout returns -1 -> VMEXIT_ABORT.
//   sys/sys/time.h (main)                     nstosbt(t) = ceil(t * 2^32 / 1e9) for t >= 0.
//   ACPI spec / QEMU hw/acpi/core.c           the ideal counter floor(ns * 3579545 / 1e9), 24 bits
//       or 32 with TMR_VAL_EXT; QEMU 7.2 read 0x36910d at 5686000280 ns (pmtimer.check.ts).
import { scriptCheck, type ScriptStep } from "../../sim/conform/script.ts";
import type { Check, Outcome } from "../../sim/conform/types.ts";
import { benchQtestSession } from "../../sim/conform/model-target.ts";
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";

const ok = (v: number) => `OK 0x${v.toString(16).padStart(4, "0")}`;

/** A script whose replies are matched exactly, or (for refusals) by their "FAIL <errno>:" prefix. */
function prefixScript(id: string, title: string, machine: MachineSpec, steps: readonly (readonly [string, string | RegExp])[]): Check {
  return {
    id,
    suite: "pmtimer",
    title,
    needs: ["model", "clock", "portio"],
    async run(): Promise<Outcome> {
      const s = benchQtestSession(new Bench(machine, defaultKinds()));
      const problems: string[] = [];
      try {
        for (const [i, [cmd, want]] of steps.entries()) {
          const got = await s.command(cmd);
          if (typeof want === "string" ? got !== want : !want.test(got)) problems.push(`step ${i + 1} '${cmd}': expected '${String(want)}' (upstream), got '${got}'`);
        }
      } finally {
        await s.close();
      }
      return problems.length ? { status: "failed", detail: problems.join("\n") } : { status: "passed", detail: `${steps.length} commands` };
    },
  };
}

const EIO = /^FAIL EIO: /;
const ABORT = /^FAIL VMEXIT_ABORT: /;
const bhyveStrict: MachineSpec = { ...MACHINES.bhyve!, devices: MACHINES.bhyve!.devices.map((d) => (d.id === "inout" ? { ...d, config: { strictIo: true } } : d)) };
const acpi24: MachineSpec = { ...MACHINES.acpi!, devices: [{ type: "pmtimer", id: "pmtimer", config: { profile: "acpi", port: 0x408, tmrValExt: false } }] };

const steps = (pairs: readonly (readonly [string, string])[]): ScriptStep[] => pairs.map(([cmd, golden]) => ({ cmd, golden }));

export const checks: Check[] = [
  scriptCheck({
    id: "pmtimer/bhyve-rate",
    suite: "pmtimer",
    title: "bhyve vpmtmr: 2^32 / 1199 ticks per second (freq_sbt 1199), counter steps decided by FreeBSD main's nstosbt",
    machine: "bhyve",
    steps: steps([
      ["inl 0x408", ok(0)],
      // nstosbt(5132708) = ceil(5132708 * 2^32 / 1e9) = 22,044,813 = 1199 * 18386 - 1: reads 18,385;
      // one ns later 22,044,818: reads 18,386. (FreeBSD 12-14's rounding was one sbt high here.)
      ["clock_set 5132708", "OK 5132708"],
      ["inl 0x408", ok(18_385)],
      ["clock_set 5132709", "OK 5132709"],
      ["inl 0x408", ok(18_386)],
      // nstosbt(1e9) = 2^32: floor(2^32 / 1199) = 3,582,124 = 0x36a8ac.
      ["clock_set 1000000000", "OK 1000000000"],
      ["inl 0x408", ok(3_582_124)],
      // nstosbt(10e9) = 10 * 2^32: floor(42949672960 / 1199) = 35,821,245.
      ["clock_set 10000000000", "OK 10000000000"],
      ["inl 0x408", ok(35_821_245)],
    ]),
  }),
  scriptCheck({
    id: "pmtimer/bhyve-wrap",
    suite: "pmtimer",
    title: "bhyve vpmtmr: the 32-bit counter wraps every 2^32 * 1199 sbt = exactly 1199 s",
    machine: "bhyve",
    steps: steps([
      // nstosbt(1199e9 - 1) = 1199 * 2^32 - 4 (ceil(2^32 / 1e9) = 5 sbt per the last ns): floor / 1199 = 2^32 - 1.
      ["clock_set 1198999999999", "OK 1198999999999"],
      ["inl 0x408", ok(0xffffffff)],
      ["clock_set 1199000000000", "OK 1199000000000"],
      ["inl 0x408", ok(0)],
      ["clock_set 2398000000000", "OK 2398000000000"],
      ["inl 0x408", ok(0)],
    ]),
  }),
  prefixScript("pmtimer/bhyve-widths", "bhyve: 0x408 takes a 4-byte IN only (EIO otherwise); 0x409-0x40b and the other ports read all ones of the width (user space default_inout)", MACHINES.bhyve!, [
    ["clock_step 1000000000", "OK 1000000000"],
    ["inl 0x408", ok(3_582_124)],
    ["inb 0x408", EIO],
    ["inw 0x408", EIO],
    ["outl 0x408 0x0", EIO],
    ["outb 0x408 0x0", EIO],
    ["inb 0x409", ok(0xff)],
    ["inw 0x40a", ok(0xffff)],
    ["inl 0x40b", ok(0xffffffff)],
    ["inl 0x409", ok(0xffffffff)],
    ["inl 0x407", ok(0xffffffff)], // dispatch is on the first port: 0x407 is user space's, whole
    ["inw 0x404", ok(0xffff)],
    ["outb 0x409 0x12", "OK"],
    ["outl 0x40c 0x12345678", "OK"],
    ["inl 0x408", ok(3_582_124)],
  ]),
  prefixScript("pmtimer/bhyve-strict-io", "bhyve -e (x86.strictio): an access no handler takes makes the VM exit; 0x408 is still answered by the kernel", bhyveStrict, [
    ["inb 0x409", ABORT],
    ["inl 0x40b", ABORT],
    ["outw 0x80 0x1", ABORT],
    ["inw 0x408", EIO],
    ["clock_step 1000000000", "OK 1000000000"],
    ["inl 0x408", ok(3_582_124)],
  ]),
  {
    id: "pmtimer/bhyve-restore-policies",
    suite: "pmtimer",
    title: "bhyve restore: upstream restarts from the destination VM's creation (two converted uptimes); monotonic continues exactly",
    needs: ["model", "clock", "portio"],
    async run(): Promise<Outcome> {
      const problems: string[] = [];
      const spec = (restore: string): MachineSpec => ({ ...MACHINES.bhyve!, devices: MACHINES.bhyve!.devices.map((d) => (d.id === "pmtimer" ? { ...d, config: { ...d.config, restore } } : d)) });
      const migrate = (restore: string, at: number, reads: number[]) => {
        const a = new Bench(spec(restore), defaultKinds());
        a.clock.runUntil(at);
        const b = new Bench(spec(restore), defaultKinds());
        const r = restoreSnapshot(b, saveSnapshot(a));
        if (!r.ok) throw new Error(r.error.reason);
        return reads.map((t) => (b.clock.runUntil(t), b.ports.in(0x408, 4)));
      };
      const expect = (what: string, got: number[], want: number[]) => {
        if (got.join() !== want.join()) problems.push(`${what}: expected [${want.join(", ")}] (upstream), got [${got.join(", ")}]`);
      };
      // Upstream, saved at 1 s: baseuptime = nstosbt(1e9) = 2^32 (the destination VM created at the
      // restore); at 1 s reads 0, at 2 s (2 * 2^32 - 2^32) / 1199 = 3,582,124.
      expect("bhyve-upstream saved at 1 s", migrate("bhyve-upstream", 1e9, [1e9, 2e9]), [0, 3_582_124]);
      // Upstream, saved at 1 ns: baseuptime = nstosbt(1) = 5; nstosbt(280) = 1203, nstosbt(281) = 1207:
      // (1203 - 5) / 1199 = 0 and (1207 - 5) / 1199 = 1.
      expect("bhyve-upstream saved at 1 ns", migrate("bhyve-upstream", 1, [280, 281]), [0, 1]);
      // Monotonic, saved at 1 ns: as uninterrupted, nstosbt(278) = 1194 -> 0, nstosbt(279) = 1199 -> 1.
      expect("monotonic saved at 1 ns", migrate("monotonic", 1, [278, 279]), [0, 1]);
      return problems.length ? { status: "failed", detail: problems.join("\n") } : { status: "passed", detail: "3 restores" };
    },
  },
  prefixScript("pmtimer/acpi-32", "ideal ACPI PM timer with TMR_VAL_EXT: floor(ns * 3579545 / 1e9) mod 2^32, byte lanes, writes ignored", MACHINES.acpi!, [
    ["clock_set 5686000280", "OK 5686000280"],
    // floor(5686000280 * 3579545 / 1e9) = 0x136910d; QEMU 7.2 read its low 24 bits, 0x36910d, at
    // this time. TMR_VAL_EXT shows the whole count; narrower reads are its byte lanes.
    ["inl 0x408", ok(0x136910d)],
    ["inb 0x408", ok(0x0d)],
    ["inb 0x409", ok(0x91)],
    ["inb 0x40a", ok(0x36)],
    ["inb 0x40b", ok(0x01)],
    ["inw 0x40a", ok(0x0136)],
    ["outl 0x408 0x0", "OK"],
    ["inl 0x408", ok(0x136910d)],
    // 1199 s: floor(1199e9 * 3579545 / 1e9) = 4,291,874,455 (below 2^32: no wrap yet).
    ["clock_set 1199000000000", "OK 1199000000000"],
    ["inl 0x408", ok(4_291_874_455)],
    // 1200 s: 4,295,454,000 - 2^32 = 486,704 (the 32-bit wrap).
    ["clock_set 1200000000000", "OK 1200000000000"],
    ["inl 0x408", ok(486_704)],
  ]),
  prefixScript("pmtimer/acpi-24", "ideal ACPI PM timer without TMR_VAL_EXT: 24 bits", acpi24, [
    ["clock_set 1000000000", "OK 1000000000"],
    ["inl 0x408", ok(0x369e99)], // 3579545 (QEMU 7.2 read the same at 1e9 ns)
    ["clock_set 5686000280", "OK 5686000280"],
    ["inl 0x408", ok(0x36910d)], // QEMU 7.2's reply at this time
    ["inb 0x40a", ok(0x36)],
    ["inb 0x40b", ok(0x00)],
  ]),
];
