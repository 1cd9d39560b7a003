/// <reference lib="dom" />
// `hvsim report` writes one self-contained page; opened in a real browser (Debian's chromium,
// driven by playwright-core), its plots must have rendered: a PM-timer series with wrap markers,
// interrupt marks, the conformance matrix, and nothing fetched from the network.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";
const out = join(root, ".cache", "test", "report.html");
const shot = join(root, ".cache", "test", "report.png");

function generate() {
  mkdirSync(join(root, ".cache", "test"), { recursive: true });
  return spawnSync(process.execPath, [join(root, "sim/cli/bin.mjs"), "report", "--out", out, "--conform", join(root, "specs/report/fixtures/conform.json")], {
    cwd: root,
    encoding: "utf8",
  });
}

describe("hvsim report", () => {
  it("writes a page with no external references", () => {
    const r = generate();
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const html = readFileSync(out, "utf8");
    expect(html).not.toMatch(/<script|<link|src=|@import|url\(/i);
    expect(html).toContain('id="timeline"');
    expect(html).toContain('id="conform-matrix"');
  });

  it.skipIf(!existsSync(CHROMIUM))(`renders its plots in headless Chromium${existsSync(CHROMIUM) ? "" : " (skipped: /usr/bin/chromium is not installed; apt-get install chromium)"}`, async () => {
    if (!existsSync(out)) generate();
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1140, height: 1400 } });
      const requests: string[] = [];
      page.on("request", (req) => {
        if (!req.url().startsWith("file:")) requests.push(req.url());
      });
      await page.goto("file://" + out);
      const seen = await page.evaluate(() => {
        const box = (sel: string) => {
          const el = document.querySelector(sel) as SVGGraphicsElement | null;
          if (!el) return null;
          const b = el.getBoundingClientRect();
          return { w: b.width, h: b.height };
        };
        return {
          series: box("#timeline .series path"),
          points: document.querySelectorAll("#timeline .series circle").length,
          wraps: document.querySelectorAll("#timeline .wrap").length,
          irqMarks: document.querySelectorAll('#timeline .marks[data-lane^="interrupts"] .mark').length,
          matrixRows: document.querySelectorAll("#conform-matrix tr").length,
        };
      });
      // 24 reads of the PM timer over 12 s; its 24-bit counter wraps every 4.687 s (2^24 / 3579545 Hz):
      // two wraps, and the SCI raised at every bit-23 toggle (about every 2.34 s) and lowered on acknowledge.
      expect(seen.series && seen.series.w > 500 && seen.series.h > 20).toBe(true);
      expect(seen.points).toBe(24);
      expect(seen.wraps).toBe(2);
      expect(seen.irqMarks).toBeGreaterThanOrEqual(4);
      expect(seen.matrixRows).toBeGreaterThan(1);
      expect(requests).toEqual([]);
      await page.screenshot({ path: shot, fullPage: true });
    } finally {
      await browser.close();
    }
  }, 60_000);
});
