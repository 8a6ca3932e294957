//! How the store's rows become the wire types the API answers with.

use crate::store::{BackupInfo, KeepReason, Outlook};
use crate::wire::{Backup, RetentionOutlook};

impl From<&BackupInfo> for Backup {
    fn from(b: &BackupInfo) -> Self {
        Backup {
            id: b.id,
            kind: b.kind,
            created_at: crate::rfc3339(b.created_at_ms),
            created_at_ms: b.created_at_ms,
            label: b.label.clone(),
            pinned: b.pinned,
            engines: b.engines.iter().map(|e| e.name.clone()).collect(),
            learners: b.learners.clone(),
            learner_steps: b.learner_steps.clone(),
            learner_metrics: b.learner_metrics.clone(),
            metrics: b
                .engines
                .iter()
                .map(|e| (e.name.clone(), e.metrics.clone()))
                .collect(),
            size: b.engines.iter().map(|e| e.size).sum(),
            breakthrough: b.breakthrough.clone(),
            origin: b
                .origin
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok()),
            offsite: b.offsite,
        }
    }
}

impl From<Outlook> for RetentionOutlook {
    fn from(o: Outlook) -> Self {
        RetentionOutlook {
            id: o.id,
            kept_because: o.kept_because.iter().map(KeepReason::describe).collect(),
            rolls_off_next: o.rolls_off_next,
        }
    }
}
