// Conformance checks for the VSS integration service: hvsim's host and hv_utils kernel with a VSS
// daemon behind /dev/vmbus/hv_vss (the model, or Debian's hv_vss_daemon on hv-daemon:vss, which
// runs sandboxed against a fake mount table: its FIFREEZE/FITHAW never reach a filesystem).
// Golden facts (model) from /work/shared/research/hyperv.md (Linux 6.1.192 include/uapi/linux/
// hyperv.h, drivers/hv/hv_snapshot.c, hv_utils_transport.c, tools/hv/hv_vss_daemon.c): the daemon
// registers with one 12-byte write of op REGISTER1 (129) and reads a 4-byte reply holding 129;
// VSS negotiation picks framework 3.0 / service 5.0; FREEZE/THAW walk the mount table's /dev/
// sources in order, skipping loop-backed devices, ro mounts and vfat, with "/" last; any FIFREEZE
// failure thaws everything and answers HV_E_FAIL (0x80004005); GET_DM_INFO is answered by the
// kernel with flags 0; other ops are answered 0; HOT_BACKUP's VSS_HBU_NO_AUTO_RECOVERY (5) flag is
// set only if the reply's first byte is 2, which hv_vss_daemon's error overwrites (linux-6.1).
import { hypervCheck, answer, expectStep, statusOf } from "./conform.ts";
import type { HvMount } from "../../sim/conform/hyperv-session.ts";
import { NS_PER_S } from "../../sim/clock/time.ts";

const S_OK = "0x0";
const E_FAIL = "0x80004005";
const FLAGS = 1 | 4;
const EIO = 5;

const MOUNTS: HvMount[] = [
  { fsname: "/dev/sda1", dir: "/", type: "ext4", opts: "rw,relatime" },
  { fsname: "/dev/sdb1", dir: "/data", type: "xfs", opts: "rw" },
  { fsname: "/dev/sdc1", dir: "/boot/efi", type: "vfat", opts: "rw" }, // vfat: skipped
  { fsname: "/dev/sdd1", dir: "/archive", type: "ext4", opts: "ro,noatime" }, // read-only: skipped
  { fsname: "/dev/loop0", dir: "/snap/core", type: "squashfs", opts: "rw", loop: true }, // loop-backed: skipped
  { fsname: "tmpfs", dir: "/run", type: "tmpfs", opts: "rw" }, // not a /dev/ source: skipped
  { fsname: "/dev/sde1", dir: "/srv", type: "ext4", opts: "rw" },
];
const FROZEN = ["/data", "/srv", "/"]; // table order, "/" last
const FROZEN_DIRS = ["/", "/data", "/srv"]; // session.frozen(): the frozen ones, in mount-table order

export const checks = [
  hypervCheck({
    id: "vss/register",
    title: "VSS daemon registration: 12-byte REGISTER1 (129), 4-byte reply 129, READY; negotiation 3.0/5.0",
    service: "vss",
    mounts: MOUNTS,
    async script(s, t) {
      t.add(
        "device",
        s.takeDevice().map((d) => (d.call === "read" ? { call: "read", len: d.len, value: d.len >= 4 ? (d.bytes[0]! | (d.bytes[1]! << 8) | (d.bytes[2]! << 16)) + d.bytes[3]! * 2 ** 24 : -1 } : d)),
      );
      t.add("state", s.state());
      t.add("negotiate", answer(await s.negotiate()));
    },
    golden(t) {
      const out: string[] = [];
      expectStep(out, t, "device", [
        { call: "open", ret: 0 },
        { call: "write", len: 12, op: 129, ret: 12 },
        { call: "read", len: 4, value: 129 },
      ]);
      expectStep(out, t, "state", "READY");
      expectStep(out, t, "negotiate", { status: S_OK, icflags: FLAGS, fwCount: 1, msgCount: 1, framework: "3.0", service: "5.0", icmsgsize: 16 });
      return out;
    },
  }),

  hypervCheck({
    id: "vss/freeze-thaw",
    title: "VSS FREEZE/THAW over a mount table with ro, vfat, loop and non-/dev entries: order with / last; HOT_BACKUP, GET_DM_INFO, CREATE",
    service: "vss",
    mounts: MOUNTS,
    async script(s, t) {
      t.add("freeze", answer(await s.vss("freeze")));
      t.add("freeze ioctls", s.takeIoctls());
      t.add("thaw", answer(await s.vss("thaw")));
      t.add("thaw ioctls", s.takeIoctls());
      t.add("hot-backup", answer(await s.vss("hot-backup")), ["vss-hot-backup-flag"]);
      t.add("get-dm-info", answer(await s.vss("get-dm-info")));
      t.add("create", answer(await s.vss("create")));
      t.add("other ioctls", s.takeIoctls());
      t.add("state", s.state());
    },
    golden(t, profile) {
      const out: string[] = [];
      expectStep(out, t, "freeze", { status: S_OK, icflags: FLAGS, flags: 0, operation: 5 });
      expectStep(out, t, "freeze ioctls", FROZEN.map((d) => `FIFREEZE ${d}`));
      expectStep(out, t, "thaw ioctls", FROZEN.map((d) => `FITHAW ${d}`));
      // hv_vss_msg.flags of the HOT_BACKUP answer: NO_AUTO_RECOVERY (5) only under spec.
      expectStep(out, t, "hot-backup", { status: S_OK, icflags: FLAGS, flags: profile === "spec" ? 5 : 0, operation: 2 });
      expectStep(out, t, "get-dm-info", { status: S_OK, icflags: FLAGS, flags: 0, operation: 3 });
      const c = t.get("create") as { status?: string } | undefined;
      if (c?.status !== S_OK) out.push(`create: ${JSON.stringify(c)}`);
      expectStep(out, t, "other ioctls", []);
      expectStep(out, t, "state", "READY");
      return out;
    },
  }),

  hypervCheck({
    id: "vss/freeze-failure",
    title: "VSS: a FIFREEZE failing with EIO thaws everything and answers HV_E_FAIL; the next FREEZE works",
    service: "vss",
    mounts: MOUNTS,
    async script(s, t) {
      s.failFreeze("/srv", EIO);
      t.add("freeze", answer(await s.vss("freeze")));
      t.add("freeze ioctls", s.takeIoctls());
      s.failFreeze("/srv", 0);
      t.add("freeze again", answer(await s.vss("freeze")));
      t.add("thaw", answer(await s.vss("thaw")));
      t.add("ioctls", s.takeIoctls());
    },
    golden(t) {
      const out: string[] = [];
      const st = (l: string) => statusOf(t, l);
      if (st("freeze") !== E_FAIL) out.push(`freeze: status ${st("freeze")}, expected ${E_FAIL}`);
      expectStep(out, t, "freeze ioctls", ["FIFREEZE /data", "FIFREEZE /srv", ...FROZEN.map((d) => `FITHAW ${d}`)]);
      if (st("freeze again") !== S_OK || st("thaw") !== S_OK) out.push(`freeze again/thaw: ${st("freeze again")}/${st("thaw")}`);
      expectStep(out, t, "ioctls", [...FROZEN.map((d) => `FIFREEZE ${d}`), ...FROZEN.map((d) => `FITHAW ${d}`)]);
      return out;
    },
  }),

  hypervCheck({
    id: "vss/request-overwrite",
    title: "VSS: two requests in the guest's ring at once (GET_DM_INFO, CREATE): does the first get an answer?",
    service: "vss",
    mounts: MOUNTS,
    async script(s, t) {
      const [a, b] = await s.vssBurst(["get-dm-info", "create"]);
      const shown = (x: typeof a) => (x === undefined ? "never answered" : x.result.timedOut ? "timed out by the host" : answer(x));
      t.add("burst", [shown(a), shown(b)], ["vss-request-overwrite"]);
      t.add("state", s.state());
    },
    golden(t, profile) {
      const out: string[] = [];
      // linux-6.1: the second packet is read into the receive buffer before the first request's
      // work item runs, so the guest never answers the first transaction (hv_snapshot.c:301-304);
      // the host gives up on it after its timeout (35 s, hostTimeoutNs) instead of stalling.
      const b = t.get("burst") as unknown[];
      const first = b[0] as { status?: string } | string;
      const second = b[1] as { status?: string } | string;
      if (profile === "linux-6.1" && first !== "timed out by the host") out.push(`burst: first ${JSON.stringify(first)} under linux-6.1, expected the host's timeout`);
      if (profile === "spec" && (first as { status?: string }).status !== S_OK) out.push(`burst: first ${JSON.stringify(first)} under spec`);
      if ((second as { status?: string }).status !== S_OK) out.push(`burst: second ${JSON.stringify(second)}`);
      expectStep(out, t, "state", "READY");
      return out;
    },
  }),

  hypervCheck({
    id: "vss/crash",
    title: "VSS daemon killed during FREEZE: the host gets HV_E_FAIL, the daemon re-registers, FREEZE/THAW work again",
    service: "vss",
    mounts: MOUNTS,
    async script(s, t) {
      t.add("crash", answer(await s.crashDuring({ vss: "freeze" })));
      t.add("state after crash", s.state());
      await s.restart();
      t.add("state after restart", s.state());
      t.add("freeze", answer(await s.vss("freeze")));
      t.add("thaw", answer(await s.vss("thaw")));
      t.add("ioctls", s.takeIoctls());
    },
    golden(t) {
      const out: string[] = [];
      const st = (l: string) => statusOf(t, l);
      if (st("crash") !== E_FAIL) out.push(`crash: status ${st("crash")}, expected ${E_FAIL}`);
      expectStep(out, t, "state after crash", "DEVICE_INIT");
      expectStep(out, t, "state after restart", "READY");
      if (st("freeze") !== S_OK || st("thaw") !== S_OK) out.push(`freeze/thaw after restart: ${st("freeze")}/${st("thaw")}`);
      expectStep(out, t, "ioctls", [...FROZEN.map((d) => `FIFREEZE ${d}`), ...FROZEN.map((d) => `FITHAW ${d}`)]);
      return out;
    },
  }),

  hypervCheck({
    id: "vss/crash-after-apply",
    title: "VSS daemon killed in the write of its FREEZE answer (after freezing): HV_E_FAIL, filesystems stay frozen, a new daemon's FREEZE (EBUSY) and THAW work",
    service: "vss",
    mounts: MOUNTS,
    async script(s, t) {
      t.add("crash", answer(await s.crashDuring({ vss: "freeze" }, "after-apply")));
      t.add("crash ioctls", s.takeIoctls());
      t.add("frozen after crash", s.frozen());
      await s.restart();
      t.add("freeze", answer(await s.vss("freeze")));
      t.add("thaw", answer(await s.vss("thaw")));
      t.add("ioctls", s.takeIoctls());
      t.add("frozen after thaw", s.frozen());
    },
    golden(t) {
      const out: string[] = [];
      const st = (l: string) => statusOf(t, l);
      if (st("crash") !== E_FAIL) out.push(`crash: status ${st("crash")}, expected ${E_FAIL}`);
      // hv_vss_daemon.c:320 vss_operate froze everything before :345's write of the answer; the
      // kernel keeps the filesystems frozen after the process died (nobody thaws them).
      expectStep(out, t, "crash ioctls", FROZEN.map((d) => `FIFREEZE ${d}`));
      expectStep(out, t, "frozen after crash", FROZEN_DIRS);
      // The new process starts with fs_frozen false (:31); its FIFREEZE gets EBUSY, which
      // vss_do_freeze counts as success (:52-53).
      if (st("freeze") !== S_OK || st("thaw") !== S_OK) out.push(`freeze/thaw after restart: ${st("freeze")}/${st("thaw")}`);
      expectStep(out, t, "ioctls", [...FROZEN.map((d) => `FIFREEZE ${d}`), ...FROZEN.map((d) => `FITHAW ${d}`)]);
      expectStep(out, t, "frozen after thaw", []);
      return out;
    },
  }),

  hypervCheck({
    id: "vss/reopen-while-frozen-late-answer",
    title: "VSS: a FREEZE answered after the kernel's 900 s timeout: the late write fails, the daemon closes the device, thaws what it froze, reopens and registers",
    service: "vss",
    mounts: MOUNTS,
    async script(s, t) {
      s.takeDevice();
      s.delayNextAnswer(1000 * NS_PER_S);
      t.add("freeze", answer(await s.vss("freeze")));
      t.add("frozen at the kernel's timeout", s.frozen());
      await s.settled();
      t.add("ioctls", s.takeIoctls());
      t.add("frozen after reopen", s.frozen());
      t.add("device", s.takeDevice().map((d) => (d.call === "read" ? { call: "read", len: d.len } : d)));
      t.add("state", s.state());
      t.add("thaw", answer(await s.vss("thaw")));
      t.add("thaw ioctls", s.takeIoctls());
    },
    golden(t) {
      const out: string[] = [];
      const st = (l: string) => statusOf(t, l);
      // hv_snapshot.c:195-196 VSS_FREEZE_TIMEOUT (900 s): the kernel answers HV_E_FAIL itself.
      if (st("freeze") !== E_FAIL) out.push(`freeze: status ${st("freeze")}, expected ${E_FAIL}`);
      expectStep(out, t, "frozen at the kernel's timeout", FROZEN_DIRS);
      // The late write gets EINVAL (vss_on_msg: no request outstanding) -> hv_vss_daemon.c:346-349
      // goto reopen_vss_fd -> :248-249 close, :250-251 fs_frozen: vss_operate(THAW), then :259 open.
      expectStep(out, t, "ioctls", [...FROZEN.map((d) => `FIFREEZE ${d}`), ...FROZEN.map((d) => `FITHAW ${d}`)]);
      expectStep(out, t, "frozen after reopen", []);
      expectStep(out, t, "device", [
        { call: "read", len: 12 },
        { call: "write", len: 12, op: 0, ret: -22 },
        { call: "close" },
        { call: "open", ret: 0 },
        { call: "write", len: 12, op: 129, ret: 12 },
        { call: "read", len: 4 },
      ]);
      expectStep(out, t, "state", "READY");
      // Nothing is frozen any more: the THAW's FITHAWs get EINVAL, counted as success (:52-53).
      if (st("thaw") !== S_OK) out.push(`thaw: status ${st("thaw")}`);
      expectStep(out, t, "thaw ioctls", FROZEN.map((d) => `FITHAW ${d}`));
      return out;
    },
  }),

  hypervCheck({
    id: "vss/reopen-while-frozen-device-reset",
    title: "VSS: the device goes away while filesystems are frozen: the failed read makes the daemon close, thaw, fail to reopen (EBADF) and exit 1",
    service: "vss",
    mounts: MOUNTS,
    async script(s, t) {
      t.add("freeze", answer(await s.vss("freeze")));
      t.add("frozen", s.frozen());
      s.takeIoctls();
      s.takeDevice();
      await s.resetDevice();
      t.add("exit status", await s.daemonExit());
      t.add("ioctls", s.takeIoctls());
      t.add("frozen after exit", s.frozen());
      t.add("device", s.takeDevice());
    },
    golden(t) {
      const out: string[] = [];
      expectStep(out, t, "frozen", FROZEN_DIRS);
      // hvutil_transport_destroy: poll POLLERR|POLLHUP, read EBADF -> hv_vss_daemon.c:308-311 goto
      // reopen_vss_fd -> :250-256 thaw first (fs_frozen) -> :259-263 open fails (EBADF) -> exit(1).
      expectStep(out, t, "exit status", 1);
      expectStep(out, t, "ioctls", FROZEN.map((d) => `FITHAW ${d}`));
      expectStep(out, t, "frozen after exit", []);
      expectStep(out, t, "device", [{ call: "close" }, { call: "open", ret: -9 }]);
      return out;
    },
  }),
];
