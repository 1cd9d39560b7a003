// The device bridge against the REAL Debian daemons (hyperv-daemons: /usr/sbin/hv_kvp_daemon,
// /usr/sbin/hv_vss_daemon): hvsim plays the kernel side of drivers/hv/hv_utils_transport.c.
// Every test needs the daemons, a C compiler and unprivileged user namespaces; when one is
// missing the tests are skipped and their names carry the reason (never a silent pass).
//
// Message layouts are not hard-coded: sim/targets/hvdaemon/probes/hyperv-offsets.c is compiled at
// test time and prints sizes, offsets and constants of include/uapi/linux/hyperv.h as gcc lays
// them out (the installed /usr/include/linux/hyperv.h).
import { existsSync, readFileSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { compileCProgram } from "../../sim/targets/hvdaemon/build.ts";
import {
  DaemonBridge,
  DaemonBridgeError,
  KVP_RECORD_SIZE,
  POLLERR,
  POLLHUP,
  type DaemonMount,
  type WriteEvent,
} from "../../sim/targets/hvdaemon/bridge.ts";

const avail = DaemonBridge.available();
const skip = !avail.ok;
const why = avail.ok ? "" : ` [skipped: ${avail.reason}]`;

const probeSource = (name: string): string =>
  readFileSync(new URL(`../../sim/targets/hvdaemon/probes/${name}.c`, import.meta.url), "utf8");
const probe = (name: string): string => compileCProgram(name, probeSource(name));

/** hyperv.h as gcc sees it: "name value" lines from the offsets probe. */
let H: Record<string, number> = {};
const h = (name: string): number => {
  const v = H[name];
  if (v === undefined) throw new Error(`hyperv-offsets does not print ${name}`);
  return v;
};

const bridges: DaemonBridge[] = [];
function newBridge(): DaemonBridge {
  const b = new DaemonBridge();
  bridges.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(bridges.splice(0).map((b) => b.stop()));
});

// ---- KVP messages (struct hv_kvp_msg) -----------------------------------------------------

function kvpMsg(op: number, pool: number): Buffer {
  const m = Buffer.alloc(h("hv_kvp_msg.size"));
  m[h("hv_kvp_msg.operation")] = op;
  m[h("hv_kvp_msg.pool")] = pool;
  return m;
}

/** The kernel's registration reply: same op, kvp_register.version "3.1" (hv_kvp.c kvp_register). */
function kvpRegisterReply(): Buffer {
  const m = kvpMsg(h("KVP_OP_REGISTER1"), 0);
  m.write("3.1\0", h("hv_kvp_msg.register.version"), "utf8");
  return m;
}

/** Key and value as the kernel forwards them: UTF-8 with the NUL, size = length + 1. */
function kvpSet(pool: number, key: string, value: string): Buffer {
  const m = kvpMsg(h("KVP_OP_SET"), pool);
  m.writeUInt32LE(Buffer.byteLength(key) + 1, h("hv_kvp_msg.set.key_size"));
  m.write(`${key}\0`, h("hv_kvp_msg.set.key"), "utf8");
  m.writeUInt32LE(Buffer.byteLength(value) + 1, h("hv_kvp_msg.set.value_size"));
  m.write(`${value}\0`, h("hv_kvp_msg.set.value"), "utf8");
  return m;
}

/**
 * GET with value_size = 2048. (hv_kvp.c sends value_size 0 for a host GET and the daemon then
 * copies 0 bytes; asking for the whole value here lets the round trip show the stored value.)
 */
function kvpGet(pool: number, key: string): Buffer {
  const m = kvpMsg(h("KVP_OP_GET"), pool);
  m.writeUInt32LE(Buffer.byteLength(key) + 1, h("hv_kvp_msg.get.key_size"));
  m.write(`${key}\0`, h("hv_kvp_msg.get.key"), "utf8");
  m.writeUInt32LE(h("HV_KVP_EXCHANGE_MAX_VALUE_SIZE"), h("hv_kvp_msg.get.value_size"));
  return m;
}

function kvpEnumerate(pool: number, index: number): Buffer {
  const m = kvpMsg(h("KVP_OP_ENUMERATE"), pool);
  m.writeUInt32LE(index, h("hv_kvp_msg.enum.index"));
  return m;
}

const cstr = (b: Buffer, off: number, max: number): string => {
  const s = b.subarray(off, off + max);
  const nul = s.indexOf(0);
  return s.subarray(0, nul < 0 ? s.length : nul).toString("utf8");
};
const errorOf = (reply: Buffer): number => reply.readUInt32LE(h("hv_kvp_msg.error"));

/** Starts the KVP daemon, checks its REGISTER1 write and completes the handshake. */
async function registeredKvp(b: DaemonBridge): Promise<WriteEvent> {
  const open = await b.waitFor("open", { what: "the KVP daemon to open /dev/vmbus/hv_kvp" });
  expect(open.device).toBe("hv_kvp");
  expect(open.pid).toBe(b.pid); // the real pid; the daemon itself sees the pinned one
  const reg = await b.waitFor("write", { what: "the KVP registration write" });
  expect(reg.data.length).toBe(h("hv_kvp_msg.size"));
  expect(reg.data[h("hv_kvp_msg.operation")]).toBe(h("KVP_OP_REGISTER1"));
  reg.respond(reg.data.length);
  b.deliver(kvpRegisterReply());
  const read = await b.waitFor("read", { what: "the daemon to read the registration reply" });
  expect(read.result).toBe(h("hv_kvp_msg.size"));
  await b.waitFor("syslog", { match: (e) => e.message === "KVP LIC Version: 3.1", what: "the LIC version syslog line" });
  return reg;
}

/** Delivers one request and returns the daemon's reply (answered with its length). */
async function transact(b: DaemonBridge, msg: Buffer, what: string): Promise<Buffer> {
  b.deliver(msg);
  const w = await b.waitFor("write", { what: `the daemon's answer to ${what}` });
  w.respond(w.data.length);
  return w.data;
}

// ---------------------------------------------------------------------------------------------

describe("Hyper-V daemon bridge (real hv_kvp_daemon / hv_vss_daemon)", () => {
  beforeAll(() => {
    if (skip) return;
    const r = spawnSync(probe("hyperv-offsets"), { encoding: "utf8" });
    expect(r.status).toBe(0);
    H = Object.fromEntries(
      r.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" "))
        .map(([k, v]) => [k ?? "", Number(v)]),
    );
    // The facts the messages below rely on, as gcc computed them.
    expect(h("hv_kvp_msg.size")).toBe(7432);
    expect(h("hv_vss_msg.size")).toBe(12);
    expect(h("KVP_OP_REGISTER1")).toBe(100);
    expect(h("VSS_OP_REGISTER1")).toBe(129);
  });

  it(`reports whether real daemons can be bridged here${why}`, () => {
    // Always runs: the availability check itself must answer, with a reason when it says no.
    expect(typeof avail.ok).toBe("boolean");
    if (!avail.ok) expect(avail.reason.length).toBeGreaterThan(0);
  });

  it.skipIf(skip)(`KVP: REGISTER1 (op 100, 7432 bytes), SET then GET round-trips a key, pool file in the redirected directory${why}`, async () => {
    const hostPoolDirExisted = existsSync("/var/lib/hyperv");
    const b = newBridge();
    await b.start({
      service: "kvp",
      identity: { hostname: "guest1", fqdn: "guest1.hvsim.test", interfaces: [{ name: "eth0", address: "192.0.2.10/24" }] },
    });
    await registeredKvp(b);
    await b.waitFor("syslog", { match: (e) => e.ident === "KVP" && e.message === "KVP starting; pid is:4242" });

    const set = await transact(b, kvpSet(h("KVP_POOL_EXTERNAL"), "hvsim-key", "hello from hvsim"), "SET");
    expect(errorOf(set)).toBe(h("HV_S_OK"));

    // The pool lives in the bridge's directory, not in /var/lib/hyperv.
    expect(b.poolDir.startsWith("/var/lib/hyperv")).toBe(false);
    for (let pool = 0; pool < 5; pool++) expect(existsSync(b.poolFile(pool))).toBe(true);
    expect(statSync(b.poolFile(0)).size).toBe(KVP_RECORD_SIZE);
    expect(b.readPool(0)).toEqual([{ key: "hvsim-key", value: "hello from hvsim" }]);
    if (!hostPoolDirExisted) expect(existsSync("/var/lib/hyperv")).toBe(false);

    const get = await transact(b, kvpGet(h("KVP_POOL_EXTERNAL"), "hvsim-key"), "GET");
    expect(errorOf(get)).toBe(h("HV_S_OK"));
    expect(cstr(get, h("hv_kvp_msg.get.value"), h("HV_KVP_EXCHANGE_MAX_VALUE_SIZE"))).toBe("hello from hvsim");

    const missing = await transact(b, kvpGet(h("KVP_POOL_EXTERNAL"), "no-such-key"), "GET of a missing key");
    expect(errorOf(missing)).toBe(h("HV_S_CONT"));

    // AUTO pool values come from the pinned identity, not from this machine.
    const auto = async (index: number): Promise<[string, string]> => {
      const r = await transact(b, kvpEnumerate(h("KVP_POOL_AUTO"), index), `ENUMERATE AUTO ${index}`);
      expect(errorOf(r)).toBe(h("HV_S_OK"));
      return [cstr(r, h("hv_kvp_msg.enum.key"), 512), cstr(r, h("hv_kvp_msg.enum.value"), 2048)];
    };
    expect(await auto(0)).toEqual(["FullyQualifiedDomainName", "guest1.hvsim.test"]);
    expect(await auto(2)).toEqual(["NetworkAddressIPv4", "192.0.2.10"]);
    expect(await auto(4)).toEqual(["OSBuildNumber", "6.1.0-hvsim-amd64"]);
    expect(await auto(5)).toEqual(["OSName", "Debian GNU/Linux"]);
    expect(await auto(6)).toEqual(["OSMajorVersion", "12"]);
    expect(await auto(8)).toEqual(["OSVersion", "6.1.0"]);
    expect(await auto(9)).toEqual(["ProcessorArchitecture", "x86_64"]);

    // Waits are explicit: a timeout names what was awaited and the daemon's state.
    const err = await b.waitFor("ioctl", { timeoutMs: 200, what: "an ioctl the KVP daemon never does" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonBridgeError);
    expect((err as DaemonBridgeError).kind).toBe("timeout");
    expect((err as DaemonBridgeError).message).toMatch(/timed out after 200 ms waiting for an ioctl the KVP daemon never does\. Daemon .*hv_kvp_daemon, run 1: running/);
  });

  it.skipIf(skip)(`VSS: REGISTER1 (129, 12 bytes), 4-byte reply, FREEZE/THAW over the fake mount table, injected freeze failure${why}`, async () => {
    const mounts: DaemonMount[] = [
      { fsname: "/dev/sda1", dir: "/", type: "ext4", opts: "rw,relatime" },
      { fsname: "/dev/sdb1", dir: "/data", type: "xfs", opts: "rw" },
      { fsname: "/dev/sdc1", dir: "/boot/efi", type: "vfat", opts: "rw" }, // vfat: skipped
      { fsname: "/dev/sdd1", dir: "/archive", type: "ext4", opts: "ro" }, // read-only: skipped
      { fsname: "/dev/loop0", dir: "/snap/core", type: "squashfs", opts: "rw", loop: true }, // loop: skipped
      { fsname: "tmpfs", dir: "/run", type: "tmpfs", opts: "rw" }, // not /dev/...: skipped
      { fsname: "/dev/sde1", dir: "/srv/my data", type: "ext4", opts: "rw" }, // space, escaped as \040
    ];
    const b = newBridge();
    const ioctls: string[] = [];
    let failOn = "";
    b.onIoctl((e) => {
      ioctls.push(`${e.request} ${e.path}`);
      return e.request === "FIFREEZE" && e.path === failOn ? { errno: "EIO" } : 0;
    });
    await b.start({ service: "vss", mounts });

    expect((await b.waitFor("open")).device).toBe("hv_vss");
    const reg = await b.waitFor("write", { what: "the VSS registration write" });
    expect(reg.data.length).toBe(h("hv_vss_msg.size"));
    expect(reg.data[h("hv_vss_msg.operation")]).toBe(h("VSS_OP_REGISTER1"));
    reg.respond(reg.data.length);
    const regReply = Buffer.alloc(4);
    regReply.writeUInt32LE(h("VSS_OP_REGISTER1"), 0);
    b.deliver(regReply);
    expect((await b.waitFor("read")).result).toBe(4);

    const vss = (op: number): Buffer => {
      const m = Buffer.alloc(h("hv_vss_msg.size"));
      m[h("hv_vss_msg.operation")] = op;
      return m;
    };
    const vssTransact = async (op: number): Promise<number> => {
      b.deliver(vss(op));
      const w = await b.waitFor("write", { what: `the VSS answer to op ${op}` });
      expect(w.data.length).toBe(h("hv_vss_msg.size"));
      w.respond(w.data.length);
      return w.data.readUInt32LE(h("hv_vss_msg.error"));
    };

    expect(await vssTransact(h("VSS_OP_FREEZE"))).toBe(h("HV_S_OK"));
    expect(ioctls.splice(0)).toEqual(["FIFREEZE /data", "FIFREEZE /srv/my data", "FIFREEZE /"]); // "/" last
    expect(await vssTransact(h("VSS_OP_THAW"))).toBe(h("HV_S_OK"));
    expect(ioctls.splice(0)).toEqual(["FITHAW /data", "FITHAW /srv/my data", "FITHAW /"]);

    failOn = "/data";
    expect(await vssTransact(h("VSS_OP_FREEZE"))).toBe(h("HV_E_FAIL"));
    expect(ioctls.splice(0)).toEqual(["FIFREEZE /data", "FITHAW /data", "FITHAW /srv/my data", "FITHAW /"]);
    await b.waitFor("syslog", { match: (e) => e.message === "FREEZE of /data failed; error:5 Input/output error" });

    // Killed while blocked in FIFREEZE (a daemon dying with filesystems frozen): hvsim sees the
    // unanswered ioctl, then the close of the device.
    b.onIoctl((e) => {
      ioctls.push(`${e.request} ${e.path}`);
      return undefined; // leave it hanging
    });
    b.deliver(vss(h("VSS_OP_FREEZE")));
    const stuck = await b.waitFor("ioctl", { match: (e) => !e.answered, what: "FIFREEZE left unanswered" });
    expect(stuck).toMatchObject({ request: "FIFREEZE", path: "/data", cmd: 0xc0045877 });
    b.kill("SIGKILL");
    const close = await b.waitFor("close");
    expect(close).toMatchObject({ device: "hv_vss", wasOpen: true });
    // FIFREEZE/FITHAW are filesystem ioctls: they come on the shim's filesystem channel, a
    // connection of its own that outlives closes of the device (no close event of its own).
    expect(stuck.conn).not.toBe(close.conn);
    expect(await b.exited()).toEqual({ code: null, signal: "SIGKILL" });
  });

  it.skipIf(skip)(`sandbox: a real FIFREEZE ioctl gets EPERM (seccomp, and credentials alone)${why}`, () => {
    const freezeProbe = probe("freeze-probe");
    const EPERM = 1;
    const ENOSYS = 38;
    const run = (opts: Parameters<typeof DaemonBridge.runSandboxed>[1]): string => {
      const r = DaemonBridge.runSandboxed([freezeProbe, "/"], opts);
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    const asRoot = process.getuid?.() === 0;

    // All layers: nobody (when started as root), no capabilities, NO_NEW_PRIVS, seccomp filter.
    const all = run({});
    if (asRoot) expect(all).toContain("uid=65534 euid=65534");
    expect(all).toContain("status NoNewPrivs=1 Seccomp=2 CapEff=0000000000000000");
    expect(all).toContain(`libc FIFREEZE / -> -1 errno=${EPERM}`);
    expect(all).toContain(`raw FIFREEZE / -> -1 errno=${EPERM}`);

    // The filter answers before the kernel looks at credentials: with another errno configured
    // the probe sees that errno, so the EPERM above did not need the other layers.
    const tagged = run({ sandboxArgs: ["--freeze-errno", String(ENOSYS)] });
    expect(tagged).toContain(`raw FIFREEZE / -> -1 errno=${ENOSYS}`);

    // Without the filter, the unprivileged user in its own user namespace still gets EPERM.
    const credsOnly = run({ sandboxArgs: ["--no-seccomp"] });
    expect(credsOnly).toContain("Seccomp=0");
    expect(credsOnly).toContain(`raw FIFREEZE / -> -1 errno=${EPERM}`);

    // With the shim, libc's ioctl never reaches the kernel (EPERM from the shim, which logs it),
    // while a raw syscall still meets the filter.
    const r = DaemonBridge.runSandboxed([freezeProbe, "/"], { preload: true, sandboxArgs: ["--freeze-errno", String(ENOSYS)] });
    expect(r.stdout).toContain(`libc FIFREEZE / -> -1 errno=${EPERM}`);
    expect(r.stdout).toContain(`raw FIFREEZE / -> -1 errno=${ENOSYS}`);
    expect(r.stderr).toMatch(/hvsim-shim: FIFREEZE on fd \d+ \(not a mount of the fake table\) refused with EPERM/);
  });

  it.skipIf(skip)(`KVP: killing the daemon mid-transaction shows the close event; restart() keeps the pool${why}`, async () => {
    const b = newBridge();
    await b.start({ service: "kvp" });
    await registeredKvp(b);

    b.deliver(kvpSet(h("KVP_POOL_EXTERNAL"), "survivor", "still here"));
    const pendingWrite = await b.waitFor("write", { what: "the SET answer (left unanswered)" });
    expect(pendingWrite.answered).toBe(false); // the daemon is blocked in write()
    const pid = b.pid;
    expect(b.kill("SIGKILL")).toBe(true);
    const close = await b.waitFor("close", { what: "the device close after SIGKILL" });
    expect(close).toMatchObject({ conn: pendingWrite.conn, device: "hv_kvp", wasOpen: true, hungUp: false, run: 1 });
    expect(await b.exited()).toEqual({ code: null, signal: "SIGKILL" });
    pendingWrite.respond(pendingWrite.data.length); // too late: ignored, no error

    // The daemon had stored the key before writing its answer.
    expect(b.readPool(0)).toEqual([{ key: "survivor", value: "still here" }]);

    await b.restart();
    expect(b.run).toBe(2);
    expect(b.pid).not.toBe(pid);
    await registeredKvp(b);
    const get = await transact(b, kvpGet(h("KVP_POOL_EXTERNAL"), "survivor"), "GET after restart");
    expect(errorOf(get)).toBe(h("HV_S_OK"));
    expect(cstr(get, h("hv_kvp_msg.get.value"), 2048)).toBe("still here");
  });

  it.skipIf(skip)(`KVP fork server: the forked child is the daemon; its death ends the waits ("exited") and respawn() forks the next one, which keeps the pool like restart()${why}`, async () => {
    const b = newBridge();
    await b.start({ service: "kvp", forkServer: true });
    await registeredKvp(b);
    const first = await b.waitFor("forked", { what: "the first child" });
    expect(errorOf(await transact(b, kvpSet(h("KVP_POOL_EXTERNAL"), "k1", "v1"), "SET"))).toBe(h("HV_S_OK"));
    // The child dies inside the read of this GET (the shim's DATA_KILL): no answer can come.
    b.deliver(kvpGet(h("KVP_POOL_EXTERNAL"), "k1"), undefined, { killAfterRead: true });
    const err = await b.waitFor("write", { timeoutMs: 5000, what: "an answer from a dead child" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonBridgeError);
    expect((err as DaemonBridgeError).kind).toBe("exited");
    expect(await b.waitFor("child-exit")).toMatchObject({ pid: first.pid, code: null, signal: "SIGKILL" });
    expect(b.running).toBe(true); // the fork server (the daemon process) lives on
    b.respawn();
    const second = await b.waitFor("forked", { what: "the next child" });
    expect(second.pid).not.toBe(first.pid);
    const get = await transact(b, kvpGet(h("KVP_POOL_EXTERNAL"), "k1"), "GET after respawn");
    expect(errorOf(get)).toBe(h("HV_S_OK"));
    expect(cstr(get, h("hv_kvp_msg.get.value"), h("HV_KVP_EXCHANGE_MAX_VALUE_SIZE"))).toBe("v1");
  });

  it.skipIf(skip)(`KVP: hangup() = transport destroy: read fails EBADF, the daemon closes and reopens; a refused reopen ends it${why}`, async () => {
    const b = newBridge();
    let opens = 0;
    b.onOpen(() => (++opens === 1 ? "accept" : { errno: "ENOENT" }));
    await b.start({ service: "kvp" });
    await registeredKvp(b);
    await b.waitFor("poll", { match: (e) => e.timeoutMs === -1, what: "the daemon to wait in poll" });

    b.hangup();
    const read = await b.waitFor("read", { what: "the daemon's read after the hang-up" });
    expect(read).toMatchObject({ count: h("hv_kvp_msg.size"), errno: "EBADF" });
    expect(await b.waitFor("close")).toMatchObject({ wasOpen: true, hungUp: true });
    const reopen = await b.waitFor("open", { what: "the daemon to reopen the device" });
    expect(reopen.conn).not.toBe(read.conn);
    expect(await b.exited()).toEqual({ code: 1, signal: null });
    await b.waitFor("syslog", { match: (e) => /open \/dev\/vmbus\/hv_kvp failed; error: 2/.test(e.message) });
    // Waiting for an action of a daemon that has exited fails as such, not as a long timeout.
    const late = await b.waitFor("write", { timeoutMs: 8000, what: "a write after the exit" }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(DaemonBridgeError);
    expect((late as DaemonBridgeError).kind).toBe("exited");
    expect((late as DaemonBridgeError).message).toMatch(/the daemon exited while waiting for a write after the exit\. .*exited \(code 1, signal null\)/);
  });

  it.skipIf(skip)(`shim: EBUSY second open, write result from hvsim, short read EINVAL keeps the message, hang-up POLLERR|POLLHUP${why}`, async () => {
    const b = newBridge();
    b.onOpen(() => (b.connection === undefined ? "accept" : { errno: "EBUSY" }));
    b.onWrite((e) => {
      const text = e.data.toString("utf8");
      if (text === "hello") return { errno: "EINVAL" };
      if (text === "abc") {
        b.deliver(Buffer.from("0123456789")); // queued before write() returns, as in on_msg
        return 3;
      }
      return undefined;
    });
    b.on("output", (e) => {
      if (e.line === "waiting") b.hangup();
    });
    await b.start({ service: "kvp", program: { path: probe("device-probe") } });
    expect(await b.exited()).toEqual({ code: 0, signal: null });
    // The exit and the relay's frames travel different pipes; the relay forwards a connection's
    // packets before its close, so the close event means every read notification is in.
    await b.waitFor("close", { match: (e) => e.conn === 1 });
    const out = b.events.flatMap((e) => (e.kind === "output" && e.stream === "stdout" ? [e.line] : []));
    const EBUSY = 16;
    const EINVAL = 22;
    const EBADF = 9;
    expect(out).toEqual([
      expect.stringMatching(/^open1 \d+$/),
      `open2 -${EBUSY}`,
      `write1 -${EINVAL}`,
      "write2 3",
      "pollout 0 0x0",
      "poll1 1 0x1",
      `short -${EINVAL}`,
      "read 10 0123456789",
      "waiting",
      `poll2 1 0x${(POLLERR | POLLHUP).toString(16)}`,
      `read2 -${EBADF}`,
      `write3 -${EBADF}`,
      "done",
    ]);
    // What hvsim saw: both opens, the reads with their results, and one close (the refused
    // connection is not reported as a close).
    const seen = b.events.filter((e) => e.kind === "open" || e.kind === "read" || e.kind === "close");
    expect(seen.map((e) => (e.kind === "read" ? `read ${e.count} ${e.errno ?? e.result}` : `${e.kind} ${e.conn}`))).toEqual([
      "open 1",
      "open 2",
      "read 4 EINVAL",
      "read 99 10",
      "read 100 EBADF",
      "close 1",
    ]);
  });
});
