//! End to end with the embedded bank process and three nodes: an exchange funds its
//! trust account (S210) and the attested credit reaches the ledger; a fill's fiat leg is
//! mirrored between the trust accounts (claims 7-8); reconciliation shows no
//! unexplained difference; the clearing-house node killed between the bank's
//! confirmation and its own record, then restarted, leaves exactly one transfer; a
//! fiat withdrawal lands in the exchange's operating account.

use anyhow::Context;
use seisan_api::v1;
use seisan_bank::{AccountId, BankAdapter, HttpBank, TransferReference, TransferRequest};
use seisan_tests::*;
use seisan_types::clearing::Side;
use seisan_types::genesis::OpeningBalance;
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetId};

const JPY: AssetId = AssetId(1);
fn next_nonce(node: &str, member: &str) -> u64 {
    get_typed::<v1::NonceInfo>(&format!("{node}/v1/members/{member}/nonce"))
        .next
        .0
}

fn submit_ok(testnet: &Testnet, node: &str, member: &str, body: TxBody) -> v1::TransactionStatus {
    let nonce = next_nonce(node, member);
    let transaction = sign(&testnet.genesis, member, nonce, body);
    let answer = submit(node, &transaction).unwrap();
    assert_eq!(answer.code, 202, "{answer}");
    let status = wait_finalized(node, &transaction.id()).unwrap();
    assert!(applied(&status), "{status:?}");
    status
}

/// The reconciliation `node` answers, if it answers 200.
fn reconciliation(node: &str) -> anyhow::Result<Option<v1::Reconciliation>> {
    Ok(
        get_reply::<v1::Reconciliation>(&format!("{node}/v1/reconciliation"))?
            .body
            .ok(),
    )
}

fn trust(bank: &HttpBank, name: &str) -> u128 {
    bank.balance(&AccountId::trust(name)).unwrap().balance.0
}

fn reconciled(node: &str) -> anyhow::Result<bool> {
    Ok(reconciliation(node)?.is_some_and(|body| {
        body.unexplained_total == "0" && body.exchanges.iter().all(|line| line.reconciled)
    }))
}

#[test]
fn fiat_trust_deposit_mirrored_fill_crash_and_withdrawal() {
    let bank_port = free_port();
    let mut testnet = Testnet::start_with(0, |genesis| {
        genesis.opening_balances.push(OpeningBalance {
            member: "exchange-b".into(),
            asset: "ETH".into(),
            amount: "2".into(),
        });
    })
    .unwrap();
    let _bank = start_bank(testnet.dir.path(), None, bank_port).unwrap();
    let bank_url = format!("http://127.0.0.1:{bank_port}");
    for index in 0..3 {
        let name = testnet.nodes[index].name.clone();
        testnet.nodes[index].extra_args = testnet.bank_flags(&bank_url, &name, false);
        testnet.launch(index).unwrap();
    }
    for node in &testnet.nodes {
        let url = node.url();
        wait_until(PATIENCE, || Ok(status(&url).is_ok())).unwrap();
    }
    let ch = testnet.nodes[0].url();
    let a = testnet.nodes[1].url();
    let house = HttpBank::new(&bank_url, &seisan_bank::dev_token("clearing-house"));
    let bank_a = HttpBank::new(&bank_url, &seisan_bank::dev_token("exchange-a"));

    // S210: A moves 200 yen from operating to trust; A's and the clearing house's
    // watchers attest; the ledger credits it once.
    bank_a
        .transfer(&TransferRequest {
            from: AccountId::operating("exchange-a"),
            to: AccountId::trust("exchange-a"),
            amount: Amount(200),
            reference: TransferReference("a-funds-trust-1".into()),
        })
        .unwrap();
    wait_until(PATIENCE, || Ok(ledger_jpy(&a, "exchange-a") == 200))
        .with_context(|| testnet.log_tail(1))
        .unwrap();

    // A fill moves 100 yen from A to B; the bank's trust balances mirror it.
    submit_ok(&testnet, &a, "exchange-b", eth_order(Side::Sell, 100));
    submit_ok(&testnet, &a, "exchange-a", eth_order(Side::Buy, 100));
    assert_eq!(ledger_jpy(&a, "exchange-a"), 100);
    assert_eq!(ledger_jpy(&a, "exchange-b"), 100);
    wait_until(PATIENCE, || {
        Ok(trust(&house, "exchange-a") == 100 && trust(&house, "exchange-b") == 100)
    })
    .with_context(|| testnet.log_tail(0))
    .unwrap();
    wait_until(PATIENCE, || reconciled(&ch))
        .with_context(|| format!("{:?}", get(&format!("{ch}/v1/reconciliation"))))
        .unwrap();

    // The clearing-house node dies right after the bank confirmed the next mirrored
    // transfer and before it recorded that; restarted, it re-sends the same reference.
    std::fs::write(testnet.nodes[0].data.join("bank-crash-after-transfer"), b"").unwrap();
    submit_ok(&testnet, &a, "exchange-b", eth_order(Side::Sell, 60));
    submit_ok(&testnet, &a, "exchange-a", eth_order(Side::Buy, 60));
    wait_until(PATIENCE, || Ok(!testnet.nodes[0].is_running())).unwrap();
    assert_eq!(
        trust(&house, "exchange-b"),
        160,
        "the transfer happened before the crash"
    );
    testnet.launch(0).unwrap();
    wait_until(PATIENCE, || Ok(status(&ch).is_ok())).unwrap();
    wait_until(PATIENCE, || reconciled(&ch))
        .with_context(|| format!("{:?}", get(&format!("{ch}/v1/reconciliation"))))
        .unwrap();
    let statement = house.statement(&AccountId::trust("exchange-b"), 0).unwrap();
    let settlements: Vec<&str> = statement
        .iter()
        .map(|entry| entry.reference.0.as_str())
        .filter(|reference| reference.starts_with("settle-"))
        .collect();
    assert_eq!(settlements.len(), 2, "{settlements:?}");
    assert_ne!(settlements[0], settlements[1]);
    assert_eq!(trust(&house, "exchange-a"), 40);
    assert_eq!(trust(&house, "exchange-b"), 160);

    // A fiat withdrawal: debited in the ledger, paid trust -> operating by the bank,
    // completed by attestation.
    let operating_before = bank_a
        .balance(&AccountId::operating("exchange-a"))
        .unwrap()
        .balance
        .0;
    submit_ok(
        &testnet,
        &a,
        "exchange-a",
        TxBody::WithdrawFiat {
            asset: JPY,
            amount: Amount(30),
        },
    );
    assert_eq!(ledger_jpy(&a, "exchange-a"), 10);
    wait_until(PATIENCE, || {
        Ok(bank_a
            .balance(&AccountId::operating("exchange-a"))?
            .balance
            .0
            == operating_before + 30)
    })
    .unwrap();
    wait_until(PATIENCE, || {
        let body = reconciliation(&ch)?;
        let first = body.as_ref().and_then(|body| body.exchanges.first());
        Ok(reconciled(&ch)?
            && first.is_some_and(|line| {
                line.pending_withdrawals == "0" && line.bank_trust.as_deref() == Some("10")
            }))
    })
    .with_context(|| format!("{:?}", get(&format!("{ch}/v1/reconciliation"))))
    .unwrap();
}
