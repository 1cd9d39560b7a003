// Delivery order through the device bridge (sim/targets/hvdaemon: shim -> relay -> bridge), issue
// 12: a daemon that closes the device and opens it again at once (hv_vss_daemon.c:308-311 / :346-349
// goto reopen_vss_fd, :248-249 close, :259 open; hv_kvp_daemon.c likewise) must be seen closing
// before it is seen opening, and the notification of the read that failed right before the close
// must not be lost. The relay is held (HOLD, a test hook) while the probe reads, closes and
// reopens, so that everything is queued in the relay's sockets at once, which is where the old
// relay reordered (newest connection first, one packet per connection per round) and lost (a
// close with a message still unread makes the relay's next recv fail ECONNRESET, reported before
// the packets queued behind it).
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { compileCProgram } from "../../sim/targets/hvdaemon/build.ts";
import { DaemonBridge, type BridgeEvent } from "../../sim/targets/hvdaemon/bridge.ts";

const avail = DaemonBridge.available();
const skip = !avail.ok;
const why = avail.ok ? "" : ` [skipped: ${avail.reason}]`;
const probe = (): string => compileCProgram("reopen-probe", readFileSync(new URL("../../sim/targets/hvdaemon/probes/reopen-probe.c", import.meta.url), "utf8"));

const bridges: DaemonBridge[] = [];
afterEach(async () => {
  await Promise.all(bridges.splice(0).map((b) => b.stop()));
});

async function run(mode: "fail" | "ok"): Promise<{ out: string[]; seen: string[] }> {
  const b = new DaemonBridge();
  bridges.push(b);
  b.onWrite((e) => {
    const text = e.data.toString("utf8");
    if (text === "go") {
      b.deliver(Buffer.from("0123456789"), e.conn);
      b.holdRelay(400); // armed by the WRITE_RESULT below: the probe then acts while the relay sleeps
    }
    return e.data.length;
  });
  await b.start({ service: "kvp", program: { path: probe(), args: [mode] } });
  expect(await b.exited()).toEqual({ code: 0, signal: null });
  await b.waitFor("close", { match: (e) => e.conn === 2, what: "the second connection's close" });
  const out = b.events.flatMap((e) => (e.kind === "output" && e.stream === "stdout" ? [e.line] : []));
  const show = (e: BridgeEvent): string[] => {
    switch (e.kind) {
      case "open":
      case "close":
        return [`${e.kind} ${e.conn}`];
      case "write":
        return [`write ${e.conn} ${e.data.toString("utf8")}`];
      case "read":
        return [`read ${e.conn} ${e.count} ${e.errno ?? e.result}`];
      case "poll":
        return [`poll ${e.conn}`];
      default:
        return [];
    }
  };
  return { out, seen: b.events.flatMap(show) };
}

describe("bridge delivery order on a daemon's close-and-reopen", () => {
  it.skipIf(skip)(`a failed read's notification reaches hvsim before the close, even with the message still unread${why}`, async () => {
    const { out, seen } = await run("fail");
    expect(out).toEqual([expect.stringMatching(/^open1 \d+$/), "write1 2", "short -22", expect.stringMatching(/^open2 \d+$/), "write2 5", "done"]);
    expect(seen).toEqual(["open 1", "write 1 go", "read 1 4 EINVAL", "close 1", "open 2", "write 2 again", "close 2"]);
  });

  it.skipIf(skip)(`the old connection's packets and close come before the new connection's open${why}`, async () => {
    const { out, seen } = await run("ok");
    expect(out).toEqual([expect.stringMatching(/^open1 \d+$/), "write1 2", "read 10", "poll 0", expect.stringMatching(/^open2 \d+$/), "write2 5", "done"]);
    expect(seen).toEqual(["open 1", "write 1 go", "read 1 100 10", "poll 1", "close 1", "open 2", "write 2 again", "close 2"]);
  });
});
