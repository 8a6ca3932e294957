//! Restore drills through the API: what to drill is read (a read
//! connection: never behind the writer), the drills run on a thread of the
//! lowest priority (never the engines' time), and the results are kept
//! with the backup in one short write.

use super::{Api, Offline};
use crate::drill::{self, HeldState};
use crate::engines::{mdp_es, zap};
use crate::error::{Error, Result};
use crate::store::{DrillCommand, StateBytes, Store};
use crate::wire::{
    ApiResult, DrillRequest, DrillResult, Drills, FallFound, FindFall, LearnerDrill, Metrics,
    SetLearnerDrill,
};
use std::path::Path;
use std::time::Instant;

/// A learner drill command's longest time limit.
const MAX_TIMEOUT_MS: u64 = 3_600_000;
const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// What one drill of a backup will run.
struct Plan {
    engines: Vec<String>,
    states: Vec<HeldState>,
    learners: Vec<LearnerPlan>,
}

struct LearnerPlan {
    name: String,
    reported: Metrics,
    run: std::result::Result<(DrillCommand, StateBytes), String>,
}

/// Reads what drilling backup `id` needs.
fn plan(store: &Store, id: i64, req: &DrillRequest) -> Result<Plan> {
    let info = store.get_backup(id)?;
    let held_learners = store.backup_learners(id)?;
    let all = req.units.is_empty();
    for u in &req.units {
        let held =
            info.engines.iter().any(|e| e.name == *u) || held_learners.iter().any(|(n, _)| n == u);
        if !held {
            return Err(Error::NotFound {
                what: "state",
                id: format!("of {u} in backup {id}"),
            });
        }
    }
    let wanted = |name: &str| all || req.units.iter().any(|u| u == name);
    let engines: Vec<String> = info
        .engines
        .iter()
        .map(|e| e.name.clone())
        .filter(|n| wanted(n) && (!all || drill::drills_engine(n)))
        .collect();
    // ZAP's concepts come from the same backup's MDP/ES state.
    let needed = |n: &str| {
        engines.iter().any(|e| e == n)
            || (n == mdp_es::NAME && engines.iter().any(|e| e == zap::NAME))
    };
    let states = info
        .engines
        .iter()
        .filter(|e| needed(&e.name))
        .map(|e| HeldState {
            engine: e.name.clone(),
            state: store.backup_state(id, &e.name).map(|s| s.state),
            metrics: e.metrics.clone(),
        })
        .collect();
    let mut learners = Vec::new();
    for (name, s) in held_learners.into_iter().filter(|(n, _)| wanted(n)) {
        let cmd = store.learner_drill(&name)?;
        if all && cmd.is_none() {
            continue;
        }
        let run = match cmd {
            None => Err(format!(
                "{name} has no drill command (set one: engram learners drill {name} -- PROGRAM ARGS…)"
            )),
            Some(cmd) => crate::codec::Checksum::from_hex(&s.checksum)
                .and_then(|c| store.learner_bytes_at(&c))
                .map(|bytes| (cmd, bytes))
                .map_err(|e| format!("its state of {name} is damaged: {e}")),
        };
        learners.push(LearnerPlan {
            name,
            reported: s.metrics,
            run,
        });
    }
    if engines.is_empty() && learners.is_empty() {
        return Err(Error::InvalidInput(format!(
            "nothing in backup {id} can be drilled: its engines have no evaluation here and none of its learners has a drill command"
        )));
    }
    Ok(Plan {
        engines,
        states,
        learners,
    })
}

/// Runs a plan's drills, one after another (on the caller's thread).
fn run(plan: Plan) -> Vec<DrillResult> {
    let mut out: Vec<DrillResult> = plan
        .engines
        .iter()
        .map(|e| drill::drill_engine(e, &plan.states, crate::now_ms))
        .collect();
    for l in plan.learners {
        let t0 = Instant::now();
        let ran = l
            .run
            .and_then(|(cmd, bytes)| drill::command::run(&l.name, &cmd, bytes));
        out.push(drill::finish(
            &l.name,
            t0,
            crate::now_ms(),
            Some(&l.reported),
            ran,
        ));
    }
    out
}

/// Runs `f` on a thread of its own at the lowest priority, for an async
/// caller.
async fn off_low<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let rx = crate::objects::on_low_priority_thread("engram-drill", f)
        .map_err(|e| Error::io("start", "a drill thread", e))?;
    rx.await.map_err(|_| stopped())
}

/// Runs `f` on a scoped thread at the lowest priority and waits for it.
fn here_low<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            crate::objects::lower_this_threads_priority();
            f()
        })
        .join()
    })
    .map_err(|_| stopped())
}

fn stopped() -> Error {
    Error::InvalidInput("the drill stopped before it ended".into())
}

/// What a drilling search found, and the drills to keep (by backup).
type Searched = (FallFound, Vec<(i64, Vec<DrillResult>)>);

/// `find_fall` where backups without a value are drilled (bisecting); on
/// the calling thread, reading `store`. Where every backup has a value it
/// is the plain search (no drill).
fn search_drilling(store: &Store, req: &FindFall) -> Result<Searched> {
    let mut line = super::compare::fall_line(store, None, req)?;
    let plain = super::compare::fall_on(&line, req.below);
    if plain.without_value == 0 {
        return Ok((plain, Vec::new()));
    }
    let mut kept = Vec::new();
    let found = crate::drill::bisect::bisect_fall(&mut line, req.below, |b| {
        let p = plan(
            store,
            b.id,
            &DrillRequest {
                units: vec![req.engine.clone()],
            },
        )?;
        let results = run(p);
        let r = results.iter().find(|r| r.unit == req.engine);
        if let Some(e) = r.and_then(|r| r.error.clone()) {
            return Err(Error::InvalidInput(format!(
                "drilling backup {}: {e}",
                b.id
            )));
        }
        let v = r.and_then(|r| r.metrics.get(&req.key).copied());
        kept.push((b.id, results));
        Ok(v)
    })?;
    Ok((
        FallFound {
            last_good: found.as_ref().map(|(g, _)| g.clone()),
            fell_at: found.map(|(_, f)| f),
            drilled: kept.iter().map(|(id, _)| *id).collect(),
            ..plain
        },
        kept,
    ))
}

fn drill_command(req: &SetLearnerDrill, data_dir: &Path) -> Result<DrillCommand> {
    let timeout_ms = req.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(Error::InvalidInput(format!(
            "a drill's time limit is 1 ms to one hour, not {timeout_ms} ms"
        )));
    }
    let workdir = req
        .cwd
        .clone()
        .unwrap_or_else(|| data_dir.display().to_string());
    if !Path::new(&workdir).is_absolute() {
        return Err(Error::InvalidInput(format!(
            "the drill's working directory must be absolute: {workdir}"
        )));
    }
    Ok(DrillCommand {
        argv: req.argv.clone(),
        timeout_ms,
        workdir,
    })
}

fn set_drill(
    store: &mut Store,
    name: &str,
    req: &SetLearnerDrill,
    data_dir: &Path,
) -> Result<LearnerDrill> {
    if req.argv.is_empty() {
        store.remove_learner_drill(name)?;
    } else {
        store.set_learner_drill(name, &drill_command(req, data_dir)?)?;
    }
    learner_drill(store, name)
}

fn learner_drill(store: &Store, name: &str) -> Result<LearnerDrill> {
    store.learner(name)?;
    let cmd = store.learner_drill(name)?;
    Ok(LearnerDrill {
        learner: name.to_string(),
        argv: cmd.as_ref().map(|c| c.argv.clone()),
        timeout_ms: cmd.as_ref().map(|c| c.timeout_ms),
        workdir: cmd.map(|c| c.workdir),
    })
}

impl Api {
    /// Drills backup `id`: its engines' evaluations and its learners' drill
    /// commands run again on its states, the results kept with it.
    pub async fn drill_backup(&self, id: i64, req: DrillRequest) -> ApiResult<Drills> {
        let rt = self.runtime()?;
        let plan = rt.read(move |s| plan(s, id, &req)).await?;
        let results = off_low(move || run(plan)).await?;
        let kept = results.clone();
        rt.with_store(move |s| s.record_drills(id, &kept)).await?;
        Ok(Drills {
            backup: id,
            results,
        })
    }

    /// Where a metric fell along the current line of history, drilling the
    /// backups that carry no value of it and bisecting (as `git bisect`:
    /// the oldest must be at or above the threshold, the newest below it);
    /// on a thread of the lowest priority with a read connection of its
    /// own. The drills are kept with their backups. Where every backup
    /// has a value it is `find_fall`, with no drill.
    pub async fn bisect_fall(&self, req: FindFall) -> ApiResult<FallFound> {
        let rt = self.runtime()?;
        let dir = rt.data_dir().to_path_buf();
        let (found, kept) =
            off_low(move || search_drilling(&Offline::new(dir).open_read()?, &req)).await??;
        if !kept.is_empty() {
            rt.with_store(move |s| kept.iter().try_for_each(|(id, r)| s.record_drills(*id, r)))
                .await?;
        }
        Ok(found)
    }

    /// Backup `id`'s drills, newest first.
    pub async fn backup_drills(&self, id: i64) -> ApiResult<Drills> {
        let results = self.runtime()?.read(move |s| s.drills(id)).await?;
        Ok(Drills {
            backup: id,
            results,
        })
    }

    /// Sets a learner's drill command (`argv` empty: removes it).
    pub async fn set_learner_drill(
        &self,
        name: String,
        req: SetLearnerDrill,
    ) -> ApiResult<LearnerDrill> {
        let rt = self.runtime()?;
        let dir = rt.data_dir().to_path_buf();
        Ok(rt
            .with_store(move |s| set_drill(s, &name, &req, &dir))
            .await?)
    }

    /// A learner's drill command.
    pub async fn learner_drill(&self, name: String) -> ApiResult<LearnerDrill> {
        Ok(self
            .runtime()?
            .read(move |s| learner_drill(s, &name))
            .await?)
    }
}

impl Offline {
    /// Drills backup `id` from the data directory (see [`Api::drill_backup`]).
    pub fn drill_backup(&self, id: i64, req: DrillRequest) -> Result<Drills> {
        // Read, drill, then take the writer lock only to keep the results.
        let plan = plan(&self.open_read()?, id, &req)?;
        let results = here_low(|| run(plan))?;
        let (mut store, _lock) = self.open_write()?;
        store.record_drills(id, &results)?;
        Ok(Drills {
            backup: id,
            results,
        })
    }

    /// Where a metric fell, drilling the backups that carry no value (see
    /// [`Api::bisect_fall`]).
    pub fn bisect_fall(&self, req: FindFall) -> Result<FallFound> {
        let (found, kept) = here_low(|| search_drilling(&self.open_read()?, &req))??;
        if !kept.is_empty() {
            let (mut store, _lock) = self.open_write()?;
            for (id, r) in &kept {
                store.record_drills(*id, r)?;
            }
        }
        Ok(found)
    }

    /// Backup `id`'s drills, newest first.
    pub fn backup_drills(&self, id: i64) -> Result<Drills> {
        Ok(Drills {
            backup: id,
            results: self.open_read()?.drills(id)?,
        })
    }

    /// Sets a learner's drill command (`argv` empty: removes it).
    pub fn set_learner_drill(&self, name: String, req: SetLearnerDrill) -> Result<LearnerDrill> {
        let (mut store, _lock) = self.open_write()?;
        set_drill(&mut store, &name, &req, self.data_dir())
    }

    /// A learner's drill command.
    pub fn learner_drill(&self, name: String) -> Result<LearnerDrill> {
        learner_drill(&self.open_read()?, &name)
    }
}
