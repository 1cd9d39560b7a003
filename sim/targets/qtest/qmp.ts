// A minimal QMP client (QEMU docs/interop/qmp-spec: a greeting, `qmp_capabilities`, then one JSON
// command at a time answered by {"return": ...} or {"error": ...}; events interleave and are
// skipped) over a UNIX socket, for sim/targets/qtest/control.ts.
//
// This adapter talks to real processes and so may use wall-clock timers (see eslint.config.js).
import { createConnection, type Socket } from "node:net";

export class Qmp {
  private buf = "";
  private waiters: ((msg: Record<string, unknown>) => void)[] = [];
  private queue: Record<string, unknown>[] = [];

  private constructor(private readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ("event" in msg) continue;
        const w = this.waiters.shift();
        if (w) w(msg);
        else this.queue.push(msg);
      }
    });
    sock.on("error", () => undefined);
  }

  static async connect(path: string, timeoutMs = 20_000): Promise<Qmp> {
    const t0 = Date.now();
    for (;;) {
      try {
        const s = await new Promise<Socket>((resolve, reject) => {
          const c = createConnection(path);
          c.once("connect", () => resolve(c));
          c.once("error", reject);
        });
        const q = new Qmp(s);
        await q.next(timeoutMs); // greeting
        await q.execute("qmp_capabilities");
        return q;
      } catch (e) {
        if (Date.now() - t0 > timeoutMs) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private next(timeoutMs: number): Promise<Record<string, unknown>> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no QMP message within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
  }

  async execute(command: string, args?: Record<string, unknown>, timeoutMs = 20_000): Promise<unknown> {
    this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + "\n");
    const r = await this.next(timeoutMs);
    if ("error" in r) throw new Error(`QMP ${command}: ${JSON.stringify(r.error)}`);
    return r.return;
  }

  /** Polls query-migrate until `completed` (throws on `failed` or after timeoutMs). */
  async waitMigration(timeoutMs = 60_000): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      const st = (await this.execute("query-migrate")) as { status?: string; "error-desc"?: string };
      if (st.status === "completed") return;
      if (st.status === "failed" || st.status === "cancelled") throw new Error(`migration ${st.status}: ${st["error-desc"] ?? ""}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`migration still ${st.status ?? "not started"} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
