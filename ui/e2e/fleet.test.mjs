// The Fleet panel in Chromium against two real `engram serve` processes
// (two hosts with their own data directories) and a real PostgreSQL
// (e2e/pg.mjs): joining from the panel (a wrong password said in the form),
// both hosts listed with their health, the host switcher and the
// all-hosts timeline by keyboard, a backup made on the other host restored
// here from the shared replica, one metric's curves from both hosts, a
// host that stopped syncing marked stale; axe-core finds nothing serious.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engram, startServe, stopServe, launchChromium, seriousA11yFindings } from "./serve.mjs";
import { startCluster } from "./pg.mjs";

const tmp = mkdtempSync(join(tmpdir(), "engram-e2e-fleet-"));
const dirA = join(tmp, "gpu-a");
const dirB = join(tmp, "laptop-b");
const repo = join(tmp, "offsite");
let cluster;
let serverA;
let serverB;
let browser;
let page;

const cli = (dir, args) => execFileSync(engram, [...args, "--data-dir", dir]).toString();
const cliJson = (dir, args) => JSON.parse(cli(dir, [...args, "--json"]));

before(async () => {
  cluster = await startCluster();
  // Host A: running, in the fleet, with a replica and a labelled backup.
  serverA = (await startServe(dirA)).child;
  cli(dirA, ["fleet", "join", cluster.url(), "--name", "gpu-a"]);
  cli(dirA, ["replicas", "add", "local", repo]);
  cli(dirA, ["backups", "create", "--label", "made on gpu-a"]);
  // Host B: the same replica (A's key copied), not in the fleet yet.
  mkdirSync(dirB, { recursive: true });
  copyFileSync(join(dirA, "replica.key"), join(dirB, "replica.key"));
  cli(dirB, ["replicas", "add", "local", repo]);
  const started = await startServe(dirB);
  serverB = started.child;
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  await page.goto(started.url);
});

after(async () => {
  await browser?.close();
  await stopServe(serverA);
  await stopServe(serverB);
  cluster?.stop();
  rmSync(tmp, { recursive: true, force: true });
});


test("two hosts in one fleet: join, hosts, switcher, timeline by keyboard, restore across hosts, curves, stale", async () => {
  const panel = page.getByTestId("fleet-panel");
  await panel.locator("summary").click();
  await page.getByTestId("fleet-join").waitFor();
  // Checked before asking, then refused by PostgreSQL: said in the form.
  await page.getByTestId("fleet-url").fill("mysql://x@y/z");
  await page.getByTestId("fleet-join-button").click();
  await page.getByTestId("fleet-join-error").filter({ hasText: "PostgreSQL URL" }).waitFor();
  await page.getByTestId("fleet-url").fill(cluster.url("wrong-password"));
  await page.getByTestId("fleet-join-button").click();
  await page.getByTestId("fleet-join-error").filter({ hasText: "fleet_refused" }).waitFor({ timeout: 30_000 });
  assert.ok(!(await page.getByTestId("fleet-join-error").textContent()).includes("wrong-password"), "the password is never shown");
  await page.getByTestId("fleet-url").fill(cluster.url());
  await page.getByTestId("fleet-name").fill("laptop-b");
  await page.getByTestId("fleet-join-button").click();
  await page.getByTestId("fleet-summary").filter({ hasText: /Up to date|Sending|Connecting/ }).waitFor({ timeout: 30_000 });
  assert.ok((await page.getByTestId("fleet-status").textContent()).includes("***"), "the URL is shown without its password");
  // Both hosts, live.
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=fleet-host]").length === 2, undefined, { timeout: 30_000 });
  assert.match(await page.getByTestId("fleet-hosts").textContent(), /gpu-a[\s\S]*laptop-b \(this host\)/);
  assert.deepEqual(await seriousA11yFindings(page), [], "the Fleet panel");
  // A's backup, once a replica holds it, can be restored here.
  const idA = cliJson(dirA, ["fleet", "backups", "--host", "gpu-a"]).backups.find((b) => b.label === "made on gpu-a").id;
  const hostA = cliJson(dirA, ["fleet", "status"]).host_id;
  await page.getByTestId("fleet-host-switcher").selectOption(hostA);
  const row = page.locator(`[data-testid=fleet-backup][data-host="${hostA}"][data-id="${idA}"]`);
  await row.waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=fleet-backup]")].every((r) => r.textContent.includes("gpu-a")));
  // The timeline strip by keyboard: focus a bucket, Enter zooms, Escape zooms out.
  const bucket = page.getByTestId("fleet-bucket").first();
  await bucket.focus();
  await page.keyboard.press("Enter");
  await page.getByTestId("fleet-zoom-out").waitFor();
  await page.getByTestId("fleet-bucket").first().focus();
  await page.keyboard.press("Escape");
  await page.getByTestId("fleet-zoom-out").waitFor({ state: "hidden" });
  // Wait until the replica copy is known to the fleet (the button enables).
  const restore = () => page.locator(`[data-testid=fleet-backup][data-host="${hostA}"][data-id="${idA}"] [data-testid=fleet-restore]`);
  for (let i = 0; i < 120 && (await restore().isDisabled()); i++) {
    await page.getByTestId("fleet-host-switcher").selectOption(hostA);
    await page.waitForTimeout(500);
  }
  assert.ok(!(await restore().isDisabled()), "a backup a replica holds can be restored here");
  const before = cliJson(dirB, ["backups", "list"]).length;
  await restore().click();
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("toast").filter({ hasText: new RegExp(`Restored gpu-a's backup #${idA} here as backup #\\d+`) }).waitFor({ timeout: 60_000 });
  const listB = cliJson(dirB, ["backups", "list"]);
  assert.ok(listB.length >= before + 2, "an imported backup and a pre-restore backup");
  assert.ok(listB.some((b) => b.kind === "imported" && (b.label ?? "").includes("gpu-a")), "the imported backup names where it came from");
  // One metric on both hosts, one curve each.
  await page.getByTestId("fleet-curve-engine").fill("zap");
  await page.getByTestId("fleet-curve-key").fill("plans_generated");
  await page.getByTestId("fleet-curve-show").click();
  await page.getByTestId("fleet-chart-plot").waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=fleet-chart-plot] .u-legend .u-series").length === 3, undefined, { timeout: 30_000 });
  // Host A stops; once its last sync is old it is shown stale (its age set
  // back in PostgreSQL: the minute is not waited for).
  await stopServe(serverA);
  cluster.psql(`UPDATE hosts SET last_sync_at = 0 WHERE host_id = '${hostA}'`);
  await page.locator(`[data-testid=fleet-host][data-host="${hostA}"] [data-testid=fleet-host-health]`).filter({ hasText: "stale" }).waitFor({ timeout: 30_000 });
  assert.deepEqual(await seriousA11yFindings(page), [], "the Fleet panel with a stale host, the backups and the chart");
  // Leaving: its rows leave the catalog, the join form is back.
  await page.getByTestId("fleet-leave").click();
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("fleet-join").waitFor();
  const hosts = cluster.psql("SELECT string_agg(name, ',') FROM hosts");
  assert.equal(hosts, "gpu-a", "only the host that is still a member is in the catalog");
});
