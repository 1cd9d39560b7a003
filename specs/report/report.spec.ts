/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// `hvsim report` writes one self-contained page; opened in a real browser (Debian's chromium,
// driven by playwright-core), what it draws must say what the data says: the matrix counts only
// checks that apply to a target, the bench chart is on a log axis with goal, baseline, ±rme and a
// regression in red, and the timeline has a legend, an axis from 0 and a lane for every device.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";

const root = new URL("../..", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";
const dir = join(root, ".cache", "test", "report");
const out = join(dir, "report.html");
const shot = join(dir, "report.png");
// specs/report/fixtures/conform-four-targets.json is `hvsim conform --json` as run on this machine
// (model, hv-daemon:kvp, hv-daemon:vss, qtest:qemu; written before skips carried `applicable`, so it
// also proves the report's fallback on the "<target> lacks <capability>" reason).
const FOUR = join(root, "specs/report/fixtures/conform-four-targets.json");

// Bench results with the spread the issue names: a 1634x case, a 0.04x case, a case 50% below its
// baseline ratio (past the gate's default 10%), and one the gate itself calls a regression, in the fields `hvsim bench --compare --json` writes (gate.verdict, ratioLow/ratioHigh).
const bench = {
  suites: [
    { name: "big", reference: "ref A", goal: 1, cases: [{ name: "ref", hz: 1, rme: 1, ratio: 1, reference: true }, { name: "fast", hz: 1634, rme: 5, ratio: 1634, reference: false }] },
    { name: "small", reference: "ref B", goal: null, cases: [{ name: "slow", hz: 1, rme: 10, ratio: 0.04, reference: false, someFutureField: [1, 2] }] },
    { name: "gate", reference: "ref C", goal: 1, cases: [{ name: "dropped", hz: 1, rme: 2, ratio: 2, reference: false }, { name: "flagged", hz: 1, rme: 2, ratio: 3, reference: false, gate: { verdict: "regression", baseline: 3, floor: 2.7 }, ratioLow: 2.5, ratioHigh: 3.5 }] },
    { name: "off", reference: "ref D", goal: 1, skipped: "no QEMU", cases: [] },
  ],
};
const baseline = { suites: [{ name: "gate", reference: "ref C", goal: 1, cases: [{ name: "dropped", hz: 1, rme: 2, ratio: 4, reference: false }, { name: "flagged", hz: 1, rme: 2, ratio: 3, reference: false }] }] };

function generate(file: string, args: string[]) {
  mkdirSync(dir, { recursive: true });
  return spawnSync(process.execPath, [join(root, "sim/cli/bin.mjs"), "report", "--out", file, ...args], { cwd: root, encoding: "utf8" });
}

function mainPage() {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "bench.json"), JSON.stringify(bench));
  writeFileSync(join(dir, "baseline.json"), JSON.stringify(baseline));
  return generate(out, ["--conform", FOUR, "--bench", join(dir, "bench.json"), "--baseline", join(dir, "baseline.json")]);
}

async function withBrowser(fn: (open: (file: string) => Promise<Page>) => Promise<void>) {
  const { chromium } = await import("playwright-core");
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const requests: string[] = [];
  try {
    await fn(async (file) => {
      const page = await browser.newPage({ viewport: { width: 1160, height: 1400 } });
      page.on("request", (req) => {
        if (!req.url().startsWith("file:")) requests.push(req.url());
      });
      await page.goto("file://" + file);
      return page;
    });
  } finally {
    await browser.close();
  }
  expect(requests).toEqual([]);
}

const chromiumIt = it.skipIf(!existsSync(CHROMIUM));
const why = existsSync(CHROMIUM) ? "" : " (skipped: /usr/bin/chromium is not installed; apt-get install chromium)";

describe("hvsim report", () => {
  it("writes a page with no external references", () => {
    const r = mainPage();
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const html = readFileSync(out, "utf8");
    expect(html).not.toMatch(/<script|<link|src=|@import|url\((?!#)/i);
    expect(html).toContain('id="timeline"');
    expect(html).toContain('id="conform-matrix"');
  });

  chromiumIt(`renders the PM-timer timeline, the matrix and the log-scale bench chart in headless Chromium${why}`, async () => {
    if (!existsSync(out)) mainPage();
    await withBrowser(async (open) => {
      const page = await open(out);
      const seen = await page.evaluate(() => {
        const box = (el: Element | null) => (el ? el.getBoundingClientRect() : null);
        const row = (t: string) => [...document.querySelectorAll(`#conform-matrix tr[data-target="${t}"] td`)].map((td) => (td as HTMLElement).innerText.trim());
        const heads = [...document.querySelectorAll("#conform-matrix tr:first-child th")].map((th) => th.textContent);
        const reason = document.querySelector('#conform-matrix tr[data-target="model"] .skip-reason') as HTMLElement | null;
        const cx = (sel: string) => Number(document.querySelector(sel)?.getAttribute("cx"));
        const ticks = [...document.querySelectorAll("#bench-chart .axis.log .tick")].map((t) => ({ v: Number(t.getAttribute("data-value")), x: Number(t.getAttribute("x")) }));
        const caseOf = (ratio: number) => document.querySelector(`#bench-chart .case[data-ratio="${ratio}"]`);
        const timeTicks = [...document.querySelectorAll("#timeline .axis.time .tick")];
        const firstLaneLine = document.querySelector("#timeline .lane.series line");
        return {
          series: box(document.querySelector("#timeline .series path")),
          points: document.querySelectorAll("#timeline .series circle").length,
          wraps: document.querySelectorAll("#timeline .wrap").length,
          irqMarks: document.querySelectorAll('#timeline .marks[data-lane^="interrupts"] .mark').length,
          legend: [...document.querySelectorAll("#timeline-legend span")].map((s) => s.textContent),
          firstTick: { text: timeTicks[0]?.textContent, x: Number(timeTicks[0]?.getAttribute("x")), laneX: Number(firstLaneLine?.getAttribute("x1")) },
          heads,
          kvpRow: row("hv-daemon:kvp"),
          vssRow: row("hv-daemon:vss"),
          qemuRow: row("qtest:qemu"),
          modelRow: row("model"),
          reason: reason ? { text: reason.innerText, h: reason.getBoundingClientRect().height } : null,
          ticks,
          x: { fast: cx('.case[data-ratio="1634"] .ratio'), slow: cx('.case[data-ratio="0.04"] .ratio') },
          slowBar: box(document.querySelector('.case[data-ratio="0.04"] .bar')),
          verdicts: Object.fromEntries([1634, 0.04, 2, 3].map((r) => [r, caseOf(r)?.getAttribute("data-verdict")])),
          fills: Object.fromEntries([1634, 2, 3].map((r) => [r, getComputedStyle(caseOf(r)!.querySelector(".ratio")!).fill])),
          goals: document.querySelectorAll("#bench-chart .goal").length,
          baselines: document.querySelectorAll("#bench-chart .baseline").length,
          whisker: ((l) => (l ? Number(l.getAttribute("x2")) - Number(l.getAttribute("x1")) : 0))(caseOf(3)?.querySelector(".rme") ?? null),
          cases: document.querySelectorAll("#bench-chart .case").length,
        };
      });
      // 24 reads of the PM timer over 12 s; its 24-bit counter wraps every 4.687 s (2^24 / 3579545 Hz):
      // two wraps, and the SCI raised at every bit-23 toggle (about every 2.34 s) and lowered on acknowledge.
      expect(seen.series && seen.series.width > 500 && seen.series.height > 20).toBe(true);
      expect(seen.points).toBe(24);
      expect(seen.wraps).toBe(2);
      expect(seen.irqMarks).toBeGreaterThanOrEqual(4);
      expect(seen.legend).toEqual(expect.arrayContaining(["IRQ raised", "IRQ lowered"]));
      // The axis starts at the scenario start, not at the first sample (the first read is at 0.5 s).
      expect(seen.firstTick.text).toBe("0 s");
      expect(seen.firstTick.x).toBe(seen.firstTick.laneX);

      // Matrix: suites kvp, pmtimer, vmgenid, vss. A KVP daemon runs only the kvp suite (5 checks), a
      // VSS daemon only vss (5), QEMU pmtimer (6) and vmgenid (2): the rest is empty and not counted.
      expect(seen.heads).toEqual(["target", "kvp", "pmtimer", "vmgenid", "vss", "total (applicable)"]);
      expect(seen.kvpRow.slice(0, 4)).toEqual(["5/5 passed", "", "", ""]);
      expect(seen.kvpRow[4]).toMatch(/^5\/5 passed\n/);
      expect(seen.vssRow.slice(0, 4)).toEqual(["", "", "", "5/5 passed"]);
      expect(seen.qemuRow.slice(0, 4)).toEqual(["", "6/6 passed", "2/2 passed", ""]);
      expect(seen.qemuRow[4]).toMatch(/^8\/8 passed\n/);
      // The model runs all 18; one pmtimer check skips itself (it only compares a real target with
      // the model), which is counted and whose reason is printed in the cell, not only on hover.
      expect(seen.modelRow[4]).toMatch(/^17\/18 passed, 1 skipped\n/);
      expect(seen.reason?.text).toMatch(/^skipped: no upstream golden values/);
      expect(seen.reason!.h).toBeGreaterThan(0);

      // Bench: a log10 axis, decades equally spaced and covering 0.04x..1634x.
      const vs = seen.ticks.map((t) => t.v);
      expect(Math.min(...vs)).toBeLessThanOrEqual(0.04);
      expect(Math.max(...vs)).toBeGreaterThanOrEqual(1634);
      const steps = seen.ticks.slice(1).map((t, i) => t.x - seen.ticks[i]!.x);
      for (const s of steps) expect(s).toBeCloseTo(steps[0]!, 0);
      const at1 = seen.ticks.find((t) => t.v === 1)!.x;
      // log10(1634) / log10(1 / 0.04) = 3.2133 / 1.3979 = 2.2987
      expect((seen.x.fast - at1) / (at1 - seen.x.slow)).toBeCloseTo(2.2987, 1);
      expect(seen.slowBar!.width).toBeGreaterThan(30);
      expect(seen.cases).toBe(4); // the reference case and the skipped suite are not drawn
      expect(seen.verdicts).toEqual({ 1634: "met", 0.04: "no-goal", 2: "regression", 3: "regression" });
      expect(seen.fills[2]).toBe("rgb(194, 59, 59)");
      expect(seen.fills[3]).toBe("rgb(194, 59, 59)");
      expect(seen.fills[1634]).not.toBe(seen.fills[2]);
      expect(seen.goals).toBe(3); // every case of a suite with a goal
      expect(seen.baselines).toBe(2);
      expect(seen.whisker).toBeGreaterThan(5);
      await page.screenshot({ path: shot, fullPage: true });
    });
  }, 90_000);

  chromiumIt(`draws Hyper-V transactions, vmgenid generations, vmm ioctls and save/restore markers${why}`, async () => {
    const pages: Record<string, string> = {};
    for (const s of ["hyperv-kvp", "q35-vmgenid", "vmm-create-destroy", "q35-save-restore"]) {
      pages[s] = join(dir, `${s}.html`);
      const r = generate(pages[s], ["--conform", FOUR, "--scenario", join(root, "specs/scenarios", `${s}.yaml`)]);
      expect(r.status, r.stderr).toBe(0);
    }
    await withBrowser(async (open) => {
      const hv = await (await open(pages["hyperv-kvp"]!)).evaluate(() => {
        const arrows = (k: string) => [...document.querySelectorAll(`#timeline .sequence .arrow.${k}`)].map((a) => ({ y1: Number(a.getAttribute("y1")), y2: Number(a.getAttribute("y2")) }));
        return {
          rows: [...document.querySelectorAll("#timeline .sequence .row-label")].map((t) => t.textContent),
          send: arrows("hv-send"),
          req: arrows("hv-req"),
          ans: arrows("hv-ans"),
          reply: arrows("hv-reply"),
          legend: document.querySelectorAll("#timeline-legend span").length,
        };
      });
      // specs/scenarios/hyperv-kvp.yaml traces 9 host-send records (a negotiate and 8 KVP requests)
      // and 8 host-request records: 8 go on to the daemon and back; all 9 are answered to the host.
      expect(hv.rows).toEqual(["host", "kernel (hv_utils)", "kvp daemon", "vss daemon"]);
      expect(hv.send).toHaveLength(9);
      expect(hv.reply).toHaveLength(9);
      expect(hv.req).toHaveLength(8);
      expect(hv.ans).toHaveLength(8);
      // Downward host → kernel → daemon, upward back.
      for (const a of [...hv.send, ...hv.req]) expect(a.y2).toBeGreaterThan(a.y1);
      for (const a of [...hv.ans, ...hv.reply]) expect(a.y2).toBeLessThan(a.y1);
      expect(hv.legend).toBeGreaterThanOrEqual(4);

      const vg = await (await open(pages["q35-vmgenid"]!)).evaluate(() => ({
        gens: [...document.querySelectorAll('#timeline [data-lane="vmgenid"] .vmgenid-gen')].map((g) => ({ x: Number(g.getAttribute("x")), w: Number(g.getAttribute("width")) })),
        axis: [...document.querySelectorAll("#timeline .axis.time .tick")].map((t) => ({ ns: Number(t.getAttribute("data-ns")), x: Number(t.getAttribute("x")) })),
        notify: document.querySelectorAll('#timeline [data-lane="vmgenid"] .vmgenid-notify').length,
        reseed: document.querySelectorAll('#timeline [data-lane="vmgenid"] .vmgenid-reseed').length,
      }));
      // q35-vmgenid.yaml writes two GUIDs (two generations), each notified by the device, received
      // by the guest driver (two trace records) and followed by a reseed. The first generation lasts
      // from 0 to the second write at 2000 ns, where the second one starts.
      const xAt = (ns: number) => vg.axis.find((t) => t.ns === ns)!.x;
      expect(vg.gens).toHaveLength(2);
      expect(vg.gens[0]!.x).toBeCloseTo(xAt(0), 0);
      expect(vg.gens[0]!.x + vg.gens[0]!.w).toBeCloseTo(xAt(2000), 0);
      expect(vg.gens[1]!.x).toBeCloseTo(xAt(2000), 0);
      expect(vg.notify).toBe(6);
      expect(vg.reseed).toBe(2);

      const vmm = await (await open(pages["vmm-create-destroy"]!)).evaluate(() => ({
        rows: [...document.querySelectorAll('#timeline [data-lane^="vmm"] .row-label')].map((t) => t.textContent),
        wait: [...document.querySelectorAll('#timeline [data-lane^="vmm"] .vmm-wait')].map((g) => g.getBoundingClientRect().width),
        hold: document.querySelectorAll('#timeline [data-lane^="vmm"] .vmm-hold').length,
        err: document.querySelectorAll('#timeline [data-lane^="vmm"] .vmm-err').length,
      }));
      // vmm-create-destroy.yaml: VM_GET_REGISTER (op 2) waits for vcpu 0 while op 1 runs (0..1000 ns),
      // and the destroy (op 5) waits for the VM to drain; ops 1, 2 and 4 run holding their vcpu.
      expect(vmm.rows).toEqual(expect.arrayContaining(["vmmctl", "#1 VM_SET_REGISTER (t1)", "#2 VM_GET_REGISTER (t2)"]));
      expect(vmm.wait.length).toBeGreaterThanOrEqual(1);
      expect(Math.max(...vmm.wait)).toBeGreaterThan(100);
      expect(vmm.hold).toBe(3);
      expect(vmm.err).toBeGreaterThanOrEqual(5); // open-fail, vm-create EEXIST/EINVAL..., VM_RUN EINVAL

      const sr = await (await open(pages["q35-save-restore"]!)).evaluate(() => ({
        markers: [...document.querySelectorAll("#timeline .snap-marker")].map((m) => ({ kind: m.getAttribute("data-kind"), x: Number(m.querySelector("line")!.getAttribute("x1")) })),
        replay: document.querySelectorAll("#timeline .series circle.replay").length,
        legend: [...document.querySelectorAll("#timeline-legend span")].map((s) => s.getAttribute("data-key")),
      }));
      // Saved at 1 s, restored to 1 s: two markers at one x; the two reads after the restore are drawn as replays.
      expect(sr.markers.map((m) => m.kind)).toEqual(["save", "restore"]);
      expect(sr.markers[0]!.x).toBe(sr.markers[1]!.x);
      expect(sr.replay).toBe(2);
      expect(sr.legend).toEqual(expect.arrayContaining(["save", "restore"]));
    });
  }, 180_000);
});

describe("every example scenario has something to plot", () => {
  const files = readdirSync(join(root, "specs/scenarios")).filter((f) => /\.(ya?ml|json)$/.test(f));
  it.each(files)("%s", async (f) => {
    const { runScenarioFile } = await import("../../sim/scenario/index.ts");
    const { lanesFromTrace, markerFromNote, timelineSvg } = await import("../../sim/report/timeline.ts");
    const records: import("../../sim/clock/trace.ts").TraceRecord[] = [];
    const markers: import("../../sim/report/timeline.ts").SnapshotMarker[] = [];
    const snaps = join(dir, "snapshots");
    mkdirSync(snaps, { recursive: true });
    const run = runScenarioFile(join(root, "specs/scenarios", f), {
      snapshotDir: snaps,
      onTrace: (r) => void records.push(r),
      onNote: (n) => {
        const m = markerFromNote(n, records.length);
        if (m) markers.push(m);
      },
    });
    expect(run.status).toBe("ok");
    const lanes = lanesFromTrace(records, markers);
    expect(lanes.length).toBeGreaterThan(0);
    const svg = timelineSvg(lanes, markers);
    expect(svg).not.toContain("nothing to plot");
    expect(svg).toContain('id="timeline-legend"');
    // Every device that traced something has a lane naming it.
    const devices = new Set(records.flatMap((r) => (r.type === "io" && typeof r.fields[4] === "string" ? [r.fields[4]] : r.type === "irq" ? ["interrupts"] : r.type.startsWith("vmgenid") ? ["vmgenid"] : r.type === "hyperv" ? ["Hyper-V"] : r.type === "vmm" ? ["vmm"] : [])));
    for (const d of devices) expect(lanes.some((l) => l.name.startsWith(d)), `${f}: a lane for ${d}`).toBe(true);
  });
});
