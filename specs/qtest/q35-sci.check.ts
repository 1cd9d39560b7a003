// Conformance: the SCI of q35's ACPI PM block as PM1_EN and GPE0_EN change, and clock_step
// without an argument running to the armed overflow timer. Golden replies follow QEMU 7.2
// hw/acpi/core.c (SCI level = PM1_STS & PM1_EN & (RTC|PWRBTN|GBL|TMR) || GPE0_STS & GPE0_EN;
// TMR_STS write-1-to-clear recomputes the overflow as the next multiple of 2^23 ticks; the timer
// armed at muldiv64(overflow, 1e9, 3579545) ns), softmmu/qtest.c (clock_step without argument
// warps to the next virtual-clock deadline) and the replies of a qtest-enabled QEMU 7.2
// (first overflow 2,343,484,437 ns, the 2^24 wrap at 4,686,968,874 ns). Against the qtest QEMU
// (specs/conformance/qemu.spec.ts) every reply and IRQ line must also equal the model's.
import { scriptCheck } from "../../sim/conform/script.ts";

export const checks = [
  scriptCheck({
    id: "pmtimer/q35-sci-enables",
    suite: "pmtimer",
    title: "q35 SCI follows PM1_EN (TMR_EN on/off, GBL_EN), GPE0_EN without status, TMR_STS clear, and clock_step to the overflow deadline",
    machine: "q35",
    needs: ["clock", "portio", "irq"],
    steps: [
      { cmd: "irq_intercept_in ioapic", golden: "OK" },
      { cmd: "outl 0xcf8 0x8000f840", golden: "OK" },
      { cmd: "outl 0xcfc 0x601", golden: "OK" },
      { cmd: "outl 0xcf8 0x8000f844", golden: "OK" },
      { cmd: "outb 0xcfc 0x80", golden: "OK" },
      { cmd: "outw 0x600 0x1", golden: "OK", goldenIrq: [] },
      { cmd: "outw 0x602 0x1", golden: "OK", goldenIrq: [] },
      { cmd: "clock_set 3000000000", golden: "OK 3000000000", goldenIrq: ["IRQ raise 9"] },
      { cmd: "inw 0x600", golden: "OK 0x0001" },
      { cmd: "outw 0x602 0x0", golden: "OK", goldenIrq: ["IRQ lower 9"] },
      { cmd: "inw 0x600", golden: "OK 0x0001" },
      { cmd: "outw 0x602 0x1", golden: "OK", goldenIrq: ["IRQ raise 9"] },
      { cmd: "outw 0x602 0x20", golden: "OK", goldenIrq: ["IRQ lower 9"] },
      { cmd: "inw 0x602", golden: "OK 0x0020" },
      { cmd: "outb 0x628 0xff", golden: "OK", goldenIrq: [] },
      { cmd: "inb 0x628", golden: "OK 0x00ff" },
      { cmd: "outb 0x620 0xff", golden: "OK", goldenIrq: [] },
      { cmd: "inb 0x620", golden: "OK 0x0000" },
      { cmd: "inl 0x628", golden: "OK 0x00ff" },
      { cmd: "outb 0x628 0x0", golden: "OK" },
      { cmd: "outw 0x604 0x1", golden: "OK" },
      { cmd: "inw 0x604", golden: "OK 0x0001" },
      // At 3 s the count is 0xa3db4b: clearing TMR_STS puts the next overflow at 2^24 ticks.
      { cmd: "outw 0x600 0x1", golden: "OK", goldenIrq: [] },
      { cmd: "inw 0x600", golden: "OK 0x0000" },
      { cmd: "outw 0x602 0x1", golden: "OK", goldenIrq: [] },
      { cmd: "clock_step", golden: "OK 4686968874", goldenIrq: ["IRQ raise 9"] },
      { cmd: "inw 0x600", golden: "OK 0x0001" },
      // The deadline is muldiv64(2^24, 1e9, 3579545) rounded down, so the count there is still
      // 0xffffff: TMR_STS and the SCI come one tick early, as QEMU compares in ns.
      { cmd: "inl 0x608", golden: "OK 0xffffff" },
      { cmd: "clock_step 1", golden: "OK 4686968875" },
      { cmd: "inl 0x608", golden: "OK 0x0000" },
    ],
  }),
];
