//! The HTTP API in process (`tower::ServiceExt::oneshot`): every route, the
//! guards, and every error code with its status — against a real runtime on a
//! real SQLite file.

use super::*;
use crate::reply::error_response;
use axum::body::Body as HttpBody;
use axum::http::header;
use axum::http::{Method, Request as HttpRequest};
use engram_core::ErrorCode;
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::wire::ApiError;
use engram_core::wire::Settings;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const HOST: &str = "127.0.0.1:4242";
const TOKEN: &str = "test-token";

struct Harness {
    app: Router,
    server: Shared,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    harness_paced(std::time::Duration::from_millis(1)).await
}

/// With engines ticking every `pace` (a slow pace: no breakthrough backup
/// comes in the middle of a test that counts what backups hold).
async fn harness_paced(pace: std::time::Duration) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = RuntimeOptions::new(dir.path());
    opts.pace = pace;
    let runtime = Runtime::start(opts).await.expect("start");
    let server = Arc::new(Server {
        api: Arc::new(Api::new(runtime)),
        token: TOKEN.into(),
        host: HOST.into(),
        ui_dir: None,
    });
    Harness {
        app: router(server.clone()),
        server,
        _dir: dir,
    }
}

/// A response: status, headers and body.
struct Answer {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Asserts an API error with this code and the code's own status.
    fn refused(&self, code: ErrorCode) {
        let body = self.json();
        assert_eq!(body["code"], code.as_str(), "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert_eq!(self.status, code.http_status(), "{code}: {body}");
    }
}

impl Harness {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        host: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = HttpRequest::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, host);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let res = self
            .app
            .clone()
            .oneshot(req.body(HttpBody::from(body)).expect("request"))
            .await
            .expect("infallible");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// An authorised call with a raw body.
    async fn bytes(&self, method: Method, uri: &str, body: Vec<u8>) -> Answer {
        self.send(method, uri, Some(TOKEN), HOST, body).await
    }

    /// Saves `body` as learner `name`'s state at `step`; it must be taken.
    async fn save_state(&self, name: &str, step: u64, body: Vec<u8>) {
        let a = self
            .bytes(
                Method::PUT,
                &format!("/api/learners/{name}/state?step={step}"),
                body,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.json());
    }

    async fn call(&self, method: Method, uri: &str, body: &str) -> Answer {
        self.send(method, uri, Some(TOKEN), HOST, body.as_bytes().to_vec())
            .await
    }

    /// A call that must succeed; its JSON.
    async fn ok(&self, method: Method, uri: &str, body: &str) -> Value {
        let a = self.call(method.clone(), uri, body).await;
        assert_eq!(
            a.status,
            200,
            "{method} {uri}: {}",
            String::from_utf8_lossy(&a.body)
        );
        a.json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_with_the_api_types() {
    let h = harness().await;

    let status = h.ok(Method::GET, "/api/status", "").await;
    assert_eq!(status["running"], true);
    assert_eq!(status["backups"], 1);
    assert!(
        status["engines"]["mdp_es"]["metrics"].is_object(),
        "{status}"
    );
    assert!(status["startup"]["first_start"].as_bool().unwrap_or(false));

    let outlook = h.ok(Method::GET, "/api/retention", "").await;
    assert_eq!(outlook[0]["rolls_off_next"], false, "{outlook}");
    let one = h.ok(Method::GET, "/api/retention?ids=1,999", "").await;
    assert_eq!(
        one.as_array().map(Vec::len),
        Some(1),
        "only the ids asked about: {one}"
    );
    assert_eq!(one[0]["id"], 1);
    assert!(
        outlook[0]["kept_because"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.contains("initial")))),
        "{outlook}"
    );

    let list = h
        .ok(Method::GET, "/api/backups?kind=initial,manual&limit=5", "")
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["kind"], "initial");
    assert!(list["next"].is_null());

    let manual = h
        .ok(Method::POST, "/api/backups", r#"{"label":"first"}"#)
        .await;
    assert_eq!(
        (manual["kind"].as_str(), manual["label"].as_str()),
        (Some("manual"), Some("first"))
    );
    let id = manual["id"].as_i64().expect("id");
    let unlabelled = h.ok(Method::POST, "/api/backups", "").await;
    assert!(unlabelled["label"].is_null());

    // Paging: offset and keyset cursors page through the same order.
    let first = h.ok(Method::GET, "/api/backups?limit=1", "").await;
    let cursor = &first["next"];
    let second = h
        .ok(
            Method::GET,
            &format!(
                "/api/backups?limit=1&after_created_at_ms={}&after_id={}",
                cursor["created_at_ms"], cursor["id"]
            ),
            "",
        )
        .await;
    let by_offset = h.ok(Method::GET, "/api/backups?limit=1&offset=1", "").await;
    assert_eq!(second["items"][0]["id"], by_offset["items"][0]["id"]);
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    // (kinds named: a breakthrough backup may come at any moment)
    let zap_only = h
        .ok(
            Method::GET,
            "/api/backups?engine=zap&kind=initial,manual",
            "",
        )
        .await;
    assert_eq!(zap_only["total"], 3, "{zap_only}");
    let none = h.ok(Method::GET, "/api/backups?engine=nope", "").await;
    assert_eq!(none["total"], 0);

    // Search and the pinned filter.
    // (the initial backup is labelled "first launch")
    let found = h.ok(Method::GET, "/api/backups?q=FIRST", "").await;
    assert_eq!(found["total"], 2, "{found}");
    let found = h
        .ok(Method::GET, "/api/backups?q=first&kind=manual", "")
        .await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["items"][0]["id"], id);
    let pinned = h.ok(Method::GET, "/api/backups?pinned=true", "").await;
    assert_eq!(pinned["total"], 0);

    // The timeline summary: the whole history, counts by kind, marks.
    let t = h
        .ok(
            Method::GET,
            "/api/timeline?buckets=4&kind=initial,manual",
            "",
        )
        .await;
    assert_eq!(
        (t["in_range"].as_u64(), t["total"].as_u64()),
        (Some(3), Some(3)),
        "{t}"
    );
    assert_eq!(t["complete"], true);
    assert_eq!(t["marks"][0]["kind"], "initial");
    assert!(t["first_ms"].as_i64() <= t["last_ms"].as_i64());

    let storage = h.ok(Method::GET, "/api/storage", "").await;
    assert_eq!(storage["backups"], 3, "{storage}");
    assert!(storage["stored_bytes"].as_u64() > Some(0));
    assert!(storage["growth"].as_array().is_some_and(|g| !g.is_empty()));

    // A hold keeps a backup from retention; releasing ends it.
    let held = h
        .ok(Method::POST, &format!("/api/backups/{id}/hold"), "")
        .await;
    assert_eq!(
        (held["id"].as_i64(), held["seconds"].as_u64()),
        (Some(id), Some(180))
    );
    let outlook = h.ok(Method::GET, "/api/retention", "").await;
    let mine = outlook
        .as_array()
        .and_then(|o| o.iter().find(|o| o["id"] == id))
        .expect("outlook of the held backup");
    assert!(
        mine["kept_because"].to_string().contains("open in the UI"),
        "{mine}"
    );
    let released = h
        .ok(Method::DELETE, &format!("/api/backups/{id}/hold"), "")
        .await;
    assert_eq!(released["seconds"], 0);

    assert_eq!(
        h.ok(Method::GET, &format!("/api/backups/{id}"), "").await["id"],
        id
    );
    let labelled = h
        .ok(
            Method::PUT,
            &format!("/api/backups/{id}/label"),
            r#"{"label":"renamed"}"#,
        )
        .await;
    assert_eq!(labelled["label"], "renamed");
    let cleared = h
        .ok(Method::PUT, &format!("/api/backups/{id}/label"), "{}")
        .await;
    assert!(cleared["label"].is_null());
    assert_eq!(
        h.ok(Method::POST, &format!("/api/backups/{id}/pin"), "")
            .await["pinned"],
        true
    );
    assert_eq!(
        h.ok(Method::POST, &format!("/api/backups/{id}/unpin"), "")
            .await["pinned"],
        false
    );

    for (format, media, start) in [
        ("json", "application/json", &b"{"[..]),
        ("binary", "application/octet-stream", b"ENGRAMSN"),
    ] {
        let file = h
            .call(
                Method::GET,
                &format!("/api/backups/{id}/export?format={format}"),
                "",
            )
            .await;
        assert_eq!(file.status, 200);
        assert_eq!(file.headers[header::CONTENT_TYPE], media);
        let disposition = file.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .expect("ascii");
        assert!(
            disposition.contains(&format!("engram-backup-{id}.")),
            "{disposition}"
        );
        assert!(file.body.starts_with(start));
        let imported = h
            .send(Method::POST, "/api/import", Some(TOKEN), HOST, file.body)
            .await;
        assert_eq!(imported.status, 200);
        assert_eq!(imported.json()["kind"], "imported");
    }
    // The default format is JSON.
    let default = h
        .call(Method::GET, &format!("/api/backups/{id}/export"), "")
        .await;
    assert_eq!(default.headers[header::CONTENT_TYPE], "application/json");

    let restored = h
        .ok(
            Method::POST,
            &format!("/api/backups/{id}/restore"),
            r#"{"engine":"zap"}"#,
        )
        .await;
    assert_eq!(restored["engines"], json!(["zap"]));
    let pre = restored["pre_restore_backup"].as_i64().expect("pre");
    assert_eq!(
        h.ok(Method::GET, &format!("/api/backups/{pre}"), "").await["kind"],
        "pre-restore"
    );

    let report = h.ok(Method::POST, "/api/verify", "").await;
    assert_eq!(
        (
            report["database_ok"].as_bool(),
            report["problems"].as_array().map(Vec::len)
        ),
        (Some(true), Some(0))
    );

    let mut settings = h.ok(Method::GET, "/api/settings", "").await;
    settings["backup_every_secs"] = json!(7200);
    let applied = h
        .ok(Method::PUT, "/api/settings", &settings.to_string())
        .await;
    assert_eq!(applied["backup_every_secs"], 7200.0);
    assert_eq!(h.ok(Method::GET, "/api/settings", "").await, applied);
    // A partial body changes only what it names; an empty one, nothing.
    assert_eq!(h.ok(Method::PUT, "/api/settings", "{}").await, applied);
    let patched = h
        .ok(
            Method::PUT,
            "/api/settings",
            r#"{"retention":{"keep_daily":3}}"#,
        )
        .await;
    assert_eq!(patched["retention"]["keep_daily"], 3);
    assert_eq!(patched["backup_every_secs"], 7200.0);
    assert_eq!(
        patched["retention"]["keep_weekly"],
        applied["retention"]["keep_weekly"]
    );
    let schema = h.ok(Method::GET, "/api/settings/schema", "").await;
    assert_eq!(
        schema,
        serde_json::to_value(Settings::fields()).expect("json")
    );

    assert_eq!(
        h.ok(Method::DELETE, &format!("/api/backups/{id}"), "")
            .await,
        json!({"deleted": id})
    );
    h.call(Method::GET, &format!("/api/backups/{id}"), "")
        .await
        .refused(ErrorCode::NotFound);

    // The UI, embedded in the binary, with a strict CSP.
    let page = h.send(Method::GET, "/", None, HOST, Vec::new()).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<title>Engram</title>"));
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(
        h.send(Method::GET, "/../Cargo.toml", None, HOST, Vec::new())
            .await
            .status,
        404
    );
    assert_eq!(
        h.send(Method::GET, "/nope.js", None, HOST, Vec::new())
            .await
            .status,
        404
    );

    h.server.api.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_carries_typed_events() {
    let h = harness().await;
    let req = HttpRequest::builder()
        .uri(format!("/api/events?token={TOKEN}"))
        .header(header::HOST, HOST)
        .body(HttpBody::empty())
        .expect("request");
    let res = h.app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = res.into_body();
    let mut text = String::new();
    // The engines tick every millisecond: a metrics event arrives at once
    // (a breakthrough's backup_created may come first; each is typed).
    let event = loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
            .await
            .expect("an event within 10 s")
            .expect("a frame")
            .expect("no error");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        let mut metrics = None;
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            // A block without data is a keep-alive comment.
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let event: Value = serde_json::from_str(data).expect("json");
            assert!(event["type"].is_string(), "{event}");
            if event["type"] == "metrics" && metrics.is_none() {
                metrics = Some(event);
            }
        }
        if let Some(m) = metrics {
            break m;
        }
    };
    assert!(
        event["engines"]["zap"]["plans_generated"].is_number(),
        "{event}"
    );
    h.server.api.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_a_typed_error_with_its_status() {
    let h = harness().await;
    // Guards first: no token, a wrong token, a foreign Host.
    h.send(Method::GET, "/api/status", None, HOST, Vec::new())
        .await
        .refused(ErrorCode::Unauthorized);
    h.send(
        Method::POST,
        "/api/backups",
        Some("wrong"),
        HOST,
        b"{}".to_vec(),
    )
    .await
    .refused(ErrorCode::Unauthorized);
    h.send(
        Method::GET,
        "/api/status",
        Some(TOKEN),
        "evil.example:80",
        Vec::new(),
    )
    .await
    .refused(ErrorCode::ForbiddenHost);
    h.send(Method::GET, "/", None, "evil.example:80", Vec::new())
        .await
        .refused(ErrorCode::ForbiddenHost);
    assert_eq!(
        h.send(
            Method::GET,
            "/api/status",
            Some(TOKEN),
            "localhost:4242",
            Vec::new()
        )
        .await
        .status,
        200
    );
    let by_query = h
        .send(
            Method::GET,
            &format!("/api/status?token={TOKEN}"),
            None,
            HOST,
            Vec::new(),
        )
        .await;
    assert_eq!(by_query.status, 200);
    // The refused POST created nothing.
    assert_eq!(
        h.ok(Method::GET, "/api/backups?kind=initial,manual", "")
            .await["total"],
        1
    );

    // Bad input of every shape.
    h.call(Method::GET, "/api/backups?kind=weekly", "")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::GET, "/api/backups?limit=many", "")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::GET, "/api/backups?after_id=3", "")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::GET, "/api/backups/abc", "")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::POST, "/api/backups", "{not json")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(
        Method::POST,
        "/api/backups",
        &format!(r#"{{"label":"{}"}}"#, "x".repeat(201)),
    )
    .await
    .refused(ErrorCode::InvalidInput);
    h.call(Method::GET, "/api/backups/1/export?format=zip", "")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(
        Method::POST,
        "/api/backups/1/restore",
        r#"{"engine":"nope"}"#,
    )
    .await
    .refused(ErrorCode::NotFound);
    h.call(Method::GET, "/api/backups/999999", "")
        .await
        .refused(ErrorCode::NotFound);
    h.call(Method::POST, "/api/backups/999999/pin", "")
        .await
        .refused(ErrorCode::NotFound);
    h.call(Method::GET, "/api/retention?ids=1,x", "")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::POST, "/api/backups/999999/hold", "")
        .await
        .refused(ErrorCode::NotFound);
    h.call(Method::GET, "/api/timeline?from_ms=10&to_ms=0", "")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::GET, "/api/timeline?kind=hourly", "")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::GET, "/api/timeline?buckets=-1", "")
        .await
        .refused(ErrorCode::InvalidInput);
    let long = "x".repeat(201);
    h.call(Method::GET, &format!("/api/backups?q={long}"), "")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::GET, "/api/no-such-route", "")
        .await
        .refused(ErrorCode::NotFound);
    h.call(Method::DELETE, "/api/backups/1", "")
        .await
        .refused(ErrorCode::Protected);
    h.call(Method::POST, "/api/import", "not a snapshot")
        .await
        .refused(ErrorCode::InvalidSnapshot);
    let future = br#"{"format":"engram-snapshot","format_version":99}"#;
    h.send(
        Method::POST,
        "/api/import",
        Some(TOKEN),
        HOST,
        future.to_vec(),
    )
    .await
    .refused(ErrorCode::UnsupportedFormat);
    let huge = vec![b' '; (256 << 20) + 1];
    h.send(Method::POST, "/api/import", Some(TOKEN), HOST, huge)
        .await
        .refused(ErrorCode::TooLarge);
    let unknown = h
        .call(Method::PUT, "/api/settings", r#"{"autosave":1}"#)
        .await;
    unknown.refused(ErrorCode::InvalidInput);
    assert!(
        unknown.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown setting autosave"))
    );
    // Issue 11's smaller items: a huge offset is an empty page, not a 500;
    // text-direction overrides are refused in labels.
    let far = h
        .ok(Method::GET, "/api/backups?offset=18446744073709551615", "")
        .await;
    assert_eq!(far["items"], json!([]));
    h.call(Method::POST, "/api/backups", r#"{"label":"gpj.\u202Eexe"}"#)
        .await
        .refused(ErrorCode::InvalidInput);
    let mut settings = h.ok(Method::GET, "/api/settings", "").await;
    settings["autosave_secs"] = json!(-1);
    let refused = h
        .call(Method::PUT, "/api/settings", &settings.to_string())
        .await;
    refused.refused(ErrorCode::InvalidInput);
    assert!(
        refused.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("autosave_secs"))
    );

    // Stopped engines: `runtime_stopped`, not a client error.
    h.server.api.stop().await.expect("stop");
    h.call(Method::POST, "/api/backups", "{}")
        .await
        .refused(ErrorCode::RuntimeStopped);
}

#[test]
fn every_error_code_maps_to_its_status_and_body() {
    for code in ErrorCode::ALL {
        let res = error_response(ApiError::new(code, "why"));
        assert_eq!(res.status().as_u16(), code.http_status(), "{code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_open_connections_are_capped_and_timed_out_so_the_api_keeps_answering() {
    // Regression (issue 11, item 12): 4,096 idle half-open connections
    // stopped the API from accepting.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = harness().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = listen::Limits {
        connections: 4,
        header_timeout: std::time::Duration::from_millis(300),
    };
    let server = tokio::spawn(listen::serve(listener, h.app.clone(), limits));
    // Fill every slot: two silent, two stuck half-way through their headers.
    let mut hogs = Vec::new();
    for i in 0..4 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        if i % 2 == 1 {
            s.write_all(b"GET /api/status HTTP/1.1\r\nHost: ")
                .await
                .expect("partial");
        }
        hogs.push(s);
    }
    let started = std::time::Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!(
            "GET /api/status HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("request");
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.read_to_string(&mut answer),
    )
    .await
    .expect("answered while the slots were hogged")
    .expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(250),
        "it had to wait for a slot: the cap holds ({:?})",
        started.elapsed()
    );
    // Every hog was disconnected by the header timeout.
    for mut hog in hogs {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), hog.read_to_end(&mut buf))
            .await
            .expect("closed by the server");
        assert!(n.is_ok(), "{n:?}");
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_attach_save_and_read_their_state_and_every_backup_holds_it() {
    let h = harness_paced(std::time::Duration::from_secs(3600)).await;
    let objects_dir = h._dir.path().join("objects");
    let db = h._dir.path().join("engram.db");
    // (files under objects/, states kept inside the database, the slot the
    // live state is held in)
    let count_objects = || -> (usize, usize, Option<i64>) {
        let files = std::fs::read_dir(&objects_dir)
            .map(|shards| {
                shards
                    .flatten()
                    .filter(|s| s.file_name() != "tmp" && s.file_name() != "trash")
                    .map(|s| std::fs::read_dir(s.path()).map_or(0, |e| e.count()))
                    .sum()
            })
            .unwrap_or(0);
        let c =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open");
        let inline = c
            .query_row("SELECT count(*) FROM learner_inline_states", [], |r| {
                r.get(0)
            })
            .expect("count inline states");
        let slot = c
            .query_row(
                "SELECT slot FROM learner_live WHERE learner = 'frozenlake-q'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(None);
        (files, inline, slot)
    };
    let attached = h
        .ok(
            Method::POST,
            "/api/learners",
            r#"{"name":"frozenlake-q","format":"engram.pack/1"}"#,
        )
        .await;
    assert_eq!(attached["name"], "frozenlake-q");
    assert!(
        attached["live"].is_null(),
        "nothing to resume yet: {attached}"
    );
    h.call(Method::GET, "/api/learners/frozenlake-q/state", "")
        .await
        .refused(ErrorCode::NotFound);

    // Save: the raw body becomes the state, durable when the answer comes.
    let v1: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let saved = h
        .bytes(
            Method::PUT,
            "/api/learners/frozenlake-q/state?step=5&metrics=%7B%22success%22%3A0.5%7D",
            v1.clone(),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.json());
    let saved = saved.json();
    assert_eq!(saved["size"], v1.len() as u64);
    assert_eq!(saved["step"], 5);
    assert_eq!(saved["checksum"], engram_core::Checksum::of(&v1).to_hex());
    assert_eq!(
        count_objects(),
        (0, 0, Some(0)),
        "a state past the inline size is held in a slot of the learner's"
    );
    // Saving the same bytes again: it stays where it is.
    h.save_state("frozenlake-q", 6, v1.clone()).await;
    assert_eq!(count_objects(), (0, 0, Some(0)), "unchanged: one copy");
    // A small state is kept inside the database instead.
    h.save_state("frozenlake-q", 6, b"a small state".to_vec())
        .await;
    assert_eq!(count_objects(), (0, 1, None));
    h.save_state("frozenlake-q", 6, v1.clone()).await;
    assert_eq!(count_objects(), (0, 0, Some(0)), "and the other way round");

    let read = h
        .bytes(Method::GET, "/api/learners/frozenlake-q/state", vec![])
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, v1);
    assert_eq!(read.headers["x-engram-step"], "6");
    assert_eq!(
        read.headers["x-engram-checksum"].to_str().ok(),
        saved["checksum"].as_str()
    );

    // A backup holds the learner's state at its instant; a later save
    // changes the live state, not the backup.
    let backup = h
        .ok(Method::POST, "/api/backups", r#"{"label":"cut"}"#)
        .await;
    let id = backup["id"].as_i64().expect("id");
    assert_eq!(
        count_objects(),
        (1, 0, None),
        "a cut makes the slot's state the object it names (renamed, not copied)"
    );
    let v2 = b"the next q-table".to_vec();
    h.bytes(
        Method::PUT,
        "/api/learners/frozenlake-q/state?step=9",
        v2.clone(),
    )
    .await;
    let from_backup = h
        .bytes(
            Method::GET,
            &format!("/api/learners/frozenlake-q/state?backup={id}"),
            vec![],
        )
        .await;
    assert_eq!(
        from_backup.body, v1,
        "the backup's state, not the newer one"
    );
    assert_eq!(from_backup.headers["x-engram-step"], "6");
    let live = h.ok(Method::GET, "/api/learners/frozenlake-q", "").await;
    assert_eq!(live["live"]["step"], 9);
    // Restoring the learner from the backup makes the backup's state live
    // again; the pre-restore backup keeps the newer one (undo).
    let report = h
        .ok(
            Method::POST,
            &format!("/api/backups/{id}/restore"),
            r#"{"engine":"frozenlake-q"}"#,
        )
        .await;
    assert_eq!(report["engines"], json!(["frozenlake-q"]), "{report}");
    let restored = h
        .bytes(Method::GET, "/api/learners/frozenlake-q/state", vec![])
        .await;
    assert_eq!(restored.body, v1);
    assert_eq!(restored.headers["x-engram-step"], "6");
    let pre = report["pre_restore_backup"].as_i64().expect("pre-restore");
    let undo = h
        .bytes(
            Method::GET,
            &format!("/api/learners/frozenlake-q/state?backup={pre}"),
            vec![],
        )
        .await;
    assert_eq!(
        undo.body, v2,
        "the pre-restore backup holds the state before"
    );
    // Restoring everything brings the learner back with the engines.
    let all = h
        .ok(Method::POST, &format!("/api/backups/{pre}/restore"), "{}")
        .await;
    let names: Vec<&str> = all["engines"]
        .as_array()
        .expect("engines")
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(
        names.contains(&"frozenlake-q") && names.contains(&"zap"),
        "{all}"
    );
    let back = h
        .bytes(Method::GET, "/api/learners/frozenlake-q/state", vec![])
        .await;
    assert_eq!(back.body, v2);

    // A state past the inline limit streams to a file, and reads back the
    // same; a state no row refers to any more (inline or a file) goes with
    // the save that let go of it (one a backup holds stays).
    let big: Vec<u8> = (0..(engram_core::limits::INLINE_STATE_BYTES as u32 / 4 + 1000))
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    let (files, inline, _) = count_objects();
    h.save_state("frozenlake-q", 20, big.clone()).await;
    assert_eq!(
        count_objects(),
        (files, inline, Some(0)),
        "in a slot; v2 stays: backups hold it"
    );
    let read = h
        .bytes(Method::GET, "/api/learners/frozenlake-q/state", vec![])
        .await;
    assert!(read.body == big, "the large state reads back exactly");
    h.save_state("frozenlake-q", 21, b"passing state".to_vec())
        .await;
    assert_eq!(
        count_objects(),
        (files, inline + 1, None),
        "a state held in a slot leaves no file behind when let go"
    );
    h.save_state("frozenlake-q", 22, big.clone()).await;
    assert_eq!(
        count_objects(),
        (files, inline, Some(0)),
        "the passing state went with the save that let go of it"
    );
    assert_eq!(
        h.ok(Method::GET, "/api/learners", "").await[0]["name"],
        "frozenlake-q"
    );

    // Logged metrics join the metric history under the learner's name.
    let logged = h
        .ok(
            Method::POST,
            "/api/learners/frozenlake-q/metrics",
            r#"{"points":[{"step":10,"at_ms":1000,"metrics":{"success":0.25}},{"step":11,"at_ms":2000,"metrics":{"success":0.75}}]}"#,
        )
        .await;
    assert_eq!(logged["points"], 2);
    let series = h
        .ok(
            Method::GET,
            "/api/metrics/series?engine=frozenlake-q&key=success&from_ms=0&to_ms=3000",
            "",
        )
        .await;
    let values: Vec<f64> = series["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .collect();
    assert_eq!(values, vec![0.25, 0.75], "{series}");

    // Refusals change nothing.
    let before = count_objects();
    h.bytes(Method::PUT, "/api/learners/nobody/state", v2.clone())
        .await
        .refused(ErrorCode::NotFound);
    h.bytes(Method::PUT, "/api/learners/Bad%20Name/state", v2.clone())
        .await
        .refused(ErrorCode::NotFound);
    h.call(Method::POST, "/api/learners", r#"{"name":"zap"}"#)
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::POST, "/api/learners", r#"{"name":"Bad Name!"}"#)
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(Method::POST, "/api/learners", "not json")
        .await
        .refused(ErrorCode::InvalidInput);
    h.call(
        Method::POST,
        "/api/learners",
        r#"{"name":"frozenlake-q","format":"pickle"}"#,
    )
    .await
    .refused(ErrorCode::InvalidInput);
    h.bytes(
        Method::PUT,
        "/api/learners/frozenlake-q/state?metrics=oops",
        v2.clone(),
    )
    .await
    .refused(ErrorCode::InvalidInput);
    h.call(
        Method::POST,
        "/api/learners/frozenlake-q/metrics",
        r#"{"points":[{"metrics":{"Bad Key":1}}]}"#,
    )
    .await
    .refused(ErrorCode::InvalidInput);
    h.call(
        Method::GET,
        "/api/learners/frozenlake-q/state?backup=999999",
        "",
    )
    .await
    .refused(ErrorCode::NotFound);
    h.send(
        Method::PUT,
        "/api/learners/frozenlake-q/state",
        Some("wrong"),
        HOST,
        v2,
    )
    .await
    .refused(ErrorCode::Unauthorized);
    // A client that breaks off mid-upload stores nothing: a small state,
    // and a large one already streaming to a file.
    let cut_off = |parts: Vec<axum::body::Bytes>| {
        let mut chunks: Vec<Result<axum::body::Bytes, std::io::Error>> =
            parts.into_iter().map(Ok).collect();
        chunks.push(Err(std::io::Error::other("connection reset")));
        HttpRequest::builder()
            .method(Method::PUT)
            .uri("/api/learners/frozenlake-q/state?step=99")
            .header(header::HOST, HOST)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(HttpBody::from_stream(tokio_stream::iter(chunks)))
            .expect("request")
    };
    for parts in [
        vec![axum::body::Bytes::from_static(b"half of a st")],
        vec![
            axum::body::Bytes::from(vec![7u8; 3 << 20]),
            axum::body::Bytes::from(vec![8u8; 3 << 20]),
        ],
    ] {
        let res = h
            .app
            .clone()
            .oneshot(cut_off(parts))
            .await
            .expect("infallible");
        assert_eq!(res.status().as_u16(), 400);
    }
    let tmp_left = std::fs::read_dir(objects_dir.join("tmp")).map_or(0, |d| d.count());
    assert_eq!(tmp_left, 0, "the partial upload's temporary file is gone");
    assert_eq!(count_objects(), before, "no refused state was stored");
    let still = h.ok(Method::GET, "/api/learners/frozenlake-q", "").await;
    assert_eq!(still["live"]["step"], 22, "unchanged by the refusals");
    // The cut-off large upload wrote into another slot, never the live one.
    let live = h
        .bytes(Method::GET, "/api/learners/frozenlake-q/state", vec![])
        .await;
    assert!(live.body == big, "the live state reads back exactly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_of_one_learner_never_share_a_slot() {
    let h = harness_paced(std::time::Duration::from_secs(3600)).await;
    h.ok(Method::POST, "/api/learners", r#"{"name":"busy"}"#)
        .await;
    // Eight saves at once, each a distinct state past the inline size: four
    // slots, so some find none free and write an object file instead.
    let states: Vec<Vec<u8>> = (0..8u8)
        .map(|i| {
            (0..300_000u32)
                .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i))
                .collect()
        })
        .collect();
    let mut saves = tokio::task::JoinSet::new();
    for (i, state) in states.iter().enumerate() {
        // Sent in pieces, so the saves overlap while they stream.
        let parts: Vec<Result<axum::body::Bytes, std::io::Error>> = state
            .chunks(20_000)
            .map(|c| Ok(axum::body::Bytes::copy_from_slice(c)))
            .collect();
        let req = HttpRequest::builder()
            .method(Method::PUT)
            .uri(format!("/api/learners/busy/state?step={i}"))
            .header(header::HOST, HOST)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(HttpBody::from_stream(tokio_stream::iter(parts)))
            .expect("request");
        let app = h.app.clone();
        saves.spawn(async move { app.oneshot(req).await.expect("infallible").status() });
    }
    while let Some(status) = saves.join_next().await {
        assert_eq!(status.expect("joined").as_u16(), 200);
    }
    // Whichever committed last is live, and it reads back exactly: no two
    // saves wrote into one file.
    let info = h.ok(Method::GET, "/api/learners/busy", "").await;
    let step = info["live"]["step"].as_u64().expect("step") as usize;
    let live = h
        .bytes(Method::GET, "/api/learners/busy/state", vec![])
        .await;
    assert_eq!(live.status, 200);
    assert!(
        live.body == states[step],
        "the live state is save {step}'s, whole"
    );
    // A backup of it holds the same bytes.
    let id = h.ok(Method::POST, "/api/backups", "{}").await["id"]
        .as_i64()
        .expect("id");
    let held = h
        .bytes(
            Method::GET,
            &format!("/api/learners/busy/state?backup={id}"),
            vec![],
        )
        .await;
    assert!(held.body == states[step]);
    let slots = std::fs::read_dir(h._dir.path().join("slots/busy")).map_or(0, |d| d.count());
    assert!(slots <= 4, "{slots} slot files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_live_learner_state_falls_back_to_a_backup_and_an_error_event_says_so() {
    let h = harness_paced(std::time::Duration::from_secs(3600)).await;
    let rt = h.server.api.runtime().expect("runtime");
    h.ok(Method::POST, "/api/learners", r#"{"name":"fragile"}"#)
        .await;
    h.bytes(
        Method::PUT,
        "/api/learners/fragile/state?step=5",
        b"good state".to_vec(),
    )
    .await;
    let id = h.ok(Method::POST, "/api/backups", "{}").await["id"]
        .as_i64()
        .expect("id");
    let rotten = h
        .bytes(
            Method::PUT,
            "/api/learners/fragile/state?step=9",
            b"state that will rot".to_vec(),
        )
        .await
        .json();
    // One byte of the live state (kept inside the database) rots.
    let db = rusqlite::Connection::open(h._dir.path().join("engram.db")).expect("db");
    let sum = engram_core::Checksum::from_hex(rotten["checksum"].as_str().expect("checksum"))
        .expect("hex");
    let changed = db
        .execute(
            "UPDATE learner_inline_states SET bytes = ?1 WHERE checksum = ?2",
            rusqlite::params![b"state that will roT".to_vec(), &sum.0[..]],
        )
        .expect("rot");
    assert_eq!(changed, 1);
    let mut events = rt.subscribe();
    let read = h
        .bytes(Method::GET, "/api/learners/fragile/state", vec![])
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, b"good state", "the newest intact state");
    assert_eq!(read.headers["x-engram-step"], "5");
    let message = loop {
        match events.try_recv() {
            Ok(engram_core::wire::Event::Error { code, message }) => {
                assert_eq!(code, ErrorCode::CorruptState);
                break message;
            }
            Ok(_) => continue,
            Err(e) => panic!("no error event: {e}"),
        }
    };
    assert!(
        message.contains("fragile") && message.contains(&format!("backup {id}")),
        "{message}"
    );
    // It is live now, in the learner's next generation.
    let info = h.ok(Method::GET, "/api/learners/fragile", "").await;
    assert_eq!(
        (info["live"]["step"].as_u64(), info["generation"].as_i64()),
        (Some(5), Some(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_outside_engram_is_asked_to_stop_until_it_attaches_again() {
    let h = harness_paced(std::time::Duration::from_secs(3600)).await;
    let rt = h.server.api.runtime().expect("runtime");
    let attached = h
        .ok(Method::POST, "/api/learners", r#"{"name":"elsewhere"}"#)
        .await;
    assert!(attached["stop_requested_at_ms"].is_null());
    let mut events = rt.subscribe();
    let before = engram_core::now_ms();
    let asked = h.ok(Method::POST, "/api/learners/elsewhere/stop", "").await;
    let at = asked["stop_requested_at_ms"].as_i64().expect("asked");
    assert!(at >= before, "{asked}");
    assert!(asked["command"].is_null() && asked["process"].is_null());
    let announced = loop {
        match events.try_recv() {
            Ok(engram_core::wire::Event::LearnerStopRequested { learner }) => break learner,
            Ok(_) => continue,
            Err(e) => panic!("no learner_stop_requested event: {e}"),
        }
    };
    assert_eq!(announced, "elsewhere");
    // It stands (a client that looks later sees it) …
    let info = h.ok(Method::GET, "/api/learners/elsewhere", "").await;
    assert_eq!(info["stop_requested_at_ms"].as_i64(), Some(at));
    // … until the learner attaches again: a new run is not asked to stop.
    let again = h
        .ok(Method::POST, "/api/learners", r#"{"name":"elsewhere"}"#)
        .await;
    assert!(again["stop_requested_at_ms"].is_null(), "{again}");
    // Unknown learners are refused, and nothing is announced for them.
    h.call(Method::POST, "/api/learners/nobody/stop", "")
        .await
        .refused(ErrorCode::NotFound);
    assert!(
        !std::iter::from_fn(|| events.try_recv().ok())
            .any(|e| matches!(e, engram_core::wire::Event::LearnerStopRequested { .. })),
        "a refused request is not announced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervised_learners_start_stop_and_restart_around_a_restore_of_their_state() {
    let h = harness().await;
    h.server.api.supervise_learners().await.expect("supervise");
    let running = |v: &Value| v["process"]["phase"] == "running" && v["process"]["pid"].is_u64();
    let added = h
        .ok(
            Method::PUT,
            "/api/learners/sup/command",
            r#"{"argv":["sh","-c","echo up; exec sleep 300"],"format":"engram.pack/1"}"#,
        )
        .await;
    assert!(running(&added), "{added}");
    assert_eq!(added["format"], "engram.pack/1");
    assert_eq!(
        added["command"]["workdir"],
        h._dir.path().display().to_string(),
        "the data directory by default"
    );
    let first_pid = added["process"]["pid"].as_u64().expect("pid");
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = h.ok(Method::GET, "/api/learners/sup", "").await;
        if seen["process"]["output"]
            .as_array()
            .is_some_and(|o| o.iter().any(|l| l == "up"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        seen["process"]["output"]
            .as_array()
            .is_some_and(|o| o.iter().any(|l| l == "up")),
        "{seen}"
    );

    // A backup holding its state; a restore of it stops the process first
    // and starts it after (a new pid, not counted as a crash).
    h.bytes(
        Method::PUT,
        "/api/learners/sup/state?step=3",
        b"s3".to_vec(),
    )
    .await;
    let id = h.ok(Method::POST, "/api/backups", "{}").await["id"]
        .as_i64()
        .expect("id");
    h.bytes(
        Method::PUT,
        "/api/learners/sup/state?step=4",
        b"s4".to_vec(),
    )
    .await;
    let restored = h
        .ok(
            Method::POST,
            &format!("/api/backups/{id}/restore"),
            r#"{"engine":"sup"}"#,
        )
        .await;
    assert_eq!(restored["engines"], json!(["sup"]));
    let after = h.ok(Method::GET, "/api/learners/sup", "").await;
    assert!(running(&after), "{after}");
    assert_ne!(after["process"]["pid"].as_u64(), Some(first_pid), "{after}");
    assert_eq!(after["process"]["restarts"], 0);
    assert_eq!(after["process"]["last_exit"], "stopped by Engram");
    assert_eq!(after["live"]["step"], 3);

    // Stop: the answer comes once it has exited; it stays stopped.
    let stopped = h.ok(Method::POST, "/api/learners/sup/stop", "").await;
    assert_eq!(stopped["process"]["phase"], "stopped", "{stopped}");
    assert_eq!(stopped["command"]["autostart"], false);
    let started = h.ok(Method::POST, "/api/learners/sup/start", "").await;
    assert!(running(&started), "{started}");
    assert_eq!(started["command"]["autostart"], true);

    // Remove: no command, no process; its states stay.
    let removed = h.ok(Method::DELETE, "/api/learners/sup/command", "").await;
    assert!(
        removed["command"].is_null() && removed["process"].is_null(),
        "{removed}"
    );
    assert_eq!(removed["live"]["step"], 3);

    // Refusals change nothing.
    for (method, uri, body, code) in [
        (
            Method::PUT,
            "/api/learners/sup/command",
            r#"{"argv":[]}"#,
            ErrorCode::InvalidInput,
        ),
        (
            Method::PUT,
            "/api/learners/sup/command",
            r#"{"argv":["true"],"workdir":"relative"}"#,
            ErrorCode::InvalidInput,
        ),
        (
            Method::PUT,
            "/api/learners/zap/command",
            r#"{"argv":["true"]}"#,
            ErrorCode::InvalidInput,
        ),
        (
            Method::PUT,
            "/api/learners/a%20b/command",
            r#"{"argv":["true"]}"#,
            ErrorCode::InvalidInput,
        ),
        (
            Method::PUT,
            "/api/learners/sup/command",
            r#"{"argv":"true"}"#,
            ErrorCode::InvalidInput,
        ),
        (
            Method::POST,
            "/api/learners/nobody/start",
            "",
            ErrorCode::NotFound,
        ),
        (
            Method::POST,
            "/api/learners/sup/start",
            "",
            ErrorCode::NotFound,
        ),
        // (A stop of `sup` now asks it: it runs outside Engram — see
        // a_learner_outside_engram_is_asked_to_stop_until_it_attaches_again.)
        (
            Method::POST,
            "/api/learners/nobody/stop",
            "",
            ErrorCode::NotFound,
        ),
        (
            Method::DELETE,
            "/api/learners/sup/command",
            "",
            ErrorCode::NotFound,
        ),
    ] {
        h.call(method.clone(), uri, body).await.refused(code);
    }
    let l = h.ok(Method::GET, "/api/learners/sup", "").await;
    assert!(l["command"].is_null() && l["process"].is_null(), "{l}");
    h.server
        .api
        .runtime()
        .expect("rt")
        .stop()
        .await
        .expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learners_metrics_join_the_catalog_as_it_described_them() {
    let h = harness().await;
    let built_in = h.ok(Method::GET, "/api/metrics/catalog", "").await;
    let n = built_in.as_array().expect("array").len();
    h.ok(
        Method::POST,
        "/api/learners",
        r#"{"name":"cat","metrics":{"success":{"label":"Success rate","format":"percent","higher_is_better":true}}}"#,
    )
    .await;
    // A logged metric it did not describe is charted under its own name.
    h.ok(
        Method::POST,
        "/api/learners/cat/metrics",
        r#"{"points":[{"metrics":{"loss":0.5}}]}"#,
    )
    .await;
    let all = h.ok(Method::GET, "/api/metrics/catalog", "").await;
    let all = all.as_array().expect("array");
    assert_eq!(all.len(), n + 2, "{all:?}");
    let mine: Vec<&Value> = all.iter().filter(|m| m["engine"] == "cat").collect();
    assert_eq!(
        mine.iter().map(|m| m["key"].as_str()).collect::<Vec<_>>(),
        vec![Some("loss"), Some("success")]
    );
    assert_eq!(mine[0]["label"], "loss");
    assert_eq!(mine[0]["format"], "decimal");
    assert!(mine[0]["higher_is_better"].is_null());
    assert_eq!(mine[1]["label"], "Success rate");
    assert_eq!(mine[1]["format"], "percent");
    assert_eq!(mine[1]["higher_is_better"], true);
    assert!(
        mine.iter()
            .all(|m| m["chart"] == true && m["card"] == false)
    );
    // Descriptions are checked; a refusal changes nothing.
    for bad in [
        r#"{"name":"cat","metrics":{"Bad Name":{}}}"#,
        r#"{"name":"cat","metrics":{"x":{"format":"furlongs"}}}"#,
        r#"{"name":"cat","metrics":{"x":{"label":"a\u0007b"}}}"#,
    ] {
        h.call(Method::POST, "/api/learners", bad)
            .await
            .refused(ErrorCode::InvalidInput);
    }
    let again = h.ok(Method::GET, "/api/learners/cat", "").await;
    assert_eq!(again["metric_info"]["success"]["label"], "Success rate");
    h.server
        .api
        .runtime()
        .expect("rt")
        .stop()
        .await
        .expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_saves_through_a_lent_slot_and_bad_leases_change_nothing() {
    let h = harness_paced(std::time::Duration::from_secs(3600)).await;
    h.ok(Method::POST, "/api/learners", r#"{"name":"near"}"#)
        .await;
    h.ok(Method::POST, "/api/learners", r#"{"name":"other"}"#)
        .await;
    let state = |seed: u8| -> Vec<u8> {
        (0..400_000u32)
            .map(|j| (j as u8).wrapping_mul(13).wrapping_add(seed))
            .collect()
    };
    let live = async |name: &str| {
        h.bytes(Method::GET, &format!("/api/learners/{name}/state"), vec![])
            .await
            .body
    };
    // Saves what was written into lease `id` of learner `name`.
    let leased = async |name: &str, id: &str, query: &str| {
        let uri = format!("/api/learners/{name}/state/leased?lease={id}&{query}");
        h.call(Method::POST, &uri, "").await
    };
    // Lent, written by "the learner" (this test), saved: durable and live.
    let lease = h.ok(Method::POST, "/api/learners/near/lease", "").await;
    let path = std::path::PathBuf::from(lease["path"].as_str().expect("path"));
    assert!(path.is_absolute() && path.starts_with(h._dir.path().join("slots/near")));
    std::fs::write(&path, state(1)).expect("write the lent slot");
    let id = lease["lease"].as_str().expect("id").to_string();
    let saved = leased("near", &id, "step=1&next=true").await;
    assert_eq!(saved.status, 200);
    let saved = saved.json();
    assert_eq!(saved["saved"]["step"], 1);
    assert_eq!(saved["saved"]["size"], 400_000);
    assert!(live("near").await == state(1));
    assert!(!path.exists(), "a lease's name goes with its save");
    // The next slot came with the answer; a longer state cut shorter.
    let next = &saved["next"];
    let next_path = std::path::PathBuf::from(next["path"].as_str().expect("next path"));
    assert_ne!(next_path, path);
    let short = state(2)[..250_000].to_vec();
    std::fs::write(&next_path, &short).expect("write");
    // The storage view counts each slot file once (not again by its lent name).
    let storage = h.ok(Method::GET, "/api/storage", "").await;
    assert_eq!(storage["learner_slot_bytes"], 650_000, "{storage}");
    let next_id = next["lease"].as_str().expect("next id").to_string();
    let saved = leased("near", &next_id, "step=2").await;
    assert_eq!(saved.status, 200);
    assert!(saved.json()["next"].is_null(), "none asked for");
    assert!(live("near").await == short);
    // A lease is used once; an unknown one is not found: nothing changes.
    leased("near", &next_id, "step=2")
        .await
        .refused(ErrorCode::NotFound);
    leased("near", "nosuch", "step=3")
        .await
        .refused(ErrorCode::NotFound);
    // Another learner's lease is refused and stays its own.
    let theirs = h.ok(Method::POST, "/api/learners/other/lease", "").await;
    let their_id = theirs["lease"].as_str().expect("id").to_string();
    std::fs::write(theirs["path"].as_str().expect("path"), state(7)).expect("write");
    leased("near", &their_id, "step=3")
        .await
        .refused(ErrorCode::InvalidInput);
    assert!(live("near").await == short);
    // Bad metrics are refused before the lease is touched.
    leased(
        "other",
        &their_id,
        "step=1&metrics=%7B%22Bad%20Key%22%3A1%7D",
    )
    .await
    .refused(ErrorCode::InvalidInput);
    assert_eq!(leased("other", &their_id, "step=1").await.status, 200);
    assert!(live("other").await == state(7));
    // A lease for an unknown learner is refused; so is one without the token.
    h.call(Method::POST, "/api/learners/nobody/lease", "")
        .await
        .refused(ErrorCode::NotFound);
    for uri in [
        "/api/learners/near/lease",
        "/api/learners/near/state/leased?lease=x&step=1",
    ] {
        h.send(Method::POST, uri, Some("wrong"), HOST, vec![])
            .await
            .refused(ErrorCode::Unauthorized);
    }
    // A learner that attaches again voids what its earlier run was lent:
    // that run, still writing through the file it opened, reaches nothing
    // anyone reads, and its save is not found.
    let lease = h.ok(Method::POST, "/api/learners/near/lease", "").await;
    let stray_path = lease["path"].as_str().expect("path").to_string();
    let mut stray = std::fs::OpenOptions::new()
        .write(true)
        .open(&stray_path)
        .expect("open the lent slot");
    h.ok(Method::POST, "/api/learners", r#"{"name":"near"}"#)
        .await;
    assert!(!std::path::Path::new(&stray_path).exists());
    let fresh = h.ok(Method::POST, "/api/learners/near/lease", "").await;
    std::fs::write(fresh["path"].as_str().expect("path"), state(3)).expect("write");
    let fresh_id = fresh["lease"].as_str().expect("id");
    assert_eq!(leased("near", fresh_id, "step=3").await.status, 200);
    std::io::Write::write_all(&mut stray, &state(9)).expect("the stray run writes");
    drop(stray);
    let stray_id = lease["lease"].as_str().expect("id");
    leased("near", stray_id, "step=4")
        .await
        .refused(ErrorCode::NotFound);
    assert!(
        live("near").await == state(3),
        "the stray write reached nothing"
    );
    // A large lent state (hashed on a thread of its own) is kept whole too.
    let large: Vec<u8> = (0..(17u32 << 20)).map(|j| (j % 251) as u8).collect();
    let l = h.ok(Method::POST, "/api/learners/near/lease", "").await;
    std::fs::write(l["path"].as_str().expect("path"), &large).expect("write");
    let id = l["lease"].as_str().expect("id");
    assert_eq!(leased("near", id, "step=4").await.status, 200);
    assert!(live("near").await == large);
    // Lent slots are claimed: with the live one, four at most; then none
    // is free and the learner sends its bytes instead.
    let mut lent = Vec::new();
    for _ in 0..3 {
        let l = h.ok(Method::POST, "/api/learners/near/lease", "").await;
        assert!(l["lease"].is_string(), "{l}");
        lent.push(l);
    }
    assert!(
        h.ok(Method::POST, "/api/learners/near/lease", "")
            .await
            .is_null()
    );
    h.save_state("near", 5, state(5)).await;
    assert!(live("near").await == state(5));
    // A state larger than the limit (a sparse file) is refused, the live
    // state stays.
    let big = &lent[0];
    std::fs::File::create(big["path"].as_str().expect("path"))
        .and_then(|f| f.set_len(engram_core::limits::MAX_LEARNER_STATE_BYTES + 1))
        .expect("a sparse file");
    leased("near", big["lease"].as_str().expect("id"), "step=6")
        .await
        .refused(ErrorCode::TooLarge);
    assert!(live("near").await == state(5));
    // The next start clears what was lent and every slot file no live
    // state is held in; the live state reads back.
    let slots = h._dir.path().join("slots/near");
    let names = |d: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("slots")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(names(&slots).iter().any(|n| n.starts_with("lease-")));
    let data_dir = h._dir.path().to_path_buf();
    h.server.api.stop().await.expect("stop");
    let Harness { app, server, _dir } = h;
    drop((app, server));
    let mut opts = RuntimeOptions::new(&data_dir);
    opts.pace = std::time::Duration::from_secs(3600);
    let runtime = Runtime::start(opts).await.expect("restart");
    let left = names(&slots);
    // Step 5 went into an object file (no slot was free): none is live.
    assert!(left.is_empty(), "{left:?}");
    let api = Api::new(runtime);
    let back = api
        .read_learner_state("near".into(), Default::default())
        .await
        .expect("read after restart");
    assert!(back.bytes == state(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_learner_stops_goes_and_comes_back_only_from_a_backup_or_a_new_attach() {
    let h = harness_paced(std::time::Duration::from_secs(3600)).await;
    let rt = h.server.api.runtime().expect("runtime");
    h.server.api.supervise_learners().await.expect("supervise");
    let added = h
        .ok(
            Method::PUT,
            "/api/learners/gone/command",
            r#"{"argv":["sh","-c","exec sleep 300"]}"#,
        )
        .await;
    let pid = added["process"]["pid"].as_u64().expect("running") as i32;
    assert!(
        engram_core::supervisor::log_path(h._dir.path(), "gone").exists(),
        "its output is kept while it is a learner"
    );
    h.ok(Method::POST, "/api/learners", r#"{"name":"stays"}"#)
        .await;
    h.save_state("gone", 1, b"gone at 1".to_vec()).await;
    h.save_state("stays", 1, b"stays at 1".to_vec()).await;
    let backup = h.ok(Method::POST, "/api/backups", "{}").await["id"]
        .as_i64()
        .expect("id");
    h.save_state("gone", 2, vec![7; 400_000]).await;
    let lease = h.ok(Method::POST, "/api/learners/gone/lease", "").await;
    let lent = std::path::PathBuf::from(lease["path"].as_str().expect("path"));
    let mut events = rt.subscribe();

    let removed = h.ok(Method::DELETE, "/api/learners/gone", "").await;
    assert_eq!(
        removed,
        json!({"name": "gone", "backups": 1, "newest_backup_id": backup})
    );
    // Its process was stopped before the answer (a zombie is reaped: gone).
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "its process {pid} still runs"
    );
    let announced = std::iter::from_fn(|| events.try_recv().ok()).any(|e| {
        matches!(e, engram_core::wire::Event::LearnerRemoved { ref learner } if learner == "gone")
    });
    assert!(announced, "learner_removed is announced");
    let listed = h.ok(Method::GET, "/api/learners", "").await;
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, ["stays"]);
    // Everything about it now answers not_found, and nothing is stored.
    for (method, uri) in [
        (Method::GET, "/api/learners/gone".to_string()),
        (Method::DELETE, "/api/learners/gone".to_string()),
        (Method::GET, "/api/learners/gone/state".to_string()),
        (Method::PUT, "/api/learners/gone/state?step=3".to_string()),
        (Method::POST, "/api/learners/gone/start".to_string()),
        (
            Method::POST,
            format!(
                "/api/learners/gone/state/leased?lease={}&step=3",
                lease["lease"].as_str().expect("id")
            ),
        ),
        (Method::DELETE, "/api/learners/nobody".to_string()),
        // A name no learner can have is no learner's.
        (Method::DELETE, "/api/learners/a%20b".to_string()),
    ] {
        h.call(method, &uri, "").await.refused(ErrorCode::NotFound);
    }
    assert!(!lent.exists(), "its lent slot was voided");
    assert!(
        !h._dir.path().join("slots/gone").exists(),
        "its slot files went"
    );
    assert!(
        !engram_core::supervisor::log_path(h._dir.path(), "gone").exists(),
        "its output went"
    );
    let stays = h.ok(Method::GET, "/api/learners/stays", "").await;
    assert_eq!(stays["live"]["step"], 1);
    // The backup still holds its state, readable …
    let held = h
        .bytes(
            Method::GET,
            &format!("/api/learners/gone/state?backup={backup}"),
            vec![],
        )
        .await;
    assert_eq!(
        (held.status, held.body.as_slice()),
        (200, &b"gone at 1"[..])
    );
    // … and a restore of it brings the learner back at that state
    // (unsupervised: its command was deleted with it).
    h.ok(
        Method::POST,
        &format!("/api/backups/{backup}/restore"),
        r#"{"engine":"gone"}"#,
    )
    .await;
    let back = h.ok(Method::GET, "/api/learners/gone", "").await;
    assert_eq!(back["live"]["step"], 1, "{back}");
    assert!(
        back["command"].is_null() && back["process"].is_null(),
        "{back}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milestone_rules_set_in_engram_are_the_ones_a_save_is_checked_against() {
    let h = harness_paced(std::time::Duration::from_secs(3600)).await;
    h.ok(
        Method::POST,
        "/api/learners",
        r#"{"name":"ruled","milestones":[{"metric":"success","at_least":0.9}]}"#,
    )
    .await;
    let set = h
        .ok(
            Method::PUT,
            "/api/learners/ruled/milestone-rules",
            r#"{"rules":[{"metric":"success","at_least":0.5}]}"#,
        )
        .await;
    assert_eq!(
        set["milestone_rules"],
        json!([{"metric": "success", "at_least": 0.5, "at_most": null}])
    );
    assert_eq!(set["declared_milestone_rules"][0]["at_least"], 0.9);
    assert_eq!(set["milestone_rules_set_here"], true);
    // The learner attaching again (a restart) keeps what was set here.
    let again = h
        .ok(
            Method::POST,
            "/api/learners",
            r#"{"name":"ruled","milestones":[{"metric":"success","at_least":0.9}]}"#,
        )
        .await;
    assert_eq!(again["milestone_rules"][0]["at_least"], 0.5);
    // A save at 0.6 meets the rule set here (not the learner's 0.9).
    let saved = h
        .bytes(
            Method::PUT,
            &format!(
                "/api/learners/ruled/state?step=7&metrics={}",
                "%7B%22success%22%3A0.6%7D"
            ),
            b"at 0.6".to_vec(),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.json());
    let list = h
        .ok(Method::GET, "/api/backups?kinds=breakthrough", "")
        .await;
    let rules: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|b| b["breakthrough"]["rule"].as_str())
        .collect();
    assert_eq!(rules, ["success >= 0.5"], "{list}");
    // The backup says what the learner's state in it was: step and metrics.
    let kept = &list["items"][0];
    assert_eq!(kept["learner_steps"]["ruled"], 7, "{kept}");
    assert_eq!(
        kept["learner_metrics"]["ruled"],
        json!({"success": 0.6}),
        "{kept}"
    );
    // Back to the learner's own; refusals change nothing.
    let reset = h
        .ok(
            Method::PUT,
            "/api/learners/ruled/milestone-rules",
            r#"{"rules":null}"#,
        )
        .await;
    assert_eq!(reset["milestone_rules"][0]["at_least"], 0.9);
    assert_eq!(reset["milestone_rules_set_here"], false);
    for (uri, body, code) in [
        (
            "/api/learners/ruled/milestone-rules",
            r#"{"rules":[{"metric":"success"}]}"#,
            ErrorCode::InvalidInput,
        ),
        (
            "/api/learners/ruled/milestone-rules",
            r#"{"rules":"success >= 1"}"#,
            ErrorCode::InvalidInput,
        ),
        (
            "/api/learners/nobody/milestone-rules",
            r#"{"rules":[]}"#,
            ErrorCode::NotFound,
        ),
    ] {
        h.call(Method::PUT, uri, body).await.refused(code);
    }
    assert_eq!(h.ok(Method::GET, "/api/learners/ruled", "").await, reset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_descriptions_set_in_engram_are_what_the_catalog_says() {
    let h = harness_paced(std::time::Duration::from_secs(3600)).await;
    let attach = r#"{"name":"described","metrics":{"success":{"label":"Success rate","format":"percent","higher_is_better":true},"loss":{"label":"Loss"}}}"#;
    h.ok(Method::POST, "/api/learners", attach).await;
    let set = h
        .ok(
            Method::PUT,
            "/api/learners/described/metric-info",
            r#"{"metrics":{"loss":{"label":"TD loss","unit":"nats","format":"decimal","higher_is_better":false}}}"#,
        )
        .await;
    assert_eq!(set["metric_info"]["loss"]["label"], "TD loss");
    assert_eq!(set["metric_info"]["success"]["label"], "Success rate");
    assert_eq!(set["declared_metric_info"]["loss"]["label"], "Loss");
    assert_eq!(set["metric_info_set_here"], json!(["loss"]));
    // The learner attaching again (a restart) keeps what was set here, and
    // the catalog — what the UI draws its curves and cards from — says it.
    let again = h.ok(Method::POST, "/api/learners", attach).await;
    assert_eq!(again["metric_info"]["loss"]["unit"], "nats");
    let catalog = h.ok(Method::GET, "/api/metrics/catalog", "").await;
    let loss = catalog
        .as_array()
        .expect("catalog")
        .iter()
        .find(|m| m["engine"] == "described" && m["key"] == "loss")
        .expect("loss in the catalog")
        .clone();
    assert_eq!(
        (&loss["label"], &loss["unit"], &loss["higher_is_better"]),
        (&json!("TD loss"), &json!("nats"), &json!(false)),
        "{loss}"
    );
    // Refusals change nothing.
    for (uri, body, code) in [
        (
            "/api/learners/described/metric-info",
            r#"{"metrics":{"Bad Name":{}}}"#,
            ErrorCode::InvalidInput,
        ),
        (
            "/api/learners/described/metric-info",
            r#"{"metrics":{"loss":{"format":"furlongs"}}}"#,
            ErrorCode::InvalidInput,
        ),
        (
            "/api/learners/described/metric-info",
            r#"{"metrics":{"loss":{"label":"a\u0007b"}}}"#,
            ErrorCode::InvalidInput,
        ),
        (
            "/api/learners/nobody/metric-info",
            r#"{"metrics":null}"#,
            ErrorCode::NotFound,
        ),
    ] {
        h.call(Method::PUT, uri, body).await.refused(code);
    }
    assert_eq!(
        h.ok(Method::GET, "/api/learners/described", "").await,
        again
    );
    // Back to the learner's own.
    let reset = h
        .ok(
            Method::PUT,
            "/api/learners/described/metric-info",
            r#"{"metrics":null}"#,
        )
        .await;
    assert_eq!(reset["metric_info"]["loss"]["label"], "Loss");
    assert_eq!(reset["metric_info_set_here"], json!([]));
}

#[path = "../../engram-core/tests/support/walk.rs"]
mod walk;

/// Every declared operation through HTTP, with its method, path and
/// request placed as the declaration says (built here from the same
/// declaration, by the typed client's rules: key in the path, request in
/// the query form or the body).
#[test]
fn every_declared_operation_answers_through_http() {
    use engram_core::api::operations::{RequestIn, declared};
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let h = rt.block_on(harness_paced(std::time::Duration::from_millis(20)));
    let routes = declared();
    walk::walk(|name, key, request| {
        let d = routes.iter().find(|d| d.name == name).expect("declared");
        let mut uri = format!("/api{}", d.path);
        if let Some(k) = d.key {
            let key = key.as_str().map_or(key.to_string(), str::to_owned);
            uri = uri.replace(&format!("{{{k}}}"), &key);
        }
        let mut body = String::new();
        match d.request_in {
            RequestIn::Nothing => {}
            RequestIn::Query => uri = format!("{uri}?{}", walk_query(name, request)),
            RequestIn::Body => body = request.to_string(),
        }
        let method = Method::from_bytes(d.method.as_bytes()).expect("method");
        let a = rt.block_on(h.call(method, &uri, &body));
        if a.status == 200 {
            Ok(a.json())
        } else {
            Err(a.json())
        }
    });
}

/// A walk step's request in its query form (through the declared form
/// type, as the typed client sends it).
fn walk_query(name: &str, request: &Value) -> String {
    use engram_core::api::{Operation, op};
    use engram_core::wire::QueryForm;
    macro_rules! encode {
        ($($name:ident)*) => {
            match name {
                $(stringify!($name) => {
                    let r: <op::$name as Operation>::Request =
                        serde_json::from_value(request.clone()).expect("request");
                    let form = <op::$name as Operation>::Form::from_request(&r);
                    serde_urlencoded_to_string(&form)
                })*
                _ => unreachable!("{name} is not declared"),
            }
        };
    }
    engram_core::for_each_operation_name!(encode)
}

fn serde_urlencoded_to_string(v: &impl serde::Serialize) -> String {
    serde_urlencoded::to_string(v).expect("query")
}
