//! `seisan-sim`: runs the consensus simulator over many seeds and prints one line,
//! `sim: seeds=N violations=V finalized_blocks=B liveness_failures=L quorum_losses=Q
//! stalls_after_quorum=S resume_ms_max=R seeds_per_s=X` (`stalls_after_quorum` counts
//! the liveness failures that were stalls after a quorum-loss outage; `resume_ms_max`
//! is the longest time from a quorum being connected again to a new height), then
//! `reconfigurations=C epochs_reached=E epochs_reached_under_faults=F` (epoch changes
//! the seeds' plans make; the sum of the highest epoch reached per seed, equal when
//! every change was carried out; the same sum before healing began) and
//! `sealed_epoch_ends=S` (epoch ends whose last block was finalized through seals, E4).
//! `--reconfigure` draws a plan of validator-set changes per seed (no quorum-loss
//! outages then).
//! Exits non-zero on any violation or liveness failure, after printing each failing
//! seed's replay command on stderr.
//!
//! ```text
//! seisan-sim --seeds 1000 [--validators 3 --quorum 2 --byzantine 0]
//!            [--first-seed 0] [--fault-ms 8000] [--heal-ms 30000]
//!            [--crash-interval-ms MS] [--behaviour equivocate|doublevote|garbage|all]
//!            [--quorum-loss never|sometimes|always] [--outage-spares-one]
//!            [--no-random-faults] [--no-gossip-dedup] [--reconfigure] [--stale-restores]
//! seisan-sim --seed 17 ...      # replay one seed, with its details
//! ```

use anyhow::{bail, Context};
use seisan_sim::{run_seed, Behaviour, QuorumLoss, SimConfig};
use std::time::Instant;

struct Arguments {
    config: SimConfig,
    seeds: u64,
    first_seed: u64,
    single: Option<u64>,
}

fn parse() -> anyhow::Result<Arguments> {
    let mut config = SimConfig::three_of_two();
    let mut seeds = 100;
    let mut first_seed = 0;
    let mut single = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        let number = |text: String| -> anyhow::Result<u64> {
            text.parse::<u64>()
                .with_context(|| format!("{flag} expects a number, got {text:?}"))
        };
        match flag.as_str() {
            "--seeds" => seeds = number(value()?)?,
            "--seed" => single = Some(number(value()?)?),
            "--first-seed" => first_seed = number(value()?)?,
            "--validators" => config.validators = u32::try_from(number(value()?)?)?,
            "--quorum" => config.quorum = u32::try_from(number(value()?)?)?,
            "--byzantine" => config.byzantine = u32::try_from(number(value()?)?)?,
            "--fault-ms" => config.fault_ms = number(value()?)?,
            "--heal-ms" => config.heal_ms = number(value()?)?,
            "--crash-interval-ms" => config.crash_interval_ms = Some(number(value()?)?),
            "--quorum-loss" => {
                config.quorum_loss = match value()?.as_str() {
                    "never" => QuorumLoss::Never,
                    "sometimes" => QuorumLoss::Sometimes,
                    "always" => QuorumLoss::Always,
                    other => bail!("--quorum-loss takes never, sometimes or always, not {other:?}"),
                }
            }
            "--no-random-faults" => config.random_faults = false,
            "--outage-spares-one" => config.outage_may_stop_all = false,
            "--no-gossip-dedup" => config.gossip_dedup = false,
            // Validator-set changes; their seeds draw no quorum-loss outage, and their
            // fault phase is shorter unless --fault-ms says otherwise.
            "--stale-restores" => {
                config.stale_restores = true;
            }
            "--reconfigure" => {
                config.reconfigure = true;
                config.quorum_loss = QuorumLoss::Never;
            }
            // Deliberately broken engines, to see the simulator catch them.
            "--bug" if !cfg!(feature = "test-hooks") => {
                bail!("--bug needs the simulator built with --features test-hooks")
            }
            "--bug" => match value()?.as_str() {
                "duplicate-votes" => config.bug_injection.count_duplicate_votes = true,
                "release-before-persist" => config.bug_injection.release_before_persist = true,
                other => bail!("unknown bug {other:?}"),
            },
            "--behaviour" => {
                let text = value()?;
                config.behaviour = Some(match text.as_str() {
                    "equivocate" => Behaviour::Equivocate,
                    "doublevote" => Behaviour::DoubleVote,
                    "garbage" => Behaviour::Garbage,
                    "all" => Behaviour::All,
                    other => bail!("unknown behaviour {other:?}"),
                });
            }
            "--help" | "-h" => {
                println!("usage: seisan-sim --seeds N [--validators N --quorum Q --byzantine K] [--first-seed S] [--seed S] [--fault-ms MS] [--heal-ms MS] [--crash-interval-ms MS (0: none)] [--behaviour B] [--quorum-loss never|sometimes|always (default sometimes: half the seeds)] [--outage-spares-one (a drawn outage never stops every validator)] [--no-random-faults] [--no-gossip-dedup] [--reconfigure (validator-set changes: add, remove, rotate, quorum, several in flight; no quorum-loss outages)] [--stale-restores (every restart restores a stale backup; the engine is fenced, R14)]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if config.validators == 0 || config.quorum == 0 || config.quorum > config.validators {
        bail!(
            "quorum {} must be between 1 and the {} validators",
            config.quorum,
            config.validators
        );
    }
    if 2 * config.quorum <= config.validators {
        bail!(
            "quorum {} is unsafe for {} validators (2q must exceed n)",
            config.quorum,
            config.validators
        );
    }
    if config.byzantine >= config.validators {
        bail!(
            "byzantine {} must be below the validator count",
            config.byzantine
        );
    }
    Ok(Arguments {
        config,
        seeds,
        first_seed,
        single,
    })
}

fn main() -> anyhow::Result<()> {
    let arguments = parse()?;
    let seeds: Vec<u64> = match arguments.single {
        Some(seed) => vec![seed],
        None => (arguments.first_seed..arguments.first_seed + arguments.seeds).collect(),
    };
    let started = Instant::now();
    let (mut violations, mut liveness_failures, mut finalized_blocks) = (0u64, 0u64, 0u64);
    let (mut quorum_losses, mut stalls_after_quorum) = (0u64, 0u64);
    let mut stale_restores = 0u64;
    let (mut reconfigurations, mut epochs_reached, mut under_faults) = (0u64, 0u64, 0u64);
    let mut sealed = 0u64;
    let mut resume_ms_max = 0u64;
    for seed in &seeds {
        let report = run_seed(&arguments.config, *seed);
        finalized_blocks += report.finalized_blocks;
        violations += report.violations.len() as u64;
        liveness_failures += u64::from(report.liveness_failure.is_some());
        quorum_losses += report.quorum_losses;
        stale_restores += report.stale_restores;
        reconfigurations += report.reconfigurations;
        epochs_reached += report.highest_epoch;
        under_faults += report.highest_epoch_under_faults;
        sealed += report.sealed_epoch_ends;
        stalls_after_quorum += u64::from(report.stalled_after_quorum);
        resume_ms_max = resume_ms_max.max(report.resume_ms_max.unwrap_or(0));
        if arguments.single.is_some() {
            eprintln!(
                "seed {seed}: faults {}; plan {}; events {}; crashes {}; epoch changes planned {} reached {}; evidence {}; finalized {}; resumed after quorum loss in {:?} ms; trace {}",
                report.faults,
                report.plan,
                report.events,
                report.crashes,
                report.reconfigurations,
                report.highest_epoch,
                report.evidence_against_byzantine,
                report.finalized_blocks,
                report.resume_ms_max,
                report.trace_hash
            );
        }
        if report.failed() {
            for violation in &report.violations {
                eprintln!("violation: {violation}");
            }
            if let Some(failure) = &report.liveness_failure {
                eprintln!("liveness failure (seed {seed}): {failure}");
            }
            eprintln!("replay: {}", report.replay);
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "sim: seeds={} violations={violations} finalized_blocks={finalized_blocks} liveness_failures={liveness_failures} quorum_losses={quorum_losses} stalls_after_quorum={stalls_after_quorum} resume_ms_max={resume_ms_max} reconfigurations={reconfigurations} epochs_reached={epochs_reached} epochs_reached_under_faults={under_faults} sealed_epoch_ends={sealed} stale_restores={stale_restores} seeds_per_s={:.1}",
        seeds.len(),
        seeds.len() as f64 / seconds
    );
    if violations > 0 || liveness_failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}
