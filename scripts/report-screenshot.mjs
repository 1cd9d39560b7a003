// Regenerates the README screenshot (reports/report.png) from a report page:
//   npx hvsim conform --json reports/conform.json      (model, qtest:qemu, hv-daemon:kvp, hv-daemon:vss)
//   npx hvsim bench --json reports/bench.json
//   npx hvsim report --out reports/report.html
//   node scripts/report-screenshot.mjs [reports/report.html] [reports/report.png]
// Drives Debian's Chromium through playwright-core (downloads no browser).
import { chromium } from "playwright-core";
import { resolve } from "node:path";

const [html = "reports/report.html", png = "reports/report.png"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.HVSIM_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1160, height: 1400 } });
  await page.goto("file://" + resolve(html));
  await page.screenshot({ path: resolve(png), fullPage: true });
  process.stdout.write(`wrote ${png}\n`);
} finally {
  await browser.close();
}
