// What the KVP and VSS daemon models share: a user-space process on the virtual clock that talks
// to the kernel's character device through the endpoint calls (endpoint.ts), can crash (the kernel
// sees the release of its descriptor) and follows a script of directives for its answers.
import type { Bench } from "../../machine/bench.ts";
import type { ClockEvent } from "../../clock/clock.ts";
import { HVT_CALL, type HvtCall, type Service } from "./endpoint.ts";

/** How a daemon model answers the next requests (consumed one per request). */
export type Directive = { do: "answer" } | { do: "delay"; ns: number } | { do: "crash-before" } | { do: "crash-after" };

export type DaemonPhase = "stopped" | "opening" | "registering" | "polling" | "reading" | "working" | "writing" | "closing" | "exited";

export interface DaemonProcessState {
  phase: DaemonPhase;
  afterClose: "reopen" | "exit";
  /** Process generation: results tagged with an older one belong to a dead process. */
  gen: number;
  inHandshake: boolean;
  /** The message being worked on; written back whole as the answer. */
  buf: Uint8Array;
  script: Directive[];
  answerSeq: number | null;
  exitStatus: number | null;
  stats: { requests: number; answers: number; reopens: number; crashes: number };
}

export abstract class DaemonProcess<S extends DaemonProcessState> {
  abstract state: S;

  constructor(
    readonly id: string,
    protected readonly bench: Bench,
    protected readonly service: Service,
    protected readonly kernel: string,
    protected readonly toKernelNs: number,
  ) {}

  protected trace(what: string, ...f: (string | number | null)[]): void {
    this.bench.clock.trace.record(this.bench.now, "hyperv", this.id, what, ...f);
  }

  protected call(c: Omit<HvtCall, "service" | "from" | "tag">): void {
    this.bench.clock.schedule(this.toKernelNs, this.kernel, HVT_CALL, { ...c, service: this.service, from: this.id, tag: this.state.gen });
  }

  get running(): boolean {
    return this.state.phase !== "stopped" && this.state.phase !== "exited";
  }

  /** Kills the process: its descriptor is closed by the kernel (exit), nothing else is done. */
  crash(): void {
    if (!this.running) return;
    const s = this.state;
    s.stats.crashes++;
    if (s.answerSeq !== null) this.bench.clock.cancel(s.answerSeq);
    s.answerSeq = null;
    this.trace("daemon-crash", this.service, s.phase);
    // The kernel sees the release of the file (if it was open at all).
    this.call({ call: "close" });
    s.gen++;
    s.phase = "exited";
    s.exitStatus = 137;
  }

  /** Appends directives for the next requests. */
  queue(...d: Directive[]): void {
    this.state.script.push(...d);
  }

  /** Closes the device and opens it again (the daemons' reaction to a failed read or write). */
  protected abstract reopen(): void;

  /**
   * A request was read: counts it and takes the next directive. Returns undefined when the process
   * crashed before working on it; `crash-after` is left to `work` (call it once the answer is in buf).
   */
  protected beginRequest(): Directive | undefined {
    const s = this.state;
    s.stats.requests++;
    const d = s.script.shift() ?? { do: "answer" };
    if (d.do === "crash-before") {
      this.crash();
      return undefined;
    }
    return d;
  }

  /** The answer is in buf: crash now if told to, else write it after the work time (or the directive's delay). */
  protected work(d: Directive, opNs: number): void {
    const s = this.state;
    if (d.do === "crash-after") return this.crash();
    s.phase = "working";
    s.answerSeq = this.bench.clock.schedule(d.do === "delay" ? d.ns : opNs, this.id, "answer", { gen: s.gen });
  }

  protected onAnswerDue(ev: ClockEvent): void {
    const s = this.state;
    s.answerSeq = null;
    if ((ev.payload as { gen: number }).gen !== s.gen || s.phase !== "working") return;
    s.phase = "writing";
    this.call({ call: "write", bytes: s.buf.slice() });
  }

  /** The answer's write returned `ret` (a whole message of `size` bytes is success). */
  protected written(ret: number, size: number): void {
    if (ret !== size) {
      this.trace("daemon-write-failed", this.service, ret);
      return this.reopen();
    }
    this.state.stats.answers++;
    return this.pollDevice();
  }

  /** The device was closed: open it again, or exit as the daemon does after a failed handshake. */
  protected closed(): void {
    if (this.state.afterClose === "reopen") return this.openDevice();
    return this.exit(1);
  }

  protected openDevice(): void {
    this.state.phase = "opening";
    this.call({ call: "open" });
  }

  protected exit(status: number): void {
    this.state.phase = "exited";
    this.state.exitStatus = status;
    this.trace("daemon-exit", this.service, status);
  }

  protected pollDevice(): void {
    this.state.phase = "polling";
    this.call({ call: "poll" });
  }
}
