// Conformance checks for the ACPI PM timer, as qtest scripts. Against a real QEMU (qtest
// accelerator) every reply must equal the model's; against the model they are held to the golden
// replies below. Sources: QEMU hw/acpi/core.c (muldiv64(ns, 3579545, 1e9) & 0xffffff; overflow at
// the next multiple of 2^23 ticks; TMR_STS lazily set, write-1-to-clear; SCI on TMR_EN), hw/isa/
// lpc_ich9.c (PMBASE at 0x40, ACPI_CNTL 0x44 with ACPI_EN 0x80, SCI on GSI 9), and replies observed
// on a qtest-enabled QEMU 7.2 (1e9 ns -> 0x369e99, 1000000279 -> 0x369e99, 1000000280 -> 0x369e9a,
// 5686000280 -> 0x36910d; PM1_STS reads 0x0001 right after reset).
import { scriptCheck, type ScriptStep } from "../../sim/conform/script.ts";
import { Rng } from "../../sim/clock/rng.ts";

const ENABLE_PM: ScriptStep[] = [
  { cmd: "outl 0xcf8 0x8000f840", golden: "OK" },
  { cmd: "outl 0xcfc 0x601", golden: "OK" }, // PMBASE = 0x600
  { cmd: "outl 0xcf8 0x8000f844", golden: "OK" },
  { cmd: "outb 0xcfc 0x80", golden: "OK" }, // ACPI_EN
];

/** floor(ns * 3579545 / 1e9) mod 2^24 in BigInt: QEMU's muldiv64 of the virtual clock. */
export function qemuTicks24(ns: bigint): bigint {
  return ((ns * 3579545n) / 1_000_000_000n) & 0xffffffn;
}

const hex4 = (v: bigint) => `OK 0x${v.toString(16).padStart(4, "0")}`;

export const checks = [
  scriptCheck({
    id: "pmtimer/q35-golden",
    suite: "pmtimer",
    title: "q35 PM timer: unmapped before ACPI_EN, then QEMU 7.2's observed counter values",
    machine: "q35",
    steps: [
      { cmd: "inl 0x608", golden: "OK 0xffffffff" },
      ...ENABLE_PM,
      { cmd: "clock_step 1000000000", golden: "OK 1000000000" },
      { cmd: "inl 0x608", golden: "OK 0x369e99" },
      { cmd: "clock_step 279", golden: "OK 1000000279" },
      { cmd: "inl 0x608", golden: "OK 0x369e99" },
      { cmd: "clock_step 1", golden: "OK 1000000280" },
      { cmd: "inl 0x608", golden: "OK 0x369e9a" },
      { cmd: "clock_set 5686000280", golden: "OK 5686000280" },
      { cmd: "inl 0x608", golden: "OK 0x36910d" },
    ],
  }),
  scriptCheck({
    id: "pmtimer/q35-tmr-sts-sci",
    suite: "pmtimer",
    title: "q35 TMR_STS after reset, write-1-to-clear, SCI raised at the bit-23 toggle (2,343,484,437 ns) and lowered on clear",
    machine: "q35",
    needs: ["clock", "portio", "irq"],
    steps: [
      { cmd: "irq_intercept_in ioapic", golden: "OK" },
      ...ENABLE_PM,
      { cmd: "inw 0x600", golden: "OK 0x0001" },
      { cmd: "outw 0x600 0x1", golden: "OK" },
      { cmd: "inw 0x600", golden: "OK 0x0000" },
      { cmd: "outw 0x602 0x1", golden: "OK", goldenIrq: [] },
      { cmd: "clock_step 2343484436", golden: "OK 2343484436", goldenIrq: [] },
      { cmd: "inw 0x600", golden: "OK 0x0000" },
      { cmd: "clock_step 1", golden: "OK 2343484437", goldenIrq: ["IRQ raise 9"] },
      { cmd: "inw 0x600", golden: "OK 0x0001" },
      // At 2,343,484,437 ns the tick count is still 0x7fffff (floor(ns * 3579545 / 1e9)), so the
      // overflow time recomputed on clear is 0x800000 again: TMR_STS stays set, the SCI stays high.
      { cmd: "outw 0x600 0x1", golden: "OK", goldenIrq: [] },
      { cmd: "inw 0x600", golden: "OK 0x0001" },
      { cmd: "clock_step 1", golden: "OK 2343484438", goldenIrq: [] },
      // One ns later the count is 0x800000: clearing now takes, the next overflow is 0x1000000.
      // (This sequence was replayed on the qtest QEMU 7.2 built by scripts/build-qemu-qtest.sh: same replies.)
      { cmd: "outw 0x600 0x1", golden: "OK", goldenIrq: ["IRQ lower 9"] },
      { cmd: "inw 0x600", golden: "OK 0x0000" },
      { cmd: "clock_step 2343484435", golden: "OK 4686968873", goldenIrq: [] },
      { cmd: "clock_step 1", golden: "OK 4686968874", goldenIrq: ["IRQ raise 9"] },
      { cmd: "inl 0x608", golden: hex4(qemuTicks24(4686968874n)) },
    ],
  }),
  scriptCheck({
    id: "pmtimer/q35-random-steps",
    suite: "pmtimer",
    title: "q35 PM timer over random clock_step sequences crossing 2^24 wraps: every reply equals muldiv64(ns) mod 2^24",
    machine: "q35",
    steps: (seed) => {
      const rng = new Rng(seed);
      const steps: ScriptStep[] = [...ENABLE_PM];
      let t = 0n;
      for (let i = 0; i < 40; i++) {
        // Steps of up to ~6 s cross the 4.69 s 2^24 wrap repeatedly; some are tiny.
        const d = BigInt(i % 5 === 0 ? rng.int(1, 1000) : rng.int(1, 6_000_000_000));
        t += d;
        steps.push({ cmd: `clock_step ${d}`, golden: `OK ${t}` });
        steps.push({ cmd: "inl 0x608", golden: hex4(qemuTicks24(t)) });
      }
      return steps;
    },
  }),
];
