/** The storage view: what the database holds and how well it is packed —
 * its size, deduplication and compression, backups and bytes per kind, and
 * growth over time (a uPlot chart of the stored bytes by the day they were
 * added, beside the backups taken each day). Loaded when opened and after
 * each change while open. */

import uPlot from "uplot";
import { loneInstant, recordSpan, TIME_SPACE, TIME_STAMPS, utc } from "./timeaxis";
import { $, el, kindLabel } from "../dom";
import { formatBytes, formatTimestamp, formatCount } from "../model/format";
import { explain } from "../notify";
import { views } from "../state";
import { api } from "../backend";
import { growthSeries, storageLines } from "../model/storage";

/** This module's state, in the one store. */
const my = views.storage;


export function buildStorage() {
  $("storage-panel").addEventListener("toggle", () => void refreshStorage());
}

/** Reloads the view if it is open. */
export async function refreshStorage() {
  const panel = $<HTMLDetailsElement>("storage-panel");
  if (!panel.open) return;
  const body = $("storage-body");
  try {
    const r = await api.storage();
    const lines = storageLines(r).map((t) => el("p", {}, t));
    const table = el("table", { class: "list storage-kinds", "data-testid": "storage-kinds" });
    const head = el("tr");
    head.append(el("th", {}, "Kind"), el("th", {}, "Backups"), el("th", {}, "Stored bytes they added"));
    const thead = el("thead");
    thead.append(head);
    const rows = el("tbody");
    for (const k of r.by_kind) {
      const tr = el("tr");
      const kind = el("td");
      kind.append(kindLabel(k.kind));
      tr.append(kind, el("td", {}, formatCount(k.backups)), el("td", {}, formatBytes(k.added_bytes)));
      rows.append(tr);
    }
    table.append(thead, rows);
    const chart = el("div", { class: "storage-chart", "data-testid": "storage-growth" });
    body.replaceChildren(...lines, table, chart);
    my.plot?.destroy();
    my.plot = null;
    const data = growthSeries(r);
    if (data[0].length > 0) {
      my.plot = new uPlot(
        {
          width: Math.max(240, Math.min(body.clientWidth, 900)),
          height: 160,
          tzDate: utc,
          hooks: { setScale: [recordSpan(chart)] },
          // One day alone (a new data directory): a day either side.
          scales: { x: { time: true, range: loneInstant(86_400) }, bytes: {}, count: {} },
          axes: [
            { stroke: "currentColor", values: TIME_STAMPS, space: TIME_SPACE },
            { scale: "bytes", stroke: "currentColor", size: 64, values: (_u, s) => s.map((v) => formatBytes(v)) },
            { scale: "count", side: 1, stroke: "currentColor", grid: { show: false } },
          ],
          series: [
            { label: "day (UTC)", value: (_u, t) => (t === null ? "—" : formatTimestamp(t * 1000).slice(0, 10)) },
            { label: "stored, added up", scale: "bytes", stroke: "#2f6fde", width: 1.75, value: (_u, v) => (v === null ? "—" : formatBytes(v)) },
            { label: "backups that day", scale: "count", stroke: "rgba(128,128,128,0.8)", width: 1, paths: uPlot.paths.stepped?.({ align: 1 }) },
          ],
        },
        data,
        chart,
      );
    } else {
      chart.textContent = "No backups yet.";
    }
  } catch (e) {
    body.replaceChildren(el("p", { class: "error" }, `The storage report could not be loaded. ${explain(e)}`));
  }
}
