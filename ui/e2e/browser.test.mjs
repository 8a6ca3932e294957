// Browser end-to-end: Debian's Chromium, driven by playwright-core, against a
// real `engram serve` on a temporary data directory.
// Needs target/debug/engram (built by `cargo test --workspace`) and ui/dist.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engram, startServe, stopServe, launchChromium, seriousA11yFindings } from "./serve.mjs";

const dataDir = mkdtempSync(join(tmpdir(), "engram-e2e-"));
let server;
let browser;
let page;
let url;

/** Starts `engram serve` on the data directory; resolves to the URL it prints. */
async function startServer() {
  const started = await startServe(dataDir);
  server = started.child;
  return started.url;
}

before(async () => {
  assert.ok(existsSync(engram), `${engram} is missing: run cargo build -p engram-cli`);
  url = await startServer();
  browser = await launchChromium();
  page = await (await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 1000 } })).newPage();
  await page.goto(url);
});

after(async () => {
  await browser?.close();
  await stopServe(server); // its final save is done before the directory goes
  rmSync(dataDir, { recursive: true, force: true });
});

const plans = async () => Number((await page.locator("[data-testid=metric-zap-plans_generated]").textContent()).replace(/,/g, ""));
const rows = () => page.locator("[data-testid=backup-row]");

test("the dashboard's metrics change over time, driven by events", async () => {
  await page.waitForFunction(() => /\d/.test(document.querySelector("[data-testid=metric-zap-plans_generated]")?.textContent ?? ""));
  const first = await plans();
  await page.waitForTimeout(1200);
  const later = await plans();
  assert.ok(later > first, `plans went from ${first} to ${later}`);
  assert.equal(await page.locator("[data-testid=live]").textContent(), "running");
});

test("Back up now adds a manual backup to the timeline and the list", async () => {
  await rows().first().waitFor();
  const before = await rows().count();
  await page.getByRole("button", { name: "Back up now" }).click();
  await page.locator("[data-testid=backup-row][data-kind=manual]").first().waitFor();
  assert.ok((await rows().count()) > before);
  await page.waitForFunction((n) => document.querySelectorAll("#timeline .mark").length >= n, before + 1);
});

test("restoring adds a pre-restore backup and sets the metrics back", async () => {
  await page.waitForTimeout(1500); // let the engines move past the manual backup
  await page.locator("[data-testid=backup-row][data-kind=manual]").first().click();
  const beforeRestore = await plans();
  await page.getByTestId("restore").click();
  assert.match(await page.locator("#confirm-text").textContent(), /pre-restore backup/);
  assert.match(await page.getByTestId("restore-summary").textContent(), /It goes back .*[\d,]+ ZAP plans; the backup was taken/);
  await page.getByTestId("confirm-ok").click();
  await page.locator("[data-testid=backup-row][data-kind=pre-restore]").first().waitFor();
  // The result says where the state before went, with an Undo.
  await page.getByTestId("toast").filter({ hasText: "The state before is kept as backup #" }).waitFor();
  await page.getByTestId("toast-action").first().waitFor();
  await page.waitForTimeout(300);
  const afterRestore = await plans();
  assert.ok(afterRestore < beforeRestore, `plans ${beforeRestore} -> ${afterRestore} after restore`);
  // The charts draw the restored line as a new branch, marked, not as a drop.
  const chart = page.locator("[data-testid=chart-orchestrator-cross_system_calls]");
  await chart.locator(".mark-line.restore").first().waitFor({ state: "attached" });
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart-orchestrator-cross_system_calls]")?.dataset.lines) >= 2);
  // Undo puts the engines back where they were before the restore.
  const pres = await page.locator("[data-testid=backup-row][data-kind=pre-restore]").count();
  await page.getByTestId("toast-action").first().click();
  await page.getByTestId("toast").filter({ hasText: "Undone" }).waitFor();
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=backup-row][data-kind=pre-restore]").length > n, pres);
  assert.ok((await plans()) >= beforeRestore, "undone: at least the progress before the restore");
});

test("charts: hovering reads a value with its time; a drag zooms every chart and the timeline; double-click resets", async () => {
  const chart = page.locator("[data-testid=chart-orchestrator-cross_system_calls]");
  const over = chart.locator(".u-over");
  // At the top of the window, clear of the toasts at the bottom.
  await chart.evaluate((e) => e.scrollIntoView({ block: "start" }));
  const box = await over.boundingBox();
  const legend = chart.locator(".u-legend");
  // A time and a value under the cursor (a point on a restore's break in
  // the line has a time but no value: move on a little).
  const shown = async () => {
    const v = await legend.locator(".u-value").allTextContents();
    return /\d/.test(v[0] ?? "") && v.slice(1).some((x) => /\d/.test(x));
  };
  for (let i = 0; i < 30 && !(await shown()); i++) {
    await page.mouse.move(box.x + box.width * (0.5 + i * 0.015), box.y + box.height / 2, { steps: 3 });
    await page.waitForTimeout(100);
  }
  assert.ok(await shown(), "hovering shows the time and the value under the cursor");
  // Both legends read in one turn of the page: the charts are live, and a
  // redraw between two reads moves the instant under a still cursor.
  const [values, other] = await page.evaluate(() => {
    const read = (id) => [...document.querySelectorAll(`[data-testid=${id}] .u-legend .u-value`)].map((e) => e.textContent ?? "");
    return [read("chart-orchestrator-cross_system_calls"), read("chart-zap-success_rate_last_100")[0]];
  });
  assert.match(values[0], /UTC/, `the time under the cursor: ${values}`);
  assert.ok(values.slice(1).some((v) => /\d/.test(v)), `a value under the cursor: ${values}`);
  // The crosshair is synced: another chart shows a value for the same instant.
  assert.equal(other, values[0], "the same instant in every chart");
  // Drag to zoom: every chart and the timeline follow.
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction(() => document.getElementById("charts")?.dataset.zoomed === "true" && document.getElementById("timeline")?.dataset.zoomed === "true");
  await over.dblclick();
  await page.waitForFunction(() => document.getElementById("charts")?.dataset.zoomed === "false" && document.getElementById("timeline")?.dataset.zoomed === "false");
  // Smoothing and the log scale redraw without losing the data.
  await page.getByTestId("smoothing").fill("0.9");
  await page.getByTestId("log-scale").check();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=chart-orchestrator-cross_system_calls]")?.dataset.lines) >= 1);
  assert.equal(await page.locator("[data-testid=chart-orchestrator-cross_system_calls] canvas").count(), 1);
  await page.getByTestId("log-scale").uncheck();
  await page.getByTestId("smoothing").fill("0");
});

test("an export produces a file that `engram backups import` accepts", async () => {
  await page.locator("[data-testid=backup-row][data-kind=manual]").first().click();
  await page.getByTestId("export").click();
  await page.getByTestId("export-format").selectOption("binary");
  const download = page.waitForEvent("download");
  await page.getByTestId("confirm-ok").click();
  const file = join(dataDir, "exported.engram");
  await (await download).saveAs(file);
  const other = mkdtempSync(join(tmpdir(), "engram-e2e-other-"));
  try {
    execFileSync(engram, ["run", "--for", "300ms", "--data-dir", other]);
    const out = execFileSync(engram, ["backups", "import", file, "--json", "--data-dir", other]).toString();
    assert.equal(JSON.parse(out).kind, "imported");
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test("importing a corrupt file shows an error and changes nothing", async () => {
  const total = await page.getByTestId("total").textContent();
  const good = readFileSync(join(dataDir, "exported.engram"));
  good[Math.floor(good.length / 2)] ^= 0x55;
  const bad = join(dataDir, "corrupt.engram");
  writeFileSync(bad, good);
  await page.setInputFiles("[data-testid=import-file]", bad);
  const banner = page.getByTestId("banner");
  await banner.waitFor({ state: "visible" });
  assert.match(await banner.textContent(), /refused/);
  assert.match(await banner.textContent(), /invalid_snapshot/);
  const list = JSON.parse(execFileSync(engram, ["backups", "list", "--json", "--data-dir", dataDir]).toString());
  assert.equal(list.filter((b) => b.kind === "imported").length, 0);
  assert.equal(await page.getByTestId("total").textContent(), total);
});

test("the settings form, built from the core's descriptor, saves and applies a change", async () => {
  await page.getByTestId("open-settings").click();
  const field = page.locator("#settings-form input[name='retention.keep_daily']");
  await field.waitFor();
  const token = new URL(url).searchParams.get("token");
  const auth = { headers: { Authorization: `Bearer ${token}` } };
  const schema = await (await fetch(new URL("/api/settings/schema", url), auth)).json();
  assert.equal(await page.locator("#settings-form input").count(), schema.length, "one input per described setting");
  assert.equal(await field.getAttribute("max"), "1000000");
  await field.fill("9");
  await page.getByTestId("settings-save").click();
  await page.getByTestId("toast").filter({ hasText: "Settings saved" }).waitFor();
  assert.equal(await page.getByTestId("settings").isVisible(), false, "the dialog closed after the save");
  const saved = await (await fetch(new URL("/api/settings", url), auth)).json();
  assert.equal(saved.retention.keep_daily, 9);
});

test("Back up now takes a label; a 200-character label never widens the page; pins are drawn, not emoji", async () => {
  const label = "a".repeat(60) + " " + "b".repeat(139);
  assert.equal(label.length, 200);
  await page.getByTestId("backup-label").fill(label);
  await page.getByTestId("backup-label").press("Enter");
  const row = page.locator("[data-testid=backup-row][data-kind=manual]").filter({ hasText: "b".repeat(40) }).first();
  await row.waitFor();
  assert.equal(await page.getByTestId("backup-label").inputValue(), "", "the field is cleared after the backup");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the window`);
  // Toasts stack: a second message does not wipe the first.
  await page.getByRole("button", { name: "Back up now" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#toast .toast-item").length >= 2);
  // Pin it from the preview: the list shows an SVG named "pinned".
  await row.click();
  await page.getByTestId("preview").getByRole("button", { name: "Pin" }).click();
  await page.getByTestId("pinned-icon").first().waitFor();
  assert.equal(await page.getByTestId("pinned-icon").first().getAttribute("aria-label"), "pinned");
});

test("keyboard only: open a backup from the list or the timeline, restore it; Import is a button", async () => {
  const active = () => page.evaluate(() => document.activeElement?.getAttribute("data-testid") ?? document.activeElement?.tagName);
  const tabTo = async (testid) => {
    for (let i = 0; i < 60 && (await active()) !== testid; i++) await page.keyboard.press("Tab");
    assert.equal(await active(), testid, `Tab reaches ${testid}`);
  };
  // The timeline's marks are buttons: arrows move along the axis, Enter opens one.
  await page.locator("#timeline .mark").first().focus();
  await page.keyboard.press("ArrowRight");
  const markId = await page.evaluate(() => document.activeElement?.getAttribute("data-id"));
  assert.ok(markId, "an arrow moves to the next mark");
  await page.keyboard.press("Enter");
  await page.getByTestId("preview").filter({ hasText: `Backup #${markId}` }).waitFor();
  // The list: focus a row, arrow down, Enter.
  await rows().first().focus();
  await page.keyboard.press("ArrowDown");
  const id = await page.evaluate(() => document.activeElement?.getAttribute("data-id"));
  await page.keyboard.press("Enter");
  await page.getByTestId("preview").filter({ hasText: `Backup #${id}` }).waitFor();
  const before = await page.locator("[data-testid=backup-row][data-kind=pre-restore]").count();
  await tabTo("restore");
  await page.keyboard.press("Enter");
  await page.getByTestId("confirm").waitFor();
  await tabTo("confirm-ok");
  await page.keyboard.press("Enter");
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=backup-row][data-kind=pre-restore]").length > n, before);
  assert.equal(await page.getByTestId("import-button").evaluate((e) => e.tagName), "BUTTON");
});

test("small windows: at 800×560 and 420 px nothing overflows sideways and the preview is in view when open", async () => {
  for (const viewport of [{ width: 800, height: 560 }, { width: 420, height: 800 }]) {
    const small = await (await browser.newContext({ viewport })).newPage();
    await small.goto(url);
    await small.locator("[data-testid=backup-row]").first().waitFor();
    const overflow = () => small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok((await overflow()) <= 0, `${viewport.width}px: ${await overflow()} px of horizontal overflow`);
    // The timeline is drawn at its own width (a fixed width stretched
    // squashed its marks and labels), and a backup's label keeps room.
    // (Once the layout settles: a scrollbar appearing narrows it, and the
    // timeline follows at the next frame.)
    await small.waitForFunction(() => {
      const e = document.querySelector("#timeline");
      return e !== null && Number(e.getAttribute("viewBox")?.split(" ")[2]) === Math.round(e.getBoundingClientRect().width);
    }, null, { timeout: 5_000 });
    const label = await small.locator("[data-testid=backup-row] td.what").first().evaluate((e) => e.getBoundingClientRect().width);
    assert.ok(label >= 100, `${viewport.width}px: the label column is ${label} px wide`);
    await small.locator("[data-testid=backup-row]").last().click();
    const inView = await small.getByTestId("preview").evaluate((e) => {
      const r = e.getBoundingClientRect();
      return r.top < window.innerHeight - 100 && r.bottom > 100 && getComputedStyle(e).display !== "none";
    });
    assert.ok(inView, `${viewport.width}×${viewport.height}: the preview is in view`);
    assert.ok((await small.getByTestId("restore").boundingBox()) !== null, "its actions are reachable");
    assert.ok((await overflow()) <= 0, `${viewport.width}px with the preview open`);
    await small.keyboard.press("Escape");
    await small.getByTestId("preview-close").waitFor({ state: "detached" });
    await small.context().close();
  }
});


test("axe-core finds nothing serious on the page, the preview and the dialogs, light and dark", async () => {
  for (const colorScheme of ["light", "dark"]) {
    const p = await (await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme })).newPage();
    await p.goto(url);
    await p.locator("[data-testid=backup-row]").first().click();
    await p.getByTestId("restore").waitFor();
    assert.deepEqual(await seriousA11yFindings(p), [], `${colorScheme}: page with the preview`);
    await p.getByTestId("restore").click();
    await p.getByTestId("confirm").waitFor();
    assert.deepEqual(await seriousA11yFindings(p), [], `${colorScheme}: restore dialog`);
    await p.getByTestId("confirm-cancel").click();
    await p.getByTestId("open-settings").click();
    await p.getByTestId("settings").waitFor();
    assert.deepEqual(await seriousA11yFindings(p), [], `${colorScheme}: settings dialog`);
    await p.keyboard.press("Escape");
    // The Offsite panel open, with its add form (SFTP fields shown).
    await p.getByTestId("offsite-panel").locator("summary").click();
    await p.getByTestId("offsite-kind").selectOption("sftp");
    await p.getByTestId("offsite-none").waitFor();
    assert.deepEqual(await seriousA11yFindings(p), [], `${colorScheme}: the Offsite panel`);
    await p.context().close();
  }
});

test("the kind filter applies to the timeline too; nothing is left out without saying so", async () => {
  const marks = () => page.locator("#timeline .mark").count();
  const all = await marks();
  assert.equal(await page.getByTestId("timeline-note").isHidden(), true, "every backup is drawn: no note");
  await page.getByTestId("filter-kind").selectOption("manual");
  await page.waitForFunction((n) => document.querySelectorAll("#timeline .mark").length < n, all);
  const kinds = await page.locator("#timeline .mark").evaluateAll((ms) => ms.map((m) => m.getAttribute("aria-label")?.split(" ")[1]));
  assert.ok(kinds.length > 0 && kinds.every((k) => k === "manual"), `only manual marks: ${kinds}`);
  await page.getByTestId("filter-kind").selectOption("");
  await page.waitForFunction((n) => document.querySelectorAll("#timeline .mark").length >= n, all);
});

test("every preview action answers 20 of 20 human-speed clicks (150 ms presses) while the engines run", async () => {
  await rows().first().click();
  const preview = page.getByTestId("preview");
  const press = async (testid) => {
    const box = await preview.getByTestId(testid).boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.waitForTimeout(150);
    await page.mouse.up();
  };
  for (const action of ["restore", "export", "delete"]) {
    for (let i = 0; i < 20; i++) {
      await press(action);
      await page.getByTestId("confirm").waitFor({ timeout: 2000 });
      await page.getByTestId("confirm-cancel").click();
      await page.getByTestId("confirm").waitFor({ state: "hidden" });
    }
  }
  for (let i = 0; i < 20; i++) {
    const before = await preview.getByTestId("pin").textContent();
    await press("pin");
    await page.waitForFunction((b) => document.querySelector("[data-testid=preview] [data-testid=pin]")?.textContent !== b, before, { timeout: 3000 });
  }
});

test("the preview says why retention keeps a backup", async () => {
  await page.locator("[data-testid=backup-row][data-kind=initial]").click();
  await page.getByTestId("retention-note").filter({ hasText: "the initial backup is kept forever" }).waitFor();
});

test("a label can be added, edited and removed from the preview", async () => {
  await page.locator("[data-testid=backup-row][data-kind=manual]").first().click();
  const id = await page.locator("[data-testid=backup-row].selected").getAttribute("data-id");
  await page.getByTestId("preview").getByTestId("label").click();
  await page.getByTestId("label-input").fill("before the big change");
  await page.getByTestId("confirm-ok").click();
  await page.locator(`[data-testid=backup-row][data-id="${id}"]`).filter({ hasText: "before the big change" }).waitFor();
  await page.getByTestId("preview").getByTestId("label").click();
  await page.getByTestId("label-input").fill("");
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("toast").filter({ hasText: `Backup #${id}: label removed.` }).waitFor();
});

test("an open page recovers when `engram serve` restarts: greyed while it is down, current again after; no chart draws a line across the 20 s it was stopped", async () => {
  const live = page.getByTestId("live");
  await live.filter({ hasText: "running" }).waitFor();
  // A learner logs before the stop (its process then ends) and after.
  const token = new URL(url).searchParams.get("token");
  const learner = async () => {
    const post = (path, body) =>
      fetch(`${new URL(url).origin}${path}`, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify(body) }).then((r) => assert.ok(r.ok, `${path}: ${r.status}`));
    await post("/api/learners", { name: "gap-learner", format: "raw" });
    const now = Date.now();
    await post("/api/learners/gap-learner/metrics", { points: [0, 1, 2].map((i) => ({ step: i, at_ms: now + i, metrics: { loss: 1 - 0.1 * i } })) });
  };
  await learner();
  await page.waitForTimeout(600); // saves land before the stop
  await stopServe(server);
  await live.filter({ hasText: "reconnecting" }).waitFor();
  assert.equal(await page.evaluate(() => document.body.classList.contains("stale")), true, "stale numbers are greyed");
  const before = await plans();
  await page.waitForTimeout(20_000);
  const again = await startServer();
  assert.equal(again, url, "the same port and token after a restart");
  await live.filter({ hasText: "running" }).waitFor({ timeout: 30_000 });
  assert.equal(await page.evaluate(() => document.body.classList.contains("stale")), false);
  await page.waitForFunction(
    (b) => Number(document.querySelector("[data-testid=metric-zap-plans_generated]")?.textContent?.replace(/,/g, "")) > b,
    before,
  );
  // The page's API calls work again too (same token): a backup from the UI.
  const n = await rows().count();
  await page.getByRole("button", { name: "Back up now" }).click();
  await page.waitForFunction((k) => document.querySelectorAll("[data-testid=backup-row]").length > k, n);
  // The stop is a shaded span on the charts, and the line breaks there:
  // the engines' curves and the learner's (attached again after it).
  await learner();
  await page.reload();
  for (const id of ["chart-zap-success_rate_last_100", "chart-gap-learner-loss"]) {
    const chart = page.getByTestId(id);
    await chart.getByTestId("not-running").first().waitFor({ state: "attached", timeout: 15_000 });
    await page.waitForFunction((c) => Number(document.querySelector(`[data-testid=${c}]`)?.dataset.segments) >= 2, id);
    // Wide as the stop (charts redraw as their data comes in: waited for).
    await page.waitForFunction((c) => [...document.querySelectorAll(`[data-testid=${c}] [data-testid=not-running]`)].some((e) => e.getBoundingClientRect().width > 20), id);
    assert.match(await chart.getByTestId("not-running").first().getAttribute("title"), /^Not running from .* UTC \((Engram was stopped|the learner was not running)\)/);
  }
});

test("a learner shows as a card, and a restore from the timeline rolls it back; its step continues from there", async () => {
  const token = new URL(url).searchParams.get("token");
  const origin = new URL(url).origin;
  const call = async (method, path, body, type = "application/json") => {
    const res = await fetch(`${origin}${path}`, { method, headers: { Authorization: `Bearer ${token}`, "Content-Type": type }, body });
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
    return res;
  };
  await call(
    "POST",
    "/api/learners",
    JSON.stringify({ name: "browser-learner", format: "raw", metrics: { success: { label: "Success rate", format: "percent", higher_is_better: true } }, milestones: [{ metric: "success", at_least: 0.9 }] }),
  );
  // What it logs is drawn as a curve, named and formatted as it said.
  const now = Date.now();
  await call("POST", "/api/learners/browser-learner/metrics", JSON.stringify({ points: [0, 1, 2, 3].map((i) => ({ step: i, at_ms: now - 3000 + i * 1000, metrics: { success: 0.2 * i } })) }));
  await call("PUT", "/api/learners/browser-learner/state?step=10", "state at step 10", "application/octet-stream");
  // A backup from the UI holds the learner's state of that instant.
  await page.getByTestId("backup-label").fill("learner at 10");
  await page.getByRole("button", { name: "Back up now" }).click();
  const row = page.locator("[data-testid=backup-row]").filter({ hasText: "learner at 10" });
  await row.waitFor();
  await call("PUT", `/api/learners/browser-learner/state?step=20&metrics=${encodeURIComponent('{"success":0.6,"reward":1}')}`, "state at step 20", "application/octet-stream");
  const card = page.getByTestId("learner-browser-learner");
  await card.filter({ hasText: "20" }).waitFor({ timeout: 15_000 }); // reloaded at the next autosave
  // Its last save's metrics, named and formatted as it described them.
  await card.locator("dt", { hasText: "Success rate" }).waitFor({ timeout: 15_000 });
  await card.locator("dd", { hasText: "60.0 %" }).waitFor();
  // The milestone it declared, read as it described the metric.
  assert.equal(await card.getByTestId("learner-milestones").textContent(), "Success rate ≥ 90.0 %");
  // Set here instead (they win over its own), then its own again.
  await card.getByTestId("learner-milestones-edit").click();
  assert.deepEqual(await seriousA11yFindings(page), [], "milestones dialog");
  await page.getByTestId("milestones-rules").fill("success >= 0.5");
  assert.ok(await page.getByTestId("milestones-here").isChecked(), "typing picks the rules set here");
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("toast").filter({ hasText: "Learner browser-learner's milestones (set here): Success rate ≥ 50.0 %." }).waitFor();
  await card.getByTestId("learner-milestones").filter({ hasText: "Success rate ≥ 50.0 % (set here)" }).waitFor();
  await card.getByTestId("learner-milestones-edit").click();
  await page.getByTestId("milestones-own").check();
  await page.getByTestId("confirm-ok").click();
  await card.getByTestId("learner-milestones").filter({ hasText: /^Success rate ≥ 90\.0 %$/ }).waitFor();
  const chart = page.getByTestId("chart-browser-learner-success");
  await chart.filter({ hasText: "browser-learner (learner): Success rate" }).waitFor({ timeout: 15_000 });
  await chart.locator("header b").filter({ hasText: "60.0 %" }).waitFor({ timeout: 15_000 });
  // Its metric described here instead (named and printed otherwise on the
  // card, the chart and the milestones), then as the learner says again.
  await card.getByTestId("learner-metrics-edit").click();
  assert.deepEqual(await seriousA11yFindings(page), [], "metrics dialog");
  assert.ok(!(await page.getByTestId("metric-here-success").isChecked()), "as the learner says");
  assert.equal(await page.getByTestId("metric-label-success").inputValue(), "Success rate");
  await page.getByTestId("metric-label-success").fill("Win rate");
  await page.getByTestId("metric-format-success").selectOption("decimal");
  assert.ok(await page.getByTestId("metric-here-success").isChecked(), "editing picks the description set here");
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("toast").filter({ hasText: "Learner browser-learner's metrics: success described here." }).waitFor();
  await card.locator("dt", { hasText: "Win rate" }).waitFor({ timeout: 15_000 });
  await card.locator("dd", { hasText: /^0\.600$/ }).waitFor();
  await chart.filter({ hasText: "browser-learner (learner): Win rate" }).waitFor({ timeout: 15_000 });
  assert.equal(await card.getByTestId("learner-milestones").textContent(), "Win rate ≥ 0.900");
  await card.getByTestId("learner-metrics-edit").click();
  await page.getByTestId("metric-here-success").uncheck();
  assert.equal(await page.getByTestId("metric-label-success").inputValue(), "Success rate", "unticked: the learner's own shows again");
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("toast").filter({ hasText: "Learner browser-learner's metrics: all as the learner describes them." }).waitFor();
  await card.locator("dt", { hasText: "Success rate" }).waitFor({ timeout: 15_000 });
  await chart.filter({ hasText: "browser-learner (learner): Success rate" }).waitFor({ timeout: 15_000 });
  assert.equal(await chart.getAttribute("data-lines"), "1");
  // A metric with one point so far: a point on two minutes of axis (uPlot
  // alone padded a lone instant to 1,000 days).
  await page.waitForFunction(() => document.querySelector("[data-testid=chart-browser-learner-reward]")?.getAttribute("data-x-span") === "120", null, { timeout: 15_000 });
  // Restore only the learner, from the list; the preview shows its step then and now.
  await row.click();
  await page.getByTestId("preview-learners").filter({ hasText: /browser-learner\s*10\s*20/ }).waitFor();
  // Its metrics then (none were saved with step 10) beside its live state's.
  await page.getByTestId("preview-learner-browser-learner").filter({ hasText: /Success rate\s*—\s*60\.0 %/ }).waitFor();
  await page.getByTestId("restore").click();
  await page.getByTestId("restore-engine").selectOption("browser-learner");
  assert.match(await page.getByTestId("restore-summary").textContent(), /takes learner browser-learner back to its state in this backup/);
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("toast").filter({ hasText: "Restored browser-learner from backup" }).waitFor();
  const state = await call("GET", "/api/learners/browser-learner/state");
  assert.equal(await state.text(), "state at step 10");
  assert.equal(state.headers.get("x-engram-step"), "10");
  await card.locator("dd").filter({ hasText: /^10$/ }).waitFor({ timeout: 15_000 });
  // The chart's headline is the current line's latest value: none since the
  // restore (60.0 % belongs to the line restored away from).
  await chart.locator("header b").filter({ hasText: /^—$/ }).waitFor({ timeout: 15_000 });
  // The learner continues from the restored step.
  const next = await call("PUT", "/api/learners/browser-learner/state?step=11", "state at step 11", "application/octet-stream");
  assert.equal((await next.json()).step, 11);
  // Its state in that backup downloads as its own bytes (live is step 11 now).
  await row.click();
  const download = page.waitForEvent("download");
  await page.getByTestId("preview-learners").getByTestId("preview-learner-state").click();
  const file = await download;
  assert.match(file.suggestedFilename(), /^browser-learner-backup-\d+\.state$/);
  const saved = join(dataDir, "learner.state");
  await file.saveAs(saved);
  assert.equal(readFileSync(saved, "utf8"), "state at step 10");
  await page.getByTestId("toast").filter({ hasText: "Saved learner browser-learner's state in backup" }).waitFor();
  // The storage view says what the learner's states take, and where.
  await page.getByTestId("storage-panel").locator("summary").click();
  const storage = page.getByTestId("storage-body").locator("p").filter({ hasText: "Learners' live states and backups name" });
  await storage.waitFor({ timeout: 15_000 });
  assert.match(await storage.textContent(), /\d+ distinct ones make up [\d.]+ [KM]?B .*: [\d.]+ [KM]?B inside the database, 0 B in files/);
  // The backups are from one day (two, across midnight): the growth chart
  // spans a few days, not the 1,000 uPlot alone pads one day to.
  const span = Number(await page.getByTestId("storage-growth").getAttribute("data-x-span"));
  assert.ok(span > 0 && span <= 3 * 86_400, `the growth chart spans ${span} s`);
  await page.getByTestId("storage-panel").locator("summary").click();
  // It runs outside Engram: "Ask to stop" records the request (its client's
  // `run.stop_requested`), says so, and cannot be asked twice.
  const ask = card.getByTestId("learner-ask-stop");
  await ask.click();
  await page.getByTestId("toast").filter({ hasText: "Asked learner browser-learner to stop" }).waitFor();
  await card.getByTestId("learner-stop-asked").filter({ hasText: "it stops when its loop next checks" }).waitFor({ timeout: 15_000 });
  assert.ok(await ask.isDisabled());
  const info = await (await call("GET", "/api/learners/browser-learner")).json();
  assert.equal(typeof info.stop_requested_at_ms, "number");
  // Its next run (attaching again) is not asked.
  await call("POST", "/api/learners", JSON.stringify({ name: "browser-learner" }));
  await card.getByTestId("learner-stop-asked").waitFor({ state: "detached", timeout: 15_000 });
});

test("a learner supervised from the UI: added with its command, its process and output shown, stopped, started, let go", async () => {
  await page.getByTestId("add-learner").click();
  await page.getByTestId("confirm").waitFor();
  assert.deepEqual(await seriousA11yFindings(page), [], "add-learner dialog");
  await page.getByTestId("learner-name").fill("ui-sup");
  await page.getByTestId("learner-command").fill("echo hello from the ui; exec sleep 300");
  await page.getByTestId("confirm-ok").click();
  const card = page.getByTestId("learner-ui-sup");
  const phase = card.getByTestId("learner-process");
  await phase.filter({ hasText: /^running \(pid \d+\)/ }).waitFor({ timeout: 15_000 });
  // Its output (the card reloads while it runs).
  await card.getByTestId("learner-output").locator("summary").click();
  await card.getByTestId("learner-output").filter({ hasText: "hello from the ui" }).waitFor({ timeout: 15_000 });
  assert.deepEqual(await seriousA11yFindings(page), [], "a supervised learner's card");
  const pid = Number((await phase.textContent()).match(/pid (\d+)/)[1]);
  await card.getByTestId("learner-stop").click();
  await phase.filter({ hasText: /^stopped$/ }).waitFor();
  assert.throws(() => process.kill(pid, 0), "the process is gone");
  await card.getByTestId("learner-start").click();
  await phase.filter({ hasText: /^running \(pid \d+\)/ }).waitFor();
  assert.notEqual(Number((await phase.textContent()).match(/pid (\d+)/)[1]), pid);
  await card.getByTestId("learner-remove").click();
  await phase.waitFor({ state: "detached" });
  assert.match(await card.textContent(), /ui-sup/, "its card stays (a learner Engram no longer runs)");
  // An empty command is refused, saying why.
  await page.getByTestId("add-learner").click();
  await page.getByTestId("learner-name").fill("empty");
  await page.getByTestId("confirm-ok").click();
  await page.getByText("the command is empty").waitFor();
  // Deleted from its card: nothing saved, so nothing to back up first.
  await card.getByTestId("learner-delete").click();
  assert.match(await page.locator("#confirm-text").textContent(), /Its live state, its curves and its command are deleted/);
  assert.ok(await page.getByTestId("learner-delete-backup").isHidden());
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("toast").filter({ hasText: "Deleted learner ui-sup. No backup held it: its state is gone." }).waitFor();
  await card.waitFor({ state: "detached", timeout: 15_000 });
});

test("deleting a learner from its card backs it up first; its card and curves go; restoring that backup brings it back", async () => {
  const token = new URL(url).searchParams.get("token");
  const origin = new URL(url).origin;
  const call = (method, path, body, type = "application/json") =>
    fetch(`${origin}${path}`, { method, headers: { Authorization: `Bearer ${token}`, "Content-Type": type }, body });
  assert.ok((await call("POST", "/api/learners", JSON.stringify({ name: "doomed" }))).ok);
  assert.ok((await call("POST", "/api/learners/doomed/metrics", JSON.stringify({ points: [{ at_ms: Date.now() - 1000, metrics: { reward: 1 } }] }))).ok);
  assert.ok((await call("PUT", "/api/learners/doomed/state?step=5", "doomed at 5", "application/octet-stream")).ok);
  const card = page.getByTestId("learner-doomed");
  await card.filter({ hasText: "5" }).waitFor({ timeout: 15_000 });
  const chart = page.getByTestId("chart-doomed-reward");
  await chart.waitFor({ timeout: 15_000 });
  await card.getByTestId("learner-delete").click();
  const first = page.getByTestId("learner-delete-backup");
  assert.ok(await first.isChecked(), "backing up first is the default for a learner with a state");
  assert.deepEqual(await seriousA11yFindings(page), [], "delete-learner dialog");
  await page.getByTestId("confirm-ok").click();
  const told = page.getByTestId("toast").filter({ hasText: /Deleted learner doomed\. Backup #\d+ holds its state from just before/ });
  await told.waitFor();
  const id = Number((await told.textContent()).match(/Backup #(\d+)/)[1]);
  await card.waitFor({ state: "detached", timeout: 15_000 });
  await chart.waitFor({ state: "detached", timeout: 15_000 });
  assert.equal((await call("GET", "/api/learners/doomed")).status, 404);
  // That backup, restored for the learner alone, brings it back at step 5.
  const row = rows().filter({ hasText: "before deleting learner doomed" });
  await row.click();
  await page.getByTestId("preview-learners").filter({ hasText: /doomed\s*5\s*deleted/ }).waitFor();
  await page.getByTestId("restore").click();
  await page.getByTestId("restore-engine").selectOption("doomed");
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("toast").filter({ hasText: `Restored doomed from backup #${id}` }).waitFor();
  await card.locator("dd").filter({ hasText: /^5$/ }).waitFor({ timeout: 15_000 });
  const state = await call("GET", "/api/learners/doomed/state");
  assert.equal(await state.text(), "doomed at 5");
});

test("Offsite: a replica added from the panel shows its key once, catches up with every row marked, verifies, lists what it holds, and is forgotten", async () => {
  // Earlier tests' failures stay until dismissed, over the page's foot: as a user would, dismiss them.
  const dismiss = page.getByTestId("banner").getByRole("button", { name: "Dismiss this message" });
  while ((await dismiss.count()) > 0) await dismiss.first().click();
  const panel = page.getByTestId("offsite-panel");
  await panel.locator("summary").click();
  await page.getByTestId("offsite-none").waitFor();
  // Wrong input is said in the form, before and by the core.
  await page.getByTestId("offsite-kind").selectOption("sftp");
  await page.getByTestId("offsite-location").fill("backup.lan");
  await page.getByTestId("offsite-add-button").click();
  await page.getByTestId("offsite-add-error").filter({ hasText: "USER@HOST:PATH" }).waitFor();
  await page.getByTestId("offsite-kind").selectOption("local");
  const full = mkdtempSync(join(tmpdir(), "engram-e2e-full-"));
  writeFileSync(join(full, "someone-elses-file"), "x");
  await page.getByTestId("offsite-location").fill(full);
  await page.getByTestId("offsite-add-button").click();
  await page.getByTestId("offsite-add-error").filter({ hasText: "is not empty" }).waitFor();
  // A new directory: the repository is made and the key shown once.
  const repo = join(mkdtempSync(join(tmpdir(), "engram-e2e-offsite-")), "repo");
  await page.getByTestId("offsite-location").fill(repo);
  await page.getByTestId("offsite-add-button").click();
  const key = (await page.getByTestId("replica-key").textContent()).trim();
  assert.match(key, /^[0-9a-f]{48}$/);
  assert.match(await page.locator("#confirm-title").textContent(), /Keep this key to recover on another machine/);
  await page.getByTestId("confirm-ok").click();
  const block = page.locator("[data-testid=replica][data-name=repo]");
  await block.locator("[data-testid=replica-state]").filter({ hasText: "up to date" }).waitFor({ timeout: 60_000 });
  const bar = block.getByTestId("replica-progress");
  assert.equal(await bar.getAttribute("value"), await bar.getAttribute("max"), "the bar is full once caught up");
  // Every row on the list says it is offsite (after the next refresh).
  await page.getByRole("button", { name: "Back up now" }).click();
  await page.waitForFunction(() => {
    const marks = [...document.querySelectorAll("[data-testid=backup-row] [data-testid=offsite-mark]")];
    return marks.length > 0 && marks.length === document.querySelectorAll("[data-testid=backup-row]").length && marks.every((m) => m.getAttribute("data-mark") === "replicated");
  }, undefined, { timeout: 60_000 });
  // Stock restic reads what the panel set up, with the key it showed.
  const snaps = JSON.parse(execFileSync("restic", ["snapshots", "--json", "--no-lock"], { env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: key, RESTIC_CACHE_DIR: join(repo, "..", "cache") } }).toString());
  assert.ok(snaps.length >= 2, `restic lists ${snaps.length} snapshots`);
  // Verify every pack: a bar while it runs, then the answer.
  await block.getByTestId("replica-verify-data").click();
  await page.getByTestId("toast").filter({ hasText: /repo verified in [\d.]+ s: every pack read .* no problem/ }).waitFor({ timeout: 60_000 });
  await block.filter({ hasText: "Verified" }).filter({ hasText: "every pack read" }).waitFor();
  // What it holds, each backup here too.
  await block.getByTestId("replica-backups").click();
  await block.getByTestId("replica-held").waitFor();
  assert.ok((await block.locator("[data-testid=replica-held] tbody tr").count()) >= 2);
  // The key again, on request.
  await page.getByTestId("offsite-key").click();
  assert.equal((await page.getByTestId("replica-key").textContent()).trim(), key);
  await page.getByTestId("confirm-ok").click();
  // Forget it: nothing there is deleted; the rows lose their marks.
  await block.getByTestId("replica-remove").click();
  await page.getByTestId("confirm-ok").click();
  await page.getByTestId("offsite-none").waitFor();
  assert.ok(existsSync(join(repo, "config")), "the repository stays");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=offsite-mark]").length === 0);
  await panel.locator("summary").click();
  rmSync(full, { recursive: true, force: true });
  rmSync(join(repo, ".."), { recursive: true, force: true });
});
