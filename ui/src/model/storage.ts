/** What the storage view says, computed from the core's report. Pure. */

import { formatBytes, formatCount } from "./format";
import type { StorageReport } from "../generated/api";

/** "12.5×" — how many times smaller; "—" when there is nothing to compare. */
export function ratio(whole: number, part: number): string {
  if (!(whole > 0) || !(part > 0)) return "—";
  const r = whole / part;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(1)}×`;
}

/** The sentences at the top of the storage view. */
export function storageLines(r: StorageReport): string[] {
  const n = formatCount;
  const lines = [
    `Database ${formatBytes(r.db_bytes)} (${formatBytes(r.free_bytes)} of it free for reuse), write-ahead log ${formatBytes(r.wal_bytes)}.`,
    `${n(r.backups)} backups hold ${formatBytes(r.referenced_bytes)} of engine states; ${n(r.blobs)} distinct states make up ${formatBytes(r.unique_bytes)} (deduplication ${ratio(r.referenced_bytes, r.unique_bytes)}), stored compressed in ${formatBytes(r.stored_bytes)} (${ratio(r.unique_bytes, r.stored_bytes)}).`,
    `Live states ${formatBytes(r.live_bytes)}; metric history ${n(r.history_points)} points.`,
  ];
  if (r.learner_states > 0) {
    const unique = r.learner_inline_bytes + r.learner_file_bytes;
    lines.push(
      `Learners' live states and backups name ${formatBytes(r.learner_referenced_bytes)} of states; ${n(r.learner_states)} distinct ones make up ${formatBytes(unique)} (deduplication ${ratio(r.learner_referenced_bytes, unique)}): ${formatBytes(r.learner_inline_bytes)} inside the database, ${formatBytes(r.learner_file_bytes)} in files.`,
    );
    if (r.learner_slot_bytes > 0) lines.push(`Learners' slot files (each one's newest state, and the ones its saves overwrite in place) take ${formatBytes(r.learner_slot_bytes)} on disk.`);
  }
  return lines;
}

/** Days (seconds, for the chart), the stored bytes added up to each day, and
 * the backups taken each day — of what is kept now. */
export function growthSeries(r: StorageReport): [number[], number[], number[]] {
  const days: number[] = [];
  const total: number[] = [];
  const backups: number[] = [];
  let sum = 0;
  for (const d of r.growth) {
    sum += d.added_bytes;
    days.push(d.day_ms / 1000);
    total.push(sum);
    backups.push(d.backups);
  }
  return [days, total, backups];
}
