//! `engram status` and `engram backups …`: one function per subcommand, each
//! one declared operation through the [`Door`] (the running Engram when
//! there is one, else the data directory) and a printout.

use crate::door::Door;
use clap::Subcommand;
use engram_core::api::{NoKey, byte_op, op};
use engram_core::engines::catalog::metric_info;
use engram_core::wire::{
    Backup, BackupValue, CompareRequest, CreateBackup, ExportRequest, LabelRequest, ListBackups,
    RestoreRequest, SnapshotFormat,
};
use engram_core::{BackupKind, Error, Result, rfc3339};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum BackupsCommand {
    /// List backups, newest first.
    List {
        #[arg(long)]
        json: bool,
        /// Only this kind.
        #[arg(long, value_enum)]
        kind: Option<BackupKind>,
        /// Only backups holding this engine.
        #[arg(long)]
        engine: Option<String>,
        /// At most this many (default: all).
        #[arg(long)]
        limit: Option<u64>,
        /// Only backups whose label or milestone contains this text.
        #[arg(long)]
        search: Option<String>,
        /// Only pinned backups.
        #[arg(long)]
        pinned: bool,
    },
    /// Take a manual backup of the saved live state.
    Create {
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup (or one engine from it); a pre-restore backup is taken first.
    Restore {
        id: i64,
        #[arg(long)]
        engine: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Export a backup to a portable file.
    Export {
        id: i64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = SnapshotFormat::Json)]
        format: SnapshotFormat,
    },
    /// Import a snapshot file as an `imported` backup.
    Import {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Verify the database and every stored state.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Pin a backup: retention never deletes it.
    Pin { id: i64 },
    /// Unpin a backup.
    Unpin { id: i64 },
    /// Set a backup's label (without --label: clear it).
    Label {
        id: i64,
        #[arg(long)]
        label: Option<String>,
    },
    /// Delete a backup (initial, breakthrough and pinned ones are refused).
    Delete { id: i64 },
    /// Two backups side by side (or a backup and the live state: `live`):
    /// each engine's and learner's metrics in both and the change, and
    /// what changed inside its state.
    Compare {
        id: i64,
        /// Another backup's id, or `live`.
        with: String,
        #[arg(long)]
        json: bool,
    },
    /// One metric's value in every backup along the current line of
    /// history (restores followed back), oldest first: `--metric zap.score`.
    Metric {
        /// ENGINE.KEY (an engine or a learner, then its metric).
        #[arg(long)]
        metric: String,
        /// Also the backups on other lines of history (left by a restore),
        /// marked "other line".
        #[arg(long)]
        all_lines: bool,
        #[arg(long)]
        json: bool,
    },
    /// Drill a backup: its engines' evaluations (and its learners' drill
    /// commands) run again on its states in a sandbox — the live state and
    /// the backup stay as they are — and the results are kept with it.
    Drill {
        id: i64,
        /// Only these engines or learners (repeat for more).
        #[arg(long = "unit")]
        units: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// A backup's drills, newest first.
    Drills {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Where along the current line of history a metric first fell below a
    /// threshold: the last good backup and the first after it.
    Find {
        /// ENGINE.KEY (an engine or a learner, then its metric).
        #[arg(long)]
        metric: String,
        #[arg(long, allow_negative_numbers = true)]
        below: f64,
        /// Drill the backups that carry no value of the metric, bisecting
        /// (the drills are kept with the backups).
        #[arg(long)]
        drill: bool,
        #[arg(long)]
        json: bool,
    },
}

/// `zap.success_rate` → (`zap`, `success_rate`): the engine is up to the
/// first dot (engine and learner names have none).
fn engine_key(metric: &str) -> Result<(String, String)> {
    match metric.split_once('.') {
        Some((e, k)) if !e.is_empty() && !k.is_empty() => Ok((e.to_string(), k.to_string())),
        _ => Err(engram_core::Error::InvalidInput(format!(
            "--metric {metric:?}: write ENGINE.KEY, e.g. zap.success_rate"
        ))),
    }
}

pub fn run(api: &Door, cmd: BackupsCommand) -> Result<()> {
    use BackupsCommand as C;
    match cmd {
        C::List {
            json,
            kind,
            engine,
            limit,
            search,
            pinned,
        } => {
            let req = ListBackups {
                kinds: kind.into_iter().collect(),
                engine,
                text: search,
                pinned,
                ..Default::default()
            };
            list(api, json, req, limit)
        }
        C::Create { label, json } => create(api, label, json),
        C::Restore { id, engine, json } => restore(api, id, engine, json),
        C::Export { id, out, format } => export(api, id, out, format),
        C::Import { file, json } => import(api, file, json),
        C::Verify { json } => verify(api, json),
        C::Pin { id } => pin(api, id, true),
        C::Unpin { id } => pin(api, id, false),
        C::Label { id, label } => label_backup(api, id, label),
        C::Delete { id } => delete(api, id),
        C::Compare { id, with, json } => compare(api, id, with, json),
        C::Drill { id, units, json } => {
            let d = api.call::<op::drill_backup>(id, engram_core::wire::DrillRequest { units })?;
            show_drills(&d, json)
        }
        C::Drills { id, json } => show_drills(&api.call::<op::backup_drills>(id, ())?, json),
        C::Metric {
            metric,
            all_lines,
            json,
        } => {
            let (engine, key) = engine_key(&metric)?;
            let line = api.call::<op::metric_in_backups>(
                NoKey,
                engram_core::wire::MetricLineRequest {
                    engine,
                    key,
                    other_lines: all_lines,
                },
            )?;
            if json {
                return out_json(&line);
            }
            // In time order, those on other lines marked.
            let mut rows: Vec<(&BackupValue, bool)> =
                line.backups.iter().map(|b| (b, false)).collect();
            rows.extend(line.elsewhere.iter().map(|b| (b, true)));
            rows.sort_by_key(|(b, _)| (b.created_at_ms, b.id));
            for (b, other) in rows {
                out(format!(
                    "{:>8}  {}  {:<12} {}{}",
                    b.id,
                    rfc3339(b.created_at_ms),
                    b.kind.as_str(),
                    b.value.map_or("—".to_string(), |v| v.to_string()),
                    if other { "  (other line)" } else { "" }
                ))?;
            }
            Ok(())
        }
        C::Find {
            metric,
            below,
            drill,
            json,
        } => {
            let (engine, key) = engine_key(&metric)?;
            let req = engram_core::wire::FindFall { engine, key, below };
            // Drilling records the drills: a change, so a running Engram
            // does it; plain finding is a read.
            let found = if drill {
                api.call::<op::bisect_fall>(NoKey, req)?
            } else {
                api.call::<op::find_fall>(NoKey, req)?
            };
            if json {
                return out_json(&found);
            }
            match (&found.last_good, &found.fell_at) {
                (Some(good), Some(fell)) => out(format!(
                    "{metric} fell below {below} at backup {} ({}, {}); the last backup at or above it is {} ({}, {}) — {} backups checked along the line of history",
                    fell.id,
                    rfc3339(fell.created_at_ms),
                    fell.value.unwrap_or(f64::NAN),
                    good.id,
                    rfc3339(good.created_at_ms),
                    good.value.unwrap_or(f64::NAN),
                    found.checked
                ))
                .and_then(|()| drilled_note(&found.drilled)),
                _ if drill && found.without_value > 0 => out(format!(
                    "{metric}: no fall found by bisection along the line of history (it needs the oldest backup at or above {below} and the newest below it; {} backups, {} without a stored value)",
                    found.checked, found.without_value
                ))
                .and_then(|()| drilled_note(&found.drilled)),
                _ => out(format!(
                    "{metric} never fell below {below} along the line of history ({} backups checked, {} without a value of it{})",
                    found.checked,
                    found.without_value,
                    if found.without_value > 0 { "; --drill measures them" } else { "" }
                )),
            }
        }
    }
}

/// `engram status`.
pub fn status(api: &Door, json: bool) -> Result<()> {
    let s = api.call::<op::status>(NoKey, ())?;
    if json {
        return out_json(&s);
    }
    out(format!(
        "Engram data in {} — {}; last saved {}; {} backups",
        s.data_dir,
        match &s.pid {
            Some(pid) => format!("running (pid {pid})"),
            None => "not running".into(),
        },
        s.saved_at.as_deref().unwrap_or("never"),
        s.backups
    ))?;
    for (name, e) in &s.engines {
        out(format!("\n{name}"))?;
        for (k, v) in &e.metrics {
            out(format!("  {k:<24} {v}"))?;
        }
    }
    Ok(())
}

fn list(api: &Door, json: bool, req: ListBackups, limit: Option<u64>) -> Result<()> {
    let items = all_backups(api, req, limit)?;
    if json {
        return out_json(&items);
    }
    out(format!(
        "{:>6}  {:<12}  {:<24}  {:<6}  label / breakthrough",
        "id", "kind", "created", "pinned"
    ))?;
    for b in &items {
        out(format!(
            "{:>6}  {:<12}  {:<24}  {:<6}  {}",
            b.id,
            b.kind.as_str(),
            rfc3339(b.created_at_ms),
            if b.pinned { "yes" } else { "" },
            describe(b)
        ))?;
    }
    Ok(())
}

/// Backups newest first, following pages until `max` (all when None).
fn all_backups(api: &Door, mut req: ListBackups, max: Option<u64>) -> Result<Vec<Backup>> {
    let max = max.unwrap_or(u64::MAX);
    req.limit = Some(1000);
    let mut items = Vec::new();
    loop {
        let page = api.call::<op::list_backups>(NoKey, req.clone())?;
        items.extend(page.items);
        match page.next {
            Some(c) if (items.len() as u64) < max => req.after = Some(c),
            _ => break,
        }
    }
    items.truncate(max.min(usize::MAX as u64) as usize);
    Ok(items)
}

fn describe(b: &Backup) -> String {
    match (&b.breakthrough, &b.label) {
        (Some(bt), _) => {
            let value = metric_info(&bt.engine, &bt.metric)
                .map(|m| m.format_value(bt.value))
                .unwrap_or_else(|| bt.value.to_string());
            format!("{} {} = {value} at step {}", bt.engine, bt.metric, bt.step)
        }
        (None, Some(l)) => l.clone(),
        (None, None) => String::new(),
    }
}

fn create(api: &Door, label: Option<String>, json: bool) -> Result<()> {
    let b = api.call::<op::create_backup>(NoKey, CreateBackup { label })?;
    if json {
        out_json(&b)
    } else {
        out(format!("created manual backup {}", b.id))
    }
}

fn restore(api: &Door, id: i64, engine: Option<String>, json: bool) -> Result<()> {
    let r = api.call::<op::restore_backup>(id, RestoreRequest { engine })?;
    if json {
        return out_json(&r);
    }
    out(format!(
        "restored {} from backup {id}{}",
        r.engines.join(", "),
        r.pre_restore_backup
            .map(|p| format!("; undo with `engram backups restore {p}` (pre-restore backup)"))
            .unwrap_or_default()
    ))
}

/// Reads the data directory directly, beside a running Engram too.
fn export(api: &Door, id: i64, path: PathBuf, format: SnapshotFormat) -> Result<()> {
    let e = api
        .offline()
        .export_backup_to(id, ExportRequest { format }, &path)?;
    out(format!(
        "exported backup {id} to {} ({} bytes)",
        e.path, e.bytes
    ))
}

fn import(api: &Door, file: PathBuf, json: bool) -> Result<()> {
    let b = match api.remote_for::<byte_op::import_snapshot>() {
        None => api.offline().import_file(&file)?,
        Some(client) => {
            let client = client?;
            // The running Engram checks it completely; only its size is
            // checked here, before it is read into memory.
            let len = std::fs::metadata(&file)
                .map_err(|e| Error::io("read", &file, e))?
                .len();
            if len > engram_core::limits::MAX_SNAPSHOT_BYTES {
                return Err(Error::TooLarge {
                    what: "snapshot file",
                    size: len,
                    limit: engram_core::limits::MAX_SNAPSHOT_BYTES,
                });
            }
            let bytes = std::fs::read(&file).map_err(|e| Error::io("read", &file, e))?;
            client.send_bytes::<byte_op::import_snapshot, Backup>(None, "", &bytes)?
        }
    };
    if json {
        out_json(&b)
    } else {
        out(format!("imported {} as backup {}", file.display(), b.id))
    }
}

fn verify(api: &Door, json: bool) -> Result<()> {
    let report = api.call::<op::verify>(NoKey, ())?;
    if json {
        out_json(&report)?;
    } else {
        out(format!(
            "database {}; {} backups, {} states checked; {} problems",
            if report.database_ok { "ok" } else { "DAMAGED" },
            report.backups_checked,
            report.states_checked,
            report.problems.len()
        ))?;
        for p in &report.problems {
            out(format!(
                "  backup {:?} engine {:?}: [{}] {}",
                p.backup_id, p.engine, p.code, p.detail
            ))?;
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(Error::CorruptState {
            what: "data".into(),
            detail: format!("verification found {} problems", report.problems.len()),
        })
    }
}

fn pin(api: &Door, id: i64, pinned: bool) -> Result<()> {
    let b = if pinned {
        api.call::<op::pin_backup>(id, ())?
    } else {
        api.call::<op::unpin_backup>(id, ())?
    };
    out(format!(
        "{} backup {}",
        if pinned { "pinned" } else { "unpinned" },
        b.id
    ))
}

fn label_backup(api: &Door, id: i64, label: Option<String>) -> Result<()> {
    let b = api.call::<op::set_label>(id, LabelRequest { label })?;
    match &b.label {
        Some(l) => out(format!("labelled backup {} {l:?}", b.id)),
        None => out(format!("cleared the label of backup {}", b.id)),
    }
}

fn delete(api: &Door, id: i64) -> Result<()> {
    let d = api.call::<op::delete_backup>(id, ())?;
    out(format!("deleted backup {}", d.deleted))
}

fn compare(api: &Door, id: i64, with: String, json: bool) -> Result<()> {
    let req = if with == "live" {
        CompareRequest {
            with: 0,
            live: true,
        }
    } else {
        let n = with.parse().map_err(|_| {
            Error::InvalidInput(format!("compare with {with:?}: a backup id or `live`"))
        })?;
        CompareRequest {
            with: n,
            live: false,
        }
    };
    let c = api.call::<op::compare_backups>(id, req)?;
    let with = if c.to_live {
        "the live state".to_string()
    } else {
        format!("backup {with}")
    };
    if json {
        return out_json(&c);
    }
    out(format!(
        "{:<24}  {:<28}  {:>14}  {:>14}  {:>14}",
        "engine / learner",
        "metric",
        format!("backup {id}"),
        with,
        "change"
    ))?;
    let shown = |v: Option<f64>, name: &str, key: &str| match v {
        Some(v) => metric_info(name, key).map_or_else(|| v.to_string(), |m| m.format_value(v)),
        None => "-".to_string(),
    };
    for s in c.engines.iter().chain(&c.learners) {
        let state = match (s.in_from, s.in_to, s.changed) {
            (true, false, _) => "only in the first",
            (false, true, _) => "only in the second",
            (_, _, Some(false)) => "state unchanged",
            _ => "state changed",
        };
        out(format!("{} ({state})", s.name))?;
        for m in &s.metrics {
            out(format!(
                "{:<24}  {:<28}  {:>14}  {:>14}  {:>14}",
                "",
                m.key,
                shown(m.from, &s.name, &m.key),
                shown(m.to, &s.name, &m.key),
                m.change
                    .map_or_else(|| "-".to_string(), |d| format!("{d:+.4}"))
            ))?;
        }
        if let Some(inside) = &s.inside {
            show_inside(inside)?;
        }
    }
    Ok(())
}

/// Which backups a search drilled.
fn drilled_note(ids: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    out(format!("drilled to find it: backups {}", list.join(", ")))
}

/// Drill results: one block per engine or learner.
fn show_drills(d: &engram_core::wire::Drills, json: bool) -> Result<()> {
    if json {
        return out_json(d);
    }
    if d.results.is_empty() {
        return out(format!("backup {} has not been drilled", d.backup));
    }
    for r in &d.results {
        let when = rfc3339(r.at_ms);
        match &r.error {
            Some(e) => out(format!(
                "backup {} {}: drill FAILED at {when} after {} ms: {e}",
                d.backup, r.unit, r.took_ms
            ))?,
            None => {
                out(format!(
                    "backup {} {}: drilled at {when} in {} ms",
                    d.backup, r.unit, r.took_ms
                ))?;
                for (k, v) in &r.metrics {
                    let shown = |v: f64| {
                        metric_info(&r.unit, k).map_or_else(|| v.to_string(), |m| m.format_value(v))
                    };
                    let then = r.reported.get(k).map_or_else(String::new, |x| {
                        format!(" (the backup reported {})", shown(*x))
                    });
                    out(format!("  {k:<28} {}{then}", shown(*v)))?;
                }
            }
        }
    }
    Ok(())
}

/// What changed inside one state, as lines under its metrics.
fn show_inside(i: &engram_core::wire::Inside) -> Result<()> {
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v}"));
    out(format!("  inside ({}):", i.kind))?;
    if let Some(note) = &i.note {
        out(format!("    {note}"))?;
    }
    for c in &i.counted {
        let of = c.of.map_or_else(String::new, |of| format!(" of {of}"));
        out(format!("    {}: {}{of}", c.what, c.n))?;
    }
    for f in &i.figures {
        out(format!(
            "    {:<34} {:>14}  {:>14}",
            f.key,
            num(f.from),
            num(f.to)
        ))?;
    }
    for a in &i.arrays {
        let shape = |d: &Option<String>, s: &Option<Vec<u64>>| match (d, s) {
            (Some(d), Some(s)) => format!("{d} {s:?}"),
            _ => "absent".to_string(),
        };
        let what = match a.changed {
            Some(0) => "unchanged".to_string(),
            Some(n) => format!(
                "{n} elements changed, max |diff| {}, mean |diff| {}",
                num(a.max_abs),
                num(a.mean_abs)
            ),
            None => format!(
                "{} -> {}",
                shape(&a.dtype_from, &a.shape_from),
                shape(&a.dtype_to, &a.shape_to)
            ),
        };
        out(format!("    array {}: {what}", a.name))?;
    }
    for e in &i.largest {
        out(format!("    {}: {} -> {}", e.entry, e.from, e.to))?;
    }
    if !i.values_changed.is_empty() {
        out(format!(
            "    values changed: {}",
            i.values_changed.join(", ")
        ))?;
    }
    if let Some(p) = &i.policy {
        out(format!("    greedy policy ({}), before | after:", p.env))?;
        let arrow = |a: u32| match p.actions.get(a as usize).map(String::as_str) {
            Some("left") => "<",
            Some("right") => ">",
            Some("up") => "^",
            Some("down") => "v",
            _ => "?",
        };
        for r in 0..p.rows as usize {
            let row = |pol: &[u32]| {
                (0..p.cols as usize)
                    .map(|c| {
                        let k = r * p.cols as usize + c;
                        match p.cells[k].as_str() {
                            "H" | "G" | "C" => p.cells[k].clone(),
                            _ => arrow(pol[k]).to_string(),
                        }
                    })
                    .collect::<String>()
            };
            out(format!("      {}  |  {}", row(&p.from), row(&p.to)))?;
        }
    }
    Ok(())
}

pub(crate) fn out(text: impl std::fmt::Display) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{text}").map_err(|e| Error::io("write to", "stdout", e))
}

pub(crate) fn out_json(v: &impl Serialize) -> Result<()> {
    out(serde_json::to_string(v).map_err(|e| Error::Encode(e.to_string()))?)
}
