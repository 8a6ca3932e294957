// Desktop end-to-end: the real Tauri window under Xvfb, driven through
// tauri-driver and WebKitWebDriver with plain WebDriver HTTP calls.
// Needs target/debug/engram-desktop, target/debug/engram, Xvfb, tauri-driver.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, existsSync, rmSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const app = join(root, "target/debug/engram-desktop");
const engram = join(root, "target/debug/engram");
const driverBin = [join(homedir(), ".cargo/bin/tauri-driver"), "/usr/local/bin/tauri-driver"].find(existsSync);
const dataDir = mkdtempSync(join(tmpdir(), "engram-desktop-"));
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

before(async () => {
  for (const p of [app, engram]) assert.ok(existsSync(p), `${p} is missing: run cargo build --workspace`);
  assert.ok(driverBin, "tauri-driver is missing: scripts/setup installs it");
  // A prepared data directory: some learning already saved.
  execFileSync(engram, ["run", "--for", "1500ms", "--data-dir", dataDir]);
  xvfb = spawn("Xvfb", [display, "-screen", "0", "1280x900x24", "-nolisten", "tcp"], { stdio: "ignore" });
  await sleep(500);
  const env = { ...process.env, DISPLAY: display, ENGRAM_DATA_DIR: dataDir, DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent", NO_AT_BRIDGE: "1" };
  driver = spawn(driverBin, ["--port", String(port)], { env, stdio: "ignore" });
  await waitFor("tauri-driver", async () => (await fetch(`http://127.0.0.1:${port}/status`)).ok);
  const created = await wd("POST", "/session", {
    capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application: app } } },
  });
  session = created.sessionId;
});

after(async () => {
  if (session) await wd("DELETE", `/session/${session}`).catch(() => {});
  driver?.kill();
  xvfb?.kill();
  await sleep(300);
  rmSync(dataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
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
  // Into the middle of the window first: at its edge, the sticky header or
  // an open preview can take the click ("element click intercepted").
  // A card redrawn between the find and the click (its learner's next
  // event) leaves a stale reference: found again, up to five times.
  const click = async (selector) => {
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
  };
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
