//! Engram's HTTP front door: the JSON API, its event stream, the learner API
//! and the UI, on 127.0.0.1 — in every process that runs the runtime
//! (`engram serve`, `engram run`, the desktop app), so learners of other
//! processes always find it ([`start`] publishes the port in the data
//! directory's `serve.port` and the token in its `access.token`).
//!
//! Every handler parses its input, calls one `engram_core::api` function and
//! returns [`Reply`]; no handler builds JSON or picks a status by hand (the
//! status of an error is `ErrorCode::http_status`). The printed URL carries a
//! random token that every `/api` request must present (`Authorization:
//! Bearer …` or `?token=…`, the latter for EventSource). Requests whose Host is
//! not this loopback address are refused, which stops DNS-rebinding pages.
//! The UI is embedded in the binary, so an installed `engram` serves it from
//! anywhere; its responses carry the same strict Content-Security-Policy as
//! the desktop window.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use engram_core::api::{
    Api, ApiError, ApiResult, AttachLearner, Backup, BackupPage, CreateBackup, Deleted, ExportFile,
    ExportRequest, Hold, LabelRequest, LearnerStateFile, LeasedSave, ListBackups, ListBackupsQuery,
    LogMetrics, Logged, ReadLearnerState, ReportMilestone, RestoreReport, RestoreRequest,
    RetentionOutlook, RetentionQuery, RetentionRequest, SaveLearnerState, SaveLearnerStateQuery,
    SaveLeasedState, SaveLeasedStateQuery, SeriesRequest, SetLearnerCommand, SetMetricInfo,
    SetMilestoneRules, SettingField, SlotLease, Status, TimelineQueryForm, VerifyReport,
};
use engram_core::engines::catalog::MetricInfo;
use engram_core::runtime::Settings;
use engram_core::store::{
    LearnerInfo, LearnerState, MetricSeries, RemovedLearner, StorageReport, TimelineQuery,
    TimelineView,
};
use engram_core::{Error, ErrorCode, snapshot};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_stream::StreamExt;

/// The same policy as the desktop window's, with `connect-src 'self'` for the API.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'";

/// The built UI (`ui/dist`), compiled into the binary.
#[derive(rust_embed::RustEmbed)]
#[folder = "../../ui/dist"]
struct Ui;

/// What the server holds.
pub struct Server {
    pub api: Arc<Api>,
    pub token: String,
    /// `127.0.0.1:<port>`: the only Host (besides `localhost:<port>`) accepted.
    pub host: String,
    /// Serve the UI from this directory instead of the embedded copy.
    pub ui_dir: Option<PathBuf>,
}

type Shared = Arc<Server>;

/// The whole application: `/api/…` behind the token, the UI around it, all
/// behind the Host check.
pub fn router(server: Shared) -> Router {
    let api = Router::new()
        .route("/status", get(status))
        .route("/backups", get(list_backups).post(create_backup))
        .route("/backups/{id}", get(get_backup).delete(delete_backup))
        .route("/backups/{id}/restore", post(restore_backup))
        .route("/backups/{id}/pin", post(pin_backup))
        .route("/backups/{id}/unpin", post(unpin_backup))
        .route("/backups/{id}/label", put(label_backup))
        .route(
            "/backups/{id}/hold",
            post(hold_backup).delete(release_backup),
        )
        .route("/timeline", get(timeline))
        .route("/learners", get(learners).post(attach_learner))
        .route("/learners/{name}", get(learner).delete(remove_learner))
        .route(
            "/learners/{name}/state",
            get(read_learner_state).put(save_learner_state),
        )
        .route("/learners/{name}/lease", post(lease_learner_slot))
        .route(
            "/learners/{name}/state/leased",
            post(save_leased_learner_state),
        )
        .route("/learners/{name}/metrics", post(log_learner_metrics))
        .route(
            "/learners/{name}/command",
            put(set_learner_command).delete(remove_learner_command),
        )
        .route(
            "/learners/{name}/milestones",
            post(report_learner_milestone),
        )
        .route(
            "/learners/{name}/milestone-rules",
            put(set_learner_milestone_rules),
        )
        .route("/learners/{name}/metric-info", put(set_learner_metric_info))
        .route("/learners/{name}/start", post(start_learner))
        .route("/learners/{name}/stop", post(stop_learner))
        .route("/storage", get(storage))
        .route("/backups/{id}/export", get(export_backup))
        // Two uploads at a time are read into memory; more wait their turn
        // before their bodies are read (the API imports one at a time).
        .route(
            "/import",
            post(import_snapshot).layer(tower::limit::GlobalConcurrencyLimitLayer::new(2)),
        )
        .route("/verify", post(verify))
        .route("/retention", get(retention))
        .route("/settings", get(get_settings).put(put_settings))
        .route("/settings/schema", get(settings_schema))
        .route("/metrics/catalog", get(metric_catalog))
        .route("/metrics/series", get(metric_series))
        .route("/events", get(events))
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(
            snapshot::MAX_SNAPSHOT_BYTES.min(256 << 20) as usize,
        ))
        .route_layer(middleware::from_fn_with_state(
            server.clone(),
            require_token,
        ));
    Router::new()
        .nest("/api", api)
        .fallback(get(static_file))
        .layer(middleware::from_fn_with_state(
            server.clone(),
            require_loopback_host,
        ))
        .with_state(server)
}

// ----- handlers: parse, call one API function, reply ------------------------

async fn status(State(s): State<Shared>) -> Reply<Status> {
    Reply(s.api.status().await)
}

async fn list_backups(
    State(s): State<Shared>,
    Form(req, _): Form<ListBackupsQuery, ListBackups>,
) -> Reply<BackupPage> {
    Reply(s.api.list_backups(req).await)
}

async fn get_backup(State(s): State<Shared>, Id(id): Id) -> Reply<Backup> {
    Reply(s.api.get_backup(id).await)
}

async fn create_backup(State(s): State<Shared>, Body(req): Body<CreateBackup>) -> Reply<Backup> {
    Reply(s.api.create_backup(req).await)
}

async fn restore_backup(
    State(s): State<Shared>,
    Id(id): Id,
    Body(req): Body<RestoreRequest>,
) -> Reply<RestoreReport> {
    Reply(s.api.restore_backup(id, req).await)
}

async fn pin_backup(State(s): State<Shared>, Id(id): Id) -> Reply<Backup> {
    Reply(s.api.set_pinned(id, true).await)
}

async fn unpin_backup(State(s): State<Shared>, Id(id): Id) -> Reply<Backup> {
    Reply(s.api.set_pinned(id, false).await)
}

async fn label_backup(
    State(s): State<Shared>,
    Id(id): Id,
    Body(req): Body<LabelRequest>,
) -> Reply<Backup> {
    Reply(s.api.set_label(id, req).await)
}

async fn hold_backup(State(s): State<Shared>, Id(id): Id) -> Reply<Hold> {
    Reply(s.api.hold_backup(id).await)
}

async fn release_backup(State(s): State<Shared>, Id(id): Id) -> Reply<Hold> {
    Reply(s.api.release_backup(id).await)
}

async fn timeline(
    State(s): State<Shared>,
    Query(q): Query<TimelineQueryForm>,
) -> Reply<TimelineView> {
    match TimelineQuery::try_from(q) {
        Ok(q) => Reply(s.api.timeline(q).await),
        Err(e) => Reply(Err(e.into())),
    }
}

async fn learners(State(s): State<Shared>) -> Reply<Vec<LearnerInfo>> {
    Reply(s.api.learners().await)
}

async fn attach_learner(
    State(s): State<Shared>,
    Body(req): Body<AttachLearner>,
) -> Reply<LearnerInfo> {
    Reply(s.api.attach_learner(req).await)
}

async fn learner(State(s): State<Shared>, Name(name): Name) -> Reply<LearnerInfo> {
    Reply(s.api.learner(name).await)
}

async fn set_learner_command(
    State(s): State<Shared>,
    Name(name): Name,
    Body(req): Body<SetLearnerCommand>,
) -> Reply<LearnerInfo> {
    Reply(s.api.set_learner_command(name, req).await)
}

async fn set_learner_milestone_rules(
    State(s): State<Shared>,
    Name(name): Name,
    Body(req): Body<SetMilestoneRules>,
) -> Reply<LearnerInfo> {
    Reply(s.api.set_learner_milestone_rules(name, req).await)
}

async fn set_learner_metric_info(
    State(s): State<Shared>,
    Name(name): Name,
    Body(req): Body<SetMetricInfo>,
) -> Reply<LearnerInfo> {
    Reply(s.api.set_learner_metric_info(name, req).await)
}

async fn remove_learner(State(s): State<Shared>, Name(name): Name) -> Reply<RemovedLearner> {
    Reply(s.api.remove_learner(name).await)
}

async fn remove_learner_command(State(s): State<Shared>, Name(name): Name) -> Reply<LearnerInfo> {
    Reply(s.api.remove_learner_command(name).await)
}

async fn report_learner_milestone(
    State(s): State<Shared>,
    Name(name): Name,
    Body(req): Body<ReportMilestone>,
) -> Reply<Backup> {
    Reply(s.api.report_learner_milestone(name, req).await)
}

async fn start_learner(State(s): State<Shared>, Name(name): Name) -> Reply<LearnerInfo> {
    Reply(s.api.start_learner(name).await)
}

async fn stop_learner(State(s): State<Shared>, Name(name): Name) -> Reply<LearnerInfo> {
    Reply(s.api.stop_learner(name).await)
}

/// The body streams straight into the state's object (no size limit here:
/// the API stops at `MAX_LEARNER_STATE_BYTES`).
async fn save_learner_state(
    State(s): State<Shared>,
    Name(name): Name,
    Form(meta, _): Form<SaveLearnerStateQuery, SaveLearnerState>,
    body: axum::body::Body,
) -> Reply<LearnerState> {
    Reply(
        s.api
            .save_learner_state(name, meta, body.into_data_stream())
            .await,
    )
}

async fn lease_learner_slot(State(s): State<Shared>, Name(name): Name) -> Reply<Option<SlotLease>> {
    Reply(s.api.lease_learner_slot(name).await)
}

async fn save_leased_learner_state(
    State(s): State<Shared>,
    Name(name): Name,
    Form(req, _): Form<SaveLeasedStateQuery, SaveLeasedState>,
) -> Reply<LeasedSave> {
    Reply(s.api.save_leased_learner_state(name, req).await)
}

async fn read_learner_state(
    State(s): State<Shared>,
    Name(name): Name,
    Query(req): Query<ReadLearnerState>,
) -> StateDownload {
    StateDownload(s.api.read_learner_state(name, req).await)
}

async fn log_learner_metrics(
    State(s): State<Shared>,
    Name(name): Name,
    Body(req): Body<LogMetrics>,
) -> Reply<Logged> {
    Reply(s.api.log_learner_metrics(name, req).await)
}

async fn storage(State(s): State<Shared>) -> Reply<StorageReport> {
    Reply(s.api.storage().await)
}

async fn delete_backup(State(s): State<Shared>, Id(id): Id) -> Reply<Deleted> {
    Reply(s.api.delete_backup(id).await)
}

async fn export_backup(
    State(s): State<Shared>,
    Id(id): Id,
    Query(req): Query<ExportRequest>,
) -> Download {
    Download(s.api.export_backup(id, req).await)
}

async fn import_snapshot(State(s): State<Shared>, Raw(body): Raw) -> Reply<Backup> {
    Reply(s.api.import_snapshot(&body).await)
}

async fn verify(State(s): State<Shared>) -> Reply<VerifyReport> {
    Reply(s.api.verify().await)
}

async fn retention(
    State(s): State<Shared>,
    Form(req, _): Form<RetentionQuery, RetentionRequest>,
) -> Reply<Vec<RetentionOutlook>> {
    Reply(s.api.retention(req).await)
}

async fn get_settings(State(s): State<Shared>) -> Reply<Settings> {
    Reply(s.api.settings().await)
}

async fn put_settings(
    State(s): State<Shared>,
    Body(patch): Body<serde_json::Value>,
) -> Reply<Settings> {
    Reply(s.api.patch_settings(patch).await)
}

async fn settings_schema(State(s): State<Shared>) -> Reply<Vec<SettingField>> {
    Reply(Ok(s.api.settings_schema()))
}

async fn metric_series(
    State(s): State<Shared>,
    Query(req): Query<SeriesRequest>,
) -> Reply<MetricSeries> {
    Reply(s.api.metric_series(req).await)
}

async fn metric_catalog(State(s): State<Shared>) -> Reply<Vec<MetricInfo>> {
    Reply(s.api.metric_catalog().await)
}

async fn events(State(s): State<Shared>) -> Response {
    match s.api.events() {
        Ok(events) => Sse::new(events.map(|ev| SseEvent::default().json_data(ev)))
            .keep_alive(KeepAlive::default())
            .into_response(),
        Err(e) => Reply::<()>(Err(e)).into_response(),
    }
}

async fn unknown_route(uri: axum::http::Uri) -> Reply<()> {
    Reply(Err(Error::NotFound {
        what: "API route",
        id: uri.path().to_string(),
    }
    .into()))
}

// ----- replies -----------------------------------------------------------------

/// An API result as an HTTP response: the value as JSON, or `{code, message}`
/// with the code's status.
pub struct Reply<T>(pub ApiResult<T>);

impl<T: serde::Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => error_response(e),
        }
    }
}

fn error_response(e: ApiError) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e)).into_response()
}

/// An export as a file download.
struct Download(ApiResult<ExportFile>);

impl IntoResponse for Download {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(f) => {
                let disposition =
                    HeaderValue::from_str(&format!("attachment; filename=\"{}\"", f.file_name))
                        .unwrap_or(HeaderValue::from_static("attachment"));
                (
                    [
                        (header::CONTENT_TYPE, HeaderValue::from_static(f.media_type)),
                        (header::CONTENT_DISPOSITION, disposition),
                    ],
                    f.bytes,
                )
                    .into_response()
            }
            Err(e) => error_response(e),
        }
    }
}

/// A learner's state: its bytes as the body, what it says of itself in
/// `X-Engram-Checksum`, `X-Engram-Step` (when it has one),
/// `X-Engram-Saved-At-Ms` and `X-Engram-Generation` (the learner's now).
struct StateDownload(ApiResult<LearnerStateFile>);

impl IntoResponse for StateDownload {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(f) => {
                let mut headers = axum::http::HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                let mut put = |name: &'static str, value: String| {
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        headers.insert(name, v);
                    }
                };
                put("x-engram-checksum", f.state.checksum.clone());
                put("x-engram-saved-at-ms", f.state.saved_at_ms.to_string());
                put("x-engram-generation", f.generation.to_string());
                if let Some(step) = f.state.step {
                    put("x-engram-step", step.to_string());
                }
                (headers, f.bytes).into_response()
            }
            Err(e) => error_response(e),
        }
    }
}

// ----- extractors whose refusals are API errors -----------------------------------

/// A learner's name from the path (its rules are checked by the core).
struct Name(String);

impl<S: Send + Sync> FromRequestParts<S> for Name {
    type Rejection = Reply<()>;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| Name(p.0))
            .map_err(|e| invalid(format!("learner name: {e}")))
    }
}

/// A backup id from the path; anything else is `invalid_input`.
struct Id(i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Reply<()>;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<i64>::from_request_parts(parts, state)
            .await
            .map(|p| Id(p.0))
            .map_err(|e| invalid(format!("backup id: {e}")))
    }
}

/// A query string; a malformed one is `invalid_input`.
struct Query<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Reply<()>;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| invalid(format!("query: {}", e.body_text())))
    }
}

/// A request parsed from its query-string form `F` (a listing, a timeline
/// range); a bad one is `invalid_input`.
struct Form<F, T>(T, std::marker::PhantomData<F>);

impl<S, F, T> FromRequestParts<S> for Form<F, T>
where
    S: Send + Sync,
    F: DeserializeOwned,
    T: TryFrom<F, Error = Error>,
{
    type Rejection = Reply<()>;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(q) = Query::<F>::from_request_parts(parts, state).await?;
        T::try_from(q)
            .map(|t| Form(t, std::marker::PhantomData))
            .map_err(|e| Reply(Err(e.into())))
    }
}

/// The raw body; one over the size limit is `too_large`.
struct Raw(Bytes);

impl<S: Send + Sync> FromRequest<S> for Raw {
    type Rejection = Reply<()>;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(Raw).map_err(|e| {
            let code = match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
                _ => ErrorCode::InvalidInput,
            };
            Reply(Err(ApiError::new(
                code,
                format!("request body: {}", e.body_text()),
            )))
        })
    }
}

/// A JSON body; an empty body is the request's default, malformed JSON is
/// `invalid_input`.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for Body<T> {
    type Rejection = Reply<()>;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Raw(bytes) = Raw::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| invalid(format!("request body: {e}")))
    }
}

fn invalid(message: String) -> Reply<()> {
    Reply(Err(Error::InvalidInput(message).into()))
}

// ----- guards ------------------------------------------------------------------------

async fn require_loopback_host(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let port = s.host.rsplit(':').next().unwrap_or("");
    if host == s.host || host == format!("localhost:{port}") {
        next.run(req).await
    } else {
        error_response(ApiError::new(
            ErrorCode::ForbiddenHost,
            "requests must address 127.0.0.1 or localhost",
        ))
    }
}

async fn require_token(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned);
    let query = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_owned())
    });
    let presented = bearer.or(query).unwrap_or_default();
    if constant_time_eq(presented.as_bytes(), s.token.as_bytes()) {
        next.run(req).await
    } else {
        error_response(ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong token (use the URL `engram serve` printed)",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ----- the UI ------------------------------------------------------------------------

async fn static_file(State(s): State<Shared>, uri: axum::http::Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let file = match &s.ui_dir {
        None => Ui::get(path).map(|f| f.data.into_owned()),
        // Plain names only: no parent or hidden components.
        Some(_)
            if path
                .split('/')
                .any(|c| c.is_empty() || c == ".." || c.starts_with('.')) =>
        {
            None
        }
        Some(dir) => tokio::fs::read(dir.join(path)).await.ok(),
    };
    let Some(bytes) = file else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = mime_guess::from_path(path)
        .first_or_octet_stream()
        .to_string();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&mime)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response()
}

pub mod listen;

/// How to serve.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Port on 127.0.0.1 (0: a free one). None: the data directory's last
    /// port if free (so pages and learners reconnect), else a free one.
    pub port: Option<u16>,
    /// Serve the UI from this directory instead of the embedded copy.
    pub ui_dir: Option<PathBuf>,
    /// Make a new access token (the old one stops working).
    pub new_token: bool,
}

/// The port a data directory was last served on (`<data dir>/serve.port`).
pub const PORT_FILE: &str = "serve.port";

/// A bound server: its address, its URL (with the token) and the future
/// that serves until dropped.
pub struct Serving {
    pub addr: std::net::SocketAddr,
    pub url: String,
    pub serve: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Binds 127.0.0.1, publishes the port and the token in the data
/// directory, and starts the supervised learners (they save through this
/// API, so they start once it listens). Serving starts when the returned
/// future is polled.
pub async fn start(
    api: Arc<Api>,
    data_dir: &std::path::Path,
    opts: Options,
) -> engram_core::Result<Serving> {
    let listener = bind(data_dir, opts.port).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("listen on", "127.0.0.1", e))?;
    let token = engram_core::access::access_token(data_dir, opts.new_token)?;
    let url = format!("http://{addr}/?token={token}");
    if let Err(e) = api.supervise_learners().await {
        tracing::warn!(error = %e.message, "supervised learners were not started");
    }
    let server = Arc::new(Server {
        api,
        token,
        host: addr.to_string(),
        ui_dir: opts.ui_dir,
    });
    let serve = Box::pin(listen::serve(listener, router(server), Default::default()));
    Ok(Serving { addr, url, serve })
}

/// Binds 127.0.0.1 on the asked port, or else on the data directory's
/// last port if free, else on a free one; remembers the port bound.
async fn bind(
    dir: &std::path::Path,
    asked: Option<u16>,
) -> engram_core::Result<tokio::net::TcpListener> {
    let bind = |port: u16| async move {
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| Error::io("listen on", format!("127.0.0.1:{port}"), e))
    };
    let listener = match asked {
        Some(port) => bind(port).await?,
        None => {
            let last = std::fs::read_to_string(dir.join(PORT_FILE))
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
                .filter(|&p| p != 0);
            match last {
                Some(p) => match bind(p).await {
                    Ok(l) => l,
                    Err(_) => bind(0).await?,
                },
                None => bind(0).await?,
            }
        }
    };
    if let Ok(addr) = listener.local_addr() {
        // Best effort: only a convenience for the next start (clients
        // fall back to their spool when they cannot reach Engram).
        let _ = std::fs::write(dir.join(PORT_FILE), format!("{}\n", addr.port()));
    }
    Ok(listener)
}

#[cfg(test)]
mod tests;
