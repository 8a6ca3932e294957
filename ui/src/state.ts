/** The UI's one store: what the views show, and who wants to know when the
 * selection changes. Views read it; flows and events change it. */

import { connect } from "./api";
import type { Backup, Cursor, MetricSeries, Metrics, RetentionOutlook } from "./generated/api";

export const api = connect();

export const state = {
  /** Latest metrics per engine. */
  now: {} as Record<string, Metrics>,
  /** Metrics events seen since the page opened (bounded). */
  live: [] as { t: number; engines: Record<string, Metrics> }[],
  /** Backups drawn on the timeline (newest first). */
  timeline: [] as Backup[],
  /** Rows of the list, and where its next page starts. */
  list: [] as Backup[],
  listCursor: null as Cursor | null,
  selected: null as Backup | null,
  /** Stored history of each charted metric, by "engine/key". */
  history: {} as Record<string, MetricSeries>,
  connected: false,
  /** What retention says of each backup, by id. */
  retention: new Map<number, RetentionOutlook>(),
};

const selectionListeners: (() => void)[] = [];

/** Calls `f` whenever the selected backup changes. */
export function onSelect(f: () => void) {
  selectionListeners.push(f);
}

/** Selects a backup (or none) and tells every listener. */
export function select(b: Backup | null) {
  state.selected = b;
  for (const f of selectionListeners) f();
}

/** Re-finds the selected backup after a reload (it may have changed or gone). */
export function reselect() {
  const id = state.selected?.id;
  if (id === undefined) return;
  state.selected = state.list.find((b) => b.id === id) ?? state.timeline.find((b) => b.id === id) ?? null;
}
