//! A learner's states in and out: saves streamed into the database (small)
//! or a slot or object file (large), saves the learner wrote into a lent
//! slot itself, reads (checked), and logged metrics.

use super::slots::{Lease, SlotClaim, lock_leases};
use crate::Checksum;
use crate::api::Api;
use crate::error::Error;
use crate::limits::INLINE_STATE_BYTES;
use crate::limits::{MAX_LEARNER_STATE_BYTES, MAX_LOG_POINTS};
use crate::objects::{Objects, PendingObject, WrittenSlot};
use crate::store::{InlineState, NewLearnerState};
use crate::wire::ApiResult;
use crate::wire::{LearnerState, Metrics};
use crate::wire::{
    LearnerStateExported, LeasedSave, LogMetrics, Logged, ReadLearnerState, ReportMilestone,
    SaveLearnerState, SaveLeasedState, SlotLease,
};
use tokio_stream::{Stream, StreamExt};

/// A lent slot holding more than this is hashed on a thread of its own at
/// a low priority (a smaller one on the blocking pool).
const LARGE_STATE_BYTES: u64 = 16 << 20;

/// A learner's state: what it says of itself, its bytes, and the learner's
/// generation now (to name when it saves what continues from it).
#[derive(Clone, Debug, PartialEq)]
pub struct LearnerStateFile {
    pub state: LearnerState,
    pub bytes: Vec<u8>,
    pub generation: i64,
}

/// Writes a learner's state's checked bytes to a file the user chose
/// (never into `data_dir`; atomically) and says what was written.
pub(crate) fn export_learner_state(
    data_dir: &std::path::Path,
    learner: &str,
    backup: Option<i64>,
    state: &LearnerState,
    bytes: &[u8],
    path: &std::path::Path,
) -> Result<LearnerStateExported, Error> {
    let written = crate::snapshot::write_export(data_dir, path, bytes)?;
    Ok(LearnerStateExported {
        learner: learner.to_string(),
        backup,
        path: path.display().to_string(),
        bytes: written,
        checksum: state.checksum.clone(),
    })
}

/// A chunk on its way to the object writer, or the end of the state.
enum Chunk {
    Data(Vec<u8>),
    End,
}

/// Where a saved state's bytes go.
enum Stored {
    Inline(InlineState),
    File(PendingObject),
    Slot(WrittenSlot, SlotClaim),
}

impl Stored {
    fn checksum(&self) -> Checksum {
        match self {
            Stored::Inline(s) => s.checksum(),
            Stored::File(p) => p.checksum(),
            Stored::Slot(w, _) => w.checksum(),
        }
    }

    fn size(&self) -> u64 {
        match self {
            Stored::Inline(s) => s.len(),
            Stored::File(p) => p.size(),
            Stored::Slot(w, _) => w.size(),
        }
    }
}

/// A large state on its way into a file: hashed and written on its own
/// thread, at a lower priority, so a large state does not take the CPU
/// from the engines' ticks and captures.
struct StateWriter {
    tx: tokio::sync::mpsc::Sender<Chunk>,
    done: tokio::sync::oneshot::Receiver<Result<Stored, Error>>,
}

impl StateWriter {
    /// Writes into the claimed slot in place if there is one, else into a
    /// new object file.
    fn start(objects: Objects, claim: Option<SlotClaim>) -> Result<StateWriter, Error> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(8);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("engram-learner-save".into())
            .spawn(move || {
                crate::objects::lower_this_threads_priority();
                let _ = done_tx.send((move || {
                    let mut w = match &claim {
                        Some(c) => {
                            objects.slot_writer(&c.learner, c.slot, MAX_LEARNER_STATE_BYTES)?
                        }
                        None => objects.writer(MAX_LEARNER_STATE_BYTES)?,
                    };
                    loop {
                        match rx.blocking_recv() {
                            Some(Chunk::Data(d)) => w.write(&d)?,
                            Some(Chunk::End) => {
                                return match claim {
                                    Some(c) => Ok(Stored::Slot(w.finish_slot(c.live)?, c)),
                                    None => w.finish_pending().map(Stored::File),
                                };
                            }
                            // The sender went away without an end: nothing is kept.
                            None => {
                                return Err(Error::InvalidInput(
                                    "the state was cut off before its end".into(),
                                ));
                            }
                        }
                    }
                })());
            })
            .map_err(|e| Error::Internal(format!("the state writer did not start: {e}")))?;
        Ok(StateWriter { tx, done })
    }

    /// False once the writer has failed (its error comes from `finish`).
    async fn send(&self, bytes: Vec<u8>) -> bool {
        self.tx.send(Chunk::Data(bytes)).await.is_ok()
    }

    /// The written object, to be put in place with the commit that refers
    /// to it; with `complete` false the state was cut off and nothing is
    /// kept.
    async fn finish(self, complete: bool) -> Result<Stored, Error> {
        if complete {
            let _ = self.tx.send(Chunk::End).await;
        }
        drop(self.tx);
        self.done
            .await
            .map_err(|e| Error::Internal(format!("the state writer failed: {e}")))?
    }
}

pub(super) fn check_metrics(metrics: &Metrics) -> Result<(), Error> {
    if metrics.len() > crate::limits::MAX_METRICS {
        return Err(Error::InvalidInput(format!(
            "at most {} metrics at a time",
            crate::limits::MAX_METRICS
        )));
    }
    for name in metrics.keys() {
        crate::store::validate_engine_name(name).map_err(|_| {
            Error::InvalidInput(format!(
                "invalid metric name {name:?}: use 1-64 characters of a-z, 0-9, _ and -"
            ))
        })?;
    }
    Ok(())
}

impl Api {
    /// Saves a learner's state from a stream of byte chunks, durable when
    /// this returns: a small one (up to [`INLINE_STATE_BYTES`]) inside the
    /// database in the commit that makes it live; a larger one streamed to
    /// a content-addressed file (fsynced), put in place and then made live
    /// (committed). A stream that breaks off, or grows past
    /// [`MAX_LEARNER_STATE_BYTES`], stores nothing.
    pub async fn save_learner_state<S, T, E>(
        &self,
        name: String,
        meta: SaveLearnerState,
        mut body: S,
    ) -> ApiResult<LearnerState>
    where
        S: Stream<Item = Result<T, E>> + Unpin,
        T: Into<Vec<u8>>,
        E: std::fmt::Display,
    {
        let rt = self.runtime()?;
        check_metrics(&meta.metrics)?;
        // Unknown learners are refused before a byte is written; the slot
        // a large state will go to is claimed in the same visit to the
        // store (a small state lets it go unused).
        let mut claim = self.claim_slot(&name).await?;
        // A small state is gathered in memory and kept inside the database
        // (one fsync for the save); once it grows past that, it streams to
        // a file.
        let mut head: Vec<u8> = Vec::new();
        let mut file: Option<StateWriter> = None;
        let mut broken = None;
        while let Some(chunk) = body.next().await {
            let c: Vec<u8> = match chunk {
                Ok(c) => c.into(),
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            };
            if file.is_none() && head.len() + c.len() <= INLINE_STATE_BYTES {
                head.extend_from_slice(&c);
                continue;
            }
            let w = match &mut file {
                Some(w) => w,
                None => {
                    // Into a slot of the learner's (overwritten in place:
                    // one fdatasync), or — all in use — a new object file.
                    let w = StateWriter::start(Objects::new(rt.data_dir()), claim.take())?;
                    w.send(std::mem::take(&mut head)).await;
                    file.insert(w)
                }
            };
            if !w.send(c).await {
                break; // the writer failed: its error is below
            }
        }
        // A cut-off file is removed by its writer before this answers.
        let written = match file {
            Some(w) => Some(w.finish(broken.is_none()).await),
            None => None,
        };
        if let Some(e) = broken {
            return Err(Error::InvalidInput(format!("reading the state failed: {e}")).into());
        }
        let stored = match written {
            Some(w) => w?,
            None => {
                let state = tokio::task::spawn_blocking(move || InlineState::new(head))
                    .await
                    .map_err(|e| Error::Internal(format!("hashing the state failed: {e}")))?
                    .ok_or_else(|| Error::Internal("an inline state grew too large".into()))?;
                Stored::Inline(state)
            }
        };
        self.commit_learner_state(name, meta, stored).await
    }

    /// Lends one of the learner's slots to it for its next save (see
    /// [`SlotLease`]); `None` when none is free (send the bytes instead).
    pub async fn lease_learner_slot(&self, name: String) -> ApiResult<Option<SlotLease>> {
        let objects = Objects::new(self.runtime()?.data_dir());
        let Some(claim) = self.claim_slot(&name).await? else {
            return Ok(None);
        };
        // Links the slot's lent name and files the lease.
        let leases = self.leases.clone();
        tokio::task::spawn_blocking(move || {
            let id = crate::objects::random_name()?;
            let slot = objects.lease_slot(&claim.learner, claim.slot, &id)?;
            let path = slot.path().display().to_string();
            lock_leases(&leases)?.insert(id.clone(), Lease { claim, slot });
            Ok(Some(SlotLease { lease: id, path }))
        })
        .await
        .map_err(|e| Error::Internal(format!("lending a slot failed: {e}")))?
    }

    /// Checks that the learner is known and claims a free slot of its
    /// (`None`: all in use), in one visit to the store.
    async fn claim_slot(&self, name: &str) -> ApiResult<Option<SlotClaim>> {
        let (known, claims) = (name.to_string(), self.slots.clone());
        Ok(self
            .runtime()?
            .with_store(move |s| {
                s.learner(&known)?;
                SlotClaim::take(&claims, s, &known)
            })
            .await?)
    }

    /// Saves what the learner wrote into a leased slot ([`SlotLease`]):
    /// the lease ends, the slot is hashed and made durable (off the store
    /// lock), then committed like any save — durable when this returns.
    /// An unknown or voided lease is `not_found` (nothing changes: save the
    /// bytes instead); one lent to another learner is refused and stays.
    pub async fn save_leased_learner_state(
        &self,
        name: String,
        req: SaveLeasedState,
    ) -> ApiResult<LeasedSave> {
        let rt = self.runtime()?;
        check_metrics(&req.state.metrics)?;
        let lease = {
            let mut all = lock_leases(&self.leases)?;
            match all.get(&req.lease) {
                Some(l) if l.slot.learner != name => {
                    return Err(Error::InvalidInput(format!(
                        "lease {} is not {name:?}'s",
                        req.lease
                    ))
                    .into());
                }
                _ => all.remove(&req.lease),
            }
        };
        let Some(Lease { claim, slot }) = lease else {
            return Err(Error::NotFound {
                what: "lease",
                id: req.lease,
            }
            .into());
        };
        // Hashed and made durable off the store lock: a state of a few MiB
        // on a thread of the blocking pool — a moment's hashing; a larger
        // one, as a large state sent in, on a thread of its own at a low
        // priority, so that its hashing does not take the CPU from the
        // engines.
        let objects = Objects::new(rt.data_dir());
        let slot_len = slot.written_len();
        let take = move || objects.take_leased_slot(slot, MAX_LEARNER_STATE_BYTES);
        let done = if slot_len > LARGE_STATE_BYTES {
            crate::objects::on_low_priority_thread("engram-leased-save", take)
                .map_err(|e| Error::Internal(format!("the state reader did not start: {e}")))?
        } else {
            let (done_tx, done) = tokio::sync::oneshot::channel();
            drop(tokio::task::spawn_blocking(move || done_tx.send(take())));
            done
        };
        // The next slot is lent meanwhile: neither the live slot nor this
        // one (still claimed), so it is free whether this save commits or
        // not.
        let lend_next = async {
            if !req.next {
                return None;
            }
            match self.lease_learner_slot(name.clone()).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(learner = %name, error = %e.message, "the next slot was not lent");
                    None
                }
            }
        };
        let (written, next) = tokio::join!(done, lend_next);
        let committed = match written {
            Ok(Ok(written)) => {
                self.commit_learner_state(name, req.state, Stored::Slot(written, claim))
                    .await
            }
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(Error::Internal(format!("reading the leased slot failed: {e}")).into()),
        };
        match committed {
            Ok(saved) => Ok(LeasedSave { saved, next }),
            Err(e) => {
                // Never seen by the learner: taken back.
                if let Some(next) = next {
                    self.take_back_lease(&next.lease);
                }
                Err(e)
            }
        }
    }

    /// Ends a lease no learner was told of (voided like any other: its
    /// name and its slot's file go, its slot is free again).
    fn take_back_lease(&self, id: &str) {
        let lease = lock_leases(&self.leases)
            .ok()
            .and_then(|mut all| all.remove(id));
        if let (Some(lease), Ok(rt)) = (lease, self.runtime()) {
            lease.void(&Objects::new(rt.data_dir()));
        }
    }

    /// Commits a saved state (its bytes in place: inline, an object file
    /// or a slot) and checks the learner's declared milestones.
    async fn commit_learner_state(
        &self,
        name: String,
        meta: SaveLearnerState,
        stored: Stored,
    ) -> ApiResult<LearnerState> {
        let rt = self.runtime()?;
        let state = NewLearnerState {
            generation: meta.generation,
            object: stored.checksum(),
            size: stored.size(),
            step: meta.step,
            metrics: meta.metrics,
        };
        let n = name.clone();
        let (saved, rules) = rt
            .with_store(move |s| {
                let now = crate::now_ms();
                let branch = s.current_branch(now)?;
                let saved = match stored {
                    Stored::Inline(bytes) => {
                        s.save_learner_live_inline(&n, &state, &bytes, now, Some(branch))?
                    }
                    // Held in its slot; the claim is let go after the commit.
                    Stored::Slot(mut slot, claim) => {
                        let (live_slot, live) = s.learner_live_slot(&n)?;
                        // Unchanged and still live: it stays where it is.
                        // Else this copy must last (the live state may have
                        // changed since the writer skipped making it durable).
                        let held = if !slot.is_durable() && live == Some(slot.checksum()) {
                            live_slot
                        } else {
                            slot.make_durable()?;
                            Some(claim.slot)
                        };
                        match held {
                            Some(k) => {
                                s.save_learner_live_in_slot(&n, &state, k, now, Some(branch))?
                            }
                            None => s.save_learner_live(&n, &state, now, Some(branch))?,
                        }
                    }
                    // Put in place under the store lock, right before the
                    // commit that refers to it: a removal of the same
                    // content (unreferenced a moment ago) cannot come between.
                    Stored::File(pending) => {
                        let placed = pending.place()?;
                        match s.save_learner_live(&n, &state, now, Some(branch)) {
                            Ok(saved) => saved,
                            Err(e) => {
                                // Refused (a stale generation, say): a file
                                // only this save added goes again.
                                if placed.new {
                                    let _ = s.objects().remove(&placed.checksum);
                                }
                                return Err(e);
                            }
                        }
                    }
                };
                // Its milestones (set in Engram, else its own), read under
                // the same lock (only a save with a step and metrics can
                // meet one).
                let rules = if saved.step.is_some() && !saved.metrics.is_empty() {
                    s.learner(&n)?.milestone_rules
                } else {
                    Vec::new()
                };
                Ok((saved, rules))
            })
            .await?;
        rt.supervisor().note_save(&name);
        self.check_declared_milestones(&name, &saved, rules).await;
        Ok(saved)
    }

    /// A saved state that meets one of its learner's milestone rules (set
    /// in Engram, else declared) is kept as that milestone (once per line of history). The save has
    /// succeeded either way: a failure here is logged, not returned.
    async fn check_declared_milestones(
        &self,
        name: &str,
        saved: &LearnerState,
        rules: Vec<crate::wire::MilestoneRule>,
    ) {
        let Some(step) = saved.step else { return };
        for rule in rules {
            let Some(&value) = saved.metrics.get(&rule.metric) else {
                continue;
            };
            if !rule.met_by(value) {
                continue;
            }
            let req = ReportMilestone {
                rule: rule.text(),
                metric: rule.metric.clone(),
                value,
                step,
            };
            if let Err(e) = self.report_learner_milestone(name.to_string(), req).await {
                // Say, a newer save came first: that one is checked itself.
                tracing::info!(learner = %name, rule = %rule.text(), error = %e.message, "a declared milestone was not kept");
            }
        }
    }

    /// Writes a learner's state (live, or the one a backup holds) to a
    /// file the user chose — the desktop's "Download state": the checked
    /// bytes, as [`Api::read_learner_state`] reads them, written atomically
    /// (never into the data directory or through a symbolic link).
    pub async fn read_learner_state_to(
        &self,
        name: String,
        req: ReadLearnerState,
        path: std::path::PathBuf,
    ) -> ApiResult<LearnerStateExported> {
        let backup = req.backup;
        let file = self.read_learner_state(name.clone(), req).await?;
        // Written off the store lock (a state may be a gigabyte).
        let data_dir = self.runtime()?.data_dir().to_path_buf();
        Ok(tokio::task::spawn_blocking(move || {
            export_learner_state(&data_dir, &name, backup, &file.state, &file.bytes, &path)
        })
        .await
        .map_err(|e| Error::Internal(format!("writing the state failed: {e}")))??)
    }

    /// A learner's state and its bytes (checked against their checksum):
    /// the live one, or the one a backup holds.
    pub async fn read_learner_state(
        &self,
        name: String,
        req: ReadLearnerState,
    ) -> ApiResult<LearnerStateFile> {
        let rt = self.runtime()?;
        let n = name.clone();
        let (file, fell_back) = rt
            .with_store(move |s| {
                let (state, bytes, fell_back) = match req.backup {
                    Some(id) => {
                        let state = s.backup_learner_state(id, &n)?;
                        let sum = crate::Checksum::from_hex(&state.checksum)?;
                        let bytes = s.read_learner_bytes(&sum, MAX_LEARNER_STATE_BYTES)?;
                        (state, bytes, None)
                    }
                    // A damaged live state falls back to the newest intact backup.
                    None => s.learner_live_or_fallback(&n, crate::now_ms())?,
                };
                // A deleted learner's states in backups can be read too.
                let generation = s.learner_record(&n)?.generation;
                Ok((
                    LearnerStateFile {
                        state,
                        bytes,
                        generation,
                    },
                    fell_back,
                ))
            })
            .await?;
        if let Some(id) = fell_back {
            let message = format!(
                "learner {name}'s saved state was damaged or missing; it resumes from its state in backup {id} (step {})",
                file.state
                    .step
                    .map_or("unknown".to_string(), |s| s.to_string())
            );
            tracing::warn!("{message}");
            rt.announce(crate::wire::Event::Error {
                code: crate::ErrorCode::CorruptState,
                message,
            });
        }
        Ok(file)
    }

    /// Adds logged metrics to the learner's history (one transaction).
    pub async fn log_learner_metrics(&self, name: String, req: LogMetrics) -> ApiResult<Logged> {
        if req.points.len() > MAX_LOG_POINTS {
            return Err(
                Error::InvalidInput(format!("at most {MAX_LOG_POINTS} points per call")).into(),
            );
        }
        for p in &req.points {
            check_metrics(&p.metrics)?;
        }
        let n = req.points.len() as u32;
        self.runtime()?
            .with_store(move |s| {
                s.learner(&name)?;
                let now = crate::now_ms();
                let branch = s.current_branch(now)?;
                let points: Vec<(i64, std::collections::BTreeMap<String, Metrics>)> = req
                    .points
                    .into_iter()
                    .map(|p| {
                        (
                            p.at_ms.unwrap_or(now),
                            std::collections::BTreeMap::from([(name.clone(), p.metrics)]),
                        )
                    })
                    .collect();
                let refs: Vec<(i64, &std::collections::BTreeMap<String, Metrics>)> =
                    points.iter().map(|(t, m)| (*t, m)).collect();
                s.record_metrics_batch(&refs, branch)
            })
            .await?;
        Ok(Logged { points: n })
    }
}
