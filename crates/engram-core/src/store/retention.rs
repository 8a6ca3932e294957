//! Retention: which backups to keep, why, and deleting the rest.
//!
//! The plan is a pure function of the backup list and the policy, so every
//! edge case is unit-tested without a database. Initial, breakthrough,
//! manual, imported and pinned backups and the newest backup are never
//! deleted; periodic and pre-restore backups roll.

use super::Store;
use crate::error::Result;
use crate::wire::BackupKind;
use crate::wire::RetentionPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

impl RetentionPolicy {
    /// Keeps only the newest `n` periodic backups: no hourly, daily or weekly
    /// buckets and no pre-restore history.
    pub fn last_periodic(n: u32) -> RetentionPolicy {
        RetentionPolicy {
            keep_last_periodic: n,
            keep_hourly: 0,
            keep_daily: 0,
            keep_weekly: 0,
            keep_last_pre_restore: 0,
        }
    }
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            keep_last_periodic: 24,
            keep_hourly: 0,
            keep_daily: 7,
            keep_weekly: 4,
            keep_last_pre_restore: 20,
        }
    }
}

/// Why a backup is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum KeepReason {
    Initial,
    Breakthrough,
    Manual,
    Imported,
    Pinned,
    /// The newest backup of all is always kept.
    Newest,
    /// Among the newest `keep_last_periodic` periodic backups (1 = newest).
    RecentPeriodic {
        rank: u32,
    },
    /// Newest periodic backup of its hour / day / week bucket.
    Hourly {
        hour: i64,
    },
    Daily {
        day: i64,
    },
    Weekly {
        week: i64,
    },
    /// Among the newest `keep_last_pre_restore` pre-restore backups.
    RecentPreRestore {
        rank: u32,
    },
    /// Taken less than a minute ago by the clock, or dated after it (the
    /// clock went back): too new to judge.
    JustTaken,
    /// Open in the UI (selected, or about to be restored): see [`Store::hold`].
    Held,
}

impl KeepReason {
    /// A sentence for people.
    pub fn describe(&self) -> String {
        match self {
            KeepReason::Initial => "the initial backup is kept forever".into(),
            KeepReason::Breakthrough => "breakthrough backups are permanent".into(),
            KeepReason::Manual => "manual backups are kept until you delete them".into(),
            KeepReason::Imported => "imported backups are kept until you delete them".into(),
            KeepReason::Pinned => "pinned".into(),
            KeepReason::Newest => "the newest backup is always kept".into(),
            KeepReason::RecentPeriodic { rank } => {
                format!("periodic backup #{rank} from the newest")
            }
            KeepReason::Hourly { .. } => "newest periodic backup of its hour".into(),
            KeepReason::Daily { .. } => "newest periodic backup of its day".into(),
            KeepReason::Weekly { .. } => "newest periodic backup of its week".into(),
            KeepReason::RecentPreRestore { rank } => {
                format!("pre-restore backup #{rank} from the newest")
            }
            KeepReason::JustTaken => {
                "taken within the last minute (or dated after the clock): too new to delete".into()
            }
            KeepReason::Held => "open in the UI: kept while you look at it".into(),
        }
    }
}

/// What the policy says about one backup.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetentionDecision {
    pub id: i64,
    pub kind: BackupKind,
    pub created_at_ms: i64,
    /// Empty: the backup is to be deleted.
    pub reasons: Vec<KeepReason>,
}

impl RetentionDecision {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// What [`Store::apply_retention`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RetentionReport {
    pub deleted: Vec<i64>,
    pub kept: u64,
    pub blobs_removed: u64,
}

/// The minimum a plan needs to know about a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupMeta {
    pub id: i64,
    pub kind: BackupKind,
    pub created_at_ms: i64,
    pub pinned: bool,
}

/// Decides, for every backup, whether it is kept and why: one decision per
/// backup, in the order given. Pure.
pub fn plan(backups: &[BackupMeta], policy: &RetentionPolicy) -> Vec<RetentionDecision> {
    let mut order: Vec<usize> = (0..backups.len()).collect();
    // Newest first by insertion (ids only grow), not by wall-clock time: a
    // clock set back must not make the backups taken after it look old and
    // get them deleted the moment they are taken.
    order.sort_by_key(|&i| std::cmp::Reverse(backups[i].id));
    let mut decisions: Vec<RetentionDecision> = backups
        .iter()
        .map(|b| RetentionDecision {
            id: b.id,
            kind: b.kind,
            created_at_ms: b.created_at_ms,
            reasons: Vec::new(),
        })
        .collect();
    if let Some(&newest) = order.first() {
        decisions[newest].reasons.push(KeepReason::Newest);
    }
    let mut periodic_rank = 0u32;
    let mut pre_restore_rank = 0u32;
    let mut buckets = [
        Bucket::new(policy.keep_hourly, |t| t.div_euclid(HOUR_MS)),
        Bucket::new(policy.keep_daily, |t| t.div_euclid(DAY_MS)),
        // 1970-01-01 was a Thursday; shifting by 3 days starts weeks on Monday.
        Bucket::new(policy.keep_weekly, |t| {
            (t.div_euclid(DAY_MS) + 3).div_euclid(7)
        }),
    ];
    for &i in &order {
        let b = &backups[i];
        let reasons = &mut decisions[i].reasons;
        if b.pinned {
            reasons.push(KeepReason::Pinned);
        }
        match b.kind {
            BackupKind::Initial => reasons.push(KeepReason::Initial),
            BackupKind::Breakthrough => reasons.push(KeepReason::Breakthrough),
            BackupKind::Manual => reasons.push(KeepReason::Manual),
            BackupKind::Imported => reasons.push(KeepReason::Imported),
            BackupKind::PreRestore => {
                pre_restore_rank += 1;
                if pre_restore_rank <= policy.keep_last_pre_restore {
                    reasons.push(KeepReason::RecentPreRestore {
                        rank: pre_restore_rank,
                    });
                }
            }
            BackupKind::Periodic => {
                periodic_rank += 1;
                if periodic_rank <= policy.keep_last_periodic {
                    reasons.push(KeepReason::RecentPeriodic {
                        rank: periodic_rank,
                    });
                }
                for (n, bucket) in buckets.iter_mut().enumerate() {
                    if let Some(key) = bucket.take(b.created_at_ms) {
                        reasons.push(match n {
                            0 => KeepReason::Hourly { hour: key },
                            1 => KeepReason::Daily { day: key },
                            _ => KeepReason::Weekly { week: key },
                        });
                    }
                }
            }
        }
    }
    decisions
}

/// Backups younger than this by the clock are never deleted.
pub const GRACE_MS: i64 = 60_000;

/// [`plan`], plus: no backup taken within [`GRACE_MS`] of `now_ms` — or
/// dated after it, as happens when the clock is set back — is deleted.
pub fn plan_at(
    backups: &[BackupMeta],
    policy: &RetentionPolicy,
    now_ms: i64,
) -> Vec<RetentionDecision> {
    let mut decisions = plan(backups, policy);
    for d in &mut decisions {
        if d.created_at_ms > now_ms.saturating_sub(GRACE_MS) && !d.keep() {
            d.reasons.push(KeepReason::JustTaken);
        }
    }
    decisions
}

/// Adds [`KeepReason::Held`] to the held backups.
pub fn keep_held(decisions: &mut [RetentionDecision], held: &BTreeSet<i64>) {
    for d in decisions.iter_mut().filter(|d| held.contains(&d.id)) {
        d.reasons.push(KeepReason::Held);
    }
}

/// How long a hold lasts unless renewed (the UI renews it every minute
/// while the backup stays selected).
pub const HOLD_FOR: std::time::Duration = std::time::Duration::from_secs(180);

/// Keeps the newest backup of each of the newest `limit` distinct keys.
struct Bucket {
    limit: u32,
    used: u32,
    last: Option<i64>,
    key: fn(i64) -> i64,
}

impl Bucket {
    fn new(limit: u32, key: fn(i64) -> i64) -> Self {
        Bucket {
            limit,
            used: 0,
            last: None,
            key,
        }
    }

    /// Called newest first; returns the bucket key when this backup is the
    /// newest of a bucket that is still within the limit.
    fn take(&mut self, t: i64) -> Option<i64> {
        let k = (self.key)(t);
        if self.last == Some(k) || self.used >= self.limit {
            return None;
        }
        self.last = Some(k);
        self.used += 1;
        Some(k)
    }
}

/// What retention says of one backup now, and whether the next periodic
/// backup (and the retention run after it) deletes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outlook {
    pub id: i64,
    /// Why it is kept (empty: it is deleted at the next run); in words with
    /// [`KeepReason::describe`].
    pub kept_because: Vec<KeepReason>,
    pub rolls_off_next: bool,
}

/// [`plan_at`] now, and after one more periodic backup at `next_at_ms`.
pub fn outlook(
    backups: &[BackupMeta],
    policy: &RetentionPolicy,
    now_ms: i64,
    next_at_ms: i64,
    held: &BTreeSet<i64>,
) -> Vec<Outlook> {
    let mut now = plan_at(backups, policy, now_ms);
    keep_held(&mut now, held);
    let mut with_next = backups.to_vec();
    with_next.push(BackupMeta {
        id: backups.iter().map(|b| b.id).max().unwrap_or(0) + 1,
        kind: BackupKind::Periodic,
        created_at_ms: next_at_ms,
        pinned: false,
    });
    let mut next = plan_at(&with_next, policy, next_at_ms);
    keep_held(&mut next, held);
    // A plan answers in the order of its input, so `next[i]` is about
    // `backups[i]` (the extra one is last): no search per backup.
    now.iter()
        .zip(&next)
        .map(|(d, n)| {
            debug_assert_eq!(d.id, n.id);
            Outlook {
                id: d.id,
                kept_because: d.reasons.clone(),
                rolls_off_next: !n.keep(),
            }
        })
        .collect()
}

impl Store {
    /// What retention says of every backup now and at the next periodic
    /// backup (`next_at_ms`).
    pub fn retention_outlook(
        &mut self,
        policy: &RetentionPolicy,
        next_at_ms: i64,
    ) -> Result<Vec<Outlook>> {
        let held = self.held();
        Ok(outlook(
            &self.backup_metas()?,
            policy,
            crate::now_ms(),
            next_at_ms,
            &held,
        ))
    }

    /// Every backup with the policy's verdict and reasons.
    pub fn explain_retention(
        &mut self,
        policy: &RetentionPolicy,
    ) -> Result<Vec<RetentionDecision>> {
        let held = self.held();
        let mut d = plan_at(&self.backup_metas()?, policy, crate::now_ms());
        keep_held(&mut d, &held);
        Ok(d)
    }

    /// Keeps backup `id` from retention for [`HOLD_FOR`] from now (a page
    /// has it selected or is restoring it); calling again renews the hold.
    /// An unknown id is `not_found`. Holds are not written anywhere.
    pub fn hold(&mut self, id: i64) -> Result<()> {
        self.get_backup(id)?;
        self.holds.insert(id, std::time::Instant::now() + HOLD_FOR);
        Ok(())
    }

    /// Ends a hold (the page let go of the backup).
    pub fn release(&mut self, id: i64) {
        self.holds.remove(&id);
    }

    /// The backups held now (expired holds are dropped).
    fn held(&mut self) -> BTreeSet<i64> {
        let now = std::time::Instant::now();
        self.holds.retain(|_, until| *until > now);
        self.holds.keys().copied().collect()
    }

    /// Deletes what the policy does not keep, in one transaction, then the
    /// blobs no remaining backup references. Call it only after the backup
    /// that triggered it has committed: it never deletes the newest backup.
    pub fn apply_retention(&mut self, policy: &RetentionPolicy) -> Result<RetentionReport> {
        let decisions = self.explain_retention(policy)?;
        let deleted: Vec<i64> = decisions
            .iter()
            .filter(|d| !d.keep())
            .map(|d| d.id)
            .collect();
        let kept = (decisions.len() - deleted.len()) as u64;
        let blobs_removed = if deleted.is_empty() {
            0
        } else {
            self.delete_backups_unchecked(&deleted)?
        };
        Ok(RetentionReport {
            deleted,
            kept,
            blobs_removed,
        })
    }

    fn backup_metas(&self) -> Result<Vec<BackupMeta>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT id, kind, created_at, pinned FROM backups")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, created_at_ms, pinned) = row?;
            out.push(BackupMeta {
                id,
                kind: kind.parse()?,
                created_at_ms,
                pinned,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: i64, kind: BackupKind, t: i64) -> BackupMeta {
        BackupMeta {
            id,
            kind,
            created_at_ms: t,
            pinned: false,
        }
    }

    fn kept_ids(d: &[RetentionDecision]) -> Vec<i64> {
        let mut v: Vec<i64> = d.iter().filter(|d| d.keep()).map(|d| d.id).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn keeps_last_n_periodic_and_all_protected_kinds() {
        let mut b = vec![meta(1, BackupKind::Initial, 0)];
        for i in 2..=10 {
            b.push(meta(i, BackupKind::Periodic, i * HOUR_MS));
        }
        b.push(meta(11, BackupKind::Manual, HOUR_MS / 2));
        b.push(meta(12, BackupKind::Breakthrough, HOUR_MS / 3));
        b.push(meta(13, BackupKind::Imported, 1));
        let d = plan(&b, &RetentionPolicy::last_periodic(3));
        assert_eq!(kept_ids(&d), vec![1, 8, 9, 10, 11, 12, 13]);
        // Newest by insertion: the last id, whatever its clock said.
        let last = d.iter().find(|d| d.id == 13).expect("13");
        assert!(last.reasons.contains(&KeepReason::Newest));
        let ten = d.iter().find(|d| d.id == 10).expect("10");
        assert!(
            ten.reasons
                .contains(&KeepReason::RecentPeriodic { rank: 1 })
        );
    }

    #[test]
    fn newest_is_kept_even_with_a_zero_policy() {
        let b = vec![
            meta(1, BackupKind::Periodic, 5),
            meta(2, BackupKind::Periodic, 6),
        ];
        let d = plan(&b, &RetentionPolicy::last_periodic(0));
        assert_eq!(kept_ids(&d), vec![2]);
        assert_eq!(d[1].reasons, vec![KeepReason::Newest]);
    }

    #[test]
    fn pinned_periodic_survives() {
        let mut b: Vec<BackupMeta> = (1..=5).map(|i| meta(i, BackupKind::Periodic, i)).collect();
        b[0].pinned = true;
        let d = plan(&b, &RetentionPolicy::last_periodic(1));
        assert_eq!(kept_ids(&d), vec![1, 5]);
        assert_eq!(d[0].reasons, vec![KeepReason::Pinned]);
    }

    #[test]
    fn equal_timestamps_are_ordered_by_id() {
        let b: Vec<BackupMeta> = (1..=4)
            .map(|i| meta(i, BackupKind::Periodic, 1000))
            .collect();
        assert_eq!(
            kept_ids(&plan(&b, &RetentionPolicy::last_periodic(2))),
            vec![3, 4]
        );
    }

    #[test]
    fn daily_buckets_keep_the_newest_of_each_day() {
        // Three periodic backups a day for five days.
        let mut b = Vec::new();
        let mut id = 0;
        for day in 0..5 {
            for h in [1, 9, 17] {
                id += 1;
                b.push(meta(id, BackupKind::Periodic, day * DAY_MS + h * HOUR_MS));
            }
        }
        let policy = RetentionPolicy {
            keep_daily: 3,
            ..RetentionPolicy::last_periodic(1)
        };
        let d = plan(&b, &policy);
        // Newest of days 4, 3, 2 are ids 15, 12, 9; id 15 is also the newest.
        assert_eq!(kept_ids(&d), vec![9, 12, 15]);
        let nine = d.iter().find(|d| d.id == 9).expect("9");
        assert_eq!(nine.reasons, vec![KeepReason::Daily { day: 2 }]);
    }

    #[test]
    fn weekly_buckets_start_on_monday() {
        // 1970-01-04 was a Sunday, 1970-01-05 a Monday.
        let sunday = 3 * DAY_MS;
        let monday = 4 * DAY_MS;
        let b = vec![
            meta(1, BackupKind::Periodic, sunday),
            meta(2, BackupKind::Periodic, monday),
        ];
        let policy = RetentionPolicy {
            keep_weekly: 2,
            ..RetentionPolicy::last_periodic(0)
        };
        assert_eq!(kept_ids(&plan(&b, &policy)), vec![1, 2], "different weeks");
        let b = vec![
            meta(1, BackupKind::Periodic, monday),
            meta(2, BackupKind::Periodic, monday + 6 * DAY_MS),
        ];
        assert_eq!(kept_ids(&plan(&b, &policy)), vec![2], "same week");
    }

    #[test]
    fn hourly_buckets_and_pre_restore_roll() {
        let mut b: Vec<BackupMeta> = (0..6)
            .map(|i| meta(i + 1, BackupKind::Periodic, i * HOUR_MS / 2))
            .collect();
        b.push(meta(10, BackupKind::PreRestore, 1));
        b.push(meta(11, BackupKind::PreRestore, 2));
        b.push(meta(12, BackupKind::PreRestore, 3));
        let policy = RetentionPolicy {
            keep_hourly: 2,
            keep_last_pre_restore: 2,
            ..RetentionPolicy::last_periodic(0)
        };
        // Half-hourly: hours 0,0,1,1,2,2 -> newest of hours 2 and 1 are ids 6 and 4.
        assert_eq!(kept_ids(&plan(&b, &policy)), vec![4, 6, 11, 12]);
    }

    #[test]
    fn a_clock_set_back_does_not_delete_the_backups_taken_after_it() {
        // Regression (issue 11, item 6): periodic backups 6..=10 were taken
        // after the clock went back a day; they look older than 1..=5.
        let mut b: Vec<BackupMeta> = (1..=5)
            .map(|i| meta(i, BackupKind::Periodic, 10 * DAY_MS + i * HOUR_MS))
            .collect();
        b.extend((6..=10).map(|i| meta(i, BackupKind::Periodic, 9 * DAY_MS + i * HOUR_MS)));
        let kept = kept_ids(&plan(&b, &RetentionPolicy::last_periodic(3)));
        assert_eq!(kept, vec![8, 9, 10], "the newest by insertion are kept");
    }

    #[test]
    fn no_backup_is_deleted_within_the_minute_it_was_taken_or_when_dated_after_the_clock() {
        let now = 100 * DAY_MS;
        let b = vec![
            meta(1, BackupKind::Periodic, now - 2 * GRACE_MS),
            meta(2, BackupKind::Periodic, now - GRACE_MS / 2),
            // Taken before the clock was set back a day: dated in its future.
            meta(3, BackupKind::Periodic, now + DAY_MS),
            meta(4, BackupKind::Periodic, now - 3 * GRACE_MS),
        ];
        let d = plan_at(&b, &RetentionPolicy::last_periodic(1), now);
        assert_eq!(
            kept_ids(&d),
            vec![2, 3, 4],
            "only the old, unranked one goes"
        );
        assert!(d[1].reasons.contains(&KeepReason::JustTaken));
        assert!(d[2].reasons.contains(&KeepReason::JustTaken));
        assert!(!d[0].keep());
    }

    #[test]
    fn the_outlook_names_what_the_next_periodic_backup_rolls_off_and_why_the_rest_stays() {
        let now = 100 * DAY_MS;
        let b = vec![
            meta(1, BackupKind::Initial, now - 10 * HOUR_MS),
            meta(2, BackupKind::Periodic, now - 3 * HOUR_MS),
            meta(3, BackupKind::Periodic, now - 2 * HOUR_MS),
            meta(4, BackupKind::Manual, now - HOUR_MS),
        ];
        let o = outlook(
            &b,
            &RetentionPolicy::last_periodic(2),
            now,
            now + HOUR_MS,
            &BTreeSet::new(),
        );
        let by = |id| o.iter().find(|x| x.id == id).expect("there");
        assert!(
            by(2).rolls_off_next,
            "the oldest of the last 2 periodic ones goes next"
        );
        assert!(!by(2).kept_because.is_empty(), "but it is kept now");
        assert!(!by(3).rolls_off_next);
        assert!(!by(1).rolls_off_next && by(1).kept_because[0] == KeepReason::Initial);
        assert!(!by(4).rolls_off_next);
    }

    #[test]
    fn empty_list_plans_nothing() {
        assert!(plan(&[], &RetentionPolicy::default()).is_empty());
    }

    #[test]
    fn every_reason_has_a_description() {
        let all = [
            KeepReason::Initial,
            KeepReason::Breakthrough,
            KeepReason::Manual,
            KeepReason::Imported,
            KeepReason::Pinned,
            KeepReason::Newest,
            KeepReason::RecentPeriodic { rank: 2 },
            KeepReason::Hourly { hour: 1 },
            KeepReason::Daily { day: 1 },
            KeepReason::Weekly { week: 1 },
            KeepReason::RecentPreRestore { rank: 1 },
            KeepReason::JustTaken,
        ];
        let texts: std::collections::BTreeSet<String> =
            all.iter().map(KeepReason::describe).collect();
        assert_eq!(texts.len(), all.len(), "descriptions are distinct");
    }
}
