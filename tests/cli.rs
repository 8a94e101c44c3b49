//! End to end: the `seisan` client commands, run as a user runs them (the real binary
//! as a subprocess), against three real nodes. Each command is checked in its human
//! and `--json` form; each bad input must give one `error: ...` line, a non-zero exit
//! and leave the ledger as it was.

use seisan_api::v1;
use seisan_tests::*;
use seisan_types::genesis::{Genesis, OpeningBalance};
use seisan_types::receipt::Event;
use seisan_types::Amount;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ETH: u128 = 1_000_000_000_000_000_000;

/// The patent's example: both exchanges hold 200 JPY and 2 ETH.
fn funded(genesis: &mut Genesis) {
    for member in ["exchange-a", "exchange-b"] {
        for (asset, amount) in [("JPY", "200"), ("ETH", "2")] {
            genesis.opening_balances.push(OpeningBalance {
                member: member.into(),
                asset: asset.into(),
                amount: amount.into(),
            });
        }
    }
}

/// Reads that are not about one exchange go as the clearing house (an operator reads
/// everything; see tests/access.rs for what an exchange may not read).
const OPS: Option<&str> = Some("clearing-house");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }

    /// stdout read as the published type `T` (`--json` prints the node's documents).
    fn typed<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is no {} ({error}):\n{}",
                std::any::type_name::<T>(),
                self.stdout
            )
        })
    }

    /// Succeeded, and printed nothing on stderr.
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(self.stderr.is_empty(), "stderr: {}", self.stderr);
        self
    }

    /// Failed with exactly one line, `error: ...` containing `needle`.
    fn fails_with(self, needle: &str) -> Run {
        assert_ne!(self.code, 0, "succeeded:\n{}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one line: {:?}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
        self
    }
}

/// The client, configured through the environment as a user would (`SEISAN_NODE`,
/// `SEISAN_GENESIS`, `SEISAN_KEY`), with no config file.
struct Client<'a> {
    testnet: &'a Testnet,
    node: String,
}

impl<'a> Client<'a> {
    fn new(testnet: &'a Testnet, index: usize) -> Client<'a> {
        Client {
            testnet,
            node: testnet.nodes[index].url(),
        }
    }

    fn command(&self, member: Option<&str>, args: &[&str]) -> Command {
        let mut command = Command::new(seisan_binary());
        command
            .args(args)
            .env("SEISAN_NODE", &self.node)
            .env("SEISAN_GENESIS", self.testnet.genesis_path())
            .env_remove("SEISAN_CONFIG")
            .env("HOME", self.testnet.dir.path())
            .env_remove("SEISAN_KEY")
            .stdin(Stdio::null());
        if let Some(member) = member {
            command.env("SEISAN_KEY", self.testnet.key_path(member));
        }
        command
    }

    fn run(&self, member: Option<&str>, args: &[&str]) -> Run {
        let output = self.command(member, args).output().expect("running seisan");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs with a deadline (for `events`, which follows a stream).
    fn run_bounded(&self, member: Option<&str>, args: &[&str]) -> Run {
        let mut child = self
            .command(member, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting seisan");
        let deadline = Instant::now() + PATIENCE;
        while child.try_wait().expect("polling seisan").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("seisan {args:?} did not finish within {PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = child.wait_with_output().expect("reading seisan output");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `balance --json`: (inventory, locked, customers) per symbol, minor units.
    fn balances(&self, member: &str) -> Vec<(String, u128, u128, u128)> {
        // `--json` prints the node's balances document.
        let document: v1::Balances = serde_json::from_value(
            self.run(OPS, &["balance", "--member", member, "--json"])
                .ok()
                .json(),
        )
        .expect("balance --json prints a balances document");
        document
            .balances
            .iter()
            .map(|entry| {
                (
                    entry.symbol.clone(),
                    entry.balance.inventory.0,
                    entry.balance.locked.0,
                    entry.balance.customers.0,
                )
            })
            .collect()
    }

    fn next_nonce(&self, member: &str) -> u64 {
        get_typed::<v1::NonceInfo>(&format!("{}/v1/members/{member}/nonce", self.node))
            .next
            .0
    }
}

/// Whether some line of `text` starts with these whitespace-separated cells.
fn has_row(text: &str, cells: &[&str]) -> bool {
    text.lines().any(|line| {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        tokens.len() >= cells.len() && tokens[..cells.len()] == *cells
    })
}

fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn client_commands_trade_settle_and_read_in_human_and_json_form() {
    let testnet = Testnet::start_with(0, funded).unwrap();
    testnet.wait_for_height(&[0, 1, 2], 1).unwrap();
    let client = Client::new(&testnet, 1);
    let a = Some("exchange-a");
    let b = Some("exchange-b");
    let ch = Some("clearing-house");

    // status
    let run = client.run(None, &["status"]).ok();
    assert!(
        run.stdout.contains("chain       seisan-dev-testnet"),
        "{}",
        run.stdout
    );
    assert_eq!(
        client
            .run(None, &["status", "--json"])
            .ok()
            .typed::<v1::NodeStatus>()
            .chain_id,
        "seisan-dev-testnet"
    );

    // balance: the key's member by default.
    let run = client.run(a, &["balance"]).ok();
    assert!(
        run.stdout.contains("balances of exchange-a"),
        "{}",
        run.stdout
    );
    assert!(
        has_row(&run.stdout, &["JPY", "200", "0", "0", "200"]),
        "{}",
        run.stdout
    );

    // A buys 1 ETH at 100 JPY: it rests in the book.
    let run = client
        .run(a, &["order", "buy", "ETH/JPY", "1", "--price", "100"])
        .ok();
    assert!(run.stdout.contains(": applied"), "{}", run.stdout);
    assert!(
        run.stdout.contains("order 1 of exchange-a is live"),
        "{}",
        run.stdout
    );
    let run = client.run(a, &["orders"]).ok();
    assert!(
        has_row(&run.stdout, &["1", "buy", "ETH/JPY", "1", "1", "100"]),
        "{}",
        run.stdout
    );
    assert_eq!(
        client
            .run(OPS, &["orders", "--member", "exchange-a", "--json"])
            .ok()
            .typed::<v1::Orders>()
            .orders
            .first()
            .map(|order| order.id.0),
        Some(1)
    );
    let run = client.run(OPS, &["book", "ETH/JPY"]).ok();
    assert!(
        has_row(
            &run.stdout,
            &["buy", "100", "JPY", "1", "ETH", "1", "exchange-a"]
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        client
            .run(OPS, &["book", "eth/jpy", "--json"])
            .ok()
            .typed::<v1::Book>()
            .bids
            .len(),
        1
    );

    // B sells 1 ETH at 100 JPY: the orders cross and settle delivery versus payment.
    let answer: v1::TransactionStatus = client
        .run(
            b,
            &["order", "sell", "ETH/JPY", "1", "--price", "100", "--json"],
        )
        .ok()
        .typed();
    assert!(applied(&answer), "{answer:?}");
    let fill = event(&answer, "fill", |event| match event {
        Event::Fill {
            quantity,
            price,
            value,
            ..
        } => Some((*quantity, *price, *value)),
        _ => None,
    });
    assert_eq!(fill, (Amount(ETH), Amount(100), Amount(100)));
    assert_eq!(
        client.balances("exchange-a"),
        vec![("ETH".into(), 3 * ETH, 0, 0), ("JPY".into(), 100, 0, 0)]
    );
    assert_eq!(
        client.balances("exchange-b"),
        vec![("ETH".into(), ETH, 0, 0), ("JPY".into(), 300, 0, 0)]
    );
    let run = client.run(OPS, &["trades"]).ok();
    assert!(
        run.stdout
            .lines()
            .any(|line| line.contains("exchange-a  exchange-b  1 ETH  100 JPY  100 JPY")),
        "{}",
        run.stdout
    );
    assert_eq!(
        client
            .run(OPS, &["trades", "--json"])
            .ok()
            .typed::<v1::Trades>()
            .trades
            .first()
            .map(|trade| trade.value),
        Some(Amount(100))
    );

    // The balance, verified locally against genesis.
    let run = client.run(a, &["balance", "--proof"]).ok();
    assert!(
        run.stdout.contains("verified against height"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("signed by"), "{}", run.stdout);
    assert!(
        has_row(&run.stdout, &["ETH", "3", "0", "0", "3"]),
        "{}",
        run.stdout
    );
    let proven = client
        .run(
            OPS,
            &["balance", "--member", "exchange-b", "--proof", "--json"],
        )
        .ok()
        .json();
    assert_eq!(proven["verified"], true);
    assert_eq!(proven["balances"][1]["balance"]["inventory"], "300");
    assert!(proven["signers"].as_array().unwrap().len() >= 2, "{proven}");
    // The same proof checked against a genesis that differs in one opening balance
    // only (same chain id, same validators): the quorum signed under this chain's
    // genesis hash, so nothing verifies under the other.
    let mut sibling = testnet.genesis.clone();
    sibling.opening_balances[0].amount = "201".into();
    assert_eq!(sibling.chain_id, testnet.genesis.chain_id);
    let sibling_path = testnet.dir.path().join("sibling-genesis.json");
    std::fs::write(&sibling_path, sibling.to_json()).unwrap();
    let refused = client.run(
        OPS,
        &[
            "balance",
            "--member",
            "exchange-b",
            "--proof",
            "--genesis",
            sibling_path.to_str().unwrap(),
        ],
    );
    assert_ne!(refused.code, 0, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("another genesis"),
        "{}{}",
        refused.stdout,
        refused.stderr
    );

    // Cancel a resting order (with an expiry): its lock is released.
    let answer = client
        .run(
            b,
            &[
                "order",
                "sell",
                "ETH/JPY",
                "0.5",
                "--price",
                "150",
                "--expires",
                "+1h",
                "--json",
            ],
        )
        .ok()
        .typed::<v1::TransactionStatus>();
    let order = event(&answer, "order_live", |event| match event {
        Event::OrderLive { order, .. } => Some(order.0),
        _ => None,
    });
    let open: v1::Orders = client.run(b, &["orders", "--json"]).ok().typed();
    let first = open.orders.first().expect("an open order");
    assert_eq!(first.id.0, order, "{open:?}");
    assert!(
        first.expires_at_ms.expect("an expiry") > first.placed_at_ms,
        "{open:?}"
    );
    let run = client.run(b, &["order", "cancel", &order.to_string()]).ok();
    assert!(
        run.stdout
            .contains("cancelled (by the member); released 0.5 ETH"),
        "{}",
        run.stdout
    );
    // Immediate or cancel: nothing to match, so it is cancelled at once.
    let run = client
        .run(
            b,
            &[
                "order", "sell", "ETH/JPY", "0.1", "--price", "1000", "--ioc",
            ],
        )
        .ok();
    assert!(
        run.stdout.contains("cancelled (immediate-or-cancel rest)"),
        "{}",
        run.stdout
    );

    // Allocations: single, back, and batches from CSV and JSON.
    let run = client
        .run(a, &["allocate", "ETH", "0.5", "--customer", "c-1"])
        .ok();
    assert!(
        run.stdout
            .contains("allocated 0.5 ETH from inventory to customer c-1"),
        "{}",
        run.stdout
    );
    let answer = client
        .run(
            a,
            &[
                "allocate",
                "ETH",
                "0.25",
                "--customer",
                "c-1",
                "--back",
                "--json",
            ],
        )
        .ok()
        .typed::<v1::TransactionStatus>();
    assert_eq!(
        event(&answer, "allocated", |event| match event {
            Event::Allocated { direction, .. } => Some(*direction),
            _ => None,
        }),
        seisan_types::tx::AllocationDirection::ToInventory
    );
    let csv = testnet.dir.path().join("batch.csv");
    write_file(
        &csv,
        "asset,customer,amount,direction\nJPY,c-2,10,to_customer\nETH,c-1,0.25,to_inventory\n",
    );
    client
        .run(a, &["allocate", "--batch", csv.to_str().unwrap()])
        .ok();
    let json_batch = testnet.dir.path().join("batch.json");
    write_file(
        &json_batch,
        r#"[{"asset":"JPY","customer":"c-3","amount":"5"}]"#,
    );
    client
        .run(
            a,
            &[
                "allocate",
                "--batch",
                json_batch.to_str().unwrap(),
                "--json",
            ],
        )
        .ok();
    assert_eq!(
        client.balances("exchange-a"),
        vec![("ETH".into(), 3 * ETH, 0, 0), ("JPY".into(), 85, 0, 15)]
    );

    // Request for quote: A asks B, B answers, A accepts; it settles as a fill.
    let answer = client
        .run(
            a,
            &[
                "quote",
                "request",
                "ETH/JPY",
                "buy",
                "0.5",
                "--to",
                "exchange-b",
                "--json",
            ],
        )
        .ok()
        .typed::<v1::TransactionStatus>();
    let rfq = event(&answer, "quote_requested", |event| match event {
        Event::QuoteRequested { rfq, .. } => Some(rfq.0),
        _ => None,
    })
    .to_string();
    let answer = client
        .run(
            b,
            &[
                "quote",
                "answer",
                &rfq,
                "--price",
                "120",
                "--valid-until",
                "+5m",
                "--json",
            ],
        )
        .ok()
        .typed::<v1::TransactionStatus>();
    let quote = event(&answer, "quote_answered", |event| match event {
        Event::QuoteAnswered { quote, .. } => Some(quote.0),
        _ => None,
    })
    .to_string();
    let run = client.run(OPS, &["quotes"]).ok();
    assert!(
        run.stdout
            .contains(&format!("{quote}: exchange-b at 120 JPY (live)")),
        "{}",
        run.stdout
    );
    assert_eq!(
        client
            .run(OPS, &["quotes", "--json"])
            .ok()
            .typed::<v1::Quotes>()
            .quotes
            .first()
            .map(|rfq| rfq.status),
        Some(seisan_types::clearing::RfqStatus::Open)
    );
    let run = client.run(a, &["quote", "accept", &quote]).ok();
    assert!(
        run.stdout
            .contains("exchange-a buys 0.5 ETH from exchange-b at 120 JPY, value 60 JPY"),
        "{}",
        run.stdout
    );

    // A confirmation pair, then the clearing house closes the cycle: it nets and settles.
    let terms = [
        "--ref",
        "T-1",
        "--buyer",
        "exchange-a",
        "--seller",
        "exchange-b",
        "--pair",
        "ETH/JPY",
        "--qty",
        "0.1",
        "--price",
        "100",
        "--time",
        "2026-01-01T09:00:00+09:00",
    ];
    let mut args = vec!["confirm"];
    args.extend(terms);
    let run = client.run(a, &args).ok();
    assert!(
        run.stdout.contains("exchange-a's side received"),
        "{}",
        run.stdout
    );
    args.push("--json");
    let answer: v1::TransactionStatus = client.run(b, &args).ok().typed();
    event(&answer, "confirmation_matched", |event| {
        matches!(event, Event::ConfirmationMatched { .. }).then_some(())
    });
    let run = client.run(ch, &["cycle", "close"]).ok();
    assert!(
        run.stdout
            .contains("cycle 1 closed with 1 matched confirmations"),
        "{}",
        run.stdout
    );
    let run = client.run(OPS, &["cycles"]).ok();
    assert!(
        run.stdout
            .lines()
            .any(|line| line.trim_start().starts_with("1 ") && line.contains("settled")),
        "{}",
        run.stdout
    );
    assert_eq!(
        client
            .run(OPS, &["cycles", "--json"])
            .ok()
            .typed::<v1::Cycles>()
            .cycles
            .first()
            .map(|cycle| cycle.matched),
        Some(1)
    );

    // An order beyond A's funds is parked with a top-up request.
    let run = client
        .run(a, &["order", "buy", "ETH/JPY", "10", "--price", "100"])
        .ok();
    assert!(
        run.stdout.contains("parked awaiting funds: top-up request"),
        "{}",
        run.stdout
    );
    let run = client.run(OPS, &["topups"]).ok();
    assert!(
        run.stdout
            .lines()
            .any(|line| line.contains("exchange-a") && line.contains("open")),
        "{}",
        run.stdout
    );
    assert_eq!(
        client
            .run(OPS, &["topups", "--json"])
            .ok()
            .typed::<v1::TopUps>()
            .top_ups
            .first()
            .map(|top_up| top_up.status),
        Some(seisan_types::clearing::TopUpStatus::Open)
    );

    // supply: the ledger holds what was credited.
    let run = client.run(OPS, &["supply"]).ok();
    assert!(
        has_row(&run.stdout, &["JPY", "400", "0", "400"]),
        "{}",
        run.stdout
    );
    let supply: v1::Supply = client.run(OPS, &["supply", "--json"]).ok().typed();
    assert_eq!(
        supply.assets.first().map(|asset| asset.held),
        Some(Amount(4 * ETH))
    );

    // tx: a transaction's receipt, by id.
    let id = answer.id.to_string();
    let run = client.run(OPS, &["tx", &id]).ok();
    assert!(run.stdout.contains("exchange-b #"), "{}", run.stdout);
    assert_eq!(
        client
            .run(OPS, &["tx", &id, "--json"])
            .ok()
            .typed::<v1::TransactionStatus>()
            .status,
        v1::TxState::Finalized
    );

    // events: follows the stream (blocks keep coming) and stops after --count.
    let run = client.run_bounded(OPS, &["events", "--count", "2"]).ok();
    let blocks: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.starts_with("block "))
        .collect();
    assert_eq!(blocks.len(), 2, "{}", run.stdout);
    let run = client
        .run_bounded(OPS, &["events", "--count", "1", "--json"])
        .ok();
    let block: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert!(block["height"].as_u64().unwrap() > 0, "{block}");
}

#[test]
fn bad_inputs_fail_with_one_clear_line_and_change_nothing() {
    let testnet = Testnet::start_with(0, funded).unwrap();
    testnet.wait_for_height(&[0, 1, 2], 1).unwrap();
    let client = Client::new(&testnet, 2);
    let a = Some("exchange-a");
    let nonce = client.next_nonce("exchange-a");
    let balances = client.balances("exchange-a");

    // Unreachable node: the URL is named.
    let port = free_port();
    let dead = format!("http://127.0.0.1:{port}");
    client
        .run(
            a,
            &[
                "order", "--node", &dead, "buy", "ETH/JPY", "1", "--price", "100",
            ],
        )
        .fails_with(&format!("cannot reach node at {dead}"));
    client
        .run(None, &["status", "--node", &dead, "--json"])
        .fails_with(&format!("cannot reach node at {dead}"));

    // Unknown pair, asset, member.
    client
        .run(a, &["order", "buy", "BTC/JPY", "1", "--price", "100"])
        .fails_with("unknown pair \"BTC/JPY\"; pairs are ETH/JPY");
    client
        .run(OPS, &["book", "JPY/ETH"])
        .fails_with("unknown pair");
    client
        .run(a, &["allocate", "DOGE", "1", "--customer", "c"])
        .fails_with("unknown asset \"DOGE\"");
    client
        .run(OPS, &["balance", "--member", "exchange-z"])
        .fails_with("unknown member \"exchange-z\"");
    client
        .run(
            a,
            &["quote", "request", "ETH/JPY", "buy", "1", "--to", "nobody"],
        )
        .fails_with("unknown member \"nobody\"");

    // Amounts with too many decimals, naming the asset's limit.
    client
        .run(a, &["order", "buy", "ETH/JPY", "1", "--price", "100.5"])
        .fails_with("JPY allows at most 0");
    client
        .run(
            a,
            &[
                "order",
                "sell",
                "ETH/JPY",
                "0.0000000000000000001",
                "--price",
                "100",
                "--json",
            ],
        )
        .fails_with("ETH allows at most 18");

    // A bad key file, and none at all.
    let garbage = testnet.dir.path().join("garbage.key");
    write_file(&garbage, "not a key");
    std::fs::set_permissions(
        &garbage,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    client
        .run(
            None,
            &[
                "order",
                "buy",
                "ETH/JPY",
                "1",
                "--price",
                "100",
                "--key",
                garbage.to_str().unwrap(),
            ],
        )
        .fails_with("bad key file");
    client
        .run(None, &["cycle", "close"])
        .fails_with("no key file");
    // Reads are for members: without a key the node refuses and the CLI says how.
    client
        .run(None, &["trades"])
        .fails_with("pass --key FILE, set SEISAN_KEY");
    // With a key file that is no key, the refusal says so rather than asking for one.
    client
        .run(None, &["trades", "--key", garbage.to_str().unwrap()])
        .fails_with("could not be read as a key");

    // Settings: flags over the environment over the config file.
    let config = testnet.dir.path().join("client.toml");
    write_file(
        &config,
        &format!(
            "node = \"{}\"\ngenesis = \"genesis.json\"\nkey = \"keys/exchange-a.key\"\n",
            client.node
        ),
    );
    let from_file = |node_env: Option<&str>, args: &[&str]| {
        let mut command = client.command(None, args);
        command
            .env_remove("SEISAN_NODE")
            .env_remove("SEISAN_GENESIS")
            .env("SEISAN_CONFIG", &config);
        if let Some(node) = node_env {
            command.env("SEISAN_NODE", node);
        }
        let output = command.output().unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    };
    assert!(from_file(None, &["balance"])
        .ok()
        .stdout
        .contains("balances of exchange-a"));
    from_file(Some(&dead), &["balance"]).fails_with(&format!("cannot reach node at {dead}"));
    let node = client.node.clone();
    from_file(Some(&dead), &["balance", "--node", &node]).ok();
    client.run(None, &["status"]).ok();
    let mut missing = client.command(None, &["status"]);
    missing.env("SEISAN_CONFIG", testnet.dir.path().join("absent.toml"));
    let output = missing.output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("error: reading config file"));

    // A usage error is one line too.
    client
        .run(a, &["order", "buy", "ETH/JPY", "1"])
        .fails_with("required arguments were not provided: --price <PRICE>");

    // Nothing was submitted.
    assert_eq!(client.next_nonce("exchange-a"), nonce);
    assert_eq!(client.balances("exchange-a"), balances);

    // Insufficient balance is the chain's verdict: the receipt's rejection, exit 1, no
    // balance changed. (A rejected transaction still uses its nonce.)
    let run = client.run(a, &["allocate", "JPY", "1000", "--customer", "c-1"]);
    assert!(run.stdout.contains("rejected"), "{}", run.stdout);
    run.fails_with(
        "rejected: insufficient balance: exchange-a has 200 of JPY available; 1000 needed",
    );
    assert_eq!(client.balances("exchange-a"), balances);
    assert_eq!(client.next_nonce("exchange-a"), nonce + 1);
    let run = client.run(
        a,
        &["allocate", "JPY", "1000", "--customer", "c-1", "--json"],
    );
    let answer: v1::TransactionStatus = run.typed();
    assert!(
        matches!(
            &receipt(&answer).outcome,
            seisan_types::receipt::TxOutcome::Rejected { code, .. } if code == "insufficient_available"
        ),
        "{answer:?}"
    );
    run.fails_with("insufficient balance");
    assert_eq!(client.balances("exchange-a"), balances);
}

/// The README's `seisan confirm` example, as arguments after `seisan`.
fn readme_confirm_example() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("reading README.md");
    let line = readme
        .lines()
        .find(|line| line.starts_with("seisan confirm "))
        .expect("the README shows a `seisan confirm` example");
    let command = line
        .split(" #")
        .next()
        .expect("a command before any comment");
    command
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn both_sides_sending_the_readme_confirmation_match() {
    let testnet = Testnet::start_with(0, funded).unwrap();
    testnet.wait_for_height(&[0, 1, 2], 1).unwrap();
    let client = Client::new(&testnet, 1);
    let a = Some("exchange-a");
    let b = Some("exchange-b");

    // Both sides send the README's example as written, one after the other (the first
    // waits for its block): the two confirmations of one trade carry the same agreed
    // trade time and match.
    let example = readme_confirm_example();
    let args: Vec<&str> = example.iter().map(String::as_str).collect();
    assert!(
        args.contains(&"--buyer") && args.contains(&"exchange-a"),
        "{args:?}"
    );
    let run = client.run(a, &args).ok();
    assert!(run.stdout.contains("side received"), "{}", run.stdout);
    let mut second = args.clone();
    second.push("--json");
    let answer: v1::TransactionStatus = client.run(b, &second).ok().typed();
    event(&answer, "confirmation_matched", |event| {
        matches!(event, Event::ConfirmationMatched { .. }).then_some(())
    });

    // A trade time relative to the sender's clock is refused before anything is signed.
    let nonce = client.next_nonce("exchange-a");
    let mut relative = args.clone();
    let at = relative.iter().position(|arg| *arg == "--time").unwrap() + 1;
    relative[at] = "+0s";
    let at = relative.iter().position(|arg| *arg == "--ref").unwrap() + 1;
    relative[at] = "T-relative";
    client
        .run(a, &relative)
        .fails_with("the same on both sides");
    assert_eq!(client.next_nonce("exchange-a"), nonce);
}

#[test]
fn book_table_and_json_list_each_side_best_first() {
    let testnet = Testnet::start_with(0, funded).unwrap();
    testnet.wait_for_height(&[0, 1, 2], 1).unwrap();
    let client = Client::new(&testnet, 2);
    let a = Some("exchange-a");
    let b = Some("exchange-b");

    // Two bids and two asks. The table and `--json` list them in the same
    // order: asks from the lowest price up, then bids from the highest down.
    for (member, side, price) in [
        (a, "buy", "99"),
        (a, "buy", "100"),
        (b, "sell", "110"),
        (b, "sell", "105"),
    ] {
        client
            .run(member, &["order", side, "ETH/JPY", "0.5", "--price", price])
            .ok();
    }
    let document: v1::Book = client.run(OPS, &["book", "ETH/JPY", "--json"]).ok().typed();
    let json_order: Vec<String> = document
        .asks
        .iter()
        .chain(&document.bids)
        .map(|order| order.id.0.to_string())
        .collect();
    let run = client.run(OPS, &["book", "ETH/JPY"]).ok();
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|tokens| matches!(tokens.first(), Some(&"buy") | Some(&"sell")))
        .collect();
    let prices: Vec<&str> = rows.iter().map(|tokens| tokens[1]).collect();
    assert_eq!(prices, ["105", "110", "100", "99"], "{}", run.stdout);
    let table_order: Vec<String> = rows
        .iter()
        .map(|tokens| tokens[tokens.len() - 2].to_string())
        .collect();
    assert_eq!(table_order, json_order, "{}", run.stdout);
}

/// `seisan sign`: an unsigned transaction signed offline (from a file, and from
/// standard input) and POSTed raw from elsewhere is accepted and finalized; an envelope
/// for another chain, a key that is not the named member's, and a malformed body are
/// refused with one line naming what is wrong, and nothing reaches the node.
#[test]
fn a_transaction_signed_offline_is_accepted_and_a_wrong_chain_or_member_is_refused() {
    use seisan_types::clearing::Side;
    let testnet = Testnet::start_with(0, funded).unwrap();
    testnet.wait_for_height(&[0, 1, 2], 1).unwrap();
    let client = Client::new(&testnet, 2);
    let node = testnet.nodes[0].url();
    let a = Some("exchange-a");
    let (member_a, _) = testnet.genesis.member_by_name("exchange-a").unwrap();
    let (member_b, _) = testnet.genesis.member_by_name("exchange-b").unwrap();
    let chain = testnet.genesis.chain_id.0.clone();
    let nonce = client.next_nonce("exchange-a");
    fn unsigned(chain: &str, member: u32, nonce: u64, body: Value) -> Value {
        serde_json::json!({"chain_id": chain, "member": member, "nonce": nonce, "body": body})
    }
    let order = serde_json::to_value(eth_order(Side::Sell, 150)).unwrap();
    let file = testnet.dir.path().join("unsigned.json");
    write_file(
        &file,
        &unsigned(&chain, member_a.0, nonce, order.clone()).to_string(),
    );

    // Signed from a file (SEISAN_NODE is set, as for every command here: sign sends nothing).
    let signed_text = client.run(a, &["sign", file.to_str().unwrap()]).ok().stdout;
    let signed: seisan_types::tx::SignedTransaction =
        serde_json::from_str(signed_text.trim()).expect("a SignedTransaction");
    assert_eq!(signed.tx.nonce.0, nonce);
    seisan_crypto::verify_transaction(&testnet.genesis, &signed).expect("verifies under genesis");
    let (code, answer) = post_raw(
        &format!("{node}/v1/transactions"),
        "application/json",
        signed_text.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 202, "{answer}");
    let document = wait_finalized(&node, &signed.id()).unwrap();
    assert!(applied(&document), "{document:?}");
    assert_eq!(receipt(&document).member, member_a, "{document:?}");

    // Signed from standard input: the next nonce, a cancel of that order.
    let order_id = event(&document, "order_live", |event| match event {
        Event::OrderLive { order, .. } => Some(*order),
        _ => None,
    });
    let cancel = serde_json::json!({"cancel_order": {"order": order_id}});
    let mut child = client
        .command(a, &["sign"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        unsigned(&chain, member_a.0, nonce + 1, cancel)
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let (code, answer) = post_raw(
        &format!("{node}/v1/transactions"),
        "application/json",
        &output.stdout,
    )
    .unwrap();
    assert_eq!(code, 202, "{answer}");
    let cancelled: seisan_types::tx::SignedTransaction =
        serde_json::from_slice(&output.stdout).unwrap();
    let document = wait_finalized(&node, &cancelled.id()).unwrap();
    assert!(applied(&document), "{document:?}");

    // Refused before signing, each naming what is wrong.
    let refuse = |text: String, needle: &str| {
        write_file(&file, &text);
        client
            .run(a, &["sign", file.to_str().unwrap()])
            .fails_with(needle);
    };
    refuse(
        unsigned("another-chain", member_a.0, nonce + 2, order.clone()).to_string(),
        &format!(
            "the transaction is for chain \"another-chain\", but genesis {} is chain \"{chain}\"",
            testnet.genesis_path().display()
        ),
    );
    refuse(
        unsigned(&chain, member_b.0, nonce + 2, order.clone()).to_string(),
        &format!(
            "is exchange-a's (member {member_a}), but the transaction names member {member_b} (exchange-b)"
        ),
    );
    refuse(
        unsigned(&chain, 9, nonce + 2, order.clone()).to_string(),
        "member 9 is not in genesis",
    );
    refuse(
        unsigned(
            &chain,
            member_a.0,
            nonce + 2,
            serde_json::json!({"place_order": {"side": "sell"}}),
        )
        .to_string(),
        "tx.body.place_order: missing field",
    );
    refuse("{\"chain_id\": ".into(), "the transaction is not JSON");
    // Only the two signed transactions used nonces.
    assert_eq!(client.next_nonce("exchange-a"), nonce + 2);
}
