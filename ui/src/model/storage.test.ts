import { describe, expect, it } from "vitest";
import type { StorageReport } from "../generated/api";
import { growthSeries, ratio, storageLines } from "./storage";

const report: StorageReport = {
  db_bytes: 10 * 1024 * 1024,
  free_bytes: 1024 * 1024,
  wal_bytes: 4096,
  backups: 1200,
  blobs: 40,
  referenced_bytes: 3000 * 1024,
  unique_bytes: 100 * 1024,
  stored_bytes: 25 * 1024,
  live_bytes: 7 * 1024,
  history_points: 12345,
  learner_states: 0,
  learner_referenced_bytes: 0,
  learner_inline_bytes: 0,
  learner_file_bytes: 0,
  learner_slot_bytes: 0,
  by_kind: [],
  growth: [
    { day_ms: 86_400_000, backups: 1000, added_bytes: 20 * 1024 },
    { day_ms: 3 * 86_400_000, backups: 200, added_bytes: 5 * 1024 },
  ],
};

describe("storage view", () => {
  it("states the deduplication and compression ratios", () => {
    const lines = storageLines(report);
    expect(lines[0]).toBe("Database 10 MB (1.0 MB of it free for reuse), write-ahead log 4.0 KB.");
    expect(lines[1]).toContain("1,200 backups hold 2.9 MB");
    expect(lines[1]).toContain("(deduplication 30×)");
    expect(lines[1]).toContain("stored compressed in 25 KB (4.0×)");
    expect(lines[2]).toContain("12,345 points");
  });
  it("says what learners' states take only when there are some", () => {
    expect(storageLines(report)).toHaveLength(3);
    const lines = storageLines({ ...report, learner_states: 3, learner_referenced_bytes: 40 * 1024 * 1024, learner_inline_bytes: 100 * 1024, learner_file_bytes: 10 * 1024 * 1024 - 100 * 1024 });
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe("Learners' live states and backups name 40 MB of states; 3 distinct ones make up 10 MB (deduplication 4.0×): 100 KB inside the database, 9.9 MB in files.");
    const slots = storageLines({ ...report, learner_states: 1, learner_referenced_bytes: 1024, learner_file_bytes: 1024, learner_slot_bytes: 2 * 1024 * 1024 });
    expect(slots).toHaveLength(5);
    expect(slots[4]).toBe("Learners' slot files (each one's newest state, and the ones its saves overwrite in place) take 2.0 MB on disk.");
  });
  it("never divides by zero", () => {
    expect(ratio(0, 0)).toBe("—");
    expect(ratio(10, 0)).toBe("—");
  });
  it("adds up growth day by day", () => {
    expect(growthSeries(report)).toEqual([
      [86_400, 3 * 86_400],
      [20 * 1024, 25 * 1024],
      [1000, 200],
    ]);
  });
});
