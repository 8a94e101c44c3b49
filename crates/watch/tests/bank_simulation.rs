//! The bank planners in a seeded simulation: four validators (quorum 3, one of them
//! lying) watch one bank and one ledger while exchanges deposit, trade in JPY and USD
//! and withdraw; the bank is down at times, answers are lost or handed over twice, the
//! attesters refuse or lose their answers, nodes are slow and crash mid-pass. Then the
//! faults stop and the world must settle. Per seed:
//! - every deposit is credited exactly once, with its amount, and nothing else is
//!   credited (the liar's misstated and invented facts never);
//! - each exchange's ledger balance in each currency equals its trust account at the
//!   bank (every settlement mirrored and confirmed, every withdrawal paid and
//!   attested);
//! - contradicting attestations are evidence against the liar and nobody else;
//! - no node-lane transaction ever lost its nonce (checked in every block).
//!
//! `SEISAN_WATCH_SIM_SEEDS` runs more seeds (the suite runs [`DEFAULT_SEEDS`]).

mod bank_support;
mod ledger_support;

use bank_support::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seisan_types::tx::TxBody;
use seisan_types::{Amount, MemberId};

const DEFAULT_SEEDS: u64 = 200;
/// Rounds with faults and traffic.
const BUSY_ROUNDS: usize = 60;
/// The most quiet rounds the world may take to settle after the faults stop.
const SETTLE_ROUNDS: usize = 400;

fn faults(rng: &mut StdRng) -> Faults {
    Faults {
        bank_unavailable: rng.gen_range(0.0..0.2),
        transfer_answer_lost: rng.gen_range(0.0..0.2),
        answer_duplicated: rng.gen_range(0.0..0.2),
        attest_refused: rng.gen_range(0.0..0.1),
        attest_answer_lost: rng.gen_range(0.0..0.1),
        crash: rng.gen_range(0.0..0.02),
        slow: rng.gen_range(0.0..0.3),
    }
}

/// What one seed exercised, summed over the run for the printout.
#[derive(Debug, Default)]
struct Exercised {
    deposits: usize,
    fills: usize,
    mirrors_confirmed: usize,
    withdrawals_paid: usize,
    restarts: u32,
    given_up: usize,
    evidence: usize,
}

/// One seed's run; `Err` names what broke.
fn run(seed: u64, exercised: &mut Exercised) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let liar = [None, Some(CH), Some(A), Some(B), Some(C)][rng.gen_range(0..5)];
    let mut world = World::new(liar);
    let faults = faults(&mut rng);
    for _ in 0..BUSY_ROUNDS {
        let member = EXCHANGES[rng.gen_range(0..3)];
        let asset = [JPY, USD][rng.gen_range(0..2)];
        match rng.gen_range(0..10) {
            0..=3 => world.deposit(member, asset, rng.gen_range(1_000..50_000)),
            4..=6 => {
                let seller = EXCHANGES[rng.gen_range(0..3)];
                let price = rng.gen_range(100..2_000);
                if seller != member && world.available(member, asset) >= price {
                    world.trade(member, seller, asset, price);
                }
            }
            7 => {
                let available = world.available(member, asset);
                if available > 0 {
                    let amount = rng.gen_range(1..=available);
                    world.admit(
                        member,
                        TxBody::WithdrawFiat {
                            asset,
                            amount: Amount(amount),
                        },
                    );
                }
            }
            _ => {}
        }
        let step = rng.gen_range(100..3_000);
        world.round(&mut rng, &faults, step);
    }
    let calm = Faults::default();
    let mut rounds = 0;
    while !world.settled() {
        if rounds == SETTLE_ROUNDS {
            return Err(format!(
                "not settled {SETTLE_ROUNDS} quiet rounds after the faults (liar {liar:?}, faults {faults:?}); open mirrors {:?}, open withdrawals {:?}, mempool {}",
                seisan_contracts::mirror::open_mirrors(&world.view, 10),
                seisan_contracts::bank::open_withdrawals(&world.view),
                world.mempool.len()
            ));
        }
        world.round(&mut rng, &calm, 1_000);
        rounds += 1;
    }

    // Every deposit credited once with its amount, nothing else credited.
    for member in EXCHANGES {
        for asset in [JPY, USD] {
            let mut made: Vec<u128> = world
                .deposits
                .iter()
                .filter(|(by, at, _, _)| *by == member && *at == asset)
                .map(|(_, _, amount, _)| *amount)
                .collect();
            let mut credited = world.credited_entries(member, asset);
            made.sort();
            credited.sort();
            if made != credited {
                return Err(format!(
                    "{member} {asset}: deposits {made:?} but credits {credited:?} (liar {liar:?})"
                ));
            }
            let (ledger, bank) = (
                world.balance(member, asset),
                world.trust_at_bank(member, asset),
            );
            if ledger != bank {
                return Err(format!(
                    "{member} {asset}: ledger {ledger} but trust account {bank} (liar {liar:?})"
                ));
            }
        }
    }
    // Evidence names the liar only.
    let accused: Vec<MemberId> = seisan_contracts::bank::evidence(&world.view)
        .into_iter()
        .map(|evidence| evidence.member)
        .collect();
    if accused.iter().any(|member| Some(*member) != liar) {
        return Err(format!(
            "evidence against an honest member: {accused:?} (liar {liar:?})"
        ));
    }
    if liar.is_some() && !world.deposits.is_empty() && accused.is_empty() {
        return Err(format!("the liar {liar:?} left no evidence"));
    }
    exercised.deposits += world.deposits.len();
    exercised.fills += world.fills();
    exercised.mirrors_confirmed += world.applied(CH, "attest_mirror");
    exercised.withdrawals_paid += EXCHANGES
        .iter()
        .map(|member| world.applied(*member, "withdraw_fiat"))
        .sum::<usize>();
    exercised.restarts += world.nodes.iter().map(|node| node.restarts).sum::<u32>();
    exercised.given_up += world
        .nodes
        .iter()
        .flat_map(|node| &node.notices)
        .filter(|notice| matches!(notice, seisan_watch::bank::BankNotice::GaveUp(_)))
        .count();
    exercised.evidence += accused.len();
    Ok(())
}

#[test]
fn planners_settle_every_deposit_mirror_and_withdrawal_once_under_faults_and_a_liar() {
    let seeds = std::env::var("SEISAN_WATCH_SIM_SEEDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_SEEDS);
    let mut exercised = Exercised::default();
    let failures: Vec<String> = (0..seeds)
        .filter_map(|seed| {
            run(seed, &mut exercised)
                .err()
                .map(|error| format!("seed {seed}: {error}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("bank planner simulation: {seeds} seeds, 0 failures; {exercised:?}");
    assert!(
        exercised.fills > 0
            && exercised.mirrors_confirmed > 0
            && exercised.withdrawals_paid > 0
            && exercised.restarts > 0
            && exercised.evidence > 0,
        "the simulation exercised too little: {exercised:?}"
    );
}
