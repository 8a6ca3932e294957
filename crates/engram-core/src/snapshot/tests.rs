use super::*;
use crate::codec::{Checksum, encode};
use crate::store::BackupQuery;
use crate::store::blob::compress;
use base64::Engine as _;

fn sample_store() -> (tempfile::TempDir, Store, i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path().join("engram.db")).expect("open");
    let q: Vec<f64> = (0..500)
        .map(|i| (i as f64).sin() * 1e-300)
        .chain([f64::NAN, -0.0])
        .collect();
    let states = [
        EngineState {
            engine: "learner".into(),
            state: encode(2, &q).expect("encode"),
            metrics: Metrics::from([("best_fitness".into(), 0.97)]),
        },
        EngineState {
            engine: "planner".into(),
            state: encode(1, &("plans", 12u64, vec![0.5f32; 64])).expect("encode"),
            metrics: Metrics::from([("success_rate".into(), 0.9)]),
        },
    ];
    let id = store
        .create_backup(&NewBackup {
            kind: BackupKind::Breakthrough,
            created_at_ms: 1_700_000_000_000,
            label: Some("first 90%".into()),
            breakthrough: Some(Breakthrough {
                engine: "planner".into(),
                rule: "zap.success_rate".into(),
                metric: "success_rate".into(),
                value: 0.9,
                step: 10,
            }),
            states: &states,
        })
        .expect("backup");
    (dir, store, id)
}

fn db_fingerprint(store: &Store) -> (u64, u64, Vec<i64>) {
    let ids = store
        .list_backups(&BackupQuery::default())
        .expect("list")
        .items
        .iter()
        .map(|b| b.id)
        .collect();
    (
        store.count_backups().expect("n"),
        store.blob_count().expect("b"),
        ids,
    )
}

#[test]
fn both_forms_round_trip_bit_exactly() {
    let (_dir, mut store, id) = sample_store();
    let original = store.backup_states(id).expect("states");
    for format in [SnapshotFormat::Json, SnapshotFormat::Binary] {
        let bytes = export_backup(&store, id, format).expect("export");
        let snap = parse(&bytes).expect("parse");
        assert_eq!(snap.manifest.backup.kind, BackupKind::Breakthrough);
        assert_eq!(snap.manifest.backup.created_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(snap.manifest.app_version, crate::APP_VERSION);
        let new_id = store.import_snapshot(&snap, 5).expect("import");
        let info = store.get_backup(new_id).expect("get");
        assert_eq!(info.kind, BackupKind::Imported);
        assert_eq!(info.label.as_deref(), Some("first 90%"));
        assert!(
            info.origin
                .as_deref()
                .unwrap_or("")
                .contains("\"breakthrough\"")
        );
        let back = store.backup_states(new_id).expect("states");
        for (a, b) in original.iter().zip(&back) {
            assert_eq!(a.engine, b.engine);
            assert_eq!(a.state.as_bytes(), b.state.as_bytes(), "{format:?}");
            assert_eq!(a.metrics, b.metrics);
        }
        // Re-exporting the imported backup gives the same states and checksums.
        let again = parse(&export_backup(&store, new_id, format).expect("export")).expect("parse");
        assert_eq!(
            again
                .manifest
                .engines
                .iter()
                .map(|e| &e.checksum)
                .collect::<Vec<_>>(),
            snap.manifest
                .engines
                .iter()
                .map(|e| &e.checksum)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn json_form_is_readable_by_generic_tools() {
    let (_dir, store, id) = sample_store();
    let bytes = export_backup(&store, id, SnapshotFormat::Json).expect("export");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("plain JSON");
    assert_eq!(v["format"], FORMAT_NAME);
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["backup"]["kind"], "breakthrough");
    assert_eq!(v["backup"]["breakthrough"]["step"], 10);
    assert_eq!(v["engines"][1]["name"], "planner");
    assert_eq!(v["states"]["planner"]["readable"][0], "plans");
    assert_eq!(v["states"]["learner"]["readable"][500], "NaN");
}

#[test]
fn file_export_is_atomic_and_importable() {
    let (_data, mut store, id) = sample_store();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snap.engram");
    let n = export_to_file(&store, id, SnapshotFormat::Binary, &path).expect("export");
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), n);
    let leftovers = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .count();
    assert_eq!(leftovers, 0);
    let new_id = store.import_file(&path, 9).expect("import");
    assert_eq!(
        store.get_backup(new_id).expect("get").kind,
        BackupKind::Imported
    );
    let err = export_to_file(&store, 12345, SnapshotFormat::Json, &path).expect_err("unknown");
    assert_eq!(err.code(), "not_found");
    assert_eq!(
        std::fs::metadata(&path).expect("meta").len(),
        n,
        "old file untouched"
    );
}

fn import_err(store: &mut Store, bytes: &[u8]) -> Error {
    let before = db_fingerprint(store);
    let err = parse(bytes)
        .and_then(|s| store.import_snapshot(&s, 1))
        .expect_err("must be refused");
    assert_eq!(
        db_fingerprint(store),
        before,
        "database changed by a refused import"
    );
    err
}

#[test]
fn bad_files_get_clear_errors_and_change_nothing() {
    let (_dir, mut store, id) = sample_store();
    let bin = export_backup(&store, id, SnapshotFormat::Binary).expect("bin");
    let json = export_backup(&store, id, SnapshotFormat::Json).expect("json");
    let check = |store: &mut Store, bytes: &[u8], code: &str, text: &str| {
        let err = import_err(store, bytes);
        assert_eq!(err.code(), code, "{err}");
        assert!(
            err.to_string().contains(text),
            "{err:?} should mention {text:?}"
        );
    };
    check(&mut store, b"", "invalid_snapshot", "empty");
    check(&mut store, b"hello", "invalid_snapshot", "neither");
    check(
        &mut store,
        &bin[..bin.len() / 2],
        "invalid_snapshot",
        "checksum",
    );
    check(
        &mut store,
        &json[..json.len() / 2],
        "invalid_snapshot",
        "JSON",
    );
    let mut future = bin.clone();
    future[8] = 3;
    check(&mut store, &future, "unsupported_format", "version 3");
    let text = String::from_utf8(json.clone()).expect("utf8");
    check(
        &mut store,
        text.replacen("\"format_version\": 1", "\"format_version\": 7", 1)
            .as_bytes(),
        "unsupported_format",
        "version 7",
    );
    check(
        &mut store,
        text.replacen(
            "\"format\": \"engram-snapshot\"",
            "\"format\": \"other\"",
            1,
        )
        .as_bytes(),
        "invalid_snapshot",
        "format",
    );
    // A state whose data no longer matches its checksum.
    let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
    let mut tampered = v.clone();
    let data = tampered["states"]["planner"]["data"]
        .as_str()
        .expect("data")
        .to_string();
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("b64");
    let last = raw.len() - 1;
    raw[last] ^= 1;
    tampered["states"]["planner"]["data"] = base64::engine::general_purpose::STANDARD
        .encode(&raw)
        .into();
    check(
        &mut store,
        &serde_json::to_vec(&tampered).expect("ser"),
        "invalid_snapshot",
        "checksum mismatch",
    );
    let mut missing = v.clone();
    missing["states"]
        .as_object_mut()
        .expect("obj")
        .remove("planner");
    check(
        &mut store,
        &serde_json::to_vec(&missing).expect("ser"),
        "invalid_snapshot",
        "do not match",
    );
    let mut bad_name = v;
    bad_name["engines"][0]["name"] = "../etc".into();
    check(
        &mut store,
        &serde_json::to_vec(&bad_name).expect("ser"),
        "invalid_snapshot",
        "invalid engine name",
    );
}

#[test]
fn flipped_bytes_never_panic_and_never_import_wrong_data() {
    let (_dir, store, id) = sample_store();
    let original: Vec<Vec<u8>> = store
        .backup_states(id)
        .expect("states")
        .into_iter()
        .map(|s| s.state.into_bytes())
        .collect();
    let mut rng = crate::test_rng(7);
    for format in [SnapshotFormat::Binary, SnapshotFormat::Json] {
        let good = export_backup(&store, id, format).expect("export");
        for _ in 0..300 {
            let mut bytes = good.clone();
            for _ in 0..1 + rng() % 3 {
                let i = (rng() as usize) % bytes.len();
                bytes[i] ^= 1 << (rng() % 8);
            }
            // Either refused, or (a flip in insignificant JSON whitespace, a
            // readable rendering or metrics) accepted with the exact states.
            if let Ok(snap) = parse(&bytes) {
                let got: Vec<&[u8]> = snap.states.iter().map(|s| s.state.as_bytes()).collect();
                let want: Vec<&[u8]> = original.iter().map(Vec::as_slice).collect();
                assert_eq!(
                    got, want,
                    "{format:?}: a damaged file imported different states"
                );
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        let _ = parse(&bytes);
        let mut with_magic = BINARY_MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = parse(&with_magic);
        let mut jsonish = b"{\"format\":\"engram-snapshot\",\"format_version\":1,".to_vec();
        jsonish.extend_from_slice(&bytes);
        let _ = parse(&jsonish);
    }
}

#[test]
fn export_never_replaces_the_database_or_anything_in_the_data_directory() {
    let (data, store, id) = sample_store();
    let db = store.path().to_path_buf();
    let before = std::fs::read(&db).expect("db");
    let outside = tempfile::tempdir().expect("tempdir");
    let link = outside.path().join("link.json");
    std::os::unix::fs::symlink(&db, &link).expect("symlink");
    let sub = outside.path().join("a-directory");
    std::fs::create_dir(&sub).expect("mkdir");
    // Both temporary directories share a parent: reach the data directory through `..`.
    let sneaky = outside
        .path()
        .join("..")
        .join(data.path().file_name().expect("name"));
    for target in [
        db.clone(),
        db.with_extension("db-wal"),
        data.path().join("engram.lock"),
        data.path().join("new-file.json"),
        sneaky.join("engram.db"),
        link.clone(),
        sub.clone(),
        std::path::PathBuf::from("/dev/null"),
    ] {
        let err = export_to_file(&store, id, SnapshotFormat::Json, &target)
            .expect_err(&target.display().to_string());
        assert_eq!(err.code(), "invalid_input", "{}: {err}", target.display());
        assert!(err.to_string().contains("will not export"), "{err}");
    }
    assert_eq!(
        std::fs::read(&db).expect("db"),
        before,
        "the database is untouched"
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert!(!data.path().join("new-file.json").exists());
    // A regular file outside is replaced as before.
    let fine = outside.path().join("fine.json");
    std::fs::write(&fine, b"old").expect("write");
    export_to_file(&store, id, SnapshotFormat::Json, &fine).expect("export");
    assert!(std::fs::read(&fine).expect("read").starts_with(b"{"));
}

#[test]
fn nan_and_infinite_metrics_round_trip_through_export_and_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path().join("engram.db")).expect("open");
    let states = [EngineState {
        engine: "planner".into(),
        state: encode(1, &1u8).expect("encode"),
        metrics: Metrics::from([
            ("nan".into(), f64::NAN),
            ("inf".into(), f64::INFINITY),
            ("fine".into(), 0.25),
        ]),
    }];
    let id = store
        .create_backup(&NewBackup {
            kind: BackupKind::Breakthrough,
            created_at_ms: 1,
            label: None,
            breakthrough: Some(Breakthrough {
                engine: "planner".into(),
                rule: "r".into(),
                metric: "nan".into(),
                value: f64::NAN,
                step: 1,
            }),
            states: &states,
        })
        .expect("backup");
    for format in [SnapshotFormat::Json, SnapshotFormat::Binary] {
        let bytes = export_backup(&store, id, format).expect("export");
        let snap = parse(&bytes).expect("a NaN metric does not make the file unreadable");
        let new_id = store.import_snapshot(&snap, 2).expect("import");
        let b = store.get_backup(new_id).expect("get");
        let m = &b.engines[0].metrics;
        // JSON has no NaN or infinity: both are written as null, read as NaN.
        assert!(m["nan"].is_nan() && m["inf"].is_nan(), "{format:?}: {m:?}");
        assert_eq!(m["fine"], 0.25);
        // And the imported backup exports and imports again.
        let again = export_backup(&store, new_id, format).expect("export again");
        parse(&again).expect("parse again");
    }
}

#[test]
fn a_snapshot_holding_an_engine_state_outside_its_bounds_is_refused_naming_the_field() {
    // Regression (issue 11, item 1): such a file imported without complaint
    // and hung the engines once restored.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut source = Store::open(dir.path().join("source.db")).expect("open");
    let mut zap = crate::engines::zap::Zap::new(Default::default(), 1);
    zap.config.simulations = u32::MAX;
    let states = [EngineState {
        engine: "zap".into(),
        state: zap.capture().expect("capture"),
        metrics: Metrics::new(),
    }];
    let id = source
        .create_backup(&NewBackup {
            kind: BackupKind::Manual,
            created_at_ms: 1,
            label: None,
            breakthrough: None,
            states: &states,
        })
        .expect("backup");
    let mut target = Store::open(dir.path().join("target.db")).expect("open");
    for format in [SnapshotFormat::Json, SnapshotFormat::Binary] {
        let bytes = export_backup(&source, id, format).expect("export");
        let err = import_err(&mut target, &bytes);
        assert_eq!(err.code(), "invalid_snapshot", "{format:?}: {err}");
        assert!(
            err.to_string().contains("config.simulations"),
            "{format:?}: {err}"
        );
    }
}

/// The binary form around a given manifest and bodies (for crafted files).
fn binary_file(manifest: &serde_json::Value, bodies: &[Vec<u8>]) -> Vec<u8> {
    let m = serde_json::to_vec(manifest).expect("manifest");
    let mut out = BINARY_MAGIC.to_vec();
    out.extend_from_slice(&(FORMAT_VERSION as u16).to_le_bytes());
    out.extend_from_slice(&(m.len() as u32).to_le_bytes());
    out.extend_from_slice(&m);
    for b in bodies {
        out.extend_from_slice(b);
    }
    let sum = Checksum::of(&out);
    out.extend_from_slice(&sum.0);
    out
}

/// The JSON manifest of the sample backup, for crafting variants.
fn sample_manifest(store: &Store, id: i64) -> (serde_json::Value, Vec<u8>) {
    let json: serde_json::Value =
        serde_json::from_slice(&export_backup(store, id, SnapshotFormat::Json).expect("json"))
            .expect("parse");
    (
        json,
        export_backup(store, id, SnapshotFormat::Binary).expect("bin"),
    )
}

#[test]
fn a_decompression_bomb_is_refused_before_it_is_decompressed() {
    // Regression (issue 11, item 4): 34 KB asked for 1.07 GB.
    let (_dir, mut store, id) = sample_store();
    let (json, _) = sample_manifest(&store, id);
    let mut manifest = json.clone();
    manifest.as_object_mut().expect("object").remove("states");
    let zeros = vec![0u8; 64 << 20];
    let body = compress(&zeros).expect("compress");
    assert!(body.len() < 64 << 10, "a real bomb: {} bytes", body.len());
    manifest["engines"] = serde_json::json!([{
        "name": "learner",
        "metrics": {},
        "checksum": Checksum::of(&zeros).to_hex(),
        "size": zeros.len(),
        "stored_size": body.len(),
        "state_format": 1,
        "schema": 1,
    }]);
    let err = import_err(&mut store, &binary_file(&manifest, &[body]));
    assert_eq!(err.code(), "invalid_snapshot", "{err}");
    assert!(err.to_string().contains("decompression bomb"), "{err}");
}

#[test]
fn the_states_of_one_file_together_are_bounded_before_anything_is_decoded() {
    let (_dir, mut store, id) = sample_store();
    let (mut json, _) = sample_manifest(&store, id);
    let engines = json["engines"].as_array_mut().expect("engines");
    let mut third = engines[0].clone();
    third["name"] = serde_json::json!("third");
    engines.push(third);
    // Each within the limit of one state, together beyond the file's.
    for e in engines.iter_mut() {
        e["size"] = serde_json::json!(500u64 << 20);
    }
    let err = import_err(&mut store, &serde_json::to_vec(&json).expect("json"));
    assert_eq!(err.code(), "too_large", "{err}");
    assert!(
        err.to_string()
            .contains("engine and learner states in one snapshot"),
        "{err}"
    );
}

#[test]
fn the_json_manifest_is_bounded_like_the_binary_one() {
    // Regression (issue 11, item 12): a 5 MB app_version and 100k metric
    // keys were accepted and returned on every listing.
    let (_dir, mut store, id) = sample_store();
    let (json, _) = sample_manifest(&store, id);
    let mut long = json.clone();
    long["app_version"] = serde_json::json!("9".repeat(5 << 20));
    let err = import_err(&mut store, &serde_json::to_vec(&long).expect("json"));
    assert_eq!(err.code(), "invalid_snapshot", "{err}");
    assert!(err.to_string().contains("app_version"), "{err}");

    let mut keys = json.clone();
    let many: serde_json::Map<String, serde_json::Value> = (0..100_000)
        .map(|i| (format!("m{i}"), serde_json::json!(1.0)))
        .collect();
    keys["engines"][0]["metrics"] = serde_json::Value::Object(many);
    let err = import_err(&mut store, &serde_json::to_vec(&keys).expect("json"));
    assert!(err.to_string().contains("metrics, more than"), "{err}");

    // A control character in created_at is named as such (it used to be
    // blamed on a label the file did not have).
    let mut ctl = json.clone();
    ctl["backup"]["created_at"] = serde_json::json!("2026-01-01\u{0007}");
    ctl["backup"]["label"] = serde_json::Value::Null;
    let err = import_err(&mut store, &serde_json::to_vec(&ctl).expect("json"));
    assert!(err.to_string().contains("backup.created_at"), "{err}");

    // A text-direction override in a label is refused like a control character.
    let mut rtl = json.clone();
    rtl["backup"]["label"] = serde_json::json!("safe\u{202E}exe.txt");
    let err = import_err(&mut store, &serde_json::to_vec(&rtl).expect("json"));
    assert!(err.to_string().contains("label"), "{err}");
}

/// A store whose backup also holds a learner's state (`q-table`, 300 KB).
fn store_with_learner() -> (tempfile::TempDir, Store, i64, Vec<u8>) {
    store_with_learner_of(300_000)
}

/// The same with a learner state of `size` bytes.
fn store_with_learner_of(size: u32) -> (tempfile::TempDir, Store, i64, Vec<u8>) {
    let (dir, mut store, _) = sample_store();
    // A live state for each engine, so a cut has something to hold.
    store
        .save_live(
            &[EngineState {
                engine: "planner".into(),
                state: encode(1, &7u64).expect("encode"),
                metrics: Metrics::new(),
            }],
            1_700_000_000_500,
        )
        .expect("live");
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    store
        .attach_learner("q-table", Some("engram.pack/1"), 1)
        .expect("attach");
    let info = store.objects().put(&bytes).expect("put");
    store
        .save_learner_live(
            "q-table",
            &crate::store::NewLearnerState {
                generation: None,
                object: info.checksum,
                size: info.size,
                step: Some(4200),
                metrics: Metrics::from([("success".into(), 0.75), ("odd".into(), f64::NAN)]),
            },
            1_700_000_001_000,
            None,
        )
        .expect("save");
    let id = store
        .backup_live(
            BackupKind::Manual,
            1_700_000_002_000,
            Some("with a learner".into()),
            None,
        )
        .expect("backup");
    (dir, store, id, bytes)
}

#[test]
fn learner_states_travel_with_their_backup_in_both_forms() {
    let (_dir, store, id, bytes) = store_with_learner();
    for format in [SnapshotFormat::Json, SnapshotFormat::Binary] {
        let file = export_backup(&store, id, format).expect("export");
        let snap = parse(&file).expect("parse");
        assert_eq!(
            snap.manifest.format_version, 2,
            "{format:?}: learners need version 2"
        );
        assert_eq!(snap.manifest.learners.len(), 1);
        let l = &snap.manifest.learners[0];
        assert_eq!(
            (l.name.as_str(), l.format.as_str(), l.step),
            ("q-table", "engram.pack/1", Some(4200))
        );
        assert_eq!(snap.learner_states[0], bytes);

        let target_dir = tempfile::tempdir().expect("tempdir");
        let mut target = Store::open(target_dir.path().join("engram.db")).expect("open");
        let imported = target.import_snapshot(&snap, 5).expect("import");
        let held = target.backup_learners(imported).expect("learners");
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].0, "q-table");
        assert_eq!(held[0].1.step, Some(4200));
        assert_eq!(held[0].1.metrics["success"], 0.75);
        assert!(held[0].1.metrics["odd"].is_nan());
        // Registered with its format; restoring it makes the bytes live.
        assert_eq!(
            target.learner("q-table").expect("known").format,
            "engram.pack/1"
        );
        let live = target
            .restore_learner(imported, "q-table", 6)
            .expect("restore");
        let sum = Checksum::from_hex(&live.checksum).expect("hex");
        assert_eq!(target.objects().read(&sum, u64::MAX).expect("read"), bytes);
    }
    // Without learners, files stay version 1 (older readers read them).
    let (_d, plain, plain_id) = sample_store();
    let file = export_backup(&plain, plain_id, SnapshotFormat::Json).expect("export");
    assert_eq!(parse(&file).expect("parse").manifest.format_version, 1);
}

#[test]
fn a_small_imported_learner_state_is_kept_inside_the_database() {
    let (_dir, store, id, bytes) = store_with_learner_of(1000);
    let file = export_backup(&store, id, SnapshotFormat::Binary).expect("export");
    let snap = parse(&file).expect("parse");
    let target_dir = tempfile::tempdir().expect("tempdir");
    let mut target = Store::open(target_dir.path().join("engram.db")).expect("open");
    let imported = target.import_snapshot(&snap, 5).expect("import");
    let shards = std::fs::read_dir(target_dir.path().join("objects"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().len() == 2)
        .count();
    assert_eq!(shards, 0, "no object file for a 1000-byte state");
    let live = target
        .restore_learner(imported, "q-table", 6)
        .expect("restore");
    let sum = Checksum::from_hex(&live.checksum).expect("hex");
    assert_eq!(
        target.read_learner_bytes(&sum, u64::MAX).expect("read"),
        bytes
    );
}

#[test]
fn a_damaged_or_conflicting_learner_state_is_refused_and_changes_nothing() {
    let (_dir, store, id, _) = store_with_learner();
    let json = String::from_utf8(export_backup(&store, id, SnapshotFormat::Json).expect("json"))
        .expect("utf-8");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let target_dir = tempfile::tempdir().expect("tempdir");
    let mut target = Store::open(target_dir.path().join("engram.db")).expect("open");
    let refuse = |target: &mut Store, v: &serde_json::Value, code: &str, text: &str| {
        let err = import_err(target, &serde_json::to_vec(v).expect("bytes"));
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains(text), "{err} should say {text:?}");
        assert!(
            target
                .learners()
                .expect("learners")
                .iter()
                .all(|l| l.name != "q-table"),
            "{err}"
        );
    };
    // One byte changed in the learner's data.
    let mut bad = v.clone();
    let data = bad["learner_states"]["q-table"]["data"]
        .as_str()
        .expect("data")
        .to_string();
    let first = if data.starts_with('A') { 'B' } else { 'A' };
    let flipped: String = std::iter::once(first).chain(data.chars().skip(1)).collect();
    bad["learner_states"]["q-table"]["data"] = flipped.into();
    refuse(
        &mut target,
        &bad,
        "invalid_snapshot",
        "checksum mismatch for learner q-table",
    );
    // Learners in a version-1 file; a missing state; a built-in's name; a bad format.
    let mut v1 = v.clone();
    v1["format_version"] = 1.into();
    refuse(&mut target, &v1, "invalid_snapshot", "version 2");
    let mut missing = v.clone();
    missing["learner_states"] = serde_json::json!({});
    refuse(
        &mut target,
        &missing,
        "invalid_snapshot",
        "learner states do not match",
    );
    let mut builtin = v.clone();
    builtin["learners"][0]["name"] = "zap".into();
    refuse(&mut target, &builtin, "invalid_snapshot", "built-in");
    let mut spaced = v.clone();
    spaced["learners"][0]["format"] = "two words".into();
    refuse(
        &mut target,
        &spaced,
        "invalid_snapshot",
        "malformed state format",
    );
    let mut huge = v.clone();
    huge["learners"][0]["size"] = (crate::limits::MAX_LEARNER_STATE_BYTES + 1).into();
    refuse(&mut target, &huge, "too_large", "learner state");

    // The same learner here in another format, with a saved state: refused.
    target
        .attach_learner("q-table", Some("pickle"), 1)
        .expect("attach");
    let info = target.objects().put(b"mine").expect("put");
    target
        .save_learner_live(
            "q-table",
            &crate::store::NewLearnerState {
                generation: None,
                object: info.checksum,
                size: 4,
                step: None,
                metrics: Metrics::new(),
            },
            2,
            None,
        )
        .expect("save");
    let before = db_fingerprint(&target);
    let err = parse(json.as_bytes())
        .and_then(|s| target.import_snapshot(&s, 3))
        .expect_err("conflict");
    assert_eq!(err.code(), "invalid_snapshot");
    assert!(
        err.to_string()
            .contains("keeps its states in format \"pickle\""),
        "{err}"
    );
    assert_eq!(db_fingerprint(&target), before);
    assert_eq!(target.learner("q-table").expect("q").format, "pickle");
}
