// The browser benchmark (BENCHMARKS.md, "UI at scale"): Debian's Chromium
// against a real `engram serve` on seeded data directories — 1,000, 10,000
// and 100,000 backups over a simulated week (metric history: a few
// seconds), and 1,000 backups with a year of metric history.
//
// For each, RUNS fresh page loads (a new browser context each) measure:
// - first meaningful render: navigation start → `engram:ready` (cards,
//   charts with their history, the timeline and the list are drawn);
// - timeline: the `/api/timeline` request and `engram:timeline-render`;
// - charts: the `/api/metrics/series` requests (slowest) and
//   `engram:charts-render`;
// - page memory: the JS heap in use after a forced garbage collection
//   (CDP `HeapProfiler.collectGarbage`, `Performance.getMetrics`), and
//   the DOM node count.
// Medians are printed as a Markdown table.
//
// Run: `scripts/bench --ui` (builds what it needs; release `engram` and
// seeding tool), or with target/debug/engram, target/debug/examples/seed
// and ui/dist built: `node ui/bench/browser.bench.mjs [RUNS]`
// ($ENGRAM_BIN and $SEED_BIN choose other builds, $UI_DIR another UI).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { startServe, stopServe } from "../e2e/serve.mjs";

const root = resolve(import.meta.dirname, "../..");
const seed = process.env.SEED_BIN ?? join(root, "target/debug/examples/seed");
const RUNS = Number(process.argv[2] ?? 5);
// $BENCH_ONLY: only the cases whose name starts with it ("100,000").
const ONLY = process.env.BENCH_ONLY ?? "";
const CASES = [
  { name: "1,000 backups", backups: 1000, days: 7, historyDays: 0 },
  { name: "10,000 backups", backups: 10_000, days: 7, historyDays: 0 },
  { name: "100,000 backups", backups: 100_000, days: 7, historyDays: 0 },
  { name: "1,000 backups + a year of metric history", backups: 1000, days: 365, historyDays: 365 },
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function measure(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // Told of `engram:ready` by a two-line observer of the page's own, not by
  // polling with Playwright's injected script: that script is ~20 ms of the
  // page's main thread, and polling runs at every frame of the load.
  await page.addInitScript(() => {
    new PerformanceObserver((l) => {
      if (l.getEntriesByName("engram:ready").length > 0) console.debug("engram:ready");
    }).observe({ type: "mark" });
  });
  const ready = page.waitForEvent("console", { predicate: (m) => m.text() === "engram:ready", timeout: 120_000 });
  await page.goto(url);
  await ready;
  const timing = await page.evaluate(() => {
    const one = (name) => performance.getEntriesByName(name).at(-1)?.duration ?? NaN;
    const requests = (part) => performance.getEntriesByType("resource").filter((r) => r.name.includes(part));
    return {
      ready: performance.getEntriesByName("engram:ready")[0].startTime,
      timelineRequest: Math.max(...requests("/api/timeline").map((r) => r.duration)),
      timelineRender: one("engram:timeline-render"),
      seriesRequest: Math.max(...requests("/api/metrics/series").map((r) => r.duration)),
      chartsRender: one("engram:charts-render"),
      dom: document.getElementsByTagName("*").length,
      marks: document.querySelectorAll("#timeline .mark").length,
      bars: document.querySelectorAll("#timeline .bar").length,
    };
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send("HeapProfiler.enable");
  await cdp.send("HeapProfiler.collectGarbage");
  await cdp.send("Performance.enable");
  const { metrics } = await cdp.send("Performance.getMetrics");
  const heap = metrics.find((m) => m.name === "JSHeapUsedSize").value / 2 ** 20;
  await context.close();
  return { ...timing, heap };
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const rows = [];
for (const c of CASES.filter((k) => k.name.startsWith(ONLY))) {
  const dir = join(mkdtempSync(join(tmpdir(), "engram-bench-")), "data");
  const t0 = Date.now();
  execFileSync(seed, [dir, "--backups", String(c.backups), "--days", String(c.days), "--history-days", String(c.historyDays)], { stdio: "inherit" });
  const seeded = (Date.now() - t0) / 1000;
  // The defaults a user gets; $UI_DIR: a UI build of one's own (A/B runs of
  // two UI builds against one server binary).
  const { child, url } = await startServe(dir, process.env.UI_DIR ? ["--ui-dir", process.env.UI_DIR] : []);
  try {
    await measure(browser, url); // warm-up: the server's first reads
    const runs = [];
    for (let i = 0; i < RUNS; i += 1) runs.push(await measure(browser, url));
    const m = (k) => median(runs.map((r) => r[k]));
    const readies = runs.map((r) => r.ready);
    rows.push({ name: c.name, seeded, ready: m("ready"), readyMin: Math.min(...readies), readyMax: Math.max(...readies), timelineRequest: m("timelineRequest"), timelineRender: m("timelineRender"), seriesRequest: m("seriesRequest"), chartsRender: m("chartsRender"), heap: m("heap"), dom: m("dom"), marks: m("marks"), bars: m("bars") });
    console.error(JSON.stringify(rows.at(-1)));
  } finally {
    await stopServe(child);
    rmSync(resolve(dir, ".."), { recursive: true, force: true });
  }
}
const version = browser.version();
await browser.close();
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "—");
console.log(`\nMedians of ${RUNS} page loads each (Chromium ${version}; ${process.env.ENGRAM_BIN ?? "debug engram"}):\n`);
console.log("| data | first render, median (min–max) ms | timeline request / render (ms) | slowest series request / charts render (ms) | JS heap after GC (MB) | DOM nodes | marks / bars |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.name} | ${f(r.ready)} (${f(r.readyMin)}–${f(r.readyMax)}) | ${f(r.timelineRequest, 1)} / ${f(r.timelineRender, 1)} | ${f(r.seriesRequest, 1)} / ${f(r.chartsRender, 1)} | ${f(r.heap, 1)} | ${f(r.dom)} | ${f(r.marks)} / ${f(r.bars)} |`);
}
