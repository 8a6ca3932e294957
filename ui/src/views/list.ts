/** The backup list: filters (kind, search in labels and milestones, pinned
 * only), pages of 50 ("Newer" / "Older", so the page stays short at any
 * number of backups), one row per backup. Clicking a row selects it. */

import { $, el, kindLabel } from "../dom";
import { formatValue } from "../model/engines";
import { formatTimestamp, formatCount } from "../model/format";
import { markText } from "../model/offsite";
import { BACKUP_KINDS, type Backup, type BackupKind } from "../generated/api";
import { select, state, views } from "../state";
import { api } from "../backend";
import { PAGE } from "../firstload";
import { openCompare } from "./compare";
import { followCell, followHeader } from "./follow";
import { redrawPreview } from "./preview";

/** This module's state, in the one store. */
const my = views.list;


/** `kindChanged` runs when the kind filter changes (it applies to the
 * timeline too); search and "pinned only" reload the list alone. */
export function buildFilters(kindChanged: () => void) {
  for (const k of BACKUP_KINDS) $("filter-kind").append(el("option", { value: k }, k));
  $("filter-kind").addEventListener("change", () => {
    kindChanged();
    void loadList("first");
  });
  let timer: number | undefined;
  $("filter-text").addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void loadList("first"), 250);
  });
  $("filter-pinned").addEventListener("change", () => void loadList("first"));
  $("page-newer").addEventListener("click", () => void loadList("newer"));
  $("page-older").addEventListener("click", () => void loadList("older"));
}

/** The filters in force. The kind applies to the list and the timeline;
 * the search text and "pinned only" to the list. (No engine filter: every
 * backup holds every built-in engine, so it would filter nothing.) */
export function filters(): { kinds: BackupKind[]; text: string; pinned: boolean } {
  const kind = $<HTMLSelectElement>("filter-kind").value as BackupKind | "";
  return { kinds: kind ? [kind] : [], text: $<HTMLInputElement>("filter-text").value.trim(), pinned: $<HTMLInputElement>("filter-pinned").checked };
}

export async function loadList(which: "first" | "same" | "newer" | "older") {
  // Only the newest request is shown (typing fires several).
  const mine = ++my.loads;
  const offset = which === "first" ? 0 : which === "newer" ? Math.max(0, state.listOffset - PAGE) : which === "older" ? state.listOffset + PAGE : state.listOffset;
  let page = await api.listBackups({ ...filters(), limit: PAGE, offset });
  if (page.items.length === 0 && offset > 0 && page.total > 0) {
    // The page emptied (deletions, retention): show the last one there is.
    const last = Math.floor((page.total - 1) / PAGE) * PAGE;
    page = await api.listBackups({ ...filters(), limit: PAGE, offset: last });
    if (mine !== my.loads) return;
    state.listOffset = last;
  } else {
    if (mine !== my.loads) return;
    state.listOffset = offset;
  }
  state.list = page.items;
  state.listTotal = page.total;
  const n = formatCount;
  const f = filters();
  const filtered = f.kinds.length > 0 || f.text !== "" || f.pinned;
  $("total").textContent =
    page.total === 0
      ? filtered
        ? "No backup matches."
        : "No backups."
      : `${n(state.listOffset + 1)}–${n(state.listOffset + page.items.length)} of ${n(page.total)}${filtered ? " matching" : ""}`;
  $<HTMLButtonElement>("page-newer").disabled = state.listOffset === 0;
  $<HTMLButtonElement>("page-older").disabled = state.listOffset + page.items.length >= page.total;
  renderList();
  // The "next to go" tags follow; the page does not wait for them.
  void loadRetention();
}

async function loadRetention() {
  const mine = ++my.retentionLoads;
  const ids = state.list.map((b) => b.id);
  if (state.selected && !ids.includes(state.selected.id)) ids.push(state.selected.id);
  const outlook = ids.length === 0 ? [] : await api.retention({ ids }).catch(() => []);
  if (mine !== my.retentionLoads) return;
  state.retention = new Map(outlook.map((o) => [o.id, o]));
  markRollsOff();
}

function describe(b: Backup) {
  const bt = b.breakthrough;
  return bt ? `${bt.engine}: ${bt.metric} = ${formatValue(bt.engine, bt.metric, bt.value)} at step ${formatCount(bt.step)}` : (b.label ?? "");
}

export function renderList() {
  // A reload keeps the keyboard focus on the same row.
  const rowsEl = $("rows");
  const focused = rowsEl.contains(document.activeElement) ? document.activeElement?.getAttribute("data-id") : null;
  renderRows();
  markRollsOff();
  if (focused) rowsEl.querySelector<HTMLElement>(`tr[data-id="${focused}"]`)?.focus();
}

function renderRows() {
  followHeader();
  $("rows").replaceChildren(
    ...state.list.map((b) => {
      const tr = el("tr", { "data-id": String(b.id), "data-kind": b.kind, "data-testid": "backup-row" });
      if (state.selected?.id === b.id) tr.classList.add("selected");
      const kind = el("td");
      kind.append(kindLabel(b.kind));
      // Date and time each unbroken: a narrow window puts one over the other.
      const when = el("td", { class: "when" });
      const [day, time] = formatTimestamp(b.created_at_ms).split(" ");
      when.append(el("span", {}, day ?? ""), document.createTextNode(" "), el("span", {}, time ?? ""));
      tr.append(el("td", {}, String(b.id)), kind, when, el("td", { class: "what" }, describe(b)));
      const followed = followCell(b.id);
      if (followed) tr.append(followed);
      tr.append(pinCell(b));
      // Reachable by keyboard: Tab to the list, arrows between rows,
      // Enter or Space to open one in the preview.
      tr.tabIndex = 0;
      tr.setAttribute("aria-selected", String(state.selected?.id === b.id));
      // Shift+click or Shift+Enter: compare the selected backup with this one.
      const pick = (shift: boolean) => {
        const a = state.selected;
        if (shift && a && a.id !== b.id) void openCompare(a, b, redrawPreview);
        else select(b);
      };
      tr.addEventListener("click", (ev) => pick(ev.shiftKey));
      tr.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          pick(ev.shiftKey);
        } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          ev.preventDefault();
          const next = ev.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
          (next as HTMLElement | null)?.focus();
        }
      });
      return tr;
    }),
  );
}

/** Tags the rows retention deletes at the next periodic backup. */
export function markRollsOff() {
  for (const tr of $("rows").querySelectorAll<HTMLElement>("tr")) {
    const o = state.retention.get(Number(tr.dataset.id));
    const going = o?.rolls_off_next === true;
    tr.classList.toggle("rolls-off", going);
    const when = tr.querySelector<HTMLElement>(".when");
    if (when) when.title = going ? "Retention deletes this backup at the next periodic backup (pin it to keep it)." : "";
    let tag = tr.querySelector(".next-to-go");
    if (going && !tag) {
      tag = el("span", { class: "next-to-go", "data-testid": "rolls-off" }, "next to go");
      tr.querySelector(".what")?.prepend(tag);
    } else if (!going) tag?.remove();
  }
}

/** Marks the selected row without rebuilding the list. */
export function markSelected() {
  for (const tr of $("rows").querySelectorAll("tr")) {
    const on = tr.getAttribute("data-id") === String(state.selected?.id);
    tr.classList.toggle("selected", on);
    tr.setAttribute("aria-selected", String(on));
  }
}

/** The pin as an inline SVG (an emoji needs an emoji font), named for
 * screen readers. */
function pinCell(b: Backup): HTMLElement {
  const td = el("td", { class: "pin" });
  if (b.offsite !== null) {
    // Where it stands offsite, in words (the pin cell: no wider table).
    const m = markText(b.offsite);
    td.append(el("span", { class: `offsite-mark ${b.offsite}`, title: m.title, "data-testid": "offsite-mark", "data-mark": b.offsite }, m.label));
  }
  if (!b.pinned) return td;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "pinned");
  svg.setAttribute("data-testid", "pinned-icon");
  const title = document.createElementNS(ns, "title");
  title.textContent = "pinned";
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M5 1h6l-1 5 3 3H9l-1 6-1-6H3l3-3z");
  path.setAttribute("fill", "currentColor");
  svg.append(title, path);
  td.prepend(svg);
  return td;
}
