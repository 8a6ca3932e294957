//! A learner's state saved straight into a running runtime's store (an
//! object file when large), as a learner process's save would leave it.
//! Shared by the replica tests and the replica benchmark (`#[path]`).

use engram_core::runtime::Runtime;
use engram_core::store::NewLearnerState;

/// Saves `bytes` as learner `name`'s live state at `step` (attaching it first).
pub async fn save_learner(
    rt: &Runtime,
    name: &'static str,
    bytes: Vec<u8>,
    step: u64,
) -> engram_core::Result<()> {
    rt.with_store(move |s| {
        if s.learner(name).is_err() {
            s.attach_learner(name, Some("test.bytes/1"), engram_core::now_ms())?;
        }
        let info = s.objects().put(&bytes)?;
        s.save_learner_live(
            name,
            &NewLearnerState {
                generation: None,
                object: info.checksum,
                size: info.size,
                step: Some(step),
                metrics: [("score".to_string(), step as f64)].into(),
            },
            engram_core::now_ms(),
            None,
        )?;
        Ok(())
    })
    .await
}
