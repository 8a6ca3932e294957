//! Every operation of Engram, declared once. [`for_each_operation!`](crate::for_each_operation) holds
//! the table — name, HTTP method and path, the key in the path, where the
//! request travels, the response, and whether it runs without a running
//! Engram — and everything a front door needs comes from it:
//!
//! - here, one marker type per operation in [`op`] implementing
//!   [`Operation`]: its constants and its call on the in-process [`Api`]
//!   and on the [`Offline`] API;
//! - the HTTP routes and handlers (`engram-http`: one generic handler);
//! - the desktop IPC commands (`engram-desktop`: one generic dispatcher);
//! - the TypeScript client of both UI transports
//!   (`ui/src/generated/operations.ts`, from [`super::typescript`]);
//! - the typed Rust client of a running Engram (`engram_http::client`) and
//!   the CLI's one policy for "running or not" (`engram-cli`'s `door.rs`).
//!
//! Adding an operation: a line in the table, the `Api` method of the same
//! name (and the `Offline` one when it runs offline), and their tests.
//!
//! Operations whose bodies are bytes rather than JSON (imports, exports,
//! learner states, the event stream) are declared in
//! [`for_each_byte_operation!`](crate::for_each_byte_operation): their routes come from it, while each door
//! moves their bytes its own way (raw IPC bodies, streamed HTTP bodies).
//!
//! Must not: know about HTTP servers, Tauri or terminals beyond the
//! method and path strings it declares.

use super::{Api, Offline};
use crate::wire::ApiResult;
use crate::wire::QueryForm;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;

/// The JSON operations: `name: METHOD "path" [key: Type] in Request =>
/// Response, runs;` where `in` is `query` or `body` (absent: no request),
/// `as Form` names the request's HTTP query-string form when it is not
/// flat, and `runs` says what may serve it besides a running Engram:
/// - `anywhere`: a read the data directory answers as well, even beside a
///   running Engram (read-only; it never queues behind the writer);
/// - `stopped`: the data directory serves it only when no Engram runs (a
///   change takes the writer lock; a read the running one knows more of);
///   otherwise the running Engram does;
/// - `running`: only a running Engram.
///
/// The macro calls `$callback! { … }` with the table, so a front door
/// expands it into whatever it needs.
#[macro_export]
macro_rules! for_each_operation {
    ([$($callback:tt)*] $($args:tt)*) => {
        $($callback)*! {
            $($args)*
            /// The engines, their latest metrics and saves, and what start-up found.
            status: GET "/status" [] => Status, anywhere;
            /// One page of backups, newest first.
            list_backups: GET "/backups" [] query ListBackups as ListBackupsQuery => BackupPage, anywhere;
            /// A `manual` backup of the engines as they are now.
            create_backup: POST "/backups" [] body CreateBackup => Backup, stopped;
            /// One backup.
            get_backup: GET "/backups/{id}" [id: i64] => Backup, anywhere;
            /// Two backups side by side: metrics in each and the change, and which states changed.
            compare_backups: GET "/backups/{id}/compare" [id: i64] query CompareRequest => Comparison, anywhere;
            /// One metric's value in every backup along the current line of history, oldest first.
            metric_in_backups: GET "/backups/metric" [] query MetricLineRequest => MetricLine, anywhere;
            /// Where along the current line of history a metric first fell below a threshold: the last good backup and the first after it.
            find_fall: GET "/backups/find" [] query FindFall => FallFound, anywhere;
            /// The same, drilling the backups that carry no value of the metric (bisecting); the drills are kept with them.
            bisect_fall: POST "/backups/bisect" [] body FindFall => FallFound, stopped;
            /// Re-evaluates a backup's states in a sandbox (engines' evaluations, learners' drill commands); the results are kept with it.
            drill_backup: POST "/backups/{id}/drill" [id: i64] body DrillRequest => Drills, stopped;
            /// A backup's drills, newest first.
            backup_drills: GET "/backups/{id}/drills" [id: i64] => Drills, anywhere;
            /// Deletes a backup; protected ones are refused with the reason.
            delete_backup: DELETE "/backups/{id}" [id: i64] => Deleted, stopped;
            /// Restores a backup (all engines or one) after a `pre-restore` backup.
            restore_backup: POST "/backups/{id}/restore" [id: i64] body RestoreRequest => RestoreReport, stopped;
            /// Pins a backup: retention never deletes it.
            pin_backup: POST "/backups/{id}/pin" [id: i64] => Backup, stopped;
            /// Unpins a backup.
            unpin_backup: POST "/backups/{id}/unpin" [id: i64] => Backup, stopped;
            /// Sets or clears a backup's label.
            set_label: PUT "/backups/{id}/label" [id: i64] body LabelRequest => Backup, stopped;
            /// Keeps a backup from retention while a user has it selected.
            hold_backup: POST "/backups/{id}/hold" [id: i64] => Hold, running;
            /// Ends a hold.
            release_backup: DELETE "/backups/{id}/hold" [id: i64] => Hold, running;
            /// The timeline of a range: counts by kind per bucket, and marks.
            timeline: GET "/timeline" [] query TimelineQuery as TimelineQueryForm => TimelineView, running;
            /// Sizes, deduplication and growth of the database.
            storage: GET "/storage" [] => StorageReport, running;
            /// Verifies the database and every stored state.
            verify: POST "/verify" [] => VerifyReport, anywhere;
            /// Why each backup asked about is kept, and whether the next periodic backup rolls it off.
            retention: GET "/retention" [] query RetentionRequest as RetentionQuery => Vec<RetentionOutlook>, running;
            /// Every learner, its live state, command and process.
            learners: GET "/learners" [] => Vec<LearnerInfo>, stopped;
            /// Registers a learner, or finds it again.
            attach_learner: POST "/learners" [] body AttachLearner => LearnerInfo, running;
            /// One learner.
            learner: GET "/learners/{name}" [name: String] => LearnerInfo, stopped;
            /// Deletes a learner (backups keep its states).
            remove_learner: DELETE "/learners/{name}" [name: String] => RemovedLearner, stopped;
            /// Supervises a learner: Engram runs its command.
            set_learner_command: PUT "/learners/{name}/command" [name: String] body SetLearnerCommand => LearnerInfo, stopped;
            /// Stops supervising a learner (its states stay).
            remove_learner_command: DELETE "/learners/{name}/command" [name: String] => LearnerInfo, stopped;
            /// A milestone the learner reports: a `breakthrough` backup.
            report_learner_milestone: POST "/learners/{name}/milestones" [name: String] body ReportMilestone => Backup, running;
            /// Sets a learner's drill command (an empty one removes it).
            set_learner_drill: PUT "/learners/{name}/drill" [name: String] body SetLearnerDrill => LearnerDrill, stopped;
            /// A learner's drill command.
            learner_drill: GET "/learners/{name}/drill" [name: String] => LearnerDrill, anywhere;
            /// Sets a learner's milestone rules in Engram, or goes back to its own.
            set_learner_milestone_rules: PUT "/learners/{name}/milestone-rules" [name: String] body SetMilestoneRules => LearnerInfo, stopped;
            /// Describes a learner's metrics in Engram, or goes back to its own.
            set_learner_metric_info: PUT "/learners/{name}/metric-info" [name: String] body SetMetricInfo => LearnerInfo, stopped;
            /// Starts a supervised learner (now, and at every launch).
            start_learner: POST "/learners/{name}/start" [name: String] => LearnerInfo, stopped;
            /// Stops a learner (or asks one that runs elsewhere to stop).
            stop_learner: POST "/learners/{name}/stop" [name: String] => LearnerInfo, stopped;
            /// Lends a learner a slot for its next save.
            lease_learner_slot: POST "/learners/{name}/lease" [name: String] => Option<SlotLease>, running;
            /// Saves what a learner wrote into a leased slot.
            save_leased_learner_state: POST "/learners/{name}/state/leased" [name: String] query SaveLeasedState as SaveLeasedStateQuery => LeasedSave, running;
            /// Logs a learner's metrics into the history.
            log_learner_metrics: POST "/learners/{name}/metrics" [name: String] body LogMetrics => Logged, running;
            /// The settings in force.
            settings: GET "/settings" [] => Settings, running;
            /// Changes only the settings the patch names.
            patch_settings: PUT "/settings" [] body SettingsPatch => Settings, running;
            /// What each setting is, its range and help text.
            settings_schema: GET "/settings/schema" [] => Vec<SettingField>, anywhere;
            /// What every metric means and how to print it.
            metric_catalog: GET "/metrics/catalog" [] => Vec<MetricInfo>, running;
            /// One metric's history across restarts, downsampled, with its branches.
            metric_series: GET "/metrics/series" [] query SeriesRequest => MetricSeries, running;
            /// Every offsite replica and how far it is.
            replicas: GET "/replicas" [] => Vec<ReplicaStatus>, anywhere;
            /// Adds an offsite replica (makes its repository, or joins one made with this key).
            add_replica: POST "/replicas" [] body AddReplica => ReplicaAdded, stopped;
            /// The replicas' repository key, to recover on another machine.
            replica_key: GET "/replica-key" [] => ReplicaKey, anywhere;
            /// One replica.
            replica: GET "/replicas/{name}" [name: String] => ReplicaStatus, anywhere;
            /// Forgets a replica (deletes nothing there).
            remove_replica: DELETE "/replicas/{name}" [name: String] => RemovedReplica, stopped;
            /// Checks a replica: its structure, and with read_data every pack; names the backups damage reaches.
            verify_replica: POST "/replicas/{name}/verify" [name: String] body VerifyReplica => ReplicaVerifyReport, stopped;
            /// Forgets on a replica what retention deleted here (never pinned, breakthrough or initial backups), then prunes.
            prune_replica: POST "/replicas/{name}/prune" [name: String] => ReplicaPruneReport, stopped;
            /// The backups a replica holds, and whether each is still here.
            replica_backups: GET "/replicas/{name}/backups" [name: String] => Vec<ReplicaBackup>, anywhere;
            /// Brings a backup deleted here back from a replica, as it was.
            retrieve_backup: POST "/replicas/{name}/retrieve" [name: String] body RetrieveBackup => Backup, stopped;
            /// How this host's fleet membership and sync stand.
            fleet_status: GET "/fleet" [] => FleetStatus, anywhere;
            /// Joins a fleet catalog on PostgreSQL (checked by connecting before anything is kept).
            fleet_join: POST "/fleet" [] body FleetJoin => FleetStatus, stopped;
            /// Leaves the fleet: this host's rows leave the catalog when it can be reached.
            fleet_leave: DELETE "/fleet" [] => FleetLeft, stopped;
            /// Renames this host in the fleet.
            fleet_rename: PUT "/fleet/name" [] body FleetName => FleetStatus, stopped;
            /// Every host of the fleet with its last sync, lag and health (read from PostgreSQL).
            fleet_hosts: GET "/fleet/hosts" [] => Vec<FleetHost>, anywhere;
            /// One page of every host's backups, newest first (read from PostgreSQL).
            fleet_backups: GET "/fleet/backups" [] query FleetBackupsQuery => FleetBackupPage, anywhere;
            /// The all-hosts timeline of a range: counts by kind per bucket, and marks (read from PostgreSQL).
            fleet_timeline: GET "/fleet/timeline" [] query FleetTimelineQuery => FleetTimeline, anywhere;
            /// One metric of an engine or learner on every host that has it, one curve per host (read from PostgreSQL).
            fleet_series: GET "/fleet/series" [] query SeriesRequest => Vec<FleetSeries>, anywhere;
            /// Restores here a backup any host made: from a shared replica, checked against the fleet's hashes, then a normal restore.
            fleet_restore: POST "/fleet/restore" [] body FleetRestore => FleetRestoreReport, stopped;
            /// Whether this Engram waits for its first-run choice (a data directory without Engram data), and how far a recovery is.
            first_run: GET "/first-run" [] => FirstRun, running;
            /// First run: starts the engines fresh on the empty data directory.
            start_fresh: POST "/first-run/fresh" [] => Status, running;
            /// First run: rebuilds the whole timeline from a replica into the empty data directory, then starts from its newest backup.
            recover_here: POST "/first-run/recover" [] body RecoverHere => RecoverReport, running;
        }
    };
    ($callback:ident) => {
        $crate::for_each_operation! { [$callback] }
    };
}

/// The operations whose bodies are bytes or a stream (`name: METHOD
/// "path"`): declared here so every route and command name has one
/// source; each door carries their bytes its own way.
#[macro_export]
macro_rules! for_each_byte_operation {
    ($callback:ident) => {
        $callback! {
            /// A backup as a portable file (`?format=json|binary`).
            export_backup: GET "/backups/{id}/export";
            /// Checks a snapshot file completely, then adds it as an `imported` backup.
            import_snapshot: POST "/import";
            /// A learner's state bytes, live or in a backup.
            read_learner_state: GET "/learners/{name}/state";
            /// Saves a learner's state from the streamed body.
            save_learner_state: PUT "/learners/{name}/state";
            /// Every event from now on (server-sent events).
            events: GET "/events";
        }
    };
}

/// Calls `$callback! { name name … }` with the names of the JSON
/// operations, for a door that needs only their marker types.
#[macro_export]
macro_rules! for_each_operation_name {
    ($callback:ident) => {
        $crate::for_each_operation! { [$crate::__operation_names] ($callback) }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __operation_names {
    (($callback:ident) $(
        $(#[doc = $doc:literal])*
        $name:ident : $method:ident $path:literal
            [$($key:ident : $kty:ty)?]
            $($in:ident $req:ty $(as $form:ty)?)?
            => $resp:ty, $runs:ident;
    )*) => {
        $callback! { $($name)* }
    };
}

/// Where an operation's request travels over HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestIn {
    /// It has none.
    Nothing,
    /// In the query string.
    Query,
    /// As the JSON body.
    Body,
}

/// What can serve an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runs {
    /// A read the data directory answers, even beside a running Engram.
    Anywhere,
    /// Served from the data directory only when no Engram runs.
    Stopped,
    /// Only a running Engram.
    Running,
}

/// One declared operation. The marker types in [`op`] implement it; a
/// front door is generic over it.
pub trait Operation: Send + Sync + 'static {
    /// The operation's name: the `Api` method, the IPC command, the
    /// TypeScript method.
    const NAME: &'static str;
    /// Its HTTP method (`GET`, `POST`, `PUT`, `DELETE`).
    const METHOD: &'static str;
    /// Its HTTP path under `/api`, with `{id}` or `{name}` for the key.
    const PATH: &'static str;
    /// The key's name in the path and in IPC arguments (`id`, `name`).
    const KEY: Option<&'static str>;
    const REQUEST_IN: RequestIn;
    /// The request travels in a query-string form of its own (`as Form`).
    const QUERY_FORM: bool;
    const RUNS: Runs;
    /// What it does (the declaration's doc comment).
    const DOC: &'static str;
    /// The backup id or learner name it addresses; [`NoKey`] when none.
    type Key: Serialize + DeserializeOwned + Send + Clone + std::fmt::Display + ts_rs::TS + 'static;
    /// `()` when it takes none.
    type Request: Serialize + DeserializeOwned + Default + Send + ts_rs::TS + 'static;
    /// The request's query-string form (itself when flat).
    type Form: QueryForm<Self::Request>;
    type Response: Serialize + DeserializeOwned + Send + ts_rs::TS + 'static;

    /// Calls it on the running Engram in this process.
    fn call(
        api: &Api,
        key: Self::Key,
        request: Self::Request,
    ) -> impl Future<Output = ApiResult<Self::Response>> + Send + '_;

    /// Serves it from a data directory no process runs (for
    /// [`Runs::Running`] operations: `not_running`).
    fn call_offline(
        offline: &Offline,
        key: Self::Key,
        request: Self::Request,
    ) -> crate::Result<Self::Response>;
}

/// A key-less operation's key, printed as nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, ts_rs::TS)]
pub struct NoKey;

impl std::fmt::Display for NoKey {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

/// The settings a patch changes: a JSON object nested like the settings.
pub type SettingsPatch = serde_json::Value;

/// The error of an operation only a running Engram serves.
pub fn not_running(name: &str) -> crate::Error {
    crate::Error::RuntimeStopped(format!(
        "`{name}` needs a running Engram (start `engram serve` or the app)"
    ))
}

#[doc(hidden)]
#[macro_export]
macro_rules! __present {
    () => {
        false
    };
    ($given:ty) => {
        true
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __or {
    ($default:ty;) => {
        $default
    };
    ($default:ty; $given:ty) => {
        $given
    };
}

/// The marker types, one per operation, and their calls.
pub mod op {
    use super::*;
    // The declaration names the types as the wire does.
    use crate::api::VerifyReport;
    use crate::wire::*;

    macro_rules! offline_call {
        (running, $name:ident, $call:expr) => {
            Err(super::not_running(stringify!($name)))
        };
        ($runs:ident, $name:ident, $call:expr) => {
            $call
        };
    }

    macro_rules! declare {
        ($(
            $(#[doc = $doc:literal])*
            $name:ident : $method:ident $path:literal
                [$($key:ident : $kty:ty)?]
                $($in:ident $req:ty $(as $form:ty)?)?
                => $resp:ty, $runs:ident;
        )*) => {$(
            $(#[doc = $doc])*
            #[allow(non_camel_case_types)]
            #[derive(Clone, Copy, Debug)]
            pub struct $name;

            impl Operation for $name {
                const NAME: &'static str = stringify!($name);
                const METHOD: &'static str = stringify!($method);
                const PATH: &'static str = $path;
                const KEY: Option<&'static str> = $crate::__key!($($key)?);
                const REQUEST_IN: RequestIn = $crate::__request_in!($($in)?);
                const QUERY_FORM: bool = $crate::__present!($($($form)?)?);
                const RUNS: Runs = $crate::__runs!($runs);
                const DOC: &'static str = concat!($($doc, "\n"),*);
                type Key = $crate::__or!(NoKey; $($kty)?);
                type Request = $crate::__or!((); $($req)?);
                type Form = $crate::__or!(Self::Request; $($($form)?)?);
                type Response = $resp;

                #[allow(unused_variables)]
                fn call(
                    api: &Api,
                    key: Self::Key,
                    request: Self::Request,
                ) -> impl Future<Output = ApiResult<Self::Response>> + Send + '_ {
                    async move { api.$name($($crate::__pass!($key, key),)? $($crate::__pass!($in, request))?).await }
                }

                #[allow(unused_variables)]
                fn call_offline(
                    offline: &Offline,
                    key: Self::Key,
                    request: Self::Request,
                ) -> crate::Result<Self::Response> {
                    offline_call!($runs, $name,
                        offline.$name($($crate::__pass!($key, key),)? $($crate::__pass!($in, request))?))
                }
            }
        )*};
    }

    crate::for_each_operation!(declare);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __pass {
    ($ignored:tt, $value:expr) => {
        $value
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __request_in {
    () => {
        $crate::api::operations::RequestIn::Nothing
    };
    (query) => {
        $crate::api::operations::RequestIn::Query
    };
    (body) => {
        $crate::api::operations::RequestIn::Body
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __key {
    () => {
        None
    };
    ($key:ident) => {
        Some(stringify!($key))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __runs {
    (anywhere) => {
        $crate::api::operations::Runs::Anywhere
    };
    (stopped) => {
        $crate::api::operations::Runs::Stopped
    };
    (running) => {
        $crate::api::operations::Runs::Running
    };
}

/// What a front door may list of each operation (for tests and docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Declared {
    pub name: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub key: Option<&'static str>,
    pub request_in: RequestIn,
    pub query_form: bool,
    pub runs: Runs,
    pub doc: &'static str,
}

impl Declared {
    pub fn of<O: Operation>() -> Declared {
        Declared {
            name: O::NAME,
            method: O::METHOD,
            path: O::PATH,
            key: O::KEY,
            request_in: O::REQUEST_IN,
            query_form: O::QUERY_FORM,
            runs: O::RUNS,
            doc: O::DOC,
        }
    }
}

/// Every JSON operation, in declaration order.
pub fn declared() -> Vec<Declared> {
    macro_rules! list {
        ($($name:ident)*) => {
            vec![$(Declared::of::<op::$name>()),*]
        };
    }
    crate::for_each_operation_name!(list)
}

/// An operation whose body is bytes or a stream: its route is declared,
/// its transport is each door's.
pub trait ByteOperation {
    const NAME: &'static str;
    const METHOD: &'static str;
    const PATH: &'static str;

    /// The name of the key in its path (`id`, `name`), if it has one.
    fn key() -> Option<&'static str> {
        path_key(Self::PATH)
    }
}

/// The name of the key in a declared path: `/learners/{name}/state` →
/// `name`.
pub fn path_key(path: &'static str) -> Option<&'static str> {
    let (_, rest) = path.split_once('{')?;
    rest.split_once('}').map(|(key, _)| key)
}

/// The marker types of the byte operations.
pub mod byte_op {
    use super::ByteOperation;
    macro_rules! declare {
        ($( $(#[doc = $doc:literal])* $name:ident : $method:ident $path:literal; )*) => {$(
            $(#[doc = $doc])*
            #[allow(non_camel_case_types)]
            #[derive(Clone, Copy, Debug)]
            pub struct $name;
            impl ByteOperation for $name {
                const NAME: &'static str = stringify!($name);
                const METHOD: &'static str = stringify!($method);
                const PATH: &'static str = $path;
            }
        )*};
    }
    crate::for_each_byte_operation!(declare);
}

/// Every byte operation: (name, method, path); [`path_key`] names its key.
pub fn declared_bytes() -> Vec<(&'static str, &'static str, &'static str)> {
    macro_rules! list {
        ($( $(#[doc = $doc:literal])* $name:ident : $method:ident $path:literal; )*) => {
            vec![$((stringify!($name), stringify!($method), $path)),*]
        };
    }
    crate::for_each_byte_operation!(list)
}
