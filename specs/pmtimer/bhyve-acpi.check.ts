// Conformance checks for bhyve's PM timer (and bhyve's port I/O around it) and for the ideal ACPI
// timer (machines acpi: TMR_VAL_EXT, 32 bits; acpi24: without it, 24 bits). Everything that can be
// said over the qtest protocol is a qtest script (scriptCheck): it runs against any target that
// declares machine:bhyve / machine:acpi / machine:acpi24 (`hvsim conform --target qtest:<cmd>
// --machine bhyve`), each reply held to the golden value below and, against a real target, to the
// model's reply too. A refusal is compared by its "FAIL <errno>:" head (ScriptStep.errnoOnly).
// What needs a machine configuration or a snapshot a qtest target cannot be asked for (bhyve -e,
// the restore policies) runs on the model only and says so in its title.
// Golden values, derived in the comment next to each from the upstream code:
//   freebsd-src sys/amd64/vmm/io/vpmtmr.c   vpmtmr_init: FREQ2BT(PMTMR_FREQ, &bt); freq_sbt =
//       bttosbt(bt) = ((2^63 / 3579545) << 1) >> 32 = 1199; vpmtmr_handler: `if (!in || bytes != 4)
//       return (-1);` and `*val = vpmtmr->baseval + delta / vpmtmr->freq_sbt`.
//   sys/amd64/vmm/vmm_ioport.c               ioport_handler[IO_PMTMR] = vpmtmr_handler (0x408 only);
//       a handler error returns EIO from vm_run; no handler: "punt to userspace".
//   usr.sbin/bhyve/inout.c                    default_inout: IN reads 0xff / 0xffff / 0xffffffff,
//       OUT dropped; with x86.strictio (bhyve -e) emulate_inout returns -1 -> VMEXIT_ABORT.
//   sys/sys/time.h (main)                     nstosbt(t) = ceil(t * 2^32 / 1e9) for t >= 0.
//   ACPI spec, the power management timer and the FADT's TMR_VAL_EXT flag (bit 8): a 24-bit
//       counter at 3.579545 MHz, 32 bits with TMR_VAL_EXT (ACPICA hwtimer.c
//       acpi_get_timer_resolution: 24 unless ACPI_FADT_32BIT_TIMER); PM_TMR_LEN = 4, read-only. The ideal
//       counter is floor(ns * 3579545 / 1e9) (QEMU hw/acpi/core.c: muldiv64(ns, 3579545, 1e9));
//       QEMU 7.2 read 0x36910d at 5686000280 ns and 0x369e99 at 1e9 ns (pmtimer.check.ts).
//   QEMU softmmu/ioport.c                     unassigned_io_read returns -1ULL (a port nothing
//       decodes reads all ones of the width), unassigned_io_write drops the value.
import { scriptCheck, type ScriptStep } from "../../sim/conform/script.ts";
import type { Check, Outcome } from "../../sim/conform/types.ts";
import { benchQtestSession } from "../../sim/conform/model-target.ts";
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";
import { Rng } from "../../sim/clock/rng.ts";
import { refAcpi, refBhyve } from "./reference.ts";

const ok = (v: number | bigint) => `OK 0x${v.toString(16).padStart(4, "0")}`;
const steps = (pairs: readonly (readonly [string, string])[]): ScriptStep[] => pairs.map(([cmd, golden]) => ({ cmd, golden }));
/** A refusal: the VM_RUN ioctl fails with `errno` (hvsim's qtest answers "FAIL <errno>: <why>"). */
const refused = (cmd: string, errno: "EIO" | "VMEXIT_ABORT"): ScriptStep => ({ cmd, golden: `FAIL ${errno}:`, errnoOnly: true });

/** A script played on the model's machine `machine` in process, for what no qtest target can be asked for. */
export function modelScript(id: string, title: string, machine: MachineSpec, script: readonly ScriptStep[]): Check {
  return {
    id,
    suite: "pmtimer",
    title,
    needs: ["model", "clock", "portio"],
    async run(): Promise<Outcome> {
      const s = benchQtestSession(new Bench(machine, defaultKinds()));
      const problems: string[] = [];
      try {
        for (const [i, st] of script.entries()) {
          const got = await s.command(st.cmd);
          const cmp = st.errnoOnly && got.includes(":") ? got.slice(0, got.indexOf(":") + 1) : got;
          if (cmp !== st.golden) problems.push(`step ${i + 1} '${st.cmd}': expected '${st.golden}' (upstream), got '${got}'`);
        }
      } finally {
        await s.close();
      }
      return problems.length ? { status: "failed", detail: problems.join("\n") } : { status: "passed", detail: `${script.length} commands` };
    },
  };
}

/** bhyve with x86.strictio (bhyve -e). */
export const BHYVE_STRICT: MachineSpec = { ...MACHINES.bhyve!, devices: MACHINES.bhyve!.devices.map((d) => (d.id === "inout" ? { ...d, config: { strictIo: true } } : d)) };

export const STRICT_IO_STEPS: readonly ScriptStep[] = [
  refused("inb 0x409", "VMEXIT_ABORT"),
  refused("inl 0x40b", "VMEXIT_ABORT"),
  refused("outw 0x80 0x1", "VMEXIT_ABORT"),
  refused("inw 0x408", "EIO"),
  { cmd: "clock_step 1000000000", golden: "OK 1000000000" },
  { cmd: "inl 0x408", golden: ok(3_582_124) },
];

/** The bhyve machine with the pmtimer's restore policy set to `restore`. */
export const bhyveWithRestore = (restore: string): MachineSpec => ({ ...MACHINES.bhyve!, devices: MACHINES.bhyve!.devices.map((d) => (d.id === "pmtimer" ? { ...d, config: { ...d.config, restore } } : d)) });

/**
 * The restore check on machines built by `machineFor(policy)` (the real bhyve machine with that
 * policy; a spec hands in a wrong one to see the check fail).
 */
export function restorePoliciesCheck(machineFor: (policy: "bhyve-upstream" | "monotonic") => MachineSpec): Check {
  return {
    id: "pmtimer/bhyve-restore-policies",
    suite: "pmtimer",
    title: "bhyve restore (model only: a qtest target has no snapshots): upstream restarts from the destination VM's creation (two converted uptimes); monotonic continues exactly",
    needs: ["model", "clock", "portio"],
    async run(): Promise<Outcome> {
      const problems: string[] = [];
      const migrate = (restore: "bhyve-upstream" | "monotonic", at: number, reads: number[]) => {
        const a = new Bench(machineFor(restore), defaultKinds());
        a.clock.runUntil(at);
        const b = new Bench(machineFor(restore), defaultKinds());
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
  };
}

/** Random clock steps, each followed by a read of 0x408 held to `ref(now)`. */
function randomReads(seed: number, maxStep: number, ref: (ns: bigint) => bigint): ScriptStep[] {
  const rng = new Rng(seed);
  const out: ScriptStep[] = [];
  let t = 0n;
  for (let i = 0; i < 40; i++) {
    const d = BigInt(i % 5 === 0 ? rng.int(1, 1000) : rng.int(1, maxStep));
    t += d;
    out.push({ cmd: `clock_step ${d}`, golden: `OK ${t}` }, { cmd: "inl 0x408", golden: ok(ref(t)) });
  }
  return out;
}

const ACPI_32_STEPS: ScriptStep[] = steps([
  ["clock_set 5686000280", "OK 5686000280"],
  // floor(5686000280 * 3579545 / 1e9) = 0x136910d; QEMU 7.2 read its low 24 bits, 0x36910d, at
  // this time. TMR_VAL_EXT shows the whole count; narrower reads are its byte lanes.
  ["inl 0x408", ok(0x136910d)],
  ["inb 0x408", ok(0x0d)],
  ["inb 0x409", ok(0x91)],
  ["inb 0x40a", ok(0x36)],
  ["inb 0x40b", ok(0x01)],
  ["inw 0x408", ok(0x910d)],
  ["inw 0x40a", ok(0x0136)],
  // PM_TMR is read-only: writes are ignored.
  ["outl 0x408 0x0", "OK"],
  ["outb 0x40b 0xff", "OK"],
  ["inl 0x408", ok(0x136910d)],
  // The neighbours (PM_TMR_LEN = 4: nothing else is decoded here) read all ones, writes vanish.
  ["inl 0x404", ok(0xffffffff)],
  ["inw 0x406", ok(0xffff)],
  ["inb 0x407", ok(0xff)],
  ["inb 0x40c", ok(0xff)],
  ["inl 0x40c", ok(0xffffffff)],
  ["outl 0x40c 0x12345678", "OK"],
  ["inl 0x40c", ok(0xffffffff)],
  // 1199 s: floor(1199e9 * 3579545 / 1e9) = 4,291,874,455 (below 2^32: no wrap yet).
  ["clock_set 1199000000000", "OK 1199000000000"],
  ["inl 0x408", ok(4_291_874_455)],
  // 1200 s: 4,295,454,000 - 2^32 = 486,704 (the 32-bit wrap).
  ["clock_set 1200000000000", "OK 1200000000000"],
  ["inl 0x408", ok(486_704)],
  // 10000 s: 35,795,450,000 mod 2^32 = 1,435,711,632 = 0x55933890. (ns * 3579545 no longer fits
  // 64 bits past 5153.38 s: a 64-bit product would read 168,836,742 here.)
  ["clock_set 10000000000000", "OK 10000000000000"],
  ["inl 0x408", ok(0x55933890)],
  ["clock_step 1", "OK 10000000000001"],
  ["inb 0x40b", ok(0x55)],
]);

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
  scriptCheck({
    id: "pmtimer/bhyve-widths",
    suite: "pmtimer",
    title: "bhyve: 0x408 takes a 4-byte IN only (FAIL EIO otherwise); 0x409-0x40b and the other ports read all ones of the width (user space default_inout)",
    machine: "bhyve",
    steps: [
      { cmd: "clock_step 1000000000", golden: "OK 1000000000" },
      { cmd: "inl 0x408", golden: ok(3_582_124) },
      refused("inb 0x408", "EIO"),
      refused("inw 0x408", "EIO"),
      refused("outl 0x408 0x0", "EIO"),
      refused("outb 0x408 0x0", "EIO"),
      { cmd: "inb 0x409", golden: ok(0xff) },
      { cmd: "inw 0x40a", golden: ok(0xffff) },
      { cmd: "inl 0x40b", golden: ok(0xffffffff) },
      { cmd: "inl 0x409", golden: ok(0xffffffff) },
      { cmd: "inl 0x407", golden: ok(0xffffffff) }, // dispatch is on the first port: 0x407 is user space's, whole
      { cmd: "inw 0x404", golden: ok(0xffff) },
      { cmd: "outb 0x409 0x12", golden: "OK" },
      { cmd: "outl 0x40c 0x12345678", golden: "OK" },
      // a refused access changes nothing: the counter reads on as before
      { cmd: "inl 0x408", golden: ok(3_582_124) },
    ],
  }),
  scriptCheck({
    id: "pmtimer/bhyve-random-steps",
    suite: "pmtimer",
    title: "bhyve vpmtmr over random clock_step sequences crossing 1199 s wraps: every read equals (nstosbt(now) / 1199) mod 2^32",
    machine: "bhyve",
    // Steps of up to 600 s cross the 1199 s wrap several times in 40 steps; some are tiny.
    steps: (seed) => randomReads(seed, 600_000_000_000, (ns) => refBhyve(ns)),
  }),
  modelScript(
    "pmtimer/bhyve-strict-io",
    "bhyve -e (x86.strictio; model only: a machine configuration a qtest target cannot be asked for): an access no handler takes makes the VM exit; 0x408 is still answered by the kernel",
    BHYVE_STRICT,
    STRICT_IO_STEPS,
  ),
  restorePoliciesCheck(bhyveWithRestore),
  scriptCheck({
    id: "pmtimer/acpi-32",
    suite: "pmtimer",
    title: "ideal ACPI PM timer with TMR_VAL_EXT: floor(ns * 3579545 / 1e9) mod 2^32, byte lanes, writes ignored, neighbours read all ones",
    machine: "acpi",
    steps: ACPI_32_STEPS,
  }),
  scriptCheck({
    id: "pmtimer/acpi-random-steps",
    suite: "pmtimer",
    title: "ideal ACPI PM timer with TMR_VAL_EXT over random clock_step sequences crossing 2^32 wraps and 64-bit product overflow: every read equals floor(ns * 3579545 / 1e9) mod 2^32",
    machine: "acpi",
    // Steps of up to 600 s reach past 5153 s (where ns * 3579545 outgrows 64 bits) in 40 steps.
    steps: (seed) => randomReads(seed, 600_000_000_000, (ns) => refAcpi(ns, 32)),
  }),
  scriptCheck({
    id: "pmtimer/acpi-24",
    suite: "pmtimer",
    title: "ideal ACPI PM timer without TMR_VAL_EXT: 24 bits, byte lanes, the top byte reads 0",
    machine: "acpi24",
    steps: steps([
      ["clock_set 1000000000", "OK 1000000000"],
      ["inl 0x408", ok(0x369e99)], // 3579545 (QEMU 7.2 read the same at 1e9 ns)
      ["clock_set 5686000280", "OK 5686000280"],
      ["inl 0x408", ok(0x36910d)], // QEMU 7.2's reply at this time
      ["inb 0x408", ok(0x0d)],
      ["inw 0x408", ok(0x910d)],
      ["inb 0x40a", ok(0x36)],
      ["inb 0x40b", ok(0x00)],
      ["outl 0x408 0xffffffff", "OK"],
      ["inl 0x408", ok(0x36910d)],
      ["inl 0x40c", ok(0xffffffff)],
      // 2^24 ticks = 4.687 s: floor(1200e9 * 3579545 / 1e9) = 4,295,454,000 mod 2^24 = 0x076d30.
      ["clock_set 1200000000000", "OK 1200000000000"],
      ["inl 0x408", ok(0x076d30)],
    ]),
  }),
  scriptCheck({
    id: "pmtimer/acpi24-random-steps",
    suite: "pmtimer",
    title: "ideal ACPI PM timer without TMR_VAL_EXT over random clock_step sequences crossing 2^24 wraps: every read equals floor(ns * 3579545 / 1e9) mod 2^24",
    machine: "acpi24",
    // Steps of up to ~6 s cross the 4.69 s 2^24 wrap repeatedly.
    steps: (seed) => randomReads(seed, 6_000_000_000, (ns) => refAcpi(ns, 24)),
  }),
];
