// Choosing what to restore, in Chromium against a real `engram serve`:
// an evaluation not made yet reads "not evaluated yet" on its card (never
// 0.0 %); "Check this backup" drills the selected backup and shows each
// figure beside what the backup reported; two backups picked by keyboard
// (Enter on one row, Shift+Enter on another) are compared in the
// preview's place — metrics, what changed inside the states, the greedy
// policy as two maps — and axe-core finds nothing serious there.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engram, startServe, stopServe, launchChromium, seriousA11yFindings } from "./serve.mjs";

const tmp = mkdtempSync(join(tmpdir(), "engram-e2e-compare-"));
const dir = join(tmp, "data");
let server;
let browser;
let page;

const cli = (args) => execFileSync(engram, [...args, "--data-dir", dir]).toString();
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

before(async () => {
  // A slow pace: ZAP's first held-out evaluation (at 2,000 plans) is
  // minutes away, so its figure is not there yet.
  const started = await startServe(dir, ["--pace", "50ms", "--autosave", "200ms"]);
  server = started.child;
  cli(["backups", "create", "--label", "cut one"]);
  await sleep(2500);
  cli(["backups", "create", "--label", "cut two"]);
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  await page.goto(started.url);
});

after(async () => {
  await browser?.close();
  await stopServe(server);
  rmSync(tmp, { recursive: true, force: true });
});


test("not evaluated yet, a check of a backup, and two backups compared by keyboard", async () => {
  // The card says the held-out figure is not measured yet.
  const heldout = page.getByTestId("metric-zap-heldout_vs_optimal");
  await heldout.filter({ hasText: "not evaluated yet" }).waitFor();
  assert.ok(!(await heldout.textContent()).includes("0.0 %"));
  // Its chart draws nothing and says why.
  const chart = page.getByTestId("chart-zap-heldout_vs_optimal");
  assert.equal(await chart.getAttribute("data-empty"), "not evaluated yet");
  assert.equal(await chart.locator("header b").textContent(), "not evaluated yet");
  // One that is evaluated says at which step and how long ago.
  await page.getByTestId("metric-mdp_es-policy_quality").locator(".measured").filter({ hasText: /^at [\d,]+ episodes, \d+ (s|min) ago$/ }).waitFor();

  // Select "second" by keyboard and check it.
  const rows = page.getByTestId("backup-row");
  const second = rows.filter({ hasText: "cut two" });
  const first = rows.filter({ hasText: "cut one" });
  await second.focus();
  await page.keyboard.press("Enter");
  await page.getByTestId("drill-run").waitFor();
  await page.getByTestId("drill-results").filter({ hasText: "Not checked yet" }).waitFor();
  await page.getByTestId("drill-run").click();
  const q = page.locator('[data-testid="drill-result"][data-unit="mdp_es"]');
  await q.waitFor({ timeout: 30_000 });
  const qText = await q.textContent();
  assert.match(qText, /mdp_es: drilled/);
  assert.match(qText, /Q policy vs optimum: [0-9.]+ % \(the backup reported [0-9.]+ %\)/);
  await page.locator('[data-testid="drill-result"][data-unit="zap"]').filter({ hasText: "Held-out success" }).waitFor();
  // Kept with the backup: the CLI lists the same drill.
  const secondId = Number(await second.getAttribute("data-id"));
  const kept = JSON.parse(cli(["backups", "drills", String(secondId), "--json"]));
  assert.deepEqual(kept.results.map((r) => r.unit).sort(), ["mdp_es", "zap"]);

  // Shift+Enter on the other row: the comparison takes the preview's place.
  await first.focus();
  await page.keyboard.press("Shift+Enter");
  const view = page.getByTestId("compare");
  await view.waitFor();
  const firstId = Number(await first.getAttribute("data-id"));
  assert.equal(await view.locator("h3 span").textContent(), `Backup #${secondId} → #${firstId}`);
  await page.getByTestId("compare-metrics-zap").waitFor();
  const inside = page.getByTestId("inside-mdp_es");
  await inside.filter({ hasText: "Q-table entries changed:" }).waitFor();
  await page.getByTestId("arrays-mdp_es").locator('tr[data-array="q"]').waitFor();
  // The greedy policy of each, as two maps of the same grid.
  const before = page.getByTestId("policy-from").locator("td");
  const afterCells = page.getByTestId("policy-to").locator("td");
  assert.equal(await before.count(), await afterCells.count());
  assert.ok((await before.count()) >= 16, "a grid world's cells");
  // The selection is still "second": the other row was only compared.
  assert.equal(await second.getAttribute("aria-selected"), "true");
  assert.deepEqual(await seriousA11yFindings(page), []);
  // Closing it brings the preview back, focus on its close button first.
  await page.getByTestId("compare-close").press("Enter");
  await page.getByTestId("drill-run").waitFor();
  await view.waitFor({ state: "detached" });
  // The same backup against the live state as last saved.
  await page.getByTestId("compare-live").click();
  await view.locator("h3 span").filter({ hasText: `Backup #${secondId} → the live state` }).waitFor();
  await page.getByTestId("inside-zap").waitFor();
  await page.getByTestId("compare-close").click();
  await view.waitFor({ state: "detached" });

  // One metric across the backups: a column in the list, a sparkline, and
  // where it fell (plans only grow: never below its first value).
  const line = JSON.parse(cli(["backups", "metric", "--metric", "zap.plans_generated", "--json"]));
  await page.getByTestId("follow").locator("summary").click();
  await page.getByTestId("follow-metric").selectOption("zap.plans_generated");
  await page.getByTestId("follow-below").fill("1");
  await page.getByTestId("follow-go").click();
  await page.getByTestId("follow-result").filter({ hasText: "never fell below 1" }).waitFor();
  assert.equal(await page.getByTestId("follow-col").textContent(), "Plans");
  await page.getByTestId("follow-spark").locator("polyline").first().waitFor({ state: "attached" });
  // ...and over the timeline strip, on its time axis.
  const overTimeline = page.locator("#timeline [data-testid=timeline-follow] polyline");
  await overTimeline.first().waitFor({ state: "attached" });
  assert.ok((await overTimeline.first().getAttribute("points")).split(" ").length >= 2, "a line, not a point");
  const cells = await rows.evaluateAll((trs) => trs.map((tr) => [Number(tr.dataset.id), tr.querySelector("[data-testid=follow-value]")?.textContent]));
  for (const b of line.backups) {
    const cell = cells.find(([id]) => id === b.id);
    if (cell) assert.equal(cell[1], b.value.toLocaleString("en-US"), `backup ${b.id}`);
  }
  assert.ok(cells.some(([, text]) => text && text !== "—"), "values in the column");
  assert.deepEqual(await seriousA11yFindings(page), []);

  // A restore of "cut one" leaves "cut two" on another line: the column
  // still shows its value, marked, as the CLI lists it.
  cli(["backups", "restore", String(firstId)]);
  const every = JSON.parse(cli(["backups", "metric", "--metric", "zap.plans_generated", "--all-lines", "--json"]));
  const off = every.elsewhere.find((b) => b.id === secondId);
  assert.ok(off, "cut two is on the other line");
  assert.ok(every.backups.some((b) => b.id === firstId), "cut one is on the line");
  await page.getByTestId("follow-go").click();
  const marked = second.locator('[data-testid=follow-value][data-line="other"]');
  await marked.filter({ hasText: `${off.value.toLocaleString("en-US")} · other line` }).waitFor();
  await page.getByTestId("follow-result").filter({ hasText: "more on other lines" }).waitFor();
  assert.equal(await first.locator('[data-testid=follow-value][data-line="other"]').count(), 0);
});
