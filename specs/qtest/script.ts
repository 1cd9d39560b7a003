// A qtest command script whose replies must agree between hvsim's qtest server and a qtest QEMU
// 7.2 (q35, pit=off, hpet=off, qtest accelerator). `golden` replies were observed on that QEMU
// (Debian 7.2+dfsg-7+deb12u18 built by scripts/build-qemu-qtest.sh) or follow from QEMU's
// softmmu/qtest.c reply formats; the rest are compared between the two implementations only.
import { QtestClient } from "../../sim/targets/qtest/client.ts";
import { Bench } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import { QtestServer } from "../../sim/qtest/server.ts";
import { REPO_ROOT } from "../../sim/conform/runner.ts";

export interface Line {
  readonly cmd: string;
  readonly golden?: string;
}

export const SCRIPT: readonly Line[] = [
  // Before PMBASE/ACPI_EN the timer port is unmapped; unmapped ports read all ones in every width.
  { cmd: "inl 0x608", golden: "OK 0xffffffff" },
  { cmd: "inb 0x1234", golden: "OK 0x00ff" },
  { cmd: "inw 0x1234", golden: "OK 0xffff" },
  { cmd: "inl 0x1234", golden: "OK 0xffffffff" },
  // Clock: no pending timer, so clock_step without argument stays put; clock_set never goes back.
  { cmd: "clock_step", golden: "OK 0" },
  { cmd: "clock_set 5", golden: "OK 5" },
  { cmd: "clock_step 100", golden: "OK 105" },
  { cmd: "clock_set 50", golden: "OK 105" },
  { cmd: "clock_step 0", golden: "OK 105" },
  { cmd: "clock_step 0x10", golden: "OK 121" },
  { cmd: "clock_set 010", golden: "OK 121" },
  // The PM block at 0x600.
  { cmd: "outl 0xcf8 0x8000f840", golden: "OK" },
  { cmd: "outl 0xcfc 0x601", golden: "OK" },
  { cmd: "outl 0xcf8 0x8000f844", golden: "OK" },
  { cmd: "outb 0xcfc 0x80", golden: "OK" },
  { cmd: "inl 0x608", golden: "OK 0x0000" },
  { cmd: "clock_set 1000000000", golden: "OK 1000000000" },
  { cmd: "inl 0x608", golden: "OK 0x369e99" },
  { cmd: "inw 0x608", golden: "OK 0x9e99" },
  { cmd: "inb 0x608", golden: "OK 0x0099" },
  // Guest memory.
  { cmd: "writeb 0x3000 0x12", golden: "OK" },
  { cmd: "writew 0x3002 0x3456", golden: "OK" },
  { cmd: "writel 0x3004 0x789abcde", golden: "OK" },
  { cmd: "writeq 0x3008 0x0123456789abcdef", golden: "OK" },
  { cmd: "readb 0x3000", golden: "OK 0x0000000000000012" },
  { cmd: "readw 0x3002", golden: "OK 0x0000000000003456" },
  { cmd: "readl 0x3004", golden: "OK 0x00000000789abcde" },
  { cmd: "readq 0x3008", golden: "OK 0x0123456789abcdef" },
  { cmd: "read 0x3000 16", golden: "OK 0x12005634debc9a78efcdab8967452301" },
  { cmd: "b64read 0x3000 16", golden: "OK EgBWNN68mnjvzauJZ0UjAQ==" },
  { cmd: "write 0x3010 4 0xdeadbeef", golden: "OK" },
  { cmd: "read 0x3010 4", golden: "OK 0xdeadbeef" },
  { cmd: "write 0x3014 4 0xab", golden: "OK" },
  { cmd: "read 0x3014 4", golden: "OK 0xab000000" },
  { cmd: "write 0x3018 2 0x", golden: "ERR invalid argument size" },
  { cmd: "b64write 0x3020 4 3q2+7w==", golden: "OK" },
  { cmd: "read 0x3020 4", golden: "OK 0xdeadbeef" },
  { cmd: "memset 0x3030 8 0x5a", golden: "OK" },
  { cmd: "memset 0x3038 0 0x11", golden: "OK" },
  { cmd: "read 0x3030 9", golden: "OK 0x5a5a5a5a5a5a5a5a00" },
  { cmd: "b64read 0x3000 0", golden: "OK " },
  { cmd: "endianness", golden: "OK little" },
  { cmd: "foo bar", golden: "FAIL Unknown command 'foo'" },
  { cmd: "irq_intercept_in nosuch", golden: "FAIL Unknown device" },
  // The SCI around the PM timer overflow: TMR_STS is set after reset; clear it, enable TMR_EN,
  // and clock_step without argument runs to the armed overflow timer, where the SCI rises.
  { cmd: "irq_intercept_in ioapic", golden: "OK" },
  { cmd: "irq_intercept_in ioapic", golden: "OK" },
  { cmd: "inw 0x600", golden: "OK 0x0001" },
  { cmd: "outw 0x600 0x1", golden: "OK" },
  { cmd: "inw 0x600", golden: "OK 0x0000" },
  { cmd: "outw 0x602 0x1", golden: "OK" },
  { cmd: "clock_step" },
  { cmd: "inw 0x600" },
  { cmd: "outw 0x600 0x1" },
  { cmd: "clock_step 1" },
  { cmd: "outw 0x600 0x1" },
  { cmd: "inw 0x600" },
  { cmd: "clock_step" },
  { cmd: "inl 0x608" },
  { cmd: "outw 0x602 0x0" },
  { cmd: "outw 0x602 0x1" },
  { cmd: "outw 0x600 0x1" },
  { cmd: "clock_set 10000000000" },
  { cmd: "inl 0x608" },
];

/** Each reply, preceded by the IRQ lines that arrived before it. */
export type Transcript = string[];

export function runInProcess(lines: readonly Line[]): Transcript {
  const server = new QtestServer(new Bench(MACHINES.q35!, defaultKinds(), { seed: 0 }));
  const out: string[] = [];
  for (const l of lines) out.push(...server.handle(l.cmd));
  server.close();
  return out;
}

export async function runClient(client: QtestClient, lines: readonly Line[]): Promise<Transcript> {
  const out: string[] = [];
  try {
    for (const l of lines) {
      const reply = await client.command(l.cmd);
      out.push(...client.takeIrqEvents().map((e) => e.raw), reply);
    }
  } finally {
    await client.close();
  }
  return out;
}

/** `hvsim qtest --machine <m>` as a child process speaking qtest on stdio. */
export function spawnHvsimQtest(machine = "q35"): QtestClient {
  return QtestClient.spawn(process.execPath, [`${REPO_ROOT}sim/cli/bin.mjs`, "qtest", "--machine", machine], { timeoutMs: 30_000, cwd: REPO_ROOT });
}

