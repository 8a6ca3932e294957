// The timeline and the list at scale: 10,000 backups over a simulated week
// (seeded by `cargo run -p engram-core --example seed`), a real `engram
// serve` on them and Debian's Chromium. Needs target/debug/engram,
// target/debug/examples/seed and ui/dist.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { engram, startServe, stopServe, launchChromium } from "./serve.mjs";

const seed = join(resolve(import.meta.dirname, "../.."), "target/debug/examples/seed");
const dataDir = join(mkdtempSync(join(tmpdir(), "engram-scale-")), "data");
const DAY = 86_400_000;
let server;
let browser;
let page;
let url;

before(async () => {
  assert.ok(existsSync(engram), `${engram} is missing: run cargo build -p engram-cli`);
  assert.ok(existsSync(seed), `${seed} is missing: run cargo build -p engram-core --example seed`);
  execFileSync(seed, [dataDir, "--backups", "10000", "--days", "7"], { stdio: "inherit" });
  ({ child: server, url } = await startServe(dataDir));
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(url);
  await page.locator("#timeline .bar").first().waitFor();
});

after(async () => {
  await browser?.close();
  await stopServe(server);
  rmSync(resolve(dataDir, ".."), { recursive: true, force: true });
});

/** The API, with the page's token. */
async function api(method, path, body) {
  const u = new URL(url);
  const res = await fetch(`${u.origin}${path}`, {
    method,
    headers: { Authorization: `Bearer ${u.searchParams.get("token")}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

/** Each timeline button's label, and for marks their time (ms). */
const marks = () =>
  page.locator("#timeline .mark").evaluateAll((ms) =>
    ms.map((m) => ({ kind: m.getAttribute("data-kind"), label: m.getAttribute("aria-label"), x: Number(m.getAttribute("data-x")) })),
  );
const timeOf = (label) => Date.parse(`${label.match(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/)[0].replace(" ", "T")}Z`);
const zoomed = () => page.waitForFunction(() => document.getElementById("timeline")?.getAttribute("data-zoomed") === "true");

test("the first view's data is asked once: the page takes the answers its entry asked ahead", async () => {
  await page.waitForFunction(() => performance.getEntriesByName("engram:ready").length > 0);
  const asked = await page.evaluate(() => {
    const ready = performance.getEntriesByName("engram:ready")[0].startTime;
    return performance
      .getEntriesByType("resource")
      .filter((r) => r.startTime < ready && r.name.includes("/api/"))
      .map((r) => new URL(r.name).pathname + new URL(r.name).search);
  });
  const all = (prefix) => asked.filter((a) => a.startsWith(prefix));
  // Asked once each: a second request would mean the views asked other
  // calls than firstload.ts did (its answers unused, the page slower).
  assert.deepEqual(all("/api/timeline"), ["/api/timeline?buckets=300&marks=1500"], asked.join("\n"));
  assert.deepEqual(all("/api/backups?"), ["/api/backups?limit=50"], asked.join("\n"));
  assert.deepEqual(all("/api/status"), ["/api/status"], asked.join("\n"));
  const series = all("/api/metrics/series");
  assert.equal(series.length, 5, asked.join("\n"));
  assert.equal(new Set(series).size, 5, asked.join("\n"));
});

test("10,000 backups over a week: the whole week is on the axis, the initial backup drawn, the rest counted by kind", async () => {
  const all = await api("GET", "/api/backups?limit=1");
  const total = all.total;
  assert.ok(total >= 10_000, `${total} backups`);
  const initial = (await marks()).filter((m) => m.kind === "initial");
  assert.equal(initial.length, 1, "the initial backup is a mark of its own");
  assert.ok(initial[0].x < 1200 * 0.05, `…at the left end of the axis (x = ${initial[0].x} of 1200)`);
  // The bars add up to every backup, split by kind.
  const counted = await page.locator("#timeline .bar").evaluateAll((bars) =>
    bars.map((b) => Number(b.getAttribute("aria-label").split(" ")[0].replace(/,/g, ""))).reduce((a, b) => a + b, 0),
  );
  assert.equal(counted, total, "every backup is in a bar");
  const milestones = (await marks()).filter((m) => m.kind === "breakthrough");
  assert.ok(milestones.length >= 19, `the 19 seeded milestones are marks (${milestones.length})`);
  const note = await page.getByTestId("timeline-note").textContent();
  assert.match(note, /drawn as counts by kind/);
  assert.match(note, new RegExp(total.toLocaleString("en-US")));
  // The axis spans the week: its first and last tick labels are ~7 days apart.
  const ticks = await page.locator("#timeline text").allTextContents();
  assert.equal(ticks[0].length, 10, `dates on a week-long axis: ${ticks}`);
  const span = Date.parse(ticks[ticks.length - 1]) - Date.parse(ticks[0]);
  assert.ok(span >= 6 * DAY && span <= 8 * DAY, `axis spans ${span / DAY} days: ${ticks}`);
});

test("a brush across the timeline zooms it and the charts until each backup is a mark; double-click shows all again", async () => {
  // In view first: the mouse drags only what the window shows (the cards
  // above it grow when an evaluation says when it was made).
  await page.locator("#timeline").scrollIntoViewIfNeeded();
  const box = await page.locator("#timeline").boundingBox();
  // Drag across ~1.5 % of the week (≈ 2.5 h, ≈ 150 backups).
  const x0 = box.x + box.width * 0.5;
  await page.mouse.move(x0, box.y + 20);
  await page.mouse.down();
  await page.mouse.move(x0 + box.width * 0.008, box.y + 20, { steps: 4 });
  await page.mouse.move(x0 + box.width * 0.015, box.y + 20, { steps: 4 });
  await page.mouse.up();
  await zoomed();
  assert.equal(await page.locator("#charts").getAttribute("data-zoomed"), "true", "the charts follow");
  await page.waitForFunction(() => document.querySelectorAll("#timeline .bar").length === 0 && document.querySelectorAll("#timeline .mark").length > 50);
  const shown = await marks();
  const times = shown.map((m) => timeOf(m.label));
  const spread = Math.max(...times) - Math.min(...times);
  assert.ok(spread < 0.03 * 7 * DAY, `the marks are within the brushed range (${spread / 3600_000} h)`);
  assert.match(await page.getByTestId("timeline-note").textContent(), /of [\d,]+ backups are in this range; each is drawn/);
  // Keyboard: arrows move between marks in time order.
  await page.locator("#timeline .mark").first().focus();
  const first = await page.evaluate(() => document.activeElement?.getAttribute("data-id"));
  await page.keyboard.press("ArrowRight");
  const second = await page.evaluate(() => document.activeElement?.getAttribute("data-id"));
  assert.ok(first && second && first !== second, `focus moved from ${first} to ${second}`);
  await page.keyboard.press("Enter");
  await page.getByTestId("preview").filter({ hasText: `#${second}` }).waitFor();
  await page.keyboard.press("Escape");
  await page.locator("#timeline").dblclick({ position: { x: 5, y: 5 } });
  await page.waitForFunction(() => document.getElementById("timeline")?.getAttribute("data-zoomed") === "false");
  await page.locator("#timeline .bar").first().waitFor();
});

test("jump to a date shows that day's backups one by one", async () => {
  const days = await page.locator("#timeline text").allTextContents();
  const day = new Date(Date.parse(days[0]) + 3 * DAY).toISOString().slice(0, 10);
  await page.getByTestId("jump-date").fill(day);
  await page.getByTestId("jump-go").click();
  await zoomed();
  await page.waitForFunction(() => document.querySelectorAll("#timeline .bar").length === 0 && document.querySelectorAll("#timeline .mark").length > 1000);
  const shown = await marks();
  const start = Date.parse(`${day}T00:00:00Z`);
  assert.ok(
    shown.every((m) => timeOf(m.label) >= start && timeOf(m.label) < start + DAY),
    "every mark is on that day",
  );
  // ≈ 10,000 / 7 backups a day, every one of them.
  assert.ok(shown.length > 1300 && shown.length < 1550, `${shown.length} marks`);
  await page.getByTestId("zoom-reset").click();
  await page.locator("#timeline .bar").first().waitFor();
});

test("the list searches labels and milestones, filters pinned backups, and pages without growing", async () => {
  const rows = page.getByTestId("backup-row");
  const total = page.getByTestId("total");
  await page.waitForFunction(() => /of 10,0\d\d/.test(document.querySelector("[data-testid=total]")?.textContent ?? ""));
  assert.equal(await rows.count(), 50);
  await page.getByTestId("page-older").click();
  await page.waitForFunction(() => (document.querySelector("[data-testid=total]")?.textContent ?? "").startsWith("51–100 of"));
  assert.equal(await rows.count(), 50, "a page stays 50 rows");
  await page.getByTestId("page-newer").click();
  await page.waitForFunction(() => (document.querySelector("[data-testid=total]")?.textContent ?? "").startsWith("1–50 of"));
  // Labels: "manual 970" and "manual 9700".
  await page.getByTestId("filter-text").fill("MANUAL 970");
  await page.waitForFunction(() => document.querySelector("[data-testid=total]")?.textContent === "1–2 of 2 matching");
  assert.deepEqual((await rows.locator(".what").allTextContents()).sort(), ["manual 970", "manual 9700"]);
  // Milestones by their rule text.
  await page.getByTestId("filter-text").fill("seeded milestone 5000");
  await page.waitForFunction(() => document.querySelector("[data-testid=total]")?.textContent === "1–1 of 1 matching");
  assert.equal(await rows.first().getAttribute("data-kind"), "breakthrough");
  await page.getByTestId("filter-text").fill("");
  await page.getByTestId("filter-pinned").check();
  await page.waitForFunction(() => document.querySelector("[data-testid=total]")?.textContent === "1–10 of 10 matching");
  assert.equal(await rows.locator("[data-testid=pinned-icon]").count(), 10);
  await page.getByTestId("filter-pinned").uncheck();
  await page.waitForFunction(() => /^1–50 of 10,0\d\d$/.test(document.querySelector("[data-testid=total]")?.textContent ?? ""));
  assert.match(await total.textContent(), /^1–50 of/);
});

test("the storage view shows the database size, deduplication, backups per kind and growth", async () => {
  await page.getByTestId("storage-panel").locator("summary").click();
  const body = page.getByTestId("storage-body");
  await body.getByTestId("storage-kinds").waitFor();
  const text = await body.textContent();
  assert.match(text, /Database [\d.]+ [KMG]?B/);
  assert.match(text, /10,0\d\d backups hold/);
  assert.match(text, /deduplication \d+(\.\d)?×/);
  const kinds = await body.locator("[data-testid=storage-kinds] tbody tr").allTextContents();
  assert.ok(kinds.some((k) => k.startsWith("periodic")) && kinds.some((k) => k.startsWith("initial")), `${kinds}`);
  assert.equal(await body.locator("[data-testid=storage-growth] canvas").count(), 1, "the growth chart is drawn");
});

test("retention never deletes the backup the user has selected", async () => {
  // Open an old periodic backup: the second page's last row.
  await page.getByTestId("page-older").click();
  await page.waitForFunction(() => (document.querySelector("[data-testid=total]")?.textContent ?? "").startsWith("51–100 of"));
  const row = page.locator("[data-testid=backup-row][data-kind=periodic]").last();
  const id = Number(await row.getAttribute("data-id"));
  await row.click();
  await page.getByTestId("preview").filter({ hasText: `#${id}` }).waitFor();
  const before = (await api("GET", "/api/backups?limit=1")).total;
  // Keep one periodic backup only, and take one every second: retention
  // runs after each and rolls every other periodic backup off.
  await api("PUT", "/api/settings", { retention: { keep_last_periodic: 1, keep_hourly: 0, keep_daily: 0, keep_weekly: 0 }, backup_every_secs: 1 });
  const deadline = Date.now() + 30_000;
  let after = before;
  while (after > 2000 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    after = (await api("GET", "/api/backups?limit=1")).total;
  }
  assert.ok(after < 2000, `retention ran: ${before} → ${after} backups`);
  const kept = await api("GET", `/api/backups/${id}`);
  assert.equal(kept.id, id, "the selected backup is still there");
  const outlook = await api("GET", "/api/retention");
  const why = outlook.find((o) => o.id === id);
  assert.ok(why.kept_because.some((r) => r.includes("open in the UI")), JSON.stringify(why));
  // The preview still works on it.
  await page.getByTestId("preview").getByTestId("export").waitFor();
  assert.equal(await page.getByTestId("preview").filter({ hasText: `#${id}` }).count(), 1);
});
