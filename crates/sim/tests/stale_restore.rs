//! Validators restored from stale backups (issue 20 item 5, R14): one honest validator
//! per seed restarts every time from the signing record, kept blocks and kept
//! certificates it had at its previous start, and its engine is fenced until its
//! peers have told it what it signed since. No two conflicting messages of an honest
//! validator may ever reach honest nodes, and the chain heals as usual. Without the
//! fence the same seeds catch the restored validator signing twice.

use seisan_sim::{run_seed, SeedReport, SimConfig};

fn stale(config: SimConfig) -> SimConfig {
    SimConfig {
        stale_restores: true,
        ..config
    }
}

fn failures(reports: &[SeedReport]) -> Vec<String> {
    reports
        .iter()
        .filter(|report| report.failed())
        .map(|report| {
            format!(
                "seed {}: violations {:?}, liveness {:?}\n  replay: {}",
                report.seed, report.violations, report.liveness_failure, report.replay
            )
        })
        .collect()
}

#[test]
fn a_fenced_stale_restore_never_signs_twice_and_the_chain_heals() {
    for (config, seeds) in [
        (stale(SimConfig::three_of_two()), 0..120),
        (stale(SimConfig::four_of_three_byzantine()), 0..60),
    ] {
        let reports: Vec<SeedReport> = seeds.map(|seed| run_seed(&config, seed)).collect();
        let failures = failures(&reports);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let restores: u64 = reports.iter().map(|report| report.stale_restores).sum();
        assert!(
            restores > reports.len() as u64,
            "only {restores} stale restores in {} seeds",
            reports.len()
        );
    }
}

#[test]
fn without_the_fence_a_stale_restore_signs_twice() {
    let config = SimConfig {
        unfenced_restores: true,
        ..stale(SimConfig::three_of_two())
    };
    let caught = (0..120).map(|seed| run_seed(&config, seed)).find(|report| {
        report
            .violations
            .iter()
            .any(|violation| violation.contains("restored from a stale backup: true"))
    });
    assert!(
        caught.is_some(),
        "no seed caught an unfenced stale restore signing twice"
    );
}
