/** Shapes of the JSON the backend sends (`engram serve` API and the desktop
 * commands share them). Kept by hand beside `crates/engram-cli/src/backups_cmd.rs`
 * (`backup_json`) and `engram_core::runtime::{Event, Settings}`. */

export type Metrics = Record<string, number>;

export const BACKUP_KINDS = ["initial", "periodic", "breakthrough", "manual", "pre-restore", "imported"] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

export const ENGINES = ["zap", "mdp_es", "orchestrator"] as const;
export type EngineName = (typeof ENGINES)[number];

export interface Breakthrough {
  engine: string;
  rule: string;
  metric: string;
  value: number;
  step: number;
}

export interface Backup {
  id: number;
  kind: BackupKind;
  created_at: string;
  created_at_ms: number;
  label: string | null;
  pinned: boolean;
  engines: string[];
  metrics: Record<string, Metrics>;
  size: number;
  breakthrough: Breakthrough | null;
  origin: unknown;
}

export interface Cursor {
  created_at_ms: number;
  id: number;
}

export interface BackupPage {
  items: Backup[];
  next: Cursor | null;
  total: number;
}

export interface SkipNote {
  engine: string;
  what: string;
  code: string;
  detail: string;
}

export interface Status {
  engines: Record<string, { metrics: Metrics }>;
  saved_at: string | null;
  running: boolean;
  startup?: { first_start: boolean; restored_from: Record<string, string>; skipped: SkipNote[] };
}

export interface RestoreReport {
  from_backup: number;
  engines: string[];
  pre_restore_backup: number;
}

export interface RetentionPolicy {
  keep_last_periodic: number;
  keep_hourly: number;
  keep_daily: number;
  keep_weekly: number;
  keep_last_pre_restore: number;
}

export interface Settings {
  autosave_secs: number;
  backup_every_secs: number;
  retention: RetentionPolicy;
  zap_success_rate: number;
  zap_min_plans: number;
  mdp_min_fitness: number;
  mdp_min_generations: number;
  orchestrator_every: number;
}

export interface VerifyReport {
  backups_checked: number;
  states_checked: number;
  database_ok: boolean;
  problems: { backup_id: number | null; engine: string | null; code: string; detail: string }[];
}

export type EngramEvent =
  | { type: "metrics"; at_ms: number; engines: Record<string, Metrics> }
  | { type: "saved"; at_ms: number }
  | { type: "backup_created"; backup: { id: number; kind: BackupKind } }
  | { type: "backups_deleted"; ids: number[] }
  | { type: "breakthrough"; breakthrough: Breakthrough; backup_id: number | null }
  | { type: "restored"; from_backup: number; engines: string[]; pre_restore_backup: number }
  | { type: "error"; code: string; message: string };

export interface BackupQuery {
  kinds?: BackupKind[];
  engine?: string;
  limit?: number;
  after?: Cursor | null;
}
