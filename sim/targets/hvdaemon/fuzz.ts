// `hvsim fuzz hv-daemon:kvp|vss`: the kernel side of /dev/vmbus/hv_kvp or hv_vss sends malformed
// messages to the REAL Debian daemon through the device bridge. Inputs come from the engine's
// structure-aware generator for struct hv_kvp_msg / hv_vss_msg (inputFor: a function of (seed,
// run) alone), sized as the kernel always sends them (7432 / 12 bytes: hv_kvp.c and hv_snapshot.c
// copy into a whole message). A finding is the daemon exiting or dying on a message (crash /
// signal), not answering within --timeout (hang), or answering with a write of the wrong size
// (invariant). After a finding the daemon is restarted and registered again, so the campaign goes
// on: by default as a child of the shim's fork server, forked from the registered daemon with the
// pool files emptied (the state a restart gives, without a new process; a hang still restarts the
// process). Findings are shrunk by zeroing byte ranges while the same kind of finding persists
// (the message length is fixed, so bytes are zeroed, not dropped), with a small execution budget.
// `program` runs another daemon binary (hv-daemon:kvp=<program>, =asan for the sanitized build):
// a sanitizer report it prints is a "sanitizer" finding, with the report's first lines.
//
// This adapter talks to real processes and so may use wall-clock timers (see eslint.config.js).
import { readdirSync, rmSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { inputFor, type FindingKind, type FuzzTarget, type GeneratedInput, type Verdict } from "../../fuzz/engine.ts";
import { findInProcessTarget } from "../../fuzz/targets.ts";
import { DaemonBridge, DaemonBridgeError, type ChildExitEvent } from "./bridge.ts";
import { reportExcerpt, reportSummary, SANITIZER_ENV, sanitizerPreload, SanitizerWatch, type SanitizerReport } from "./sanitized.ts";
import { bridgeIdentity } from "./target.ts";
import { HV_IDENTITY } from "../../conform/hyperv-session.ts";
import { K } from "../../devices/hyperv/frames.ts";

export type DaemonService = "kvp" | "vss";

export const MSG_SIZE: Record<DaemonService, number> = { kvp: 7432, vss: 12 };
const REGISTER1: Record<DaemonService, number> = { kvp: 100, vss: 129 };
export const STRUCT: Record<DaemonService, "hv_kvp_msg" | "hv_vss_msg"> = { kvp: "hv_kvp_msg", vss: "hv_vss_msg" };

export interface DaemonFinding {
  readonly run: number;
  readonly mode: GeneratedInput["mode"];
  readonly verdict: Verdict;
  readonly input: Uint8Array;
  readonly minimized: Uint8Array;
  /** A sanitizer finding: the report's first lines as printed. */
  readonly report?: string[];
}

/**
 * The kernel's answer to the daemon's registration: hv_kvp.c answers KVP_OP_REGISTER1 with a whole
 * message carrying its version string; hv_snapshot.c answers VSS_OP_REGISTER1 with the 4-byte
 * operation code alone.
 */
export function registrationReply(service: DaemonService): Uint8Array {
  if (service === "kvp") {
    const reply = new Uint8Array(MSG_SIZE.kvp);
    reply[0] = REGISTER1.kvp;
    reply.set(new TextEncoder().encode("3.1"), K.version);
    return reply;
  }
  const reply = new Uint8Array(4);
  new DataView(reply.buffer).setUint32(0, REGISTER1.vss, true);
  return reply;
}

/** Findings that differ only in the op, pool, index or size printed are one finding. */
export function findingKey(v: Verdict): string {
  return `${v.kind}:${v.message.replace(/op \d+ pool \d+/, "").replace(/\bindex \d+/, "index N").replace(/size=-?\d+/, "size=N")}`;
}

/** One real daemon, registered, answering messages one at a time. */
export class DaemonFuzzer {
  private bridge: DaemonBridge | undefined;
  private watch: SanitizerWatch | undefined;
  private reportsSeen = 0;
  /** The daemon's last syslog message (all runs of the bridge). */
  private lastSyslog = "";
  /** lastSyslog once the daemon had registered (what a respawned child starts from). */
  private registeredSyslog = "";
  /** The fork server's child has died (respawn before the next message). */
  private childDead = false;
  private childExit: ChildExitEvent | undefined;
  /** The report of the last "sanitizer" verdict. */
  lastReport: SanitizerReport | undefined;
  private readonly size: number;
  /** Inputs run, restarts done. */
  execs = 0;
  restarts = 0;

  constructor(
    readonly service: DaemonService,
    private readonly timeoutMs = 2000,
    /** Another daemon binary (run with -n) instead of Debian's. */
    readonly program?: string,
    /**
     * Replace a daemon that died with a child of the shim's fork server (forked from the
     * registered state, pool files emptied) instead of starting a new process: the same state
     * as a restart, in well under a millisecond. Default true.
     */
    readonly forkServer = true,
  ) {
    this.size = MSG_SIZE[service];
  }

  /** The engine target whose generator and hints draw the inputs (hv_kvp_msg / hv_vss_msg). */
  generatorTarget(): FuzzTarget {
    const t = findInProcessTarget(STRUCT[this.service]);
    if (!t) throw new Error(`no in-process fuzz target ${STRUCT[this.service]}`);
    return t;
  }

  private async ready(): Promise<DaemonBridge> {
    if (this.bridge?.running && !this.childDead) return this.bridge;
    if (this.bridge?.running) {
      // The fork server's child died: fork the next one from the registered state.
      this.restarts++;
      const b = this.bridge;
      try {
        this.emptyPools(b);
        b.forgetEvents();
        this.childDead = false;
        b.respawn();
        await b.waitFor("forked", { timeoutMs: 5000, what: "the fork server's next child" });
        this.lastSyslog = this.registeredSyslog;
        return b;
      } catch (e) {
        if (!(e instanceof DaemonBridgeError)) throw e;
        b.kill("SIGKILL"); // the fork server is stuck: start the daemon again below
        await b.exited(5000).catch(() => undefined);
        this.restarts--;
      }
    }
    if (this.bridge) {
      this.restarts++;
      // A daemon that died is started again on the same bridge (relay and run directory kept:
      // a fresh bridge costs another relay process and directory), with empty pool files, as a
      // fresh bridge would have: each daemon run starts from the same state.
      const b = this.bridge;
      try {
        this.emptyPools(b);
        b.forgetEvents();
        await b.restart({ timeoutMs: 5000 });
        await this.register(b);
        return b;
      } catch (e) {
        if (!(e instanceof DaemonBridgeError)) throw e;
        await b.stop(); // the bridge itself broke (relay gone...): start over below
      }
    }
    const b = new DaemonBridge();
    this.bridge = b;
    this.watch = new SanitizerWatch(b);
    this.reportsSeen = 0;
    b.onSyslog((e) => (this.lastSyslog = e.message));
    b.on("child-exit", (e) => {
      this.childDead = true;
      this.childExit = e;
    });
    const p = this.program;
    await b.start({
      service: this.service,
      identity: bridgeIdentity(HV_IDENTITY),
      mounts: [{ fsname: "/dev/sda1", dir: "/", type: "ext4", opts: "rw" }],
      timeoutMs: 10_000,
      ...(p ? { program: { path: p, args: ["-n"] }, preload: sanitizerPreload(p), env: { ...SANITIZER_ENV } } : {}),
      forkServer: this.forkServer,
    });
    b.onIoctl(() => 0);
    await this.register(b);
    return b;
  }

  /** The registration handshake of the bridge's current daemon run. */
  private async register(b: DaemonBridge): Promise<void> {
    const run = b.run;
    const reg = await b.waitFor("write", { what: `the ${this.service} registration write`, match: (e) => e.run === run });
    if (reg.data.length !== this.size || reg.data[0] !== REGISTER1[this.service]) throw new Error(`unexpected registration write of ${reg.data.length} bytes, op ${reg.data[0]}`);
    reg.respond(reg.data.length);
    b.deliver(registrationReply(this.service));
    await b.waitFor("read", { what: "the daemon to read the registration reply", match: (e) => e.run === run });
    // With the fork server the daemon forks at its next poll: the child is the daemon.
    if (this.forkServer) await b.waitFor("forked", { what: "the fork server's first child", match: (e) => e.run === run });
    this.childDead = false;
    this.registeredSyslog = this.lastSyslog;
  }

  /** Empties the pool files (truncated in place: a fork server's children share its open files). */
  private emptyPools(b: DaemonBridge): void {
    for (const f of readdirSync(b.poolDir, { withFileTypes: true })) {
      const path = join(b.poolDir, f.name);
      if (f.isFile()) truncateSync(path, 0);
      else rmSync(path, { recursive: true, force: true });
    }
  }

  /** A sanitizer report printed since the last verdict, as a "sanitizer" verdict. */
  private sanitizerVerdict(msg: Uint8Array): Verdict | undefined {
    const reports = this.watch?.reports ?? [];
    const r = reports[this.reportsSeen];
    this.reportsSeen = reports.length;
    if (!r) return undefined;
    this.lastReport = r;
    return { kind: "sanitizer", message: `${reportSummary(r)} on op ${msg[0]} pool ${msg[1]}` };
  }

  /** Delivers one message (padded or cut to the kernel's message size); the verdict. */
  async execute(input: Uint8Array): Promise<Verdict | undefined> {
    const b = await this.ready();
    this.execs++;
    this.lastReport = undefined;
    const msg = new Uint8Array(this.size);
    msg.set(input.subarray(0, this.size));
    // Only this message's events matter from here on: the history would otherwise hold every
    // answer of the campaign.
    b.forgetEvents();
    b.deliver(msg);
    try {
      // The daemon's connection is known: once it has exited and that connection is closed, no
      // answer can come (no grace for connections not seen yet).
      const w = await b.waitFor("write", { timeoutMs: this.timeoutMs, what: "the daemon's answer", exitGraceMs: 0 });
      w.respond(w.data.length);
      const san = this.sanitizerVerdict(msg);
      if (san) return san;
      if (w.data.length !== this.size) return { kind: "invariant", message: `answered with a ${w.data.length}-byte write (expected ${this.size})` };
      return undefined;
    } catch (e) {
      if (!(e instanceof DaemonBridgeError)) throw e;
      const last = this.lastSyslog;
      if (e.kind === "exited") {
        const x = this.childDead ? this.childExit : await b.exited(1000).catch(() => undefined);
        // stderr is read independently of the exit: give the report's last lines a moment.
        for (let i = 0; i < 20 && this.watch?.reports.some((r) => !r.complete); i++) await new Promise((r) => setTimeout(r, 25));
        const san = this.sanitizerVerdict(msg);
        if (san) return san;
        const kind: FindingKind = x?.signal ? "signal" : "crash";
        return { kind, message: `hv_${this.service}_daemon exited (code ${x?.code ?? "?"}, signal ${x?.signal ?? "none"}) on op ${msg[0]} pool ${msg[1]}; last syslog: ${last}` };
      }
      if (e.kind === "timeout") {
        b.kill("SIGKILL");
        await b.exited(5000).catch(() => undefined);
        return { kind: "hang", message: `hv_${this.service}_daemon did not answer op ${msg[0]} pool ${msg[1]} within ${this.timeoutMs} ms; last syslog: ${last}` };
      }
      throw e;
    }
  }

  /**
   * Zeroes byte ranges (large to small) while the same kind of finding persists (with `same`: the
   * same finding, by findingKey, so that shrinking cannot slide to another bug of that kind).
   */
  async minimize(input: Uint8Array, kind: FindingKind, budget = 48, same?: Verdict): Promise<Uint8Array> {
    let best = new Uint8Array(this.size);
    best.set(input.subarray(0, this.size));
    let left = budget;
    for (let chunk = this.size >> 1; chunk >= 1 && left > 0; chunk >>= 1) {
      for (let i = 0; i < best.length && left > 0; i += chunk) {
        if (best.subarray(i, i + chunk).every((x) => x === 0)) continue;
        const cand = best.slice();
        cand.fill(0, i, i + chunk);
        left--;
        const v = await this.execute(cand);
        if (v?.kind === kind && (!same || findingKey(v) === findingKey(same))) best = cand;
      }
    }
    return best;
  }

  async close(): Promise<void> {
    await this.bridge?.stop();
    this.bridge = undefined;
  }
}

export interface DaemonCampaignOptions {
  seed: number;
  runs: number;
  /** Wall-clock end (performance.now() ms). */
  deadline: number;
  shard: { index: number; count: number };
  timeoutMs: number;
  onFinding?: (f: DaemonFinding) => void;
  /** Stop after this many findings (default 5: each costs daemon restarts and shrinking). */
  maxFindings?: number;
  shouldStop?: () => boolean;
}

/** Runs a campaign; findings with the same kind and message are reported once. */
export async function runDaemonCampaign(
  service: DaemonService,
  o: DaemonCampaignOptions & { program?: string; forkServer?: boolean },
): Promise<{ execs: number; restarts: number; findings: DaemonFinding[] }> {
  const fz = new DaemonFuzzer(service, o.timeoutMs, o.program, o.forkServer ?? true);
  const gen = fz.generatorTarget();
  const findings: DaemonFinding[] = [];
  const seen = new Set<string>();
  let n = 0;
  try {
    while (n < o.runs && performance.now() < o.deadline && findings.length < (o.maxFindings ?? 5) && !o.shouldStop?.()) {
      const run = o.shard.index + n * o.shard.count;
      n++;
      const g = inputFor(gen, o.seed, run);
      const v = await fz.execute(g.bytes);
      if (!v) continue;
      const key = findingKey(v);
      if (seen.has(key)) continue;
      seen.add(key);
      const report = fz.lastReport ? reportExcerpt(fz.lastReport) : undefined;
      const minimized = await fz.minimize(g.bytes, v.kind);
      const f: DaemonFinding = { run, mode: g.mode, verdict: v, input: g.bytes, minimized, ...(report ? { report } : {}) };
      findings.push(f);
      o.onFinding?.(f);
    }
  } finally {
    await fz.close();
  }
  return { execs: fz.execs, restarts: fz.restarts, findings };
}
