//! Power loss, not only process death: the store runs on the `lazy` VFS,
//! which images the disk as it would be after a power cut at a random I/O
//! call (every write not yet fsynced lost). Every save and backup that
//! returned before the cut must be in the image, and the image must open
//! cleanly and verify.

use engram_core::codec::encode;
use engram_core::{BackupKind, EngineState, Metrics, NewBackup, Store};

/// A small deterministic generator (the cut points and payload sizes).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn state(n: u64, len: usize) -> EngineState {
    EngineState {
        engine: "learner".into(),
        state: encode(1, &(n, vec![n as f64; len])).expect("encode"),
        metrics: Metrics::from([("n".to_string(), n as f64)]),
    }
}

const ITERATIONS: u64 = 60;
const OPS: u64 = 24;

#[test]
fn every_acknowledged_save_and_backup_survives_a_power_cut_at_any_io_call() {
    engram_powerloss::register();
    let mut rng = Lcg(0x5EED);
    // How many I/O calls a full run makes, to spread the cuts over it.
    let calls = {
        let dir = tempfile::tempdir().expect("tempdir");
        engram_powerloss::arm(u64::MAX, dir.path());
        run(&dir, &mut Lcg(1), OPS);
        engram_powerloss::cut_now()
    };
    assert!(calls > OPS, "the VFS sees the store's I/O ({calls} calls)");
    let mut lost_unsynced = 0;
    for i in 0..ITERATIONS {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = tempfile::tempdir().expect("image");
        let cut = 1 + rng.below(calls);
        engram_powerloss::arm(cut, image.path());
        let acked = run(&dir, &mut Lcg(i), OPS);
        engram_powerloss::cut_now();
        // The image, opened as the next start would open it.
        let store = Store::open(image.path().join("engram.db"))
            .unwrap_or_else(|e| panic!("cut at call {cut}: the image does not open: {e}"));
        let report = store.verify_all(true).expect("verify");
        assert!(
            report.problems.is_empty(),
            "cut at call {cut}: {:?}",
            report.problems
        );
        let live = store.live_metrics().expect("live");
        let saved = live.get("learner").map(|(m, _)| m["n"] as u64);
        if let Some(last) = acked.last_save {
            let got = saved.unwrap_or_else(|| panic!("cut at call {cut}: save {last} lost"));
            // (A save in flight at the cut may be there too: got > last.)
            assert!(
                got >= last,
                "cut at call {cut}: save {last} acknowledged, {got} on disk"
            );
        }
        for id in &acked.backups {
            let b = store
                .get_backup(*id)
                .unwrap_or_else(|e| panic!("cut at call {cut}: backup {id} lost: {e}"));
            assert_eq!(b.kind, BackupKind::Manual);
            store
                .backup_states(*id)
                .unwrap_or_else(|e| panic!("cut at call {cut}: backup {id} unreadable: {e}"));
        }
        // What was never synced is really gone from the image: the
        // operations after the cut are not in it.
        if acked.last_save.is_some_and(|l| l + 2 < OPS) {
            lost_unsynced += u64::from(saved.is_some_and(|s| s < OPS - 1));
        }
    }
    eprintln!(
        "power loss: {ITERATIONS} cuts over {calls} I/O calls per run; {lost_unsynced} images lacked the unsynced tail"
    );
    assert!(
        lost_unsynced > 0,
        "no image ever lacked the later operations: the cut is not a cut"
    );
}

struct Acked {
    last_save: Option<u64>,
    backups: Vec<i64>,
}

/// Saves and backs up as the runtime does; returns what returned Ok before
/// the crash image was taken (the store is leaked, never closed: a power
/// cut does not run the close-time checkpoint).
fn run(dir: &tempfile::TempDir, rng: &mut Lcg, ops: u64) -> Acked {
    let mut acked = Acked {
        last_save: None,
        backups: Vec::new(),
    };
    let mut store = Store::open(dir.path().join("engram.db")).expect("open");
    for n in 0..ops {
        let s = state(n, 50 + rng.below(3000) as usize);
        let saved = store.save_live(std::slice::from_ref(&s), n as i64 + 1);
        if saved.is_ok() && !engram_powerloss::image_taken() {
            acked.last_save = Some(n);
        }
        if n % 4 == 3 {
            let b = store.create_backup(&NewBackup {
                kind: BackupKind::Manual,
                created_at_ms: n as i64 + 1,
                label: None,
                breakthrough: None,
                states: std::slice::from_ref(&s),
            });
            if let Ok(id) = b
                && !engram_powerloss::image_taken()
            {
                acked.backups.push(id);
            }
        }
    }
    std::mem::forget(store);
    acked
}
