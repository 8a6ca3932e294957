/** The Fleet panel: joining a fleet (its PostgreSQL), how this host's sync
 * stands, every host with its last sync and health, a host switcher over
 * the all-hosts timeline (counts by kind, zoom by click or keyboard) and
 * backup list, restoring here a backup another host made, and one metric's
 * curves from every host on one chart. Everything shown of other hosts is
 * read from PostgreSQL only; a host that is down is listed, marked stale.
 * Polled while open (the sync sends no event). */

import uPlot from "uplot";
import { $, el, kindLabel } from "../dom";
import { ask } from "../flows";
import { attempt, explain, toast } from "../notify";
import { views } from "../state";
import { api } from "../backend";
import { formatCount, formatTimestamp } from "../model/format";
import { alignCurves, densityBars, hostCells, joinRequest, restoreHint, statusLines } from "../model/fleet";
import { TIME_SPACE, TIME_STAMPS, utc } from "./timeaxis";
import type { FleetBackup, FleetStatus } from "../generated/api";

const my = views.fleet;
const POLL_MS = 3000;
const STRIP_W = 1000;
const STRIP_H = 48;
const HOST_COLORS = ["#2f6fde", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#e67700", "#0b7285", "#5c940d"];

export function buildFleet(refreshAll: () => Promise<void>) {
  my.refreshAll = refreshAll;
  const panel = $<HTMLDetailsElement>("fleet-panel");
  panel.addEventListener("toggle", () => void refreshFleet(true));
  window.setInterval(() => {
    if (document.visibilityState === "visible" && panel.open) void refreshFleet(false);
  }, POLL_MS);
  const form = $<HTMLFormElement>("fleet-join");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void joinFlow(form);
  });
  $<HTMLSelectElement>("fleet-host").addEventListener("change", (ev) => {
    my.host = (ev.target as HTMLSelectElement).value;
    my.zoom = null;
    void loadCatalog();
  });
  $("fleet-zoom-out").addEventListener("click", () => {
    my.zoom = null;
    void loadCatalog();
  });
  $<HTMLFormElement>("fleet-curves").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void loadCurves();
  });
  $("fleet-leave").addEventListener("click", () => void leaveFlow());
}

/** Reloads the panel if it is open (`all`: the catalog too, not only the
 * status and hosts). */
export async function refreshFleet(all: boolean) {
  if (!$<HTMLDetailsElement>("fleet-panel").open) return;
  const mine = ++my.loads;
  let s: FleetStatus;
  try {
    s = await api.fleet_status();
  } catch (e) {
    $("fleet-status").replaceChildren(el("p", { class: "error" }, `The fleet's status could not be read. ${explain(e)}`));
    return;
  }
  if (mine !== my.loads) return;
  my.thisHost = s.host_id;
  const status = $("fleet-status");
  status.dataset.state = s.state;
  const lines = statusLines(s, Date.now());
  status.replaceChildren(...lines.map((l, i) => el("p", i === 1 ? { "data-testid": "fleet-summary" } : {}, l)));
  if (s.problem) status.append(el("p", { class: "error", "data-testid": "fleet-problem" }, `${s.problem.message} (${s.problem.code})`));
  $<HTMLFormElement>("fleet-join").hidden = s.joined;
  $("fleet-member").hidden = !s.joined;
  if (!s.joined) return;
  await loadHosts();
  if (all || !my.loaded) {
    my.loaded = true;
    await loadCatalog();
  }
}

async function loadHosts() {
  const box = $("fleet-hosts");
  try {
    const hosts = await api.fleet_hosts();
    const table = el("table", { class: "list", "data-testid": "fleet-hosts-table" });
    const head = el("tr");
    for (const h of ["Host", "Last sync", "Health", "Backups", "Newest", "Engines and learners"]) head.append(el("th", {}, h));
    const thead = el("thead");
    thead.append(head);
    const body = el("tbody");
    const now = Date.now();
    for (const h of hosts) {
      const c = hostCells(h, now);
      const tr = el("tr", { "data-testid": "fleet-host", "data-host": h.host_id, class: h.stale ? "stale" : "" });
      tr.append(
        el("td", {}, `${h.name}${h.this_host ? " (this host)" : ""}`),
        el("td", {}, c.sync),
        el("td", { "data-testid": "fleet-host-health" }, c.health),
        el("td", {}, formatCount(h.backups)),
        el("td", {}, c.newest),
        el("td", { class: "what" }, h.units.join(", ")),
      );
      body.append(tr);
    }
    table.append(thead, body);
    box.replaceChildren(table);
    // The switcher: all hosts, then each (kept as chosen).
    const select = $<HTMLSelectElement>("fleet-host");
    const options = [el("option", { value: "" }, "All hosts")];
    for (const h of hosts) options.push(el("option", { value: h.host_id }, `${h.name}${h.this_host ? " (this host)" : ""}${h.stale ? " — stale" : ""}`));
    select.replaceChildren(...options);
    select.value = hosts.some((h) => h.host_id === my.host) ? my.host : "";
    const units = [...new Set(hosts.flatMap((h) => h.units))].sort();
    $("fleet-units").replaceChildren(...units.map((u) => el("option", { value: u })));
  } catch (e) {
    box.replaceChildren(el("p", { class: "error" }, `The hosts could not be read. ${explain(e)}`));
  }
}

/** The timeline strip and the backup list of the chosen host (or all) and range. */
async function loadCatalog() {
  const host = my.host === "" ? null : my.host;
  const strip = $("fleet-timeline");
  const list = $("fleet-backups");
  try {
    const [t, page] = await Promise.all([
      api.fleet_timeline({ host, kinds: null, from_ms: my.zoom?.from ?? null, to_ms: my.zoom?.to ?? null, buckets: 120, marks: 0 }),
      api.fleet_backups({
        host,
        learner: null,
        kind: null,
        limit: 50,
        // The zoomed range's newest backups: keyset paging from its end.
        after_created_at_ms: my.zoom ? my.zoom.to + 1 : null,
        after_host: my.zoom ? "" : null,
        after_id: my.zoom ? 0 : null,
      }),
    ]);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", `0 0 ${STRIP_W} ${STRIP_H}`);
    svg.setAttribute("class", "fleet-strip");
    svg.setAttribute("role", "group");
    svg.setAttribute("aria-label", `Backups of ${host === null ? "all hosts" : "the chosen host"}: ${formatCount(t.in_range)} from ${formatTimestamp(t.from_ms)} to ${formatTimestamp(t.to_ms)} UTC. Arrow keys move between buckets, Enter zooms in.`);
    const bars = densityBars(t, STRIP_W, STRIP_H);
    bars.forEach((b, i) => {
      // One focusable group per bucket, a rect per kind in it.
      const r = document.createElementNS("http://www.w3.org/2000/svg", "g");
      for (const seg of b.segments) {
        const part = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        part.setAttribute("x", String(b.x));
        part.setAttribute("y", String(seg.y));
        part.setAttribute("width", String(b.w));
        part.setAttribute("height", String(Math.max(0.5, seg.h)));
        part.setAttribute("class", `k-${seg.kind}`);
        r.append(part);
      }
      r.setAttribute("tabindex", i === 0 ? "0" : "-1");
      r.setAttribute("role", "button");
      r.setAttribute("data-testid", "fleet-bucket");
      r.setAttribute("aria-label", `${formatTimestamp(b.from)} to ${formatTimestamp(b.to)} UTC: ${b.kinds}. Enter zooms in.`);
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = `${formatTimestamp(b.from)} – ${formatTimestamp(b.to)}: ${b.kinds}`;
      r.append(title);
      const zoom = () => {
        if (b.to > b.from) {
          my.zoom = { from: b.from, to: b.to };
          void loadCatalog();
        }
      };
      r.addEventListener("click", zoom);
      r.addEventListener("keydown", (ev) => {
        const rects = [...svg.querySelectorAll<SVGGElement>("g[data-testid=fleet-bucket]")];
        const move = (to: number) => {
          const next = rects[Math.max(0, Math.min(rects.length - 1, to))];
          if (!next) return;
          r.setAttribute("tabindex", "-1");
          next.setAttribute("tabindex", "0");
          next.focus();
        };
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          zoom();
        } else if (ev.key === "ArrowRight") move(i + 1);
        else if (ev.key === "ArrowLeft") move(i - 1);
        else if (ev.key === "Escape" || ev.key === "Backspace") {
          my.zoom = null;
          void loadCatalog();
        }
      });
      svg.append(r);
    });
    const caption = el("p", { class: "muted", "data-testid": "fleet-range" }, `${formatCount(t.in_range)} backups${my.zoom ? " in this range" : ""} of ${formatCount(t.total)}, ${formatTimestamp(t.from_ms)} – ${formatTimestamp(t.to_ms)} UTC`);
    strip.replaceChildren(svg, caption);
    $("fleet-zoom-out").hidden = my.zoom === null;
    list.replaceChildren(backupTable(page.backups));
  } catch (e) {
    strip.replaceChildren(el("p", { class: "error" }, `The fleet's timeline could not be read. ${explain(e)}`));
  }
}

function backupTable(backups: FleetBackup[]): HTMLElement {
  if (backups.length === 0) return el("p", { class: "muted" }, "No backup in this range.");
  const table = el("table", { class: "list", "data-testid": "fleet-backups-table" });
  const head = el("tr");
  for (const h of ["Host", "#", "Kind", "When (UTC)", "Label", "Holds", ""]) head.append(el("th", {}, h));
  const thead = el("thead");
  thead.append(head);
  const body = el("tbody");
  for (const b of backups) {
    const tr = el("tr", { "data-testid": "fleet-backup", "data-host": b.host_id, "data-id": String(b.id) });
    const hint = restoreHint(b, my.thisHost);
    // The name starts with what the button says (speech users say it).
    const restore = el("button", { type: "button", "data-testid": "fleet-restore", title: hint.why, "aria-label": `Restore here: ${b.host_name}'s backup #${b.id}` }, "Restore here");
    restore.disabled = !hint.can;
    restore.addEventListener("click", () => void restoreFlow(b));
    const action = el("td");
    action.append(restore);
    const kind = el("td");
    kind.append(kindLabel(b.kind));
    tr.append(
      el("td", {}, b.host_name),
      el("td", {}, String(b.id)),
      kind,
      el("td", {}, formatTimestamp(b.created_at_ms)),
      el("td", { class: "what" }, `${b.pinned ? "📌 " : ""}${b.label ?? ""}`),
      el("td", { class: "what" }, b.states.map((s) => s.name).join(", ")),
      action,
    );
    body.append(tr);
  }
  table.append(thead, body);
  return table;
}

async function restoreFlow(b: FleetBackup) {
  const ok = await ask(
    `Restore ${b.host_name}'s backup #${b.id} here?`,
    `Its states (${b.states.map((s) => s.name).join(", ")}) are read from a shared offsite replica, checked against the fleet's hashes, added here as an imported backup and restored. A pre-restore backup is taken first: restoring it undoes this. Learners attached here take their state through run.restored().`,
  );
  if (!ok) return;
  const r = await attempt("Restore across hosts", () => api.fleet_restore({ host: b.host_id, backup: b.id, only: null }));
  if (r) {
    toast(`Restored ${b.host_name}'s backup #${b.id} here as backup #${r.imported_as} (${r.verified.length} states checked by hash). Backup #${r.restore.pre_restore_backup ?? "?"} undoes it.`);
    await my.refreshAll();
  }
}

async function loadCurves() {
  const form = $<HTMLFormElement>("fleet-curves");
  const field = (n: string) => (form.elements.namedItem(n) as HTMLInputElement).value.trim();
  const box = $("fleet-chart");
  const engine = field("engine");
  const key = field("key");
  if (engine === "" || key === "") {
    box.replaceChildren(el("p", { class: "error", role: "alert" }, "Name an engine or learner and one of its metrics."));
    return;
  }
  try {
    const curves = await api.fleet_series({ engine, key, from_ms: null, to_ms: null, points: 400 });
    my.plot?.destroy();
    my.plot = null;
    if (curves.length === 0) {
      box.replaceChildren(el("p", { class: "muted", "data-testid": "fleet-chart-empty" }, `No host has sent ${engine} · ${key} yet.`));
      return;
    }
    const chart = el("div", { "data-testid": "fleet-chart-plot", "aria-label": `${engine} · ${key} on ${curves.length} hosts` });
    box.replaceChildren(chart);
    my.plot = new uPlot(
      {
        width: Math.max(240, Math.min(box.clientWidth || 600, 900)),
        height: 200,
        tzDate: utc,
        axes: [{ stroke: "currentColor", values: TIME_STAMPS, space: TIME_SPACE }, { stroke: "currentColor", size: 60 }],
        series: [
          { label: "time (UTC)", value: (_u, t) => (t === null ? "—" : formatTimestamp(t * 1000)) },
          ...curves.map((c, i) => ({ label: c.host_name, stroke: HOST_COLORS[i % HOST_COLORS.length], width: 1.5, spanGaps: false })),
        ],
      },
      alignCurves(curves),
      chart,
    );
  } catch (e) {
    box.replaceChildren(el("p", { class: "error" }, `The curves could not be read. ${explain(e)}`));
  }
}

async function joinFlow(form: HTMLFormElement) {
  const field = (n: string) => (form.elements.namedItem(n) as HTMLInputElement).value;
  const error = $("fleet-join-error");
  error.hidden = true;
  const req = joinRequest(field("url"), field("name"));
  const show = (text: string) => {
    error.textContent = text;
    error.hidden = false;
  };
  if (typeof req === "string") return show(req);
  const submit = form.querySelector<HTMLButtonElement>("button[type=submit]");
  if (submit) submit.disabled = true;
  try {
    const s = await api.fleet_join(req);
    form.reset();
    toast(`Joined the fleet as “${s.name}”; this host's backups and history are being sent.`);
  } catch (e) {
    show(`Not joined. ${explain(e)}`);
  } finally {
    if (submit) submit.disabled = false;
    my.loaded = false;
    void refreshFleet(true);
  }
}

async function leaveFlow() {
  const ok = await ask("Leave the fleet?", "This host stops sending to the fleet, and its rows leave the catalog if the fleet can be reached. Nothing on this host changes.");
  if (!ok) return;
  const left = await attempt("Leave the fleet", () => api.fleet_leave());
  if (left) toast(left.message);
  my.loaded = false;
  void refreshFleet(true);
}
