/** The backup list: filters, keyset paging ("Load more"), one row per backup.
 * Clicking a row selects it. */

import { $, el, kindLabel } from "../dom";
import { formatValue } from "../engines";
import { formatTimestamp } from "../format";
import { BACKUP_KINDS, type Backup, type BackupKind } from "../generated/api";
import { api, select, state } from "../state";

export function buildFilters(onChange: () => void) {
  for (const k of BACKUP_KINDS) $("filter-kind").append(el("option", { value: k }, k));
  $("filter-kind").addEventListener("change", onChange);
}

/** The filters in force: they apply to the list and the timeline alike.
 * (No engine filter: every backup holds every built-in engine, so it
 * would filter nothing.) */
export function filters(): { kinds: BackupKind[] } {
  const kind = $<HTMLSelectElement>("filter-kind").value as BackupKind | "";
  return { kinds: kind ? [kind] : [] };
}

/** Loads the first page (`reset`) or the next one. */
export async function loadList(reset: boolean) {
  if (reset) {
    state.list = [];
    state.listCursor = null;
  }
  const page = await api.listBackups({ ...filters(), limit: 50, after: state.listCursor });
  state.list = state.list.concat(page.items);
  state.listCursor = page.next;
  $("total").textContent = `${page.total.toLocaleString("en-US")} backups`;
  $("more").hidden = page.next === null;
  renderList();
}

function describe(b: Backup) {
  const bt = b.breakthrough;
  return bt ? `${bt.engine}: ${bt.metric} = ${formatValue(bt.engine, bt.metric, bt.value)} at step ${bt.step.toLocaleString("en-US")}` : (b.label ?? "");
}

export function renderList() {
  // A reload keeps the keyboard focus on the same row.
  const rowsEl = $("rows");
  const focused = rowsEl.contains(document.activeElement) ? document.activeElement?.getAttribute("data-id") : null;
  renderRows();
  if (focused) rowsEl.querySelector<HTMLElement>(`tr[data-id="${focused}"]`)?.focus();
}

function renderRows() {
  $("rows").replaceChildren(
    ...state.list.map((b) => {
      const tr = el("tr", { "data-id": String(b.id), "data-kind": b.kind, "data-testid": "backup-row" });
      if (state.selected?.id === b.id) tr.classList.add("selected");
      const kind = el("td");
      kind.append(kindLabel(b.kind));
      tr.append(el("td", {}, String(b.id)), kind, el("td", { class: "when" }, formatTimestamp(b.created_at_ms)), el("td", { class: "what" }, describe(b)), pinCell(b.pinned));
      // Reachable by keyboard: Tab to the list, arrows between rows,
      // Enter or Space to open one in the preview.
      tr.tabIndex = 0;
      tr.setAttribute("aria-selected", String(state.selected?.id === b.id));
      tr.addEventListener("click", () => select(b));
      tr.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          select(b);
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
function pinCell(pinned: boolean): HTMLElement {
  const td = el("td", { class: "pin" });
  if (!pinned) return td;
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
  td.append(svg);
  return td;
}
