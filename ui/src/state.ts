/** The UI's one store: what the views show, and who wants to know when the
 * selection changes. Views read it; flows and events change it. */

import { ApiError } from "./api";
import type uPlot from "uplot";
import type { Plot } from "./views/charts";
import type { LiveCells, PreviewActions } from "./views/preview";
import type { Backup, LearnerInfo, MetricInfo, MetricSeries, Metrics, RetentionOutlook, TimelineMark, TimelineView } from "./generated/api";

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
  /** How many times a backup was selected (or its selection replaced by a
   * flow's answer, say after a pin) since the page opened. */
  selections: 0,
  /** The learners' metrics, as the core's catalog describes them now. */
  learnerCatalog: [] as MetricInfo[],
};

/** What each module of the page keeps between calls — in-flight load
 * counters, the DOM it built and updates in place, its charts — here, so
 * that every piece of the page's mutable state is in this one store. Each
 * module reads its own part (`const view = views.<module>`). */
export const views = {
  flows: {
    /** Reloads the list and timeline (set by main). */
    refresh: (async () => {}) as () => Promise<void>,
  },
  main: {
    /** The timeline of the range on the axis (the zoomed one, else the whole
     * history), filtered by kind: counts by kind per bucket, and the backups
     * drawn one by one (all of them when few enough). Only the newest request
     * is drawn (zooming fires several). */
    timelineLoads: 0,
    /** The stored history of every charted metric over the zoomed range (else
     * all of it), one downsampled series each: zooming in shows finer detail. */
    historyLoads: 0,
    /** One refresh at a time; a change that arrives during one queues one more,
     * and whoever asked gets a promise that resolves after the refresh that
     * includes their change. */
    current: null as Promise<void> | null,
    queued: null as Promise<void> | null,
    /** The selected backup is held (retention keeps it) while it stays
     * selected: renewed every minute, released when another is selected. */
    held: null as number | null,
    /** Why saves are failing (shown in the pill), or null when they land. */
    saveProblem: null as string | null,
  },
  charts: {
    plots: [] as Plot[],
    hidden: new Set<string>(),
    smoothing: 0,
    logScale: false,
    /** The zoomed time range (ms), shared by the charts and the timeline. */
    zoom: null as { min: number; max: number } | null,
    onZoom: (() => {}) as () => void,
    syncing: false,
  },
  learners: {
    loads: 0,
    poll: null as ReturnType<typeof setTimeout> | null,
  },
  list: {
    /** Loads the first page, the page shown again (after a change), or the
     * next newer / older one. */
    loads: 0,
    /** What retention says of the page's backups and the selected one (asked
     * for those only: at 100,000 backups the whole answer is megabytes). */
    retentionLoads: 0,
  },
  preview: {
    cells: [] as LiveCells[],
    /** Each shown learner's "step now" cell, kept current by updatePreview. */
    learnerCells: [] as { name: string; now: HTMLElement }[],
    shown: null as { id: number; pinned: boolean; label: string | null } | null,
    /** What built the shown preview, and the learners' metrics it has rows for:
     * when those change (the learner list or the catalog arrived after the
     * selection), it is built again. */
    builtWith: null as PreviewActions | null,
    learnerKeys: "",
    /** The retention note of the shown backup: rewritten in place, never rebuilt. */
    note: null as HTMLElement | null,
  },
  storage: {
    plot: null as uPlot | null,
  },
  follow: {
    /** The metric followed (null: none), its value in each backup of the
     * current line of history, and in those on other lines (a backup in
     * neither holds no state of it). */
    metric: null as { engine: string; key: string } | null,
    values: new Map<number, number | null>(),
    elsewhere: new Map<number, number | null>(),
    /** The current line's backups, oldest first (drawn over the timeline). */
    line: [] as { created_at_ms: number; value: number | null }[],
    loads: 0,
  },
  compare: {
    /** The two backups compared in the preview's place (null: none). */
    shown: null as { from: number; to: number } | null,
    /** Only the newest comparison and drill list are drawn. */
    loads: 0,
    drillLoads: 0,
  },
  offsite: {
    /** Only the newest load is drawn (polls and changes overlap). */
    loads: 0,
    /** Replicas being verified now, and how (the long call shows a bar). */
    verifying: new Map<string, boolean>(),
    /** Replicas whose held backups are listed under them. */
    listing: new Set<string>(),
    /** Reloads the list and timeline after a backup comes back (set by main). */
    refreshAll: (async () => {}) as () => Promise<void>,
  },
  fleet: {
    /** Only the newest load is drawn (polls and changes overlap). */
    loads: 0,
    /** The catalog was drawn since the panel opened. */
    loaded: false,
    /** This host's id (its backups' restore is an undo-able restore too). */
    thisHost: "",
    /** The host switcher's choice: "" is all hosts. */
    host: "",
    /** The zoomed range of the all-hosts timeline (null: all of it). */
    zoom: null as { from: number; to: number } | null,
    plot: null as uPlot | null,
    /** Reloads the list and timeline after a restore (set by main). */
    refreshAll: (async () => {}) as () => Promise<void>,
  },
  timeline: {
    /** The SVG's width in its own units: its width on the page, so text and
     * marks keep their size — a fixed 1,200 stretched to a narrow window
     * squashed them. Measured once when the page is built (nothing drawn
     * yet, so the layout it forces is cheap) and then kept by a
     * ResizeObserver, which redraws when it changes: a draw never forces a
     * layout of the whole page. */
    width: 1200,
  },
  cards: {
    cells: [] as { info: MetricInfo; dt: HTMLElement; dd: HTMLElement }[],
  },
};

const selectionListeners: (() => void)[] = [];

/** Calls `f` whenever the selected backup changes. */
export function onSelect(f: () => void) {
  selectionListeners.push(f);
}


/** Selects a backup (or none) and tells every listener. */
export function select(b: Backup | null) {
  state.selections++;
  state.selected = b;
  for (const f of selectionListeners) f();
}

/** Where the selection stands now: give it to {@link reselect} from a
 * reload that starts now. */
export function selectionMark(): number {
  return state.selections;
}

/** Re-reads the selected backup after a reload (it may have changed or
 * gone: then nothing is selected) — unless it was selected again since the
 * reload began (`mark`, from {@link selectionMark}): then what the reload
 * read may be older than what the page shows (a pin answered meanwhile),
 * and putting it back would flip the preview's buttons under a click. */
export async function reselect(mark: number, read: (id: number) => Promise<Backup>) {
  const id = state.selected?.id;
  if (id === undefined || state.selections !== mark) return;
  const fresh =
    state.list.find((b) => b.id === id) ??
    // Gone: nothing selected. Not reachable: keep what the preview shows.
    (await read(id).catch((e: unknown) => (e instanceof ApiError && e.code === "not_found" ? null : state.selected)));
  if (state.selected?.id === id && state.selections === mark) state.selected = fresh;
}
