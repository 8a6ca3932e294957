//! The UI's TypeScript view of the API, generated from the Rust types with
//! `ts-rs`. The checked-in copy is `ui/src/generated/api.ts`; a test fails
//! when it is stale (`UPDATE_SNAPSHOTS=1 cargo test -p engram-core typescript`
//! rewrites it).

use super::learners::*;
use super::types::*;
use crate::engines::catalog::{MetricFormat, MetricInfo, metric_catalog};
use crate::error::ErrorCode;
use crate::runtime::{Event, Settings, StartupReport};
use crate::snapshot::SnapshotFormat;
use crate::store::{
    BackupKind, Breakthrough, Cursor, DensityBucket, HistoryBranch, IntegrityReport, KindCount,
    KindStorage, LearnerInfo, LearnerState, MetricSeries, RetentionPolicy, SeriesPoint, SkipNote,
    StorageDay, StorageReport, TimelineMark, TimelineQuery, TimelineView, VerifyProblem,
};
use ts_rs::{Config, TS};

/// The whole generated module: every API type, the error codes, the backup
/// kinds and the settings descriptor as constants.
pub fn module() -> String {
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust API types by `engram_core::api::typescript`; do not edit.\n\
         // Regenerate: UPDATE_SNAPSHOTS=1 cargo test -p engram-core typescript\n\n\
         export type Metrics = Record<string, number>;\n",
    );
    let decls = [
        ErrorCode::decl(&cfg),
        ApiError::decl(&cfg),
        BackupKind::decl(&cfg),
        Breakthrough::decl(&cfg),
        Cursor::decl(&cfg),
        Backup::decl(&cfg),
        BackupPage::decl(&cfg),
        ListBackups::decl(&cfg),
        CreateBackup::decl(&cfg),
        RestoreRequest::decl(&cfg),
        LabelRequest::decl(&cfg),
        SnapshotFormat::decl(&cfg),
        ExportRequest::decl(&cfg),
        Exported::decl(&cfg),
        Deleted::decl(&cfg),
        RetentionRequest::decl(&cfg),
        RetentionOutlook::decl(&cfg),
        Hold::decl(&cfg),
        AttachLearner::decl(&cfg),
        SaveLearnerState::decl(&cfg),
        SlotLease::decl(&cfg),
        LeasedSave::decl(&cfg),
        ReadLearnerState::decl(&cfg),
        LearnerStateExported::decl(&cfg),
        LoggedPoint::decl(&cfg),
        LogMetrics::decl(&cfg),
        Logged::decl(&cfg),
        LearnerState::decl(&cfg),
        LearnerInfo::decl(&cfg),
        crate::store::RemovedLearner::decl(&cfg),
        crate::store::LearnerCommand::decl(&cfg),
        SetLearnerCommand::decl(&cfg),
        SetMilestoneRules::decl(&cfg),
        SetMetricInfo::decl(&cfg),
        ReportMilestone::decl(&cfg),
        crate::store::LearnerMetric::decl(&cfg),
        crate::store::MilestoneRule::decl(&cfg),
        crate::supervisor::ProcessPhase::decl(&cfg),
        crate::supervisor::ProcessStatus::decl(&cfg),
        TimelineQuery::decl(&cfg),
        TimelineMark::decl(&cfg),
        KindCount::decl(&cfg),
        DensityBucket::decl(&cfg),
        TimelineView::decl(&cfg),
        KindStorage::decl(&cfg),
        StorageDay::decl(&cfg),
        StorageReport::decl(&cfg),
        RestoreReport::decl(&cfg),
        SkipNote::decl(&cfg),
        StartupReport::decl(&cfg),
        EngineStatus::decl(&cfg),
        Status::decl(&cfg),
        VerifyProblem::decl(&cfg),
        IntegrityReport::decl(&cfg),
        RetentionPolicy::decl(&cfg),
        Settings::decl(&cfg),
        SettingKind::decl(&cfg),
        SettingField::decl(&cfg),
        SeriesRequest::decl(&cfg),
        HistoryBranch::decl(&cfg),
        SeriesPoint::decl(&cfg),
        MetricSeries::decl(&cfg),
        MetricFormat::decl(&cfg),
        MetricInfo::decl(&cfg),
        Event::decl(&cfg),
    ];
    for d in decls {
        out.push('\n');
        out.push_str("export ");
        out.push_str(&d.replace("{ [key in string]: number }", "Metrics"));
        out.push('\n');
    }
    let kinds: Vec<&str> = BackupKind::ALL.iter().map(|k| k.as_str()).collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    out.push_str(&format!(
        "\n/** Every backup kind, in timeline-legend order. */\nexport const BACKUP_KINDS: readonly BackupKind[] = {};\n",
        json(&kinds)
    ));
    out.push_str(&format!(
        "\n/** Every error code the backend sends. */\nexport const ERROR_CODES: readonly ErrorCode[] = {};\n",
        json(&codes)
    ));
    out.push_str(&format!(
        "\n/** The settings form: one entry per field, in order. */\nexport const SETTING_FIELDS: readonly SettingField[] = {};\n",
        json(&Settings::fields())
    ));
    out.push_str(&format!(
        "\n/** What every engine metric means and how to print it, in display order. */\nexport const METRICS: readonly MetricInfo[] = {};\n",
        json(&metric_catalog())
    ));
    out
}

/// Pretty JSON for a constant in the module.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("/* {e} */ null"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn checked_in() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/generated/api.ts")
    }

    #[test]
    fn typescript_bindings_are_up_to_date() {
        let want = super::module();
        let path = checked_in();
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(&path, &want).expect("write");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run `UPDATE_SNAPSHOTS=1 cargo test -p engram-core typescript` and commit it",
            path.display()
        );
    }

    #[test]
    fn large_integers_are_numbers_and_codes_are_a_closed_union() {
        let m = super::module();
        assert!(
            !m.contains("bigint"),
            "every integer crosses as a JSON number"
        );
        assert!(m.contains(r#""runtime_stopped""#));
        assert!(m.contains("export type EngramEvent"));
    }
}
