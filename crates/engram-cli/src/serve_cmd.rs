//! `engram serve`: the engines plus the UI and a JSON API on 127.0.0.1.
//!
//! The printed URL carries a random token; every `/api` request must present
//! it (`Authorization: Bearer …` or `?token=…`, the latter for EventSource).
//! Requests whose Host is not this loopback address are refused, which stops
//! DNS-rebinding pages from reaching the API. Backup changes go through the
//! running process, so there is never a second writer.

use crate::backups_cmd::backup_json;
use crate::run_cmd::{RunArgs, init_logging, report_startup, shutdown_signal, tokio_runtime};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use engram_core::runtime::Runtime;
use engram_core::snapshot::{self, SnapshotFormat};
use engram_core::{BackupKind, BackupQuery, Error, Result, rfc3339};
use serde::Deserialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_stream::StreamExt;

#[derive(Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The built UI to serve (default: ui/dist beside the binary's workspace).
    #[arg(long)]
    pub ui_dir: Option<PathBuf>,
}

struct AppState {
    runtime: Runtime,
    token: String,
    host: String,
    ui_dir: PathBuf,
}

type Shared = Arc<AppState>;

pub fn serve(data_dir: &Path, args: ServeArgs) -> Result<()> {
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io("create", data_dir, e))?;
    let _guard = init_logging(data_dir);
    let rt = tokio_runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|e| Error::io("listen on", format!("127.0.0.1:{}", args.port), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("listen on", "127.0.0.1", e))?;
        let runtime = Runtime::start(args.run.options(data_dir)).await?;
        report_startup(&runtime);
        let token = random_token()?;
        let state = Arc::new(AppState {
            runtime,
            token: token.clone(),
            host: addr.to_string(),
            ui_dir: args.ui_dir.clone().unwrap_or_else(default_ui_dir),
        });
        println!("Engram is serving on http://{addr}/?token={token}");
        let app = router(state.clone());
        let server = axum::serve(listener, app);
        let deadline = async {
            match args.run.run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = server => r.map_err(|e| Error::io("serve", addr.to_string(), e))?,
            _ = shutdown_signal() => {}
            _ = deadline => {}
        }
        state.runtime.stop().await
    })
}

fn default_ui_dir() -> PathBuf {
    // target/<profile>/engram -> <workspace>/ui/dist; else ./ui/dist.
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent()?.parent().map(|w| w.join("ui/dist")))
        .filter(|p| p.join("index.html").exists())
        .unwrap_or_else(|| PathBuf::from("ui/dist"))
}

fn random_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("read", "/dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/status", get(status))
        .route("/backups", get(list_backups).post(create_backup))
        .route("/backups/{id}", get(get_backup).delete(delete_backup))
        .route("/backups/{id}/restore", post(restore_backup))
        .route("/backups/{id}/pin", post(pin_backup))
        .route("/backups/{id}/unpin", post(unpin_backup))
        .route("/backups/{id}/export", get(export_backup))
        .route("/import", post(import_backup))
        .route("/verify", post(verify))
        .route("/settings", get(get_settings).put(put_settings))
        .route("/events", get(events))
        .layer(DefaultBodyLimit::max(
            snapshot::MAX_SNAPSHOT_BYTES.min(256 << 20) as usize,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api", api)
        .fallback(get(static_file))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_loopback_host,
        ))
        .with_state(state)
}

/// An API error: `{code, message}` with a matching HTTP status.
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status = match code {
            "not_found" => StatusCode::NOT_FOUND,
            "protected" | "locked" | "db_locked" => StatusCode::CONFLICT,
            "invalid_input" | "invalid_snapshot" | "unsupported_format" => StatusCode::BAD_REQUEST,
            "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "disk_full" => StatusCode::INSUFFICIENT_STORAGE,
            "read_only" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            axum::Json(json!({"code": code, "message": self.0.to_string()})),
        )
            .into_response()
    }
}

type ApiResult = std::result::Result<Response, ApiError>;

fn ok(v: serde_json::Value) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

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
        refuse(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            "requests must address 127.0.0.1 or localhost",
        )
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
        refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong token (use the URL `engram serve` printed)",
        )
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn status(State(s): State<Shared>) -> ApiResult {
    let metrics = s.runtime.metrics();
    let saved_at = s.runtime.with_store(|st| st.live_saved_at()).await?;
    let startup = s.runtime.startup_report().clone();
    let engines: serde_json::Map<String, serde_json::Value> = metrics
        .into_iter()
        .map(|(k, m)| (k, json!({"metrics": m})))
        .collect();
    ok(json!({
        "engines": engines,
        "saved_at": saved_at.map(rfc3339),
        "running": true,
        "startup": startup,
    }))
}

#[derive(Deserialize)]
struct ListParams {
    kind: Option<String>,
    engine: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
    after_created_at_ms: Option<i64>,
    after_id: Option<i64>,
}

async fn list_backups(State(s): State<Shared>, Query(p): Query<ListParams>) -> ApiResult {
    let kinds = match &p.kind {
        Some(k) => k
            .split(',')
            .map(|k| k.parse::<BackupKind>())
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let q = BackupQuery {
        kinds,
        engine: p.engine,
        after: match (p.after_created_at_ms, p.after_id) {
            (Some(created_at_ms), Some(id)) => {
                Some(engram_core::store::Cursor { created_at_ms, id })
            }
            _ => None,
        },
        offset: p.offset.unwrap_or(0),
        limit: p.limit.unwrap_or(50),
    };
    let page = s.runtime.with_store(move |st| st.list_backups(&q)).await?;
    ok(engram_core::view::backup_page(&page))
}

async fn get_backup(State(s): State<Shared>, UrlPath(id): UrlPath<i64>) -> ApiResult {
    let b = s.runtime.with_store(move |st| st.get_backup(id)).await?;
    ok(backup_json(&b))
}

#[derive(Deserialize, Default)]
struct CreateBody {
    label: Option<String>,
}

async fn create_backup(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let body: CreateBody = parse_body(&body)?;
    let b = s.runtime.backup_now(body.label).await?;
    ok(backup_json(&b))
}

#[derive(Deserialize, Default)]
struct RestoreBody {
    engine: Option<String>,
}

async fn restore_backup(
    State(s): State<Shared>,
    UrlPath(id): UrlPath<i64>,
    body: Bytes,
) -> ApiResult {
    let body: RestoreBody = parse_body(&body)?;
    let r = s.runtime.restore(id, body.engine).await?;
    ok(serde_json::to_value(r).map_err(|e| Error::Encode(e.to_string()))?)
}

fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| Error::InvalidInput(format!("request body: {e}")))
}

async fn set_pinned(s: Shared, id: i64, pinned: bool) -> ApiResult {
    let b = s
        .runtime
        .with_store(move |st| {
            st.set_pinned(id, pinned)?;
            st.get_backup(id)
        })
        .await?;
    ok(backup_json(&b))
}

async fn pin_backup(State(s): State<Shared>, UrlPath(id): UrlPath<i64>) -> ApiResult {
    set_pinned(s, id, true).await
}

async fn unpin_backup(State(s): State<Shared>, UrlPath(id): UrlPath<i64>) -> ApiResult {
    set_pinned(s, id, false).await
}

async fn delete_backup(State(s): State<Shared>, UrlPath(id): UrlPath<i64>) -> ApiResult {
    s.runtime.with_store(move |st| st.delete_backup(id)).await?;
    ok(json!({"deleted": id}))
}

#[derive(Deserialize)]
struct ExportParams {
    format: Option<String>,
}

async fn export_backup(
    State(s): State<Shared>,
    UrlPath(id): UrlPath<i64>,
    Query(p): Query<ExportParams>,
) -> ApiResult {
    let format: SnapshotFormat = p.format.as_deref().unwrap_or("json").parse()?;
    let bytes = s
        .runtime
        .with_store(move |st| snapshot::export_backup(st, id, format))
        .await?;
    let (ext, mime) = match format {
        SnapshotFormat::Json => ("json", "application/json"),
        SnapshotFormat::Binary => ("engram", "application/octet-stream"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"engram-backup-{id}.{ext}\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok((headers, bytes).into_response())
}

async fn import_backup(State(s): State<Shared>, body: Bytes) -> ApiResult {
    // Fully checked before the store is touched.
    let snap = snapshot::parse(&body)?;
    let b = s
        .runtime
        .with_store(move |st| {
            let id = st.import_snapshot(&snap, engram_core::now_ms())?;
            st.get_backup(id)
        })
        .await?;
    ok(backup_json(&b))
}

async fn verify(State(s): State<Shared>) -> ApiResult {
    let report = s.runtime.with_store(|st| st.verify_all(true)).await?;
    ok(serde_json::to_value(report).map_err(|e| Error::Encode(e.to_string()))?)
}

async fn get_settings(State(s): State<Shared>) -> ApiResult {
    let settings = s.runtime.settings().await?;
    ok(serde_json::to_value(settings).map_err(|e| Error::Encode(e.to_string()))?)
}

async fn put_settings(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let settings: engram_core::runtime::Settings =
        serde_json::from_slice(&body).map_err(|e| Error::InvalidInput(format!("settings: {e}")))?;
    let applied = s.runtime.update_settings(settings).await?;
    ok(serde_json::to_value(applied).map_err(|e| Error::Encode(e.to_string()))?)
}

async fn events(State(s): State<Shared>) -> impl IntoResponse {
    let stream =
        tokio_stream::wrappers::BroadcastStream::new(s.runtime.subscribe()).filter_map(|ev| {
            let ev = ev.ok()?;
            let data = serde_json::to_string(&ev).ok()?;
            Some(Ok::<_, std::convert::Infallible>(
                SseEvent::default().data(data),
            ))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn static_file(State(s): State<Shared>, uri: axum::http::Uri) -> Response {
    let rel = uri.path().trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if rel.split('/').any(|c| c == ".." || c.starts_with('.')) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = s.ui_dir.join(rel);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mime = match path.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                Some("json") => "application/json",
                _ => "application/octet-stream",
            };
            ([(header::CONTENT_TYPE, mime)], bytes).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
