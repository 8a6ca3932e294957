//! The UI's TypeScript view of the API, generated from the Rust types with
//! `ts-rs` (`ui/src/generated/api.ts`), and its client of every declared
//! operation, for both transports (`ui/src/generated/operations.ts`, from
//! [`super::operations`]). A test fails when either checked-in copy is
//! stale (`UPDATE_SNAPSHOTS=1 cargo test -p engram-core typescript`
//! rewrites them).

use crate::engines::catalog::metric_catalog;
use crate::error::ErrorCode;
use crate::wire::*;
use ts_rs::{Config, TS};

/// The whole generated module: every API type, the error codes, the backup
/// kinds and the settings descriptor as constants.
pub fn module() -> String {
    // Long by design: one section of the generated file after another.
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
        CompareRequest::decl(&cfg),
        ComparedMetric::decl(&cfg),
        ComparedState::decl(&cfg),
        Comparison::decl(&cfg),
        Inside::decl(&cfg),
        Counted::decl(&cfg),
        ArrayChange::decl(&cfg),
        EntryChange::decl(&cfg),
        PolicyMaps::decl(&cfg),
        DrillRequest::decl(&cfg),
        DrillResult::decl(&cfg),
        Drills::decl(&cfg),
        SetLearnerDrill::decl(&cfg),
        LearnerDrill::decl(&cfg),
        RetentionRequest::decl(&cfg),
        RetentionOutlook::decl(&cfg),
        Hold::decl(&cfg),
        AttachLearner::decl(&cfg),
        SaveLearnerState::decl(&cfg),
        SlotLease::decl(&cfg),
        SaveLeasedState::decl(&cfg),
        LeasedSave::decl(&cfg),
        ReadLearnerState::decl(&cfg),
        LearnerStateExported::decl(&cfg),
        LoggedPoint::decl(&cfg),
        LogMetrics::decl(&cfg),
        Logged::decl(&cfg),
        LearnerState::decl(&cfg),
        LearnerInfo::decl(&cfg),
        crate::wire::RemovedLearner::decl(&cfg),
        crate::wire::LearnerCommand::decl(&cfg),
        SetLearnerCommand::decl(&cfg),
        SetMilestoneRules::decl(&cfg),
        SetMetricInfo::decl(&cfg),
        ReportMilestone::decl(&cfg),
        crate::wire::LearnerMetric::decl(&cfg),
        crate::wire::MilestoneRule::decl(&cfg),
        crate::wire::ProcessPhase::decl(&cfg),
        crate::wire::ProcessStatus::decl(&cfg),
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
        NotRunning::decl(&cfg),
        MetricSeries::decl(&cfg),
        MetricFormat::decl(&cfg),
        MetricInfo::decl(&cfg),
        Event::decl(&cfg),
        crate::wire::ReplicaKind::decl(&cfg),
        crate::wire::OffsiteMark::decl(&cfg),
        crate::wire::AddReplica::decl(&cfg),
        crate::wire::ReplicaProblem::decl(&cfg),
        crate::wire::ReplicaVerifyReport::decl(&cfg),
        crate::wire::ReplicaStatus::decl(&cfg),
        crate::wire::ReplicaAdded::decl(&cfg),
        crate::wire::ReplicaKey::decl(&cfg),
        crate::wire::RemovedReplica::decl(&cfg),
        crate::wire::VerifyReplica::decl(&cfg),
        crate::wire::ReplicaPruneReport::decl(&cfg),
        crate::wire::ReplicaBackup::decl(&cfg),
        crate::wire::RetrieveBackup::decl(&cfg),
        crate::wire::RecoverReport::decl(&cfg),
        crate::wire::FirstRunState::decl(&cfg),
        crate::wire::FirstRun::decl(&cfg),
        crate::wire::RecoverHere::decl(&cfg),
        crate::wire::BackupValue::decl(&cfg),
        crate::wire::MetricLineRequest::decl(&cfg),
        crate::wire::MetricLine::decl(&cfg),
        crate::wire::FindFall::decl(&cfg),
        crate::wire::FallFound::decl(&cfg),
        crate::wire::FleetJoin::decl(&cfg),
        crate::wire::FleetName::decl(&cfg),
        crate::wire::FleetProblem::decl(&cfg),
        crate::wire::FleetStatus::decl(&cfg),
        crate::wire::FleetLeft::decl(&cfg),
        crate::wire::FleetHost::decl(&cfg),
        crate::wire::FleetBackupsQuery::decl(&cfg),
        crate::wire::FleetState::decl(&cfg),
        crate::wire::FleetBackup::decl(&cfg),
        crate::wire::FleetCursor::decl(&cfg),
        crate::wire::FleetBackupPage::decl(&cfg),
        crate::wire::FleetRestore::decl(&cfg),
        crate::wire::FleetRestoreReport::decl(&cfg),
        crate::wire::FleetTimelineQuery::decl(&cfg),
        crate::wire::FleetMark::decl(&cfg),
        crate::wire::FleetTimeline::decl(&cfg),
        crate::wire::FleetSeries::decl(&cfg),
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

/// One operation as the TypeScript client sees it.
struct TsOperation {
    declared: super::operations::Declared,
    key: Option<String>,
    request: Option<String>,
    response: String,
}

impl TsOperation {
    fn of<O: super::Operation>(cfg: &Config) -> TsOperation {
        use super::RequestIn;
        let name = |n: String| n.replace("JsonValue", "Record<string, unknown>");
        TsOperation {
            declared: super::operations::Declared::of::<O>(),
            key: O::KEY.map(|_| name(O::Key::name(cfg))),
            request: (O::REQUEST_IN != RequestIn::Nothing).then(|| name(O::Request::name(cfg))),
            response: name(O::Response::name(cfg)),
        }
    }

    /// The method's parameters: `id: number, request: LabelRequest`.
    fn params(&self) -> String {
        let mut p = Vec::new();
        if let (Some(k), Some(t)) = (self.declared.key, &self.key) {
            p.push(format!("{k}: {t}"));
        }
        if let Some(r) = &self.request {
            p.push(format!("request: {r}"));
        }
        p.join(", ")
    }
}

/// The client of every declared operation: their routes (`OPERATIONS`),
/// the typed `Operations` interface and `operations(transport)`, which
/// builds it over a transport (HTTP or IPC) that moves one call.
pub fn operations_module() -> String {
    // Long by design: one section of the generated file after another.
    let cfg = Config::new().with_large_int("number");
    macro_rules! all {
        ($($name:ident)*) => {
            vec![$(TsOperation::of::<super::op::$name>(&cfg)),*]
        };
    }
    let ops: Vec<TsOperation> = crate::for_each_operation_name!(all);
    let mut types = std::collections::BTreeSet::new();
    for o in &ops {
        for t in o.key.iter().chain(&o.request).chain([&o.response]) {
            for word in t.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
                if word.starts_with(|c: char| c.is_ascii_uppercase())
                    && !["Array", "Record", "Promise"].contains(&word)
                {
                    types.insert(word.to_string());
                }
            }
        }
    }
    let mut out = String::from(
        "// Generated from the operations declared in `engram_core::api::operations`; do not edit.\n\
         // Regenerate: UPDATE_SNAPSHOTS=1 cargo test -p engram-core typescript\n\n",
    );
    out.push_str(&format!(
        "import type {{ {} }} from \"./api\";\n\n",
        types.into_iter().collect::<Vec<_>>().join(", ")
    ));
    let names: Vec<String> = ops
        .iter()
        .map(|o| format!("{:?}", o.declared.name))
        .collect();
    out.push_str(&format!(
        "/** Every operation's name: its IPC command and its method below. */\nexport type OperationName =\n  | {};\n\n",
        names.join("\n  | ")
    ));
    out.push_str(
        "/** How an operation travels: its HTTP method and path (under `/api`), the\n * key in the path (and its IPC argument), and where its request goes. */\n\
         export interface Route {\n  method: \"GET\" | \"POST\" | \"PUT\" | \"DELETE\";\n  path: string;\n  key: \"id\" | \"name\" | null;\n  request: \"nothing\" | \"query\" | \"body\";\n  /** The request is not flat: `QueryForms` encodes it. */\n  query_form: boolean;\n}\n\n",
    );
    out.push_str("export const OPERATIONS: Readonly<Record<OperationName, Route>> = {\n");
    for o in &ops {
        let d = &o.declared;
        out.push_str(&format!(
            "  {}: {{ method: {:?}, path: {:?}, key: {}, request: {}, query_form: {} }},\n",
            d.name,
            d.method,
            d.path,
            d.key.map_or("null".to_string(), |k| format!("{k:?}")),
            json(&d.request_in),
            d.query_form
        ));
    }
    out.push_str("};\n\n");
    out.push_str("/** The operations whose bodies are bytes or a stream: their routes (each\n * transport moves their bytes its own way). */\nexport const BYTE_OPERATIONS = {\n");
    for (name, method, path) in super::operations::declared_bytes() {
        let key =
            super::operations::path_key(path).map_or("null".to_string(), |k| format!("{k:?}"));
        out.push_str(&format!(
            "  {name}: {{ method: {method:?}, path: {path:?}, key: {key} }},\n"
        ));
    }
    out.push_str("} as const;\n\n");
    out.push_str("/** Query-string encoders of the requests that are not flat (their Rust\n * forms are `*Query`/`*Form` structs). */\nexport interface QueryForms {\n");
    for o in ops.iter().filter(|o| o.declared.query_form) {
        out.push_str(&format!(
            "  {}(request: {}): string;\n",
            o.declared.name,
            o.request.as_deref().unwrap_or("null")
        ));
    }
    out.push_str("}\n\n");
    out.push_str("/** Moves one call: the operation, its key (or null) and its request (or\n * null); resolves to the answer, rejects with the API's error. */\nexport type Transport = (op: OperationName, key: number | string | null, request: unknown) => Promise<unknown>;\n\n");
    out.push_str("/** Every operation, typed. */\nexport interface Operations {\n");
    for o in &ops {
        for line in o.declared.doc.lines() {
            out.push_str(&format!("  /** {} */\n", line.trim()));
        }
        out.push_str(&format!(
            "  {}({}): Promise<{}>;\n",
            o.declared.name,
            o.params(),
            o.response
        ));
    }
    out.push_str("}\n\n");
    out.push_str("/** The operations over a transport. */\nexport function operations(t: Transport): Operations {\n  return {\n");
    for o in &ops {
        let key = o.declared.key.unwrap_or("null");
        let request = if o.request.is_some() {
            "request"
        } else {
            "null"
        };
        out.push_str(&format!(
            "    {}: ({}) => t({:?}, {key}, {request}) as Promise<{}>,\n",
            o.declared.name,
            o.params(),
            o.declared.name,
            o.response
        ));
    }
    out.push_str("  };\n}\n");
    out
}

/// Pretty JSON for a constant in the module.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("/* {e} */ null"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn checked_in(file: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../ui/src/generated")
            .join(file)
    }

    #[test]
    fn typescript_bindings_are_up_to_date() {
        check_current(&checked_in("api.ts"), &super::module());
    }

    #[test]
    fn typescript_operations_are_up_to_date() {
        check_current(&checked_in("operations.ts"), &super::operations_module());
    }

    #[test]
    fn the_typescript_client_names_every_declared_operation_and_route() {
        let m = super::operations_module();
        for d in crate::api::operations::declared() {
            assert!(
                m.contains(&format!(
                    "  {}: {{ method: {:?}, path: {:?}",
                    d.name, d.method, d.path
                )),
                "{} is missing from the TypeScript routes",
                d.name
            );
            assert!(m.contains(&format!("    {}: (", d.name)), "{}", d.name);
        }
        assert!(!m.contains("bigint"));
    }

    fn check_current(path: &std::path::Path, want: &str) {
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(path, want).expect("write");
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
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
