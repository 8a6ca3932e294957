/** The UI's one store: what the views show, and who wants to know when the
 * selection changes. Views read it; flows and events change it. */

import { ApiError, connect } from "./api";
import type { Backup, LearnerInfo, MetricInfo, MetricSeries, Metrics, RetentionOutlook, TimelineMark, TimelineView } from "./generated/api";

export const api = connect();

export const state = {
  /** Latest metrics per engine. */
  now: {} as Record<string, Metrics>,
  /** Metrics events seen since the page opened (bounded). */
  live: [] as { t: number; engines: Record<string, Metrics> }[],
  /** The timeline of the range on the axis (counts by kind, marks). */
  timelineView: null as TimelineView | null,
  /** Backups drawn one by one on the timeline, oldest first. */
  timeline: [] as TimelineMark[],
  /** Rows of the list's page, where the page starts and how many match. */
  list: [] as Backup[],
  listOffset: 0,
  listTotal: 0,
  selected: null as Backup | null,
  /** The learners as last loaded (their live steps, for the preview);
   * null until the first load. */
  learners: null as LearnerInfo[] | null,
  /** Learners' charted metrics (from the API's catalog; built-ins are fixed). */
  learnerCharts: [] as MetricInfo[],
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

/** How many times a backup was selected (or its selection replaced by a
 * flow's answer, say after a pin) since the page opened. */
let selections = 0;

/** Selects a backup (or none) and tells every listener. */
export function select(b: Backup | null) {
  selections++;
  state.selected = b;
  for (const f of selectionListeners) f();
}

/** Where the selection stands now: give it to {@link reselect} from a
 * reload that starts now. */
export function selectionMark(): number {
  return selections;
}

/** Re-reads the selected backup after a reload (it may have changed or
 * gone: then nothing is selected) — unless it was selected again since the
 * reload began (`mark`, from {@link selectionMark}): then what the reload
 * read may be older than what the page shows (a pin answered meanwhile),
 * and putting it back would flip the preview's buttons under a click. */
export async function reselect(mark: number) {
  const id = state.selected?.id;
  if (id === undefined || selections !== mark) return;
  const fresh =
    state.list.find((b) => b.id === id) ??
    // Gone: nothing selected. Not reachable: keep what the preview shows.
    (await api.get_backup(id).catch((e: unknown) => (e instanceof ApiError && e.code === "not_found" ? null : state.selected)));
  if (state.selected?.id === id && selections === mark) state.selected = fresh;
}
