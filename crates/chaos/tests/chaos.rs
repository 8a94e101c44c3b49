//! The chaos run as part of the test suite.
//!
//! With `SEISAN_CHAOS=1` this runs the real thing for two minutes (four validators with
//! quorum 3, one of them lying in its attestations, the bank, anvil, faults, workload; needs `target/<profile>/seisan`, built by `cargo build -p
//! seisan-node`, and root for the namespaces) and fails unless the run passes with its summary line.
//! Without it, it only checks that the checkers catch broken answers and that the fault
//! schedule could reach the 50 faults a 10-minute run needs, with the quorum losses
//! both runs must have, so the default suite stays cheap.

use seisan_api::v1;
use seisan_chaos::faults::{FaultKind, FaultPlan};
use seisan_chaos::http::{self, Answer};
use seisan_chaos::invariants::{check_acknowledged, check_supply, AckCheck, Acknowledged};
use seisan_types::receipt::{Receipt, TxOutcome};
use seisan_types::{Hash, MemberId, Nonce};
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn chaos_run_passes_or_checkers_catch_broken_answers() {
    if std::env::var("SEISAN_CHAOS").as_deref() != Ok("1") {
        self_check();
        return;
    }
    let driver = PathBuf::from(env!("CARGO_BIN_EXE_seisan-chaos"));
    let seisan = driver.with_file_name("seisan");
    assert!(
        seisan.exists(),
        "{} is missing: run cargo build -p seisan-node --features test-hooks first",
        seisan.display()
    );
    let output = Command::new(&driver)
        .args(["--minutes", "2", "--seisan"])
        .arg(&seisan)
        .output()
        .expect("running seisan-chaos");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stdout
        .lines()
        .find(|line| line.starts_with("chaos: minutes="))
        .unwrap_or_default()
        .to_string();
    for line in stdout.lines().filter(|line| {
        line.starts_with("chaos: seed=")
            || line.starts_with("chaos: faults by kind")
            || line.contains(" validators, quorum ")
            || line.starts_with("chaos: evidence")
    }) {
        println!("{line}");
    }
    println!("{summary}");
    assert!(
        output.status.success(),
        "chaos run failed: {summary}\nstdout:\n{stdout}\nstderr (tail):\n{}",
        stderr
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        summary.contains(" lost=0 invariant_violations=0 divergences=0 stalls_after_quorum=0"),
        "{summary}"
    );
    let quorum_losses = stdout
        .lines()
        .find_map(|line| line.split(" quorum_loss=").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        quorum_losses >= 1,
        "the 2-minute run took quorum down {quorum_losses} times; it must at least once"
    );
}

fn self_check() {
    let body = json!({"height": 3, "state_root": "00".repeat(32), "assets": [
        {"asset": 0, "symbol": "JPY", "credited": "100", "debited": "0", "held": "101", "locked": "0"}
    ]});
    let broken = http::read::<v1::Supply>("http://n/v1/supply", 200, &body)
        .document()
        .expect("a well-formed supply answer");
    assert!(
        check_supply(&broken).is_err(),
        "an invented unit must be caught"
    );
    let ack = Acknowledged {
        id: "00".into(),
        height: 4,
        receipt: Receipt {
            tx_id: Hash([0; 32]),
            member: MemberId(1),
            nonce: Nonce(1),
            kind: "place_order".into(),
            outcome: TxOutcome::Applied,
            events: vec![],
        },
    };
    let not_found = Answer::Refused(404, Some(v1::ErrorBody::new("not_found", "unknown")));
    assert!(matches!(
        check_acknowledged(&ack, 10, &not_found),
        AckCheck::Lost(_)
    ));
    let mut plan = FaultPlan::new(0, seisan_chaos::cluster::VALIDATORS.len());
    let faults: Vec<_> = (0..50).map(|_| plan.next_fault()).collect();
    let total_ms: u64 = faults.iter().map(|fault| fault.gap_ms).sum();
    assert!(total_ms <= 10 * 60 * 1000, "50 faults fit in ten minutes");
    let quorum_losses = faults
        .iter()
        .filter(|fault| fault.kind == FaultKind::QuorumLoss)
        .count();
    assert!(
        quorum_losses >= 5,
        "a 10-minute run takes quorum down 5 times"
    );
    assert!(
        faults[..3]
            .iter()
            .any(|fault| fault.kind == FaultKind::QuorumLoss),
        "a 2-minute run takes quorum down"
    );
}
