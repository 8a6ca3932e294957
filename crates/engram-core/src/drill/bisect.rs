//! Where a metric fell, by bisection, for backups that carry no value of
//! it: each probe measures one backup (a drill), as `git bisect` does with
//! a build — the oldest backup must be at or above the threshold and the
//! newest below it, and one fall between them is assumed.

use crate::error::{Error, Result};
use crate::wire::BackupValue;

/// The last backup at or above `below` and the first below it, among
/// `line` (oldest first). A backup's stored value is used where it has one;
/// `probe` measures the others (its answers are written into `line`).
/// `Ok(None)` when the oldest is already below or the newest is not.
pub fn bisect_fall(
    line: &mut [BackupValue],
    below: f64,
    mut probe: impl FnMut(&BackupValue) -> Result<Option<f64>>,
) -> Result<Option<(BackupValue, BackupValue)>> {
    if line.is_empty() {
        return Ok(None);
    }
    let mut value = |line: &mut [BackupValue], i: usize| -> Result<f64> {
        if line[i].value.is_none() {
            line[i].value = probe(&line[i])?;
        }
        line[i].value.ok_or_else(|| {
            Error::InvalidInput(format!(
                "backup {} gives no value of this metric, stored or drilled",
                line[i].id
            ))
        })
    };
    let (mut good, mut bad) = (0, line.len() - 1);
    if value(line, good)? < below || value(line, bad)? >= below {
        return Ok(None);
    }
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        if value(line, mid)? >= below {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Ok(Some((line[good].clone(), line[bad].clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackupKind;

    #[test]
    fn bisection_probes_only_what_it_needs_and_finds_the_fall() {
        // 64 backups without values; the metric falls at the 41st.
        let mut line: Vec<BackupValue> = (1..=64)
            .map(|id| BackupValue {
                id,
                created_at_ms: id,
                kind: BackupKind::Periodic,
                value: None,
            })
            .collect();
        let mut probed = Vec::new();
        let found = bisect_fall(&mut line, 0.5, |b| {
            probed.push(b.id);
            Ok(Some(if b.id < 41 { 0.9 } else { 0.1 }))
        })
        .expect("bisect")
        .expect("a fall");
        assert_eq!((found.0.id, found.1.id), (40, 41));
        assert!(
            probed.len() <= 8,
            "log2(64) + 2 probes, not {}",
            probed.len()
        );
        // Known values are used as they are; never above at the start or
        // never below at the end: nothing to bisect.
        let mut known = line.clone();
        assert!(
            bisect_fall(&mut known, 0.95, |_| unreachable!())
                .expect("ok")
                .is_none()
        );
        let e = bisect_fall(
            &mut line
                .clone()
                .into_iter()
                .map(|mut b| {
                    b.value = None;
                    b
                })
                .collect::<Vec<_>>(),
            0.5,
            |_| Ok(None),
        )
        .expect_err("no value");
        assert!(e.to_string().contains("no value"), "{e}");
    }
}
