import { describe, expect, it } from "vitest";
import { addRequest, formatDuration, markText, placeText, recoveredText, recoverRequest, recoveryProgress, replicaLines, uploadProgress, verifyLine } from "./offsite";
import type { ReplicaStatus } from "../generated/api";

const base: ReplicaStatus = {
  name: "disk2",
  kind: "local",
  location: "/mnt/usb/engram",
  port: null,
  identity: null,
  append_only: false,
  added_at_ms: 0,
  host_id: "h",
  replicated: 40,
  behind: 3,
  skipped: 0,
  lag_ms: 125_000,
  state: "failing",
  summary: "behind 3, replica at /mnt/usb/engram: is the disk mounted?",
  problem: { code: "replica_unavailable", message: "is the disk mounted?", at_ms: 0 },
  last_success_at_ms: 1_000_000 - 60_000,
  history_at_ms: null,
  bytes_replicated: 3 * 1024 * 1024,
  bytes_added: 512 * 1024,
  last_verify: null,
};

describe("offsite", () => {
  it("says how far behind and why, with the lag, what it holds and what dedup saved", () => {
    const lines = replicaLines(base, 1_000_000);
    expect(lines[0]).toBe("behind 3, replica at /mnt/usb/engram: is the disk mounted?; the oldest waiting backup was made 2 min ago.");
    expect(lines[1]).toBe("Holds 40 backups: 3.0 MB of states (uploading them added 512 KB after deduplication, before compression).");
    expect(lines[2]).toBe("Last upload 60 s ago; metric history sent not yet.");
    expect(lines[3]).toBe("Never verified.");
  });

  it("no lag is claimed when nothing waits", () => {
    const lines = replicaLines({ ...base, behind: 0, lag_ms: null, summary: "up to date", state: "up_to_date" }, 1_000_000);
    expect(lines[0]).toBe("up to date.");
  });

  it("a damaged verify names the backups", () => {
    const v = { ok: false, read_data: true, checked_at_ms: 0, seconds: 1, snapshots: 4, blobs_read: 9, bytes_read: 2048, problems: ["pack x: hash mismatch"], affected_backups: [7, 9] };
    expect(verifyLine(v, 3_600_000)).toBe("DAMAGED at the last verify 60 min ago (1970-01-01 00:00:00 UTC): 1 problem(s). Backups affected: #7, #9.");
    expect(verifyLine({ ...v, ok: true, problems: [], affected_backups: [] }, 1000)).toBe("Verified 1 s ago (1970-01-01 00:00:00 UTC): every pack read (2.0 KB), 4 snapshots, no problem.");
  });

  it("progress counts held out of held and waiting; never divides by zero", () => {
    expect(uploadProgress(base)).toEqual({ value: 40, max: 43 });
    expect(uploadProgress({ ...base, replicated: 0, behind: 0 })).toEqual({ value: 0, max: 1 });
  });

  it("durations and places read naturally", () => {
    expect(formatDuration(3000)).toBe("3 s");
    expect(formatDuration(9_000_000)).toBe("2.5 h");
    expect(formatDuration(5 * 86_400_000)).toBe("5 days");
    expect(placeText({ kind: "sftp", location: "ada@b:engram", port: 2222 })).toBe("sftp:ada@b:engram (port 2222)");
    expect(placeText({ kind: "sftp", location: "ada@b:engram", port: 22 })).toBe("sftp:ada@b:engram");
  });

  it("every mark has a label and an explanation", () => {
    expect(markText("replicated").label).toBe("offsite");
    expect(markText("failed").title).toMatch(/checksum/);
  });

  it("the add form refuses what the core would, before asking it", () => {
    const f = { kind: "sftp" as const, location: "ada@backup.lan:engram", name: "", port: "2222", identity: " ~/.ssh/id " , appendOnly: true };
    expect(addRequest(f)).toEqual({ kind: "sftp", location: "ada@backup.lan:engram", name: null, port: 2222, identity: "~/.ssh/id", append_only: true });
    expect(addRequest({ ...f, location: "backup.lan" })).toMatch(/USER@HOST:PATH/);
    expect(addRequest({ ...f, port: "70000" })).toMatch(/port/);
    expect(addRequest({ ...f, kind: "local", location: " " })).toMatch(/directory/);
    expect(addRequest({ ...f, kind: "local", location: "/mnt/x", port: "22" })).toEqual({ kind: "local", location: "/mnt/x", name: null, port: null, identity: null, append_only: true });
  });

  it("a recovery asks for a place it can use and the key, one line", () => {
    const f = { kind: "sftp" as const, location: "ada@backup.lan:engram", port: "2222", identity: " ~/.ssh/id_ed25519 ", key: " abc123 " };
    expect(recoverRequest(f)).toEqual({ kind: "sftp", location: "ada@backup.lan:engram", port: 2222, identity: "~/.ssh/id_ed25519", key: "abc123", host: null });
    expect(recoverRequest({ ...f, key: "  " })).toMatch(/^Paste the replicas' key/);
    expect(recoverRequest({ ...f, key: "abc 123" })).toMatch(/one line without spaces/);
    expect(recoverRequest({ ...f, location: "backup.lan" })).toMatch(/USER@HOST:PATH/);
    expect(recoverRequest({ ...f, port: "70000" })).toMatch(/port/);
    expect(recoverRequest({ ...f, kind: "local", location: "/mnt/usb/engram" })).toEqual({ kind: "local", location: "/mnt/usb/engram", port: null, identity: null, key: "abc123", host: null });
  });

  it("a recovery's progress is a bar only once the replica has listed its backups", () => {
    expect(recoveryProgress({ done: 0, total: 0 })).toEqual({ text: "Opening the replica and reading its list of backups…", value: null, max: 1 });
    expect(recoveryProgress({ done: 3, total: 12 })).toEqual({ text: "Recovering backups: 3 of 12", value: 3, max: 12 });
  });

  it("a finished recovery says what came back, from where, and what was left out", () => {
    const r = { data_dir: "/d", host_id: "h", recovered: [1, 2, 5], skipped: ["backup 4 (snapshot x): damaged"], resumed_from: 5, history_points: 120, bytes: 2048, seconds: 1.25 };
    expect(recoveredText(r, "/mnt/usb/engram")).toBe(
      "Recovered 3 backups (2.0 KB of states) and 120 history points from /mnt/usb/engram in 1.3 s. The engines resume from backup #5. 1 left out (damaged): see the message below.",
    );
    expect(recoveredText({ ...r, recovered: [1], skipped: [] }, "x")).toMatch(/^Recovered 1 backup \(/);
  });
});
