// "vmgenid-control" for a QEMU (sim/conform/machine-control.ts): QEMU started with
// `-device vmgenid,id=vmgenid0,guid=<guid>`, qtest on its stdin/stdout and QMP on a UNIX socket.
// saveRestore migrates the machine to a file (QMP `migrate` to `exec:cat > FILE`: QEMU 7.2 has no
// `file:` URI), waits for `completed`, quits the source, starts a destination with the same
// arguments, the new guid and `-incoming exec:cat FILE`, and waits until the destination's
// query-migrate says `completed` (its vmgenid post_load has then run). Each machine has its own
// temporary directory, removed by close(). Used by `qtest:qemu` (the qtest-enabled QEMU) and by
// specs/vmgenid/qemu-vmgenid.spec.ts (Debian's qemu-system-x86_64 under TCG, stopped with -S).
//
// This adapter talks to real processes and so may use wall-clock timers (see eslint.config.js).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseGuid } from "../../devices/vmgenid/guid.ts";
import type { MachineControl, MachineControlOptions } from "../../conform/machine-control.ts";
import { QtestClient } from "./client.ts";
import { Qmp } from "./qmp.ts";

/** The vmgenid device's id: QOM path /machine/peripheral/vmgenid0. */
export const VMGENID_ID = "vmgenid0";

export interface QemuControlConfig {
  /** The qemu-system-x86_64 to run. */
  readonly program: string;
  /** The machine's arguments, including `-qtest stdio` (e.g. Q35_QTEST_ARGS); no vmgenid device, no QMP. */
  readonly args: readonly string[];
  /** Per-command timeout for qtest and QMP, and the limit for each migration (ms, default 30000). */
  readonly timeoutMs?: number;
}

interface Vm {
  readonly qtest: QtestClient;
  readonly qmp: Qmp;
}

/** Starts a QEMU machine under host-side control; resolves once qtest and QMP both answer. */
export async function openQemuControl(cfg: QemuControlConfig, opts: MachineControlOptions): Promise<MachineControl> {
  const timeoutMs = cfg.timeoutMs ?? 30_000;
  const dir = mkdtempSync(join(tmpdir(), "hvsim-qemu-control-"));
  let runs = 0;

  async function start(guid: string, incoming?: string): Promise<Vm> {
    if (guid !== "auto" && !parseGuid(guid)) throw new Error(`vmgenid guid must be "auto" or a GUID like 324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87, got ${JSON.stringify(guid)}`);
    const qmpPath = join(dir, `qmp${++runs}.sock`);
    const args = [
      ...cfg.args,
      "-device", `vmgenid,id=${VMGENID_ID},guid=${guid}`,
      "-qmp", `unix:${qmpPath},server=on,wait=off`,
      ...(incoming ? ["-incoming", incoming] : []),
    ];
    const qtest = QtestClient.spawn(cfg.program, args, { timeoutMs, closeGraceMs: 500 });
    try {
      // The first qtest reply says the machine is up (and its QMP socket listening).
      await qtest.commandOk("endianness");
      const qmp = await Qmp.connect(qmpPath, timeoutMs);
      return { qtest, qmp };
    } catch (e) {
      await qtest.close();
      throw e;
    }
  }

  async function stop(vm: Vm): Promise<void> {
    try {
      await vm.qmp.execute("quit", undefined, 5_000);
    } catch {
      // already going
    }
    vm.qmp.close();
    await vm.qtest.close();
  }

  let vm: Vm;
  try {
    vm = await start(opts.guid);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  let closed = false;
  return {
    command: (line) => vm.qtest.command(line),
    takeIrqLines: () => vm.qtest.takeIrqEvents().map((e) => e.raw),
    async close() {
      if (closed) return;
      closed = true;
      await stop(vm);
      rmSync(dir, { recursive: true, force: true });
    },
    async saveRestore(next) {
      if (closed) throw new Error("saveRestore after close");
      const file = join(dir, `state${runs}.bin`);
      await vm.qmp.execute("migrate", { uri: `exec:cat > '${file}'` }, timeoutMs);
      await vm.qmp.waitMigration(timeoutMs);
      await stop(vm);
      vm = await start(next.guid, `exec:cat '${file}'`);
      await vm.qmp.waitMigration(timeoutMs);
    },
  };
}
