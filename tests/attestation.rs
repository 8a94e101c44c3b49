//! Every validator observes, and a lying validator neither blocks nor forges: four real
//! validator nodes with quorum 3, the embedded bank and anvil, and exchange-c's node
//! started with `--fault lie-attestations` (it attests other amounts than it sees, and
//! invented facts for the next bank entry ids and for deposits that never happened).
//!
//! Each validator reads every trust account through its own read-only auditor token
//! (`seisan bank init --genesis` gives each validator one), so the three honest ones
//! are a quorum for every fiat credit. A fiat deposit is credited once, with the
//! bank's amount; a second one, whose entry id the liar claimed before the bank
//! assigned it, is credited once too; an ETH deposit is credited once; the liar's
//! invented deposit credits nobody; and every honest node serves the liar's
//! contradicting attestations at `GET /v1/evidence`, with none against an honest node.
//! A fifth member that is no validator has its attestation refused (`not_validator`).

use anyhow::Context;
use seisan_api::v1;
use seisan_bank::{AccountId, BankAdapter, HttpBank, TransferReference, TransferRequest};
use seisan_tests::*;
use seisan_types::attestation::{AttestationEvidence, AttestedFact, AttestedSubject};
use seisan_types::bank::{BankEntryId, BankEntryKind, BankFact};
use seisan_types::custody::{ChainAddress, PublicChainSettings, RegisteredAddress};
use seisan_types::receipt::TxOutcome;
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetId, MemberId};
use std::time::Duration;

/// Indexes into `ANVIL_ACCOUNTS`: 1 is the hot address, 2 the cold one, 3 exchange A's
/// registered address.
const HOT: usize = 1;
const COLD: usize = 2;
const EXCHANGE_A: usize = 3;
const ETHER: u128 = 1_000_000_000_000_000_000;
/// The validator configured to lie, and its member id in the four-validator genesis
/// (clearing-house 0, exchange-a 1, exchange-b 2, exchange-c 3).
const LIAR: &str = "exchange-c";
const LIAR_ID: u32 = 3;
const PATIENT: Duration = Duration::from_secs(150);

/// A member's whole holding of `symbol` (inventory, locked, customers) on `node`.
fn holding(node: &str, member: &str, symbol: &str) -> anyhow::Result<u128> {
    let balances: v1::Balances = try_get_typed(&format!("{node}/v1/members/{member}/balances"))?;
    Ok(balance_of(&balances, symbol)
        .map(|balance| balance.inventory.0 + balance.locked.0 + balance.customers.0)
        .unwrap_or(0))
}

/// The attestation evidence a node serves.
fn attestation_evidence(node: &str) -> anyhow::Result<Vec<v1::EvidenceEntry>> {
    let list: v1::EvidenceList = try_get_typed(&format!("{node}/v1/evidence"))?;
    Ok(list
        .evidence
        .into_iter()
        .filter(|item| item.kind == "ContradictingAttestation")
        .collect())
}

/// The evidence item about bank entry `entry`, if any.
fn bank_evidence<'e>(
    evidence: &'e [v1::EvidenceEntry],
    entry: &str,
) -> Option<&'e v1::EvidenceEntry> {
    evidence.iter().find(|item| {
        matches!(&item.subject, Some(AttestedSubject::BankEntry { entry: id }) if id.0 == entry)
    })
}

/// Whether an evidence item is about a public-chain deposit.
fn about_deposit(item: &v1::EvidenceEntry) -> bool {
    matches!(item.subject, Some(AttestedSubject::Deposit { .. }))
}

/// The signed contradiction an attestation evidence item carries.
fn contradiction(item: &v1::EvidenceEntry) -> AttestationEvidence {
    serde_json::from_value(item.evidence.clone())
        .unwrap_or_else(|error| panic!("no attestation evidence ({error}): {item:?}"))
}

/// The amount of a bank-entry fact (`None` for another kind of fact).
fn bank_amount(fact: &AttestedFact) -> Option<u128> {
    match fact {
        AttestedFact::BankEntry(fact) => Some(fact.amount.0),
        _ => None,
    }
}

/// The amount of a deposit fact (`None` for another kind of fact).
fn deposit_amount(fact: &AttestedFact) -> Option<u128> {
    match fact {
        AttestedFact::Deposit(fact) => Some(fact.amount.0),
        _ => None,
    }
}

fn deposit_to_trust(bank: &HttpBank, amount: u128, reference: &str) -> anyhow::Result<()> {
    bank.transfer(&TransferRequest {
        from: AccountId::operating("exchange-a"),
        to: AccountId::trust("exchange-a"),
        amount: Amount(amount),
        reference: TransferReference(reference.into()),
    })
    .map_err(|error| anyhow::anyhow!("bank transfer: {error}"))?;
    Ok(())
}

/// The id of the newest credit on exchange A's trust account.
fn newest_trust_entry(auditor: &HttpBank) -> anyhow::Result<(String, u64)> {
    let statement = auditor
        .statement(&AccountId::trust("exchange-a"), 0)
        .map_err(|error| anyhow::anyhow!("statement: {error}"))?;
    let last = statement.last().context("an entry")?;
    Ok((last.id.0.clone(), last.sequence))
}

#[test]
fn a_lying_validator_neither_blocks_nor_forges_and_is_on_record() -> anyhow::Result<()> {
    let anvil = Anvil::start()?;
    // The nodes inherit it: every node watches anvil (no hot key: nothing is paid out).
    std::env::set_var("SEISAN_ETH_RPC", &anvil.url);
    // One extra exchange, bench-0, that is a member but no validator.
    let mut net = Testnet::start_sized(4, Some(3), 1, |genesis| {
        let address = |index: usize| ChainAddress(ANVIL_ACCOUNTS[index].into());
        genesis.public_chain = Some(PublicChainSettings {
            chain_id: 31337,
            confirmations: 2,
            hot_address: address(HOT),
            cold_address: address(COLD),
            registered_addresses: vec![RegisteredAddress {
                member: "exchange-a".into(),
                address: address(EXCHANGE_A),
            }],
            hot_cap_bps: 500,
        });
    })?;
    assert_eq!(net.genesis.quorum, 3);
    assert_eq!(net.nodes.len(), 4);
    assert_eq!(net.nodes[LIAR_ID as usize].name, LIAR);
    let bank_port = free_port();
    let _bank = start_bank(net.dir.path(), Some(&net.genesis_path()), bank_port)?;
    let bank_url = format!("http://127.0.0.1:{bank_port}");
    for index in 0..net.nodes.len() {
        let name = net.nodes[index].name.clone();
        let mut args = net.bank_flags(&bank_url, &name, true);
        if name == LIAR {
            args.extend(["--fault".to_string(), "lie-attestations".to_string()]);
        }
        net.nodes[index].extra_args = args;
        net.launch(index)?;
    }
    net.wait_in_sync(&[0, 1, 2, 3])?;
    let honest: Vec<String> = (0..3).map(|index| net.nodes[index].url()).collect();
    let a = honest[1].clone();
    let bank_a = HttpBank::new(&bank_url, &seisan_bank::dev_token("exchange-a"));
    let auditor = HttpBank::new(&bank_url, &seisan_bank::dev_auditor_token("exchange-b"));

    // A fiat deposit (S210): credited once, with the bank's amount, although the liar
    // attests another one. Only exchange A's own node and the clearing house could read
    // A's trust account before; now the three honest validators are the quorum.
    deposit_to_trust(&bank_a, 200, "a-funds-trust-1")?;
    let (first_entry, first_sequence) = newest_trust_entry(&auditor)?;
    wait_until(PATIENT, || Ok(holding(&a, "exchange-a", "JPY")? == 200))
        .with_context(|| net.log_tail(1))?;
    // The liar's other amount for it is evidence; so are its claims to the next ids,
    // once the bank assigns them. Wait until the liar has attested (its squats ride in
    // the same pass, after the misstatement).
    wait_until(PATIENT, || {
        Ok(bank_evidence(&attestation_evidence(&a)?, &first_entry).is_some())
    })
    .with_context(|| format!("{:?}\n{}", attestation_evidence(&a), net.log_tail(3)))?;
    wait_until(PATIENT, || {
        let nonce: v1::NonceInfo = try_get_typed(&format!("{a}/v1/members/{LIAR}/nonce"))?;
        // One misstated entry and four claimed ids.
        Ok(nonce
            .lanes
            .get("node")
            .and_then(|lane| lane.committed)
            .is_some_and(|committed| committed.0 >= 5))
    })
    .with_context(|| net.log_tail(3))?;

    // A second deposit takes one of the ids the liar claimed before the bank assigned
    // it: credited once all the same, with the bank's amount.
    deposit_to_trust(&bank_a, 300, "a-funds-trust-2")?;
    let (second_entry, second_sequence) = newest_trust_entry(&auditor)?;
    assert!(
        second_sequence > first_sequence && second_sequence <= first_sequence + 4,
        "the second credit ({second_entry}) is among the ids the liar claimed after {first_entry}"
    );
    wait_until(PATIENT, || Ok(holding(&a, "exchange-a", "JPY")? == 500))
        .with_context(|| net.log_tail(1))?;

    // An ETH deposit from A's registered address: credited once, with the chain's
    // amount; the liar's inflated version and its invented deposit credit nobody.
    anvil.send(EXCHANGE_A, ANVIL_ACCOUNTS[HOT], ETHER, "0x")?;
    wait_until(PATIENT, || Ok(holding(&a, "exchange-a", "ETH")? == ETHER))
        .with_context(|| net.log_tail(1))?;
    wait_until(PATIENT, || {
        Ok(attestation_evidence(&a)?.iter().any(about_deposit))
    })
    .with_context(|| format!("{:?}\n{}", attestation_evidence(&a), net.log_tail(3)))?;
    // The liar's invented deposit rides in the same pass as its misstatement.
    let mut deposits = Vec::new();
    wait_until(PATIENT, || {
        deposits = try_get_typed::<v1::Deposits>(&format!("{a}/v1/deposits"))?.deposits;
        Ok(deposits.len() == 2)
    })
    .with_context(|| format!("{deposits:?}\n{}", net.log_tail(3)))?;
    let settled = deposits
        .iter()
        .filter(|record| record.outcome.is_some())
        .count();
    let invented = deposits
        .iter()
        .filter(|record| record.outcome.is_none())
        .count();
    assert_eq!(settled, 1, "{deposits:?}");
    assert_eq!(
        invented, 1,
        "the liar's invented deposit stays open: {deposits:?}"
    );

    // A member that is no validator (a fifth process with a member key) cannot attest:
    // its finalized attestations are refused by name and change nothing.
    let invented = TxBody::AttestBankEntry(BankFact {
        entry: BankEntryId(second_entry.clone()),
        member: MemberId(1),
        asset: AssetId(1),
        amount: Amount(1_000_000),
        kind: BankEntryKind::TrustCredit,
    });
    let transaction = sign(&net.genesis, "bench-0", 1, invented);
    let answer = submit(&a, &transaction)?;
    anyhow::ensure!(answer.code == 202, "submit answered {answer}");
    let status = wait_finalized(&a, &transaction.id())?;
    assert!(
        matches!(&receipt(&status).outcome, TxOutcome::Rejected { code, .. } if code == "not_validator"),
        "{status:?}"
    );

    // Nothing more arrives later: each credit happened exactly once.
    std::thread::sleep(Duration::from_secs(5));
    for node in &honest {
        assert_eq!(holding(node, "exchange-a", "JPY")?, 500, "{node}");
        assert_eq!(holding(node, "exchange-a", "ETH")?, ETHER, "{node}");
        for member in ["clearing-house", "exchange-b", LIAR, "bench-0"] {
            assert_eq!(holding(node, member, "JPY")?, 0, "{member} on {node}");
            assert_eq!(holding(node, member, "ETH")?, 0, "{member} on {node}");
        }
    }

    // Every honest node serves the same evidence: the liar's, and nobody else's.
    let evidence = attestation_evidence(&honest[0])?;
    for node in &honest[1..] {
        assert_eq!(attestation_evidence(node)?, evidence, "{node}");
    }
    assert!(
        evidence.iter().all(|item| item.member == MemberId(LIAR_ID)),
        "{evidence:?}"
    );
    let misstated = contradiction(bank_evidence(&evidence, &first_entry).context("first entry")?);
    assert_eq!(bank_amount(&misstated.credited), Some(200));
    assert_ne!(bank_amount(&misstated.attested), Some(200));
    let squatted = contradiction(bank_evidence(&evidence, &second_entry).context("claimed id")?);
    assert_eq!(bank_amount(&squatted.credited), Some(300));
    assert_eq!(bank_amount(&squatted.attested), Some(999_999));
    let deposit_evidence: Vec<&v1::EvidenceEntry> =
        evidence.iter().filter(|item| about_deposit(item)).collect();
    assert_eq!(deposit_evidence.len(), 1, "{deposit_evidence:?}");
    assert_eq!(
        deposit_amount(&contradiction(deposit_evidence[0]).credited),
        Some(ETHER)
    );
    println!(
        "credited once each: 200 + 300 JPY, 1 ETH; evidence against {LIAR}: {} items",
        evidence.len()
    );
    // Secrets hygiene: a whole run of four nodes, the bank and its watchers logged no
    // member's secret key and no bank token (each node read its tokens from files).
    net.assert_no_secrets_in_logs(&[]);
    Ok(())
}
