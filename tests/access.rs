//! Authentication and read scoping on real node processes (issue 20 item 1; the rules
//! are `seisan_api::access`, each operation's `x-seisan-access` in the OpenAPI document).
//!
//! exchange-b gives a customer a sub-account under a name nobody else may see, buys ETH
//! from bench-0 (a trade exchange-a is no party to) and leaves an order resting.
//! Then the test walks every GET operation of the node's own OpenAPI document three
//! times, with every path parameter pointing at exchange-b's data:
//! - anonymously: everything but the public endpoints is a 401 naming what is missing;
//! - as exchange-a: every member-scoped and operators-only endpoint is a 403, single
//!   items of exchange-b (its transaction, order, trade certificate) are 403s, blocks
//!   come without their transactions, lists hold none of exchange-b's entries, and the
//!   customer's name appears in no answer at all;
//! - as the clearing house (an operator), which reads it all: the customer's name is
//!   there, so the walk above would have seen it had it leaked.
//!
//! Then the CLI: exchange-a's `seisan balance --member exchange-b` is refused naming the
//! rule, exchange-b's own works, and a key that is no member's is a 401.

use anyhow::Context;
use seisan_api::v1;
use seisan_crypto::Keypair;
use seisan_tests::*;
use seisan_types::clearing::Side;
use seisan_types::genesis::OpeningBalance;
use seisan_types::tx::{Allocation, AllocationDirection, CustomerId};
use seisan_types::{Amount, AssetId, TxBody};
use serde_json::Value;
use std::process::Command;

/// The sub-account's customer: exchange-b's business alone.
const SECRET_CUSTOMER: &str = "b-private-customer-4711";
/// Submits and waits for finality; returns the transaction id and its status document.
fn finalize(
    url: &str,
    transaction: seisan_types::SignedTransaction,
) -> anyhow::Result<(String, v1::TransactionStatus)> {
    let answer = submit(url, &transaction)?;
    anyhow::ensure!(answer.code == 202, "submission answered {answer}");
    let id = transaction.id();
    let done = wait_finalized(url, &id)?;
    Ok((id.to_string(), done))
}

/// Every object in `value` (depth first).
fn objects(value: &Value) -> Vec<&serde_json::Map<String, Value>> {
    let mut found = Vec::new();
    match value {
        Value::Object(map) => {
            found.push(map);
            for inner in map.values() {
                found.extend(objects(inner));
            }
        }
        Value::Array(items) => {
            for inner in items {
                found.extend(objects(inner));
            }
        }
        _ => {}
    }
    found
}

#[test]
fn exchange_a_reads_nothing_of_exchange_b_through_any_endpoint() -> anyhow::Result<()> {
    let testnet = Testnet::start_with(1, |genesis| {
        fund_jpy(genesis, &["exchange-a", "exchange-b"], "1000000");
        genesis.opening_balances.push(OpeningBalance {
            member: "bench-0".into(),
            asset: "ETH".into(),
            amount: "5".into(),
        });
    })?;
    let url = testnet.nodes[0].url();
    let genesis = &testnet.genesis;
    let b_id = genesis
        .member_by_name("exchange-b")
        .context("exchange-b")?
        .0
         .0;

    // exchange-b's private data.
    let (_, allocated) = finalize(
        &url,
        sign(
            genesis,
            "exchange-b",
            1,
            TxBody::Allocate(Allocation {
                asset: AssetId(1),
                customer: CustomerId(SECRET_CUSTOMER.into()),
                amount: Amount(5_000),
                direction: AllocationDirection::ToCustomer,
            }),
        ),
    )?;
    let allocation_height = allocated.height.context("allocation height")?.0;
    finalize(
        &url,
        sign(genesis, "bench-0", 1, eth_order(Side::Sell, 100)),
    )?;
    let (_, bought) = finalize(
        &url,
        sign(genesis, "exchange-b", 2, eth_order(Side::Buy, 100)),
    )?;
    let trade_height = bought.height.context("trade height")?;
    let (resting_tx, resting) = finalize(
        &url,
        sign(genesis, "exchange-b", 3, eth_order(Side::Buy, 90)),
    )?;
    let trades: v1::Trades = try_get_typed(&format!("{url}/v1/trades?limit=1000"))?;
    let trade = trades
        .trades
        .iter()
        .find(|trade| trade.height == trade_height)
        .with_context(|| format!("the b-c trade at {trade_height:?}: {trades:?}"))?;
    let trade_id = trade.id.0;
    let orders: v1::Orders = try_get_typed(&format!("{url}/v1/members/exchange-b/orders"))?;
    let resting_order = orders
        .orders
        .first()
        .map(|order| order.id.0)
        .with_context(|| format!("exchange-b's resting order ({resting:?}): {orders:?}"))?;

    let (code, document) = get_as(None, &format!("{url}/v1/openapi.json"))?;
    anyhow::ensure!(code == 200, "the API description is public: {code}");
    let exchange_a = Keypair::dev("exchange-a");
    let clearing_house = operator();
    let mut walked = 0;
    let mut operator_saw_customer = Vec::new();
    for (template, operations) in document["paths"].as_object().context("paths")? {
        let Some(operation) = operations.get("get") else {
            continue;
        };
        let access = operation["x-seisan-access"]
            .as_str()
            .with_context(|| format!("{template} has no x-seisan-access"))?;
        let id = match template.as_str() {
            "/v1/transactions/{id}" => resting_tx.clone(),
            "/v1/orders/{id}" => resting_order.to_string(),
            "/v1/trades/{id}/certificate" => trade_id.to_string(),
            _ => "0".to_string(),
        };
        let path = template
            .replace("{member}", "exchange-b")
            .replace("{asset}", "JPY")
            .replace("{id}", &id)
            .replace("{height}", &allocation_height.to_string())
            .replace("{n}", "0")
            .replace("{base}", "ETH")
            .replace("{quote}", "JPY")
            .replace("{date}", "today");
        let target = format!("{url}{path}");
        walked += 1;

        let (code, body) = get_as(None, &target).with_context(|| format!("anonymous {path}"))?;
        if access == "Public" {
            anyhow::ensure!(code == 200, "public {path} answered {code}: {body}");
        } else {
            anyhow::ensure!(
                code == 401 && body["error"]["code"] == "unauthenticated",
                "anonymous {path} ({access}) answered {code}: {body}"
            );
        }

        let (code, body) =
            get_as(Some(&exchange_a), &target).with_context(|| format!("exchange-a's {path}"))?;
        let text = body.to_string();
        anyhow::ensure!(
            !text.contains(SECRET_CUSTOMER),
            "exchange-a read exchange-b's customer through {path} ({code}): {text}"
        );
        let refused = code == 403 && body["error"]["code"] == "forbidden";
        match (access, template.as_str()) {
            // The node is the clearing house's: exchange-a may not back it up.
            ("OwnerOrOperator" | "Operators" | "ThisNode", _) => anyhow::ensure!(
                refused,
                "exchange-a's {path} ({access}) answered {code}: {text}"
            ),
            (
                "Filtered",
                "/v1/transactions/{id}" | "/v1/orders/{id}" | "/v1/trades/{id}/certificate",
            ) => anyhow::ensure!(
                refused,
                "exchange-a read exchange-b's item through {path}: {code} {text}"
            ),
            ("Filtered", "/v1/blocks/{height}") => anyhow::ensure!(
                code == 200 && body["redacted"].is_string() && body["receipts"].is_null(),
                "exchange-a's {path} is not redacted: {code} {text}"
            ),
            ("Filtered", _) => {
                anyhow::ensure!(code == 200, "exchange-a's {path}: {code} {text}");
                let leaked: Vec<_> = objects(&body)
                    .into_iter()
                    .filter(|object| object.get("member") == Some(&Value::from(b_id)))
                    .collect();
                anyhow::ensure!(
                    leaked.is_empty(),
                    "exchange-a's {path} holds exchange-b's entries: {leaked:?}"
                );
            }
            _ => anyhow::ensure!(
                code == 200 || code == 404,
                "exchange-a's {path} ({access}) answered {code}: {text}"
            ),
        }

        // /v1/events is an endless stream for the operator: not read here.
        if template != "/v1/events" {
            let (code, body) = get_as(Some(&clearing_house), &target)?;
            anyhow::ensure!(
                code != 401 && code != 403,
                "the clearing house was refused {path}: {code} {body}"
            );
            if body.to_string().contains(SECRET_CUSTOMER) {
                operator_saw_customer.push(template.clone());
            }
        }
    }
    anyhow::ensure!(walked >= 30, "walked only {walked} GET operations");
    // The customer's name is in the answers an operator reads, so its absence from
    // exchange-a's answers means something.
    for expected in [
        "/v1/members/{member}/customers/{asset}",
        "/v1/blocks/{height}",
    ] {
        anyhow::ensure!(
            operator_saw_customer.iter().any(|seen| seen == expected),
            "the clearing house did not see the customer through {expected} (saw it in {operator_saw_customer:?})"
        );
    }
    let (code, body) = get_as(
        Some(&Keypair::dev("exchange-b")),
        &format!("{url}/v1/members/exchange-b/customers/JPY"),
    )?;
    anyhow::ensure!(
        code == 200 && body.to_string().contains(SECRET_CUSTOMER),
        "exchange-b reads its own customers: {code} {body}"
    );

    // The CLI signs every request with its key.
    let cli = |member: &str, args: &[&str]| {
        Command::new(seisan_binary())
            .args(args)
            .args(["--node", &url, "--genesis"])
            .arg(testnet.genesis_path())
            .arg("--key")
            .arg(testnet.key_path(member))
            .output()
    };
    let refused = cli("exchange-a", &["balance", "--member", "exchange-b"])?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    anyhow::ensure!(
        !refused.status.success()
            && stderr.contains("forbidden")
            && stderr.contains("belongs to exchange-b"),
        "exchange-a's seisan balance --member exchange-b: {stderr}"
    );
    let own = cli("exchange-b", &["balance"])?;
    anyhow::ensure!(
        own.status.success(),
        "exchange-b's own seisan balance: {}",
        String::from_utf8_lossy(&own.stderr)
    );

    // A key that is no member's, and a request changed after it was signed.
    let (code, body) = get_as(
        Some(&Keypair::from_seed([42; 32])),
        &format!("{url}/v1/trades"),
    )?;
    anyhow::ensure!(
        code == 401 && body["error"]["code"] == "unknown_key",
        "a stranger's key: {code} {body}"
    );
    let signed_for = format!("{url}/v1/members/exchange-a/balances");
    let headers = auth_headers(&exchange_a, "GET", &signed_for, b"");
    let mut request = ureq::get(&format!("{url}/v1/members/exchange-b/balances"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer = request
        .config()
        .http_status_as_error(false)
        .build()
        .call()?;
    anyhow::ensure!(
        answer.status().as_u16() == 401,
        "a signature for another path was accepted: {}",
        answer.status()
    );
    Ok(())
}
