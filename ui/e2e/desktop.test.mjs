// Desktop end-to-end: the real Tauri window under Xvfb, driven through
// tauri-driver and WebKitWebDriver with plain WebDriver HTTP calls.
// Needs target/debug/engram-desktop, target/debug/engram, Xvfb, tauri-driver.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const app = join(root, "target/debug/engram-desktop");
const engram = join(root, "target/debug/engram");
const driverBin = [join(homedir(), ".cargo/bin/tauri-driver"), "/usr/local/bin/tauri-driver"].find(existsSync);
const dataDir = mkdtempSync(join(tmpdir(), "engram-desktop-"));
// The new machine of the first-run test: an empty home for a recovery.
const newMachine = mkdtempSync(join(tmpdir(), "engram-new-machine-"));
const display = ":" + (90 + Math.floor(Math.random() * 9));
const port = 4444;
let xvfb;
let driver;
let session;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function wd(method, path, body) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
  return json.value;
}

async function find(selector) {
  const el = await wd("POST", `/session/${session}/element`, { using: "css selector", value: selector });
  return Object.values(el)[0];
}

async function text(selector) {
  return await wd("GET", `/session/${session}/element/${await find(selector)}/text`);
}

async function waitFor(what, f, timeoutMs = 20000) {
  const start = Date.now();
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch {
      /* not yet */
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** Opens the app's window on `dir` (a new tauri-driver, which hands the
 * app its environment, and a new session). */
async function openWindow(dir) {
  const env = { ...process.env, DISPLAY: display, ENGRAM_DATA_DIR: dir, DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent", NO_AT_BRIDGE: "1" };
  driver = spawn(driverBin, ["--port", String(port)], { env, stdio: "ignore" });
  await waitFor("tauri-driver", async () => (await fetch(`http://127.0.0.1:${port}/status`)).ok);
  const created = await wd("POST", "/session", {
    capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application: app } } },
  });
  session = created.sessionId;
}

/** Closes the window (the app saves and exits) and its driver. */
async function closeWindow() {
  if (session) await wd("DELETE", `/session/${session}`).catch(() => {});
  session = undefined;
  driver?.kill();
  driver = undefined;
  await sleep(500);
}

/** Clicks an element in the middle of the window: at its edge, the sticky
 * header or an open preview can take the click ("element click
 * intercepted"); one redrawn between the find and the click (a stale
 * reference) is found again, up to five times. */
async function click(selector) {
  for (let attempt = 1; ; attempt++) {
    try {
      await wd("POST", `/session/${session}/execute/sync`, { script: "document.querySelector(arguments[0]).scrollIntoView({ block: 'center' })", args: [selector] });
      await wd("POST", `/session/${session}/element/${await find(selector)}/click`, {});
      return;
    } catch (e) {
      if (attempt >= 5 || !String(e).includes("stale element reference")) throw e;
      await sleep(100);
    }
  }
}

/** axe-core's serious and critical findings in `selector`, in the window. */
async function seriousA11yFindings(selector) {
  await wd("POST", `/session/${session}/execute/sync`, { script: readFileSync(join(root, "ui/node_modules/axe-core/axe.min.js"), "utf8"), args: [] });
  const found = await wd("POST", `/session/${session}/execute/async`, {
    script: "const done = arguments[arguments.length - 1]; window.axe.run(document.querySelector(arguments[0]), { resultTypes: ['violations'] }).then((r) => done(r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '))), (e) => done(['axe failed: ' + e]));",
    args: [selector],
  });
  return found;
}

before(async () => {
  for (const p of [app, engram]) assert.ok(existsSync(p), `${p} is missing: run cargo build --workspace`);
  assert.ok(driverBin, "tauri-driver is missing: scripts/setup installs it");
  // A prepared data directory: some learning already saved.
  execFileSync(engram, ["run", "--for", "1500ms", "--data-dir", dataDir]);
  xvfb = spawn("Xvfb", [display, "-screen", "0", "1280x900x24", "-nolisten", "tcp"], { stdio: "ignore" });
  await sleep(500);
  await openWindow(dataDir);
});

after(async () => {
  await closeWindow();
  xvfb?.kill();
  await sleep(300);
  for (const d of [dataDir, newMachine]) rmSync(d, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

test("the window shows the restored metrics and a manual backup lands in the store", async () => {
  const saved = JSON.parse(execFileSync(engram, ["status", "--json", "--data-dir", dataDir]).toString());
  const savedPlans = saved.engines.zap.metrics.plans_generated;
  assert.ok(savedPlans > 0);
  const shown = await waitFor("metrics in the window", async () => {
    const t = await text("[data-testid=metric-zap-plans_generated]");
    return /\d/.test(t) ? Number(t.replace(/,/g, "")) : undefined;
  });
  assert.ok(shown >= savedPlans, `window shows ${shown} plans, saved state had ${savedPlans}: it resumed`);
  // The charts are drawn (uPlot canvases), and nothing was reported broken.
  const charts = await wd("POST", `/session/${session}/execute/sync`, {
    script: "return [document.querySelectorAll('#charts canvas').length, document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent]",
    args: [],
  });
  assert.equal(charts[1], "", `the banner says: ${charts[1]}`);
  assert.ok(charts[0] >= 5, `${charts[0]} charts drawn`);
  await wd("POST", `/session/${session}/element/${await find("[data-testid=backup-now]")}/click`, {});
  await waitFor("the manual backup in the list", async () => (await text("[data-testid=rows]")).includes("manual"));
  const list = JSON.parse(execFileSync(engram, ["backups", "list", "--json", "--data-dir", dataDir]).toString());
  assert.ok(list.some((b) => b.kind === "manual"), JSON.stringify(list.map((b) => b.kind)));
});

test("keyboard only in the window: open a backup from the list and restore it", async () => {
  const key = async (selector, k) => wd("POST", `/session/${session}/element/${await find(selector)}/value`, { text: k });
  const ENTER = "\uE007";
  const prerestores = () =>
    JSON.parse(execFileSync(engram, ["backups", "list", "--json", "--kind", "pre-restore", "--data-dir", dataDir]).toString()).length;
  const before = prerestores();
  // Enter on a focused row opens it in the preview.
  await wd("POST", `/session/${session}/execute/sync`, { script: "document.querySelector('[data-testid=backup-row]').focus()", args: [] });
  await key("[data-testid=backup-row]", ENTER);
  await waitFor("the preview", async () => (await text("[data-testid=preview]")).includes("Backup #"));
  // Enter on Restore opens the dialog; Enter on OK restores.
  await key("[data-testid=preview] [data-testid=restore]", ENTER);
  await waitFor("the restore dialog", async () => (await text("[data-testid=confirm]")).includes("Restore backup"));
  await key("[data-testid=confirm-ok]", ENTER);
  await waitFor("a pre-restore backup", async () => prerestores() > before);
});

test("the app serves the learner API: a learner added from the CLI runs under the app, saves, and shows as a card", async () => {
  const root = join(import.meta.dirname, "..", "..");
  const script = "import engram; r = engram.attach('desk'); r.save(b'state', step=7, metrics={'loss': 0.5}); r.close(); print('saved at 7')";
  // `engram learners add` finds the running app through the data directory.
  execFileSync(engram, ["learners", "add", "desk", "--data-dir", dataDir, "--", "env", `PYTHONPATH=${join(root, "clients/python/src")}`, "python3", "-c", script]);
  const desk = () =>
    JSON.parse(execFileSync(engram, ["learners", "list", "--json", "--data-dir", dataDir]).toString()).find((l) => l.name === "desk");
  await waitFor("the learner's save", async () => desk()?.live?.step === 7 && desk()?.process?.phase === "finished");
  assert.ok(desk().process.output.includes("saved at 7"), JSON.stringify(desk().process));
  await waitFor("its card", async () => (await text("[data-testid=learner-desk]")).includes("desk"));
  // Through the window's IPC: milestone rules set here, then the learner
  // deleted (a backup of its state taken first).
  await click("[data-testid=learner-desk] [data-testid=learner-milestones-edit]");
  await waitFor("the milestones dialog", async () => (await text("[data-testid=confirm]")).includes("Milestones of learner desk"));
  await wd("POST", `/session/${session}/element/${await find("[data-testid=milestones-rules]")}/value`, { text: "success >= 0.8" });
  await click("[data-testid=milestones-here]");
  await click("[data-testid=confirm-ok]");
  await waitFor("the rules set here", async () => desk()?.milestone_rules_set_here === true && desk()?.milestone_rules?.[0]?.at_least === 0.8);
  // A metric described here (typing a name picks "described here").
  await click("[data-testid=learner-desk] [data-testid=learner-metrics-edit]");
  await waitFor("the metrics dialog", async () => (await text("[data-testid=confirm]")).includes("Metrics of learner desk"));
  await wd("POST", `/session/${session}/element/${await find("[data-testid=metric-label-loss]")}/value`, { text: "TD loss" });
  await click("[data-testid=confirm-ok]");
  await waitFor("the metric described here", async () => desk()?.metric_info?.loss?.label === "TD loss" && desk()?.metric_info_set_here?.[0] === "loss");
  await waitFor("its card says it", async () => (await text("[data-testid=learner-desk]")).includes("TD loss"));
  const manual = () => JSON.parse(execFileSync(engram, ["backups", "list", "--json", "--kind", "manual", "--data-dir", dataDir]).toString()).length;
  const backups = manual();
  await click("[data-testid=learner-desk] [data-testid=learner-delete]");
  await waitFor("the delete dialog", async () => (await text("[data-testid=confirm]")).includes("Delete learner desk?"));
  await click("[data-testid=confirm-ok]");
  await waitFor("the learner gone", async () => desk() === undefined);
  assert.equal(manual(), backups + 1, "a backup of its state was taken first");
  await waitFor("its card gone", async () => !(await text("#learners")).includes("desk"));
});

test("first run on a new machine: the window offers the choice, refuses a wrong key, then recovers the whole timeline from a replica", async () => {
  await closeWindow();
  // The old machine's data goes offsite (a replica on another "disk").
  const repo = join(newMachine, "..", `${newMachine.split("/").pop()}-offsite`);
  const added = JSON.parse(execFileSync(engram, ["replicas", "add", "local", repo, "--json", "--data-dir", dataDir]).toString());
  const key = added.new_key;
  assert.ok(key, JSON.stringify(added));
  let status;
  for (let i = 0; i < 10; i++) {
    execFileSync(engram, ["run", "--for", "3s", "--data-dir", dataDir]);
    status = JSON.parse(execFileSync(engram, ["replicas", "status", "--json", "--data-dir", dataDir]).toString());
    if (status[0].behind === 0 && status[0].history_at_ms !== null) break;
  }
  assert.equal(status[0].behind, 0, JSON.stringify(status));
  const list = (dir) => JSON.parse(execFileSync(engram, ["backups", "list", "--json", "--limit", "1000", "--data-dir", dir]).toString());
  const original = list(dataDir).map((b) => `${b.id} ${b.kind} ${b.label} ${b.pinned}`);
  const newDir = join(newMachine, "data");
  try {
    await openWindow(newDir);
    await waitFor("the first-run choice", async () => (await text("[data-testid=first-run]")).includes("Recover from a replica"));
    assert.ok(!existsSync(newDir), "nothing is written before the choice");
    assert.deepEqual(await seriousA11yFindings("#first-run"), [], "the first-run screen");
    const type = async (selector, value) => wd("POST", `/session/${session}/element/${await find(selector)}/value`, { text: value });
    await type("[data-testid=first-run-location]", repo);
    await type("[data-testid=first-run-key]", "not-the-key");
    await click("[data-testid=first-run-recover-button]");
    await waitFor("the wrong key refused", async () => (await text("[data-testid=first-run-error]")).includes("wrong_key"));
    assert.ok(!existsSync(join(newDir, "engram.db")), "a refused recovery writes no database");
    await wd("POST", `/session/${session}/element/${await find("[data-testid=first-run-key]")}/clear`, {});
    await type("[data-testid=first-run-key]", key);
    await click("[data-testid=first-run-recover-button]");
    await waitFor("the recovery's report", async () => /Recovered \d+ backups/.test(await text("[data-testid=toast]")), 60000);
    // The page runs: the recovered engines' metrics and the timeline.
    await waitFor("metrics in the window", async () => /\d/.test(await text("[data-testid=metric-zap-plans_generated]")));
    await waitFor("the recovered backups in the list", async () => (await text("[data-testid=rows]")).includes("manual"));
    const recovered = list(newDir).map((b) => `${b.id} ${b.kind} ${b.label} ${b.pinned}`);
    for (const line of original) assert.ok(recovered.includes(line), `${line} missing from ${JSON.stringify(recovered)}`);
    const replicas = JSON.parse(execFileSync(engram, ["replicas", "list", "--json", "--data-dir", newDir]).toString());
    assert.equal(replicas[0].location, repo, "the recovered machine goes on replicating there");
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
});
