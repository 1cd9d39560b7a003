// vmgenid across a migration, Debian's QEMU 7.2 vs the model. QEMU (-accel tcg -S, no firmware
// runs) gets etc/vmgenid_addr = 0x3028 by a fw_cfg DMA write as firmware's WRITE_POINTER would,
// is migrated to a file (QMP `migrate` to `exec:cat > FILE`; 7.2 has no `file:` URI), and a
// destination started with another guid (and, in a third run, guid=auto) loads it with
// `-incoming`. Then the 16 bytes at 0x3028, GPE0_STS (0x620 with PMBASE 0x600), and the SCI once
// GPE0_EN bit 5 is set (`IRQ raise 9` under irq_intercept_in ioapic) are compared with the model:
// a q35 bench with the same vmgenid guid, the same DMA write, a snapshot saved and restored into
// a bench configured with the destination's guid. Skipped, with the reason in the name, when
// Debian's qemu-system-x86_64 is not installed. Every process is reaped.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { QtestClient } from "../../sim/targets/qtest/client.ts";
import { resolveProgram } from "../../sim/targets/qtest/target.ts";
import { Bench, type MachineSpec } from "../../sim/machine/bench.ts";
import { MACHINES } from "../../sim/machine/machines.ts";
import { defaultKinds } from "../../sim/devices/index.ts";
import { benchQtestSession } from "../../sim/conform/model-target.ts";
import { restoreSnapshot, saveSnapshot } from "../../sim/snapshot/index.ts";
import type { QtestSession } from "../../sim/conform/types.ts";
import { writeVmgenidAddr } from "./fwcfg-dma.ts";
import { Qmp } from "./qmp.ts";

const G1 = "324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87";
const G2 = "b6a84bd3-0d4f-4e2b-9c6e-2d2f5e3c1a90";
const ADDR = 0x3028;

/** What is compared after the restore / incoming migration. */
const AFTER: readonly string[] = [
  `read 0x${ADDR.toString(16)} 16`,
  "outl 0xcf8 0x8000f840",
  "outl 0xcfc 0x601",
  "outl 0xcf8 0x8000f844",
  "outb 0xcfc 0x80",
  "inb 0x620",
  "inb 0x628",
  "irq_intercept_in ioapic",
  "outb 0x628 0x20",
  "inb 0x620",
  "outb 0x620 0x20",
  "inb 0x620",
];

async function transcript(s: QtestSession, lines: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const l of lines) {
    const r = await s.command(l);
    out.push(...s.takeIrqLines(), r);
  }
  return out;
}

function clientSession(c: QtestClient): QtestSession {
  return {
    command: (l) => c.command(l),
    takeIrqLines: () => c.takeIrqEvents().map((e) => e.raw),
    async close() {
      await c.close();
    },
  };
}

const serverSession = benchQtestSession;

function q35With(guid: string): MachineSpec {
  const q35 = MACHINES.q35!;
  return { ...q35, devices: q35.devices.map((d) => (d.type === "vmgenid" ? { ...d, config: { ...d.config, guid } } : d)) };
}

/** The model: source with `srcGuid`, DMA write of the address, snapshot, restore into a bench with `dstGuid`. */
async function modelRun(srcGuid: string, dstGuid: string): Promise<string[]> {
  const src = new Bench(q35With(srcGuid), defaultKinds(), { seed: 7 });
  const s = serverSession(src);
  expect(await writeVmgenidAddr(s, ADDR)).toBe(0);
  await s.close();
  const bytes = saveSnapshot(src);
  const dst = new Bench(q35With(dstGuid), defaultKinds(), { seed: 8 });
  const r = restoreSnapshot(dst, bytes);
  if (!r.ok) throw new Error(`restore failed: ${JSON.stringify(r.error)}`);
  // What QEMU's post_load does happens before the guest runs again: events due now are dispatched.
  dst.clock.runUntil(dst.now);
  const d = serverSession(dst);
  try {
    return await transcript(d, AFTER);
  } finally {
    await d.close();
  }
}

const QEMU = resolveProgram("/usr/bin/qemu-system-x86_64") ?? resolveProgram("qemu-system-x86_64");
const work = mkdtempSync(join(tmpdir(), "hvsim-vmgenid-"));
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : undefined)));
  rmSync(work, { recursive: true, force: true });
});

interface Vm {
  qtest: QtestClient;
  qmp: Qmp;
  child: ChildProcess;
  stop(): Promise<void>;
}

let runNo = 0;
async function startQemu(guid: string, incoming?: string): Promise<Vm> {
  const n = ++runNo;
  const qt = join(work, `q${n}.qtest`);
  const qm = join(work, `q${n}.qmp`);
  const args = [
    "-machine", "q35", "-accel", "tcg", "-S", "-display", "none", "-nodefaults", "-m", "128M",
    "-device", `vmgenid,guid=${guid}`,
    "-qtest", `unix:${qt},server=on,wait=off`, "-qtest-log", "/dev/null",
    "-qmp", `unix:${qm},server=on,wait=off`,
    ...(incoming ? ["-incoming", incoming] : []),
  ];
  const child = spawn(QEMU!, args, { stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  const qtest = await QtestClient.connect(qt, { child, timeoutMs: 30_000, connectTimeoutMs: 30_000 });
  const qmp = await Qmp.connect(qm, 30_000);
  return {
    qtest,
    qmp,
    child,
    async stop() {
      try {
        await qmp.execute("quit", undefined, 5_000);
      } catch {
        // already going
      }
      qmp.close();
      await qtest.close();
    },
  };
}

/** QEMU: source with `srcGuid`, DMA write, migrate to a file, destination with `dstGuid` loads it. */
async function qemuRun(srcGuid: string, dstGuid: string): Promise<string[]> {
  const file = join(work, `mig-${runNo + 1}.bin`);
  const src = await startQemu(srcGuid);
  try {
    expect(await writeVmgenidAddr(clientSession(src.qtest), ADDR)).toBe(0);
    await src.qmp.execute("migrate", { uri: `exec:cat > ${file}` });
    await src.qmp.waitMigration();
  } finally {
    await src.stop();
  }
  const dst = await startQemu(dstGuid, `exec:cat ${file}`);
  try {
    await dst.qmp.waitMigration();
    return await transcript(clientSession(dst.qtest), AFTER);
  } finally {
    await dst.stop();
  }
}

/** The GUID's 16 guest bytes (QEMU's byte order: time_low, time_mid, time_hi_and_version swapped). */
function guestBytes(guid: string): string {
  const h = guid.replace(/-/g, "");
  const b = Buffer.from(h, "hex");
  return Buffer.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]).toString("hex");
}

/** For guid=auto: the bytes are random, so compare their shape (v4 UUID, RFC 4122 variant, not the source's). */
function shape(t: string[], src: string): string[] {
  return t.map((l, i) => {
    if (i !== 0) return l;
    const hex = l.slice(5);
    const b = Buffer.from(hex, "hex");
    return `random v4=${b[7]! >> 4 === 4} variant=${(b[8]! & 0xc0) === 0x80} differs-from-source=${hex !== guestBytes(src)}`;
  });
}

describe("vmgenid restore: model golden values (QEMU 7.2 hw/acpi/vmgenid.c facts)", () => {
  it("writes the destination's GUID at 0x3028 and raises GPE0_STS bit 5; GPE0_EN bit 5 raises the SCI", async () => {
    const t = await modelRun(G1, G2);
    // 324e6eaf-... is stored as af 6e 4e 32 d1 d1 f6 4b bf 41 ... (checked on QEMU 7.2): same swap for G2.
    expect(guestBytes(G1)).toBe("af6e4e32d1d1f64bbf41b9bb6c91fb87");
    expect(t).toEqual([`OK 0x${guestBytes(G2)}`, "OK", "OK", "OK", "OK", "OK 0x0020", "OK 0x0000", "OK", "IRQ raise 9", "OK", "OK 0x0020", "IRQ lower 9", "OK", "OK 0x0000"]);
  });
});

describe.skipIf(!QEMU)(`vmgenid restore: Debian's QEMU vs the model${QEMU ? "" : " (skipped: Debian's qemu-system-x86_64 is not installed: apt-get install qemu-system-x86)"}`, () => {
  it(`fixed guids: source ${G1}, destination ${G2}: identical bytes, GPE0_STS and SCI`, async () => {
    const [q, m] = [await qemuRun(G1, G2), await modelRun(G1, G2)];
    expect(m).toEqual(q);
  }, 120_000);

  it("the same guid on both sides: written again and notified anyway (post_load)", async () => {
    const [q, m] = [await qemuRun(G1, G1), await modelRun(G1, G1)];
    expect(m).toEqual(q);
  }, 120_000);

  it("guid=auto on the destination: a fresh random v4 GUID, GPE0_STS and SCI as with a fixed one", async () => {
    const [q, m] = [await qemuRun(G1, "auto"), await modelRun(G1, "auto")];
    expect(shape(m, G1)).toEqual(shape(q, G1));
    expect(shape(q, G1)[0]).toBe("random v4=true variant=true differs-from-source=true");
  }, 120_000);
});
