// Target wrappers for the conformance guards: a recording target (every qtest reply and Hyper-V
// answer a check receives, for per-seed pins) and a lying target (alters one field of one answer,
// to show each check kind can fail and names the difference).
import type { HvAnswer, HypervSession } from "../../sim/conform/hyperv-session.ts";
import type { QtestMachine, QtestSession, Target } from "../../sim/conform/types.ts";

export interface Tap {
  /** Called with each qtest reply; returns the reply to pass on. */
  reply?(line: string, cmd: string): string;
  /** Called with each Hyper-V answer; returns the answer to pass on. */
  answer?(a: HvAnswer, what: string): HvAnswer;
}

function tapQtest(s: QtestSession, tap: Tap): QtestSession {
  return {
    async command(line) {
      const r = await s.command(line);
      return tap.reply ? tap.reply(r, line) : r;
    },
    takeIrqLines: () => s.takeIrqLines(),
    close: () => s.close(),
  };
}

function tapHyperv(s: HypervSession, tap: Tap): HypervSession {
  const f = (a: HvAnswer, what: string): HvAnswer => (tap.answer ? tap.answer(a, what) : a);
  return {
    service: s.service,
    profile: s.profile,
    registered: () => s.registered(),
    state: () => s.state(),
    takeDevice: () => s.takeDevice(),
    negotiate: async () => f(await s.negotiate(), "negotiate"),
    kvp: async (req) => f(await s.kvp(req), `kvp ${req.op}`),
    vss: async (op) => f(await s.vss(op), `vss ${op}`),
    takeIoctls: () => s.takeIoctls(),
    failFreeze: (dir, errno) => s.failFreeze(dir, errno),
    crashDuring: async (req, point) => f(await s.crashDuring(req, point), point ? `crash ${point}` : "crash"),
    frozen: () => s.frozen(),
    delayNextAnswer: (ns) => s.delayNextAnswer(ns),
    resetDevice: () => s.resetDevice(),
    daemonExit: () => s.daemonExit(),
    settled: () => s.settled(),
    rawToDaemon: (msg) => s.rawToDaemon(msg),
    restart: () => s.restart(),
    vssBurst: async (ops) => (await s.vssBurst(ops)).map((a, i) => a && f(a, `vss ${ops[i]}`)),
    close: () => s.close(),
  };
}

/**
 * `inner` seen through a tap (made afresh for every session), under another name (or the same, to
 * stand in for the model).
 */
export function tapTarget(inner: Target, makeTap: () => Tap, name = `tapped:${inner.name}`): Target {
  return {
    name,
    description: `${inner.description} (tapped)`,
    capabilities: inner.capabilities,
    available: () => inner.available(),
    ...(inner.openQtest ? { openQtest: async (m: QtestMachine) => tapQtest(await inner.openQtest!(m), makeTap()) } : {}),
    ...(inner.openHyperv ? { openHyperv: async (svc: "kvp" | "vss", o: Parameters<NonNullable<Target["openHyperv"]>>[1]) => tapHyperv(await inner.openHyperv!(svc, o), makeTap()) } : {}),
  };
}
