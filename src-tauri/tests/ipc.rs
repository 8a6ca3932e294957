//! The desktop commands through Tauri's own IPC, on the mock runtime (no
//! window system needed): every answer is the core API's typed value, every
//! refusal its `{code, message}`, and bytes cross as raw bodies.

use engram_core::api::Api;
use engram_core::runtime::RuntimeOptions;
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, get_ipc_response, mock_builder, mock_context, noop_assets};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindowBuilder};

fn request(cmd: &str, body: InvokeBody) -> InvokeRequest {
    InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("url"),
        body,
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    }
}

/// The desktop commands on the mock runtime, over a runtime on a new data
/// directory whose engines tick every `pace_ms`.
fn desktop(
    pace_ms: u64,
) -> (
    tempfile::TempDir,
    tauri::App<tauri::test::MockRuntime>,
    tauri::WebviewWindow<tauri::test::MockRuntime>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = RuntimeOptions::new(dir.path());
    opts.pace = std::time::Duration::from_millis(pace_ms);
    let api = tauri::async_runtime::block_on(Api::start(opts));
    assert!(api.runtime().is_ok(), "runtime starts");
    let app = engram_desktop::with_commands(mock_builder())
        .build(mock_context(noop_assets()))
        .expect("app");
    app.manage(std::sync::Arc::new(api));
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("window");
    (dir, app, window)
}

#[test]
fn commands_answer_with_the_api_types_and_errors() {
    let (dir, app, window) = desktop(1);
    let call = |cmd: &str, body: InvokeBody| get_ipc_response(&window, request(cmd, body));
    let ok = |cmd: &str, args: Value| -> Value {
        call(cmd, args.into())
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
            .deserialize()
            .expect("json")
    };
    let err = |cmd: &str, body: InvokeBody| -> Value { call(cmd, body).expect_err(cmd) };

    let status = ok("status", json!({}));
    assert_eq!(status["running"], true);
    assert!(status["engines"]["zap"]["metrics"].is_object(), "{status}");
    assert_eq!(status["data_dir"], dir.path().display().to_string());

    let page = ok(
        "list_backups",
        json!({"request": {"kinds": ["initial"], "limit": 10}}),
    );
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["kind"], "initial");

    let outlook = ok("retention", json!({}));
    assert_eq!(outlook[0]["rolls_off_next"], false, "{outlook}");
    let none = ok("retention", json!({"request": {"ids": [999]}}));
    assert_eq!(none, json!([]), "only the ids asked about");
    let manual = ok("create_backup", json!({"request": {"label": "from ipc"}}));
    assert_eq!(manual["kind"], "manual");
    let id = manual["id"].as_i64().expect("id");
    let held = ok("hold_backup", json!({"id": id}));
    assert_eq!(held["seconds"], 180, "{held}");
    assert_eq!(ok("release_backup", json!({"id": id}))["seconds"], 0);
    let hold_err = err("hold_backup", json!({"id": 999_999}).into());
    assert_eq!(hold_err["code"], "not_found", "{hold_err}");
    let found = ok(
        "list_backups",
        json!({"request": {"text": "FROM IPC", "pinned": false}}),
    );
    assert_eq!(found["total"], 1, "{found}");
    let t = ok(
        "timeline",
        json!({"request": {"kinds": ["manual"], "buckets": 10}}),
    );
    assert_eq!(
        (t["in_range"].as_u64(), t["complete"].as_bool()),
        (Some(1), Some(true)),
        "{t}"
    );
    // Supervision (the app starts it once its learner API listens).
    let api = app.state::<std::sync::Arc<Api>>();
    tauri::async_runtime::block_on(api.supervise_learners()).expect("supervise");
    let workdir = dir.path().display().to_string();
    let added = ok(
        "set_learner_command",
        json!({"name": "sup", "request": {"argv": ["sh", "-c", "exec sleep 300"], "workdir": workdir}}),
    );
    assert_eq!(added["process"]["phase"], "running", "{added}");
    let stopped = ok("stop_learner", json!({"name": "sup"}));
    assert_eq!(stopped["process"]["phase"], "stopped", "{stopped}");
    assert_eq!(
        ok("learner", json!({"name": "sup"}))["command"]["autostart"],
        false
    );
    let started = ok("start_learner", json!({"name": "sup"}));
    assert_eq!(started["process"]["phase"], "running", "{started}");
    let removed = ok("remove_learner_command", json!({"name": "sup"}));
    assert!(removed["process"].is_null(), "{removed}");
    let no_cmd = err("start_learner", json!({"name": "sup"}).into());
    assert_eq!(no_cmd["code"], "not_found", "{no_cmd}");
    let bad = err(
        "set_learner_command",
        json!({"name": "sup", "request": {"argv": []}}).into(),
    );
    assert_eq!(bad["code"], "invalid_input", "{bad}");
    // Milestone rules set here, then the learner deleted.
    let ruled = ok(
        "set_learner_milestone_rules",
        json!({"name": "sup", "request": {"rules": [{"metric": "success", "at_least": 0.5}]}}),
    );
    assert_eq!(ruled["milestone_rules_set_here"], true, "{ruled}");
    assert_eq!(ruled["milestone_rules"][0]["at_least"], 0.5, "{ruled}");
    let bad_rule = err(
        "set_learner_milestone_rules",
        json!({"name": "sup", "request": {"rules": [{"metric": "success"}]}}).into(),
    );
    assert_eq!(bad_rule["code"], "invalid_input", "{bad_rule}");
    // A metric described here.
    let described = ok(
        "set_learner_metric_info",
        json!({"name": "sup", "request": {"metrics": {"loss": {"label": "TD loss", "unit": null, "format": "decimal", "higher_is_better": false}}}}),
    );
    assert_eq!(
        described["metric_info_set_here"],
        json!(["loss"]),
        "{described}"
    );
    assert_eq!(
        described["metric_info"]["loss"]["label"], "TD loss",
        "{described}"
    );
    let bad_info = err(
        "set_learner_metric_info",
        json!({"name": "sup", "request": {"metrics": {"Bad Name": {}}}}).into(),
    );
    assert_eq!(bad_info["code"], "invalid_input", "{bad_info}");
    let gone = ok("remove_learner", json!({"name": "sup"}));
    assert_eq!(
        gone,
        json!({"name": "sup", "backups": 0, "newest_backup_id": null})
    );
    let twice = err("remove_learner", json!({"name": "sup"}).into());
    assert_eq!(twice["code"], "not_found", "{twice}");

    let storage = ok("storage", json!({}));
    // The initial backup and the one made here; the engines (ticking every
    // millisecond) may have reached a milestone meanwhile: a breakthrough
    // backup beside them is theirs, not this test's.
    let kinds = storage["by_kind"].as_array().expect("by_kind");
    let of = |kind: &str| {
        kinds
            .iter()
            .find(|k| k["kind"] == kind)
            .map_or(0, |k| k["backups"].as_u64().expect("count"))
    };
    assert_eq!((of("initial"), of("manual")), (1, 1), "{storage}");
    let breakthroughs = of("breakthrough");
    assert_eq!(
        storage["backups"].as_u64(),
        Some(2 + breakthroughs),
        "{storage}"
    );

    // Export: raw bytes out; import: raw bytes in.
    let file = call(
        "export_backup",
        json!({"id": id, "request": {"format": "binary"}}).into(),
    )
    .expect("export");
    let bytes = match file {
        tauri::ipc::InvokeResponseBody::Raw(b) => b,
        other => panic!("export should be raw bytes, got {other:?}"),
    };
    assert!(bytes.starts_with(b"ENGRAMSN"));
    let imported: Value = call("import_snapshot", InvokeBody::Raw(bytes))
        .expect("import")
        .deserialize()
        .expect("json");
    assert_eq!(imported["kind"], "imported");

    // A learner's state in a backup, saved where the user chose (the
    // desktop's "Download"): its own bytes; never into the data directory.
    let api = app.state::<std::sync::Arc<Api>>();
    let held_state = tauri::async_runtime::block_on(async {
        api.attach_learner(engram_core::wire::AttachLearner {
            name: "q".into(),
            ..Default::default()
        })
        .await?;
        let chunks = tokio_stream::iter([Ok::<_, std::io::Error>(b"q-table bytes".to_vec())]);
        api.save_learner_state("q".into(), Default::default(), chunks)
            .await?;
        api.create_backup(engram_core::wire::CreateBackup::default())
            .await
    })
    .expect("a backup holding learner q");
    let out = tempfile::tempdir().expect("tempdir");
    let target = out.path().join("q.state");
    let saved = ok(
        "read_learner_state_to",
        json!({"name": "q", "request": {"backup": held_state.id}, "path": target}),
    );
    assert_eq!(saved["bytes"], 13, "{saved}");
    assert_eq!(saved["backup"], held_state.id, "{saved}");
    assert_eq!(std::fs::read(&target).expect("written"), b"q-table bytes");
    let inside = err(
        "read_learner_state_to",
        json!({"name": "q", "request": {"backup": held_state.id}, "path": dir.path().join("q.state")}).into(),
    );
    assert_eq!(inside["code"], "invalid_input", "{inside}");
    assert!(!dir.path().join("q.state").exists());
    let unknown = err(
        "read_learner_state_to",
        json!({"name": "nobody", "request": {}, "path": out.path().join("x")}).into(),
    );
    assert_eq!(unknown["code"], "not_found", "{unknown}");

    // Refusals carry the API's codes, unchanged.
    let bad = err(
        "import_snapshot",
        InvokeBody::Raw(b"not a snapshot".to_vec()),
    );
    assert_eq!(bad["code"], "invalid_snapshot", "{bad}");
    let json_body = err("import_snapshot", json!({"bytes": [1, 2]}).into());
    assert_eq!(json_body["code"], "invalid_input", "{json_body}");
    assert_eq!(
        err("get_backup", json!({"id": 999_999}).into())["code"],
        "not_found"
    );
    let protected = err("delete_backup", json!({"id": 1}).into());
    assert_eq!(protected["code"], "protected");

    let schema = ok("settings_schema", json!({}));
    assert!(schema.as_array().is_some_and(|f| f.len() >= 10));
    let mut settings = ok("settings", json!({}));
    settings["orchestrator_every"] = json!(0);
    let refused = err("patch_settings", json!({"request": settings}).into());
    assert_eq!(refused["code"], "invalid_input");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("orchestrator_every"))
    );

    let api = app.state::<std::sync::Arc<Api>>();
    tauri::async_runtime::block_on(api.stop()).expect("stop");
    // After the engines stop, calls report it instead of hanging.
    let stopped = err("create_backup", json!({"request": {}}).into());
    assert_eq!(stopped["code"], "runtime_stopped", "{stopped}");
}

#[path = "../../crates/engram-core/tests/support/walk.rs"]
mod walk;

/// Every declared operation through Tauri's own IPC: its key under its
/// declared name, its request as `request`.
#[test]
fn every_declared_operation_answers_through_ipc() {
    use engram_core::api::operations::declared;
    let (_dir, _app, window) = desktop(20);
    let routes = declared();
    walk::walk(|name, key, req| {
        let d = routes.iter().find(|d| d.name == name).expect("declared");
        let mut args = serde_json::Map::new();
        if let Some(k) = d.key {
            args.insert(k.to_string(), key.clone());
        }
        if !req.is_null() {
            args.insert("request".into(), req.clone());
        }
        get_ipc_response(&window, request(name, Value::Object(args).into()))
            .map(|r| r.deserialize::<Value>().expect("json"))
    });
}
