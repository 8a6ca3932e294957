use super::es::centred_ranks;
use super::*;

#[test]
fn centred_ranks_are_symmetric() {
    assert_eq!(centred_ranks(&[3.0, 1.0, 2.0]), vec![0.5, -0.5, 0.0]);
}

#[test]
fn buffers_stay_within_caps_over_long_runs() {
    let mut cfg = MdpEsConfig {
        history_cap: 50,
        fitness_history_cap: 3,
        ..Default::default()
    };
    cfg.es.every_ticks = 1;
    cfg.es.pairs = 2;
    let mut e = MdpEs::new(cfg, 1);
    for _ in 0..20 {
        e.tick();
        assert!(
            e.history.len() <= 50
                && e.es.fitness_history.len() <= 3
                && e.recent_outcomes.len() <= 100
        );
    }
    assert_eq!(e.history.len(), 50);
    assert_eq!(e.es.fitness_history.len(), 3);
    assert_eq!(e.es.population.len(), 4);
}

#[test]
fn restore_refuses_inconsistent_states() {
    let mut e = MdpEs::new(MdpEsConfig::default(), 3);
    e.q.pop();
    let err = MdpEs::restore(&e.capture().expect("capture")).expect_err("bad dims");
    assert_eq!(err.code(), "corrupt_state");
    let other = crate::codec::encode(99, &1u8).expect("encode");
    assert_eq!(
        MdpEs::restore(&other).expect_err("schema").code(),
        "unsupported_format"
    );
}
