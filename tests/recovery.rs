//! Recovery (issue 14), with real `seisan node` processes on loopback: the chain comes
//! back from any outage, and nothing a node acknowledged is lost.
//!
//! - Outages that lose quorum. Validators are killed (kill -9) one after another until
//!   fewer than a quorum are left and the chain stops; then they are started again in
//!   a given order (one group after another, each group together). From the moment a
//!   quorum of validator processes answers its HTTP API again, the chain must finalize
//!   a new block within [`RESUME_BOUND`], and afterwards every node must hold the same
//!   block hash and state root at every height. Three validators (q = 2): every order
//!   of killing two, each with every restart order (the first killed first, the second
//!   first, both together). Four validators (q = 3): two killed, every ordered pair
//!   once, the three restart orders taking turns; three killed, every restart order of
//!   the three (each permutation, and all together).
//! - Acknowledged transactions under restarts. Orders flow through every node from one
//!   client thread per node (each owns its members' nonces and asks its node for the
//!   next one, as the CLI does) while each validator in turn is killed and restarted,
//!   right after it acknowledged a transaction. While it is down another member trades
//!   through the others, and the moment it answers again asks it for its next nonce
//!   and submits there (a node still behind must not acknowledge a transaction signed
//!   with a stale nonce). Every submission's answer is recorded;
//!   at the end every transaction that got a 202 must be finalized, with the same
//!   receipt at the same height, on every node. Anything else a client got is a
//!   refusal with a reason (a 503 while a node catches up, with `Retry-After`).
//!
//! The cases of one validator set run in sequence on one testnet, so the whole file
//! starts few testnets; the measured seconds of every case are printed (run with
//! `--no-capture` to see them), and a case that misses the bound does not stop the
//! sequence: it is reported with the others at the end.

use seisan_api::v1;
use seisan_tests::*;
use seisan_types::amount::Amount;
use seisan_types::clearing::{OrderRequest, Pair, Side, TimeInForce};
use seisan_types::genesis::{Genesis, OpeningBalance};
use seisan_types::ids::AssetId;
use seisan_types::receipt::Receipt;
use seisan_types::tx::{SignedTransaction, TxBody};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How soon the chain must finalize a new block once a quorum of validators answers
/// again (issue 14: "within 10 s of a quorum being connected"; five view timeouts).
const RESUME_BOUND: Duration = Duration::from_secs(10);
/// How long a case waits for a new block before it counts as stuck; the sequence then
/// brings every validator back (and restarts them all if that is not enough) and goes
/// on with the next case.
const GIVE_UP: Duration = Duration::from_secs(20);
/// How long the chain stays without a quorum before the first validator returns.
const WITHOUT_QUORUM: Duration = Duration::from_millis(1_500);
/// How long returned validators that are still short of a quorum stay connected
/// before the next ones return.
const SHORT_OF_QUORUM: Duration = Duration::from_secs(2);
/// Blocks the chain must finalize while a killed validator is down (with a quorum
/// left), so that it returns behind the chain.
const BLOCKS_WHILE_DOWN: u64 = 2;
/// How often heights are polled while a case measures.
const POLL: Duration = Duration::from_millis(100);
/// The validator names of `nodes`, for messages.
fn names(testnet: &Testnet, nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|index| testnet.nodes[*index].name.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// One outage: validators killed in order, then brought back group by group.
#[derive(Clone, Debug)]
struct Outage {
    killed: Vec<usize>,
    /// Each group is started together; a group starts once the one before answers.
    returns: Vec<Vec<usize>>,
}

impl Outage {
    fn describe(&self, testnet: &Testnet) -> String {
        let returns: Vec<String> = self
            .returns
            .iter()
            .map(|group| {
                if group.len() > 1 {
                    format!("{} together", names(testnet, group))
                } else {
                    names(testnet, group)
                }
            })
            .collect();
        let killed: Vec<&str> = self
            .killed
            .iter()
            .map(|index| testnet.nodes[*index].name.as_str())
            .collect();
        format!(
            "kill {}; restart {}",
            killed.join(", then "),
            returns.join(", then ")
        )
    }
}

/// What one outage case measured.
#[derive(Debug)]
struct Measured {
    outage: String,
    /// From a quorum answering to the first new block; `None`: none within [`GIVE_UP`].
    resumed_after: Option<Duration>,
}

/// Runs outage cases in sequence on one testnet and checks the roots as it goes.
struct Sequence<'a> {
    testnet: &'a mut Testnet,
    /// Heights up to here were found identical on every node.
    checked: u64,
    results: Vec<Measured>,
}

impl<'a> Sequence<'a> {
    fn new(testnet: &'a mut Testnet) -> Sequence<'a> {
        Sequence {
            testnet,
            checked: 0,
            results: Vec::new(),
        }
    }

    fn all(&self) -> Vec<usize> {
        (0..self.testnet.nodes.len()).collect()
    }

    fn quorum(&self) -> usize {
        self.testnet.genesis.quorum as usize
    }

    /// Waits until every node is at the chain's height, then compares every node's
    /// block hash and state root at each height not compared yet.
    fn check_roots(&mut self) {
        let all = self.all();
        let top = self.testnet.highest(&all).expect("some node answers");
        self.testnet
            .wait_for_height(&all, top)
            .unwrap_or_else(|error| panic!("the nodes did not catch up: {error:#}"));
        self.testnet
            .assert_same_blocks(&all, self.checked + 1..=top);
        self.checked = top;
    }

    /// Polls `nodes` until one is above `stood` or `within` has passed since `since`.
    fn wait_for_new_block(
        &self,
        nodes: &[usize],
        stood: u64,
        since: Instant,
        within: Duration,
    ) -> Option<(Duration, u64)> {
        loop {
            if let Some(top) = self.testnet.highest(nodes).filter(|top| *top > stood) {
                return Some((since.elapsed(), top));
            }
            if since.elapsed() > within {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    fn run(&mut self, outage: &Outage) {
        let description = outage.describe(self.testnet);
        let quorum = self.quorum();
        let mut up = self.all();
        for &node in &outage.killed {
            let before = self.testnet.highest(&up).expect("a live node answers");
            self.testnet.nodes[node].kill();
            up.retain(|index| *index != node);
            if up.len() >= quorum {
                let target = before + BLOCKS_WHILE_DOWN;
                wait_until(PATIENCE, || {
                    Ok(self.testnet.highest(&up).is_some_and(|top| top >= target))
                })
                .unwrap_or_else(|error| {
                    panic!(
                        "{description}: the chain stopped with a quorum left ({}): {error:#}",
                        names(self.testnet, &up)
                    )
                });
            } else {
                std::thread::sleep(WITHOUT_QUORUM);
            }
        }
        // Every height any node answers with from here until a quorum is back was
        // finalized before (a restarted node's first answer is what it had stored).
        let mut stood = self.testnet.highest(&up).unwrap_or(0);
        let mut quorum_at = None;
        let mut resumed = None;
        for group in &outage.returns {
            for &node in group {
                self.testnet.launch(node).unwrap();
            }
            let launched = Instant::now();
            let mut answered_at = Vec::new();
            let mut waiting = group.clone();
            while !waiting.is_empty() {
                assert!(
                    launched.elapsed() < PATIENCE,
                    "{description}: {} never answered after its restart",
                    names(self.testnet, &waiting)
                );
                for &index in &waiting {
                    self.testnet.relaunch_if_exited(index);
                }
                waiting.retain(|index| match node_height(&self.testnet.nodes[*index]) {
                    Some(first) => {
                        if quorum_at.is_none() {
                            stood = stood.max(first);
                        }
                        answered_at.push(Instant::now());
                        false
                    }
                    None => true,
                });
                std::thread::sleep(POLL / 2);
            }
            let before = up.len();
            up.extend(group);
            if quorum_at.is_some() {
                continue;
            }
            if up.len() < quorum {
                std::thread::sleep(SHORT_OF_QUORUM);
                continue;
            }
            let at = answered_at[quorum - before - 1];
            quorum_at = Some(at);
            resumed = self.wait_for_new_block(&up, stood, at, GIVE_UP);
        }
        let resumed_after = match resumed {
            Some((after, top)) => {
                println!(
                    "recovery: {description}: finalized height {top} {:.1} s after a quorum answered (the chain stood at {stood})",
                    after.as_secs_f64()
                );
                Some(after)
            }
            None => {
                println!(
                    "recovery: {description}: STUCK: nothing finalized within {GIVE_UP:?} of a quorum answering (the chain stands at {stood})"
                );
                self.unstick(&description, stood);
                None
            }
        };
        self.check_roots();
        self.results.push(Measured {
            outage: description,
            resumed_after,
        });
    }

    /// After a stuck case (every validator is back by now): waits for a new block,
    /// restarting every validator if it does not come.
    fn unstick(&mut self, description: &str, stood: u64) {
        let all = self.all();
        if let Some((after, top)) = self.wait_for_new_block(&all, stood, Instant::now(), GIVE_UP) {
            println!(
                "recovery: {description}: with every validator back, height {top} after another {:.1} s",
                after.as_secs_f64()
            );
            return;
        }
        println!(
            "recovery: {description}: still stuck with every validator back; restarting them all"
        );
        for index in all.clone() {
            self.testnet.launch(index).unwrap();
        }
        if self
            .wait_for_new_block(&all, stood, Instant::now(), PATIENCE)
            .is_none()
        {
            panic!("{description}: the chain did not move even after restarting every validator");
        }
    }

    /// Prints every case and fails unless each resumed within [`RESUME_BOUND`].
    fn finish(self, what: &str) {
        println!("recovery: {what}: {} cases", self.results.len());
        let mut late = Vec::new();
        for measured in &self.results {
            let shown = match measured.resumed_after {
                Some(after) => format!("{:.1} s", after.as_secs_f64()),
                None => format!("stuck (> {} s)", GIVE_UP.as_secs()),
            };
            println!("recovery:   {shown:>16}  {}", measured.outage);
            if measured
                .resumed_after
                .is_none_or(|after| after > RESUME_BOUND)
            {
                late.push(format!("{} ({shown})", measured.outage));
            }
        }
        assert!(
            late.is_empty(),
            "{what}: {} of {} outages did not finalize within {RESUME_BOUND:?} of a quorum answering again: {late:#?}",
            late.len(),
            self.results.len()
        );
    }
}

/// The testnet's three validators (q = 2).
fn three_validators() -> Testnet {
    let testnet = Testnet::start(0).unwrap();
    testnet.wait_for_height(&[0, 1, 2], 1).unwrap();
    testnet
}

/// Every ordered pair (first killed, second killed) of the three validators.
fn pairs_of_three() -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for first in 0..3 {
        for second in 0..3 {
            if first != second {
                pairs.push((first, second));
            }
        }
    }
    pairs
}

#[test]
fn three_validators_resume_when_the_first_killed_returns_first() {
    let mut testnet = three_validators();
    let mut sequence = Sequence::new(&mut testnet);
    for (first, second) in pairs_of_three() {
        sequence.run(&Outage {
            killed: vec![first, second],
            returns: vec![vec![first], vec![second]],
        });
    }
    sequence.finish("three validators, the first killed restarted first");
}

#[test]
fn three_validators_resume_when_the_last_killed_returns_first() {
    let mut testnet = three_validators();
    let mut sequence = Sequence::new(&mut testnet);
    for (first, second) in pairs_of_three() {
        sequence.run(&Outage {
            killed: vec![first, second],
            returns: vec![vec![second], vec![first]],
        });
    }
    sequence.finish("three validators, the last killed restarted first");
}

#[test]
fn three_validators_resume_when_both_killed_return_together() {
    let mut testnet = three_validators();
    let mut sequence = Sequence::new(&mut testnet);
    for (first, second) in pairs_of_three() {
        sequence.run(&Outage {
            killed: vec![first, second],
            returns: vec![vec![first, second]],
        });
    }
    sequence.finish("three validators, both restarted together");
}

/// Four validators (the testnet's three and `exchange-c`), quorum 3.
fn four_validators() -> Testnet {
    let mut testnet = Testnet::start_with(0, |genesis| {
        genesis.members.push(extra_validator("exchange-c"));
        genesis.quorum = 3;
    })
    .unwrap();
    testnet.add_node("exchange-c").unwrap();
    testnet.wait_for_height(&[0, 1, 2, 3], 1).unwrap();
    testnet
}

#[test]
fn four_validators_resume_after_two_are_killed_in_every_order() {
    let mut testnet = four_validators();
    let mut sequence = Sequence::new(&mut testnet);
    // Every ordered pair once; the restart orders take turns, so each pair of
    // neighbours in the list is brought back in a different order.
    let mut case = 0;
    for first in 0..4 {
        for second in 0..4 {
            if first == second {
                continue;
            }
            let returns = match case % 3 {
                0 => vec![vec![first], vec![second]],
                1 => vec![vec![second], vec![first]],
                _ => vec![vec![first, second]],
            };
            sequence.run(&Outage {
                killed: vec![first, second],
                returns,
            });
            case += 1;
        }
    }
    sequence.finish("four validators, two killed");
}

#[test]
fn four_validators_resume_after_three_are_killed_in_every_order() {
    let mut testnet = four_validators();
    let mut sequence = Sequence::new(&mut testnet);
    // Each restart order of three killed validators (a, b, c in the order they were
    // killed): every permutation and all together; which validators are killed
    // rotates, so each one survives an outage.
    let orders: [&[&[usize]]; 7] = [
        &[&[0], &[1], &[2]],
        &[&[0], &[2], &[1]],
        &[&[1], &[0], &[2]],
        &[&[1], &[2], &[0]],
        &[&[2], &[0], &[1]],
        &[&[2], &[1], &[0]],
        &[&[0, 1, 2]],
    ];
    for (case, order) in orders.iter().enumerate() {
        let killed: Vec<usize> = (0..3).map(|k| (case + k) % 4).collect();
        let returns = order
            .iter()
            .map(|group| group.iter().map(|k| killed[*k]).collect())
            .collect();
        sequence.run(&Outage { killed, returns });
    }
    sequence.finish("four validators, three killed");
}

// ---- acknowledged transactions under restarts ----

/// Client threads: one per node, each submitting for this many members of its own.
const MEMBERS_PER_CLIENT: usize = 3;
/// How long a client waits for a transaction its node acknowledged to be finalized
/// there before it asks for the nonce again (it is still checked at the end).
const FINALIZE_PATIENCE: Duration = Duration::from_secs(60);
/// Load before the first fault and after each restarted node caught up.
const STEADY_LOAD: Duration = Duration::from_secs(4);
/// How long a killed validator stays down.
const DOWN_FOR: Duration = Duration::from_secs(2);
/// After the load stops, how long every acknowledged transaction may take to be
/// finalized on every node.
const DRAIN: Duration = Duration::from_secs(90);

/// The member that submits the transaction each validator acknowledges just before
/// it is killed.
const LAST_WORDS: &str = "bench-9";
/// The member that trades through the other nodes while a validator is down and, the
/// moment it is back, asks it for the next nonce and submits there (issue 14: a node
/// just back answered a stale nonce and acknowledged a transaction signed with it).
const ROAMING: &str = "bench-10";
/// The transactions [`ROAMING`] has finalized while a validator is down.
const ROAMING_WHILE_DOWN: usize = 2;

fn load_member(client: usize, slot: usize) -> String {
    format!("bench-{}", client * MEMBERS_PER_CLIENT + slot)
}

fn funded(genesis: &mut Genesis) {
    let members: Vec<String> = genesis
        .members
        .iter()
        .filter(|member| member.name.starts_with("bench-"))
        .map(|member| member.name.clone())
        .collect();
    for member in members {
        for (asset, amount) in [("ETH", "1000"), ("JPY", "1000000000")] {
            genesis.opening_balances.push(OpeningBalance {
                member: member.clone(),
                asset: asset.into(),
                amount: amount.into(),
            });
        }
    }
}

/// A small limit order near 300,000 JPY/ETH; `turn` varies side, size and price so
/// that orders cross.
fn order(turn: u64) -> TxBody {
    TxBody::PlaceOrder(OrderRequest {
        pair: Pair {
            base: AssetId(0),
            quote: AssetId(1),
        },
        side: if turn.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        quantity: Amount((1 + turn % 7) as u128 * 1_000_000_000_000_000),
        limit_price: Amount(295_000 + (turn * 7_919 % 10_001) as u128),
        time_in_force: if turn.is_multiple_of(3) {
            TimeInForce::GoodTillCancel
        } else {
            TimeInForce::ImmediateOrCancel
        },
        expires_at_ms: None,
    })
}

/// What a node answered to one submission.
#[derive(Clone, Debug)]
enum Answer {
    /// 202: the node acknowledged the transaction.
    Accepted,
    /// Any other status, with the error code the node named.
    Refused {
        status: u16,
        reason: String,
        retry_after: Option<String>,
    },
    /// No HTTP answer (the node died or timed out): the outcome is unknown.
    Unanswered { error: String },
}

/// One submission and what came of it.
#[derive(Clone, Debug)]
struct Submission {
    member: String,
    nonce: u64,
    id: String,
    node: usize,
    at: Instant,
    answer: Answer,
}

/// POSTs a transaction; returns (status, body, Retry-After).
fn post_transaction(
    node_url: &str,
    transaction: &SignedTransaction,
) -> anyhow::Result<(u16, Value, Option<String>)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into();
    let url = format!("{node_url}/v1/transactions");
    let body = serde_json::to_vec(transaction)?;
    let mut request = agent.post(&url).header("content-type", "application/json");
    for (name, value) in seisan_tests::auth_headers(&seisan_tests::operator(), "POST", &url, &body)
    {
        request = request.header(name, value);
    }
    let mut response = request.send(body)?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    Ok((status, body, retry_after))
}

/// `body` read as the published type `T`, or why not (a node killed mid-answer leaves
/// a truncated body, which the harness reads as null: the caller asks again).
fn read_as<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, String> {
    let shown = body.to_string();
    serde_json::from_value(body)
        .map_err(|error| format!("not a {}: {error}: {shown}", std::any::type_name::<T>()))
}

/// The error code of a refusal's body; empty if the body is not the error body.
fn refusal_code(body: Value) -> String {
    read_as::<v1::ErrorBody>(body).map_or_else(|_| String::new(), |body| body.error.code)
}

/// Submits and records the answer.
fn submit_recorded(
    log: &Mutex<Vec<Submission>>,
    url: &str,
    node: usize,
    member: &str,
    transaction: &SignedTransaction,
) -> Answer {
    let at = Instant::now();
    let answer = match post_transaction(url, transaction) {
        Ok((202, _, _)) => Answer::Accepted,
        Ok((status, body, retry_after)) => Answer::Refused {
            status,
            reason: refusal_code(body),
            retry_after,
        },
        Err(error) => Answer::Unanswered {
            error: format!("{error:#}"),
        },
    };
    log.lock().expect("submission log").push(Submission {
        member: member.to_string(),
        nonce: transaction.tx.nonce.0,
        id: transaction.id().to_string(),
        node,
        at,
        answer: answer.clone(),
    });
    answer
}

/// The next nonce `member` should sign with, as `node_url` sees it: `Ok(None)` when
/// the node answers but refuses (e.g. 503 while it catches up).
fn next_nonce(node_url: &str, member: &str) -> anyhow::Result<Result<u64, (u16, String)>> {
    let (status, body) = get(&format!("{node_url}/v1/members/{member}/nonce"))?;
    if status == 200 {
        let nonce: v1::NonceInfo = read_as(body).map_err(|error| anyhow::anyhow!(error))?;
        return Ok(Ok(nonce.next.0));
    }
    Ok(Err((status, refusal_code(body))))
}

/// How long a member waits after a refusal without Retry-After (or an unreachable
/// node) before it asks its node again.
const REFUSAL_BACKOFF: Duration = Duration::from_millis(500);
/// The longest Retry-After a client honours.
const MAX_RETRY_AFTER_S: u64 = 5;
/// How long a client waits for a transaction it got no answer for to show up on its
/// node before it asks for the nonce again.
const UNKNOWN_PATIENCE: Duration = Duration::from_secs(15);

/// One member's transaction in flight on its client's node.
#[derive(Debug)]
struct InFlight {
    id: String,
    since: Instant,
    /// How long to wait for it to be finalized before asking for the nonce again.
    patience: Duration,
}

/// Counts a client saw besides its submissions.
#[derive(Debug, Default)]
struct ClientCounts {
    nonce_refusals: BTreeMap<String, u64>,
    given_up: u64,
    /// The height at which the client's node reported each of its transactions
    /// finalized.
    seen_finalized: BTreeMap<String, u64>,
}

/// One client thread: submits orders for its members to node `node` only (so the
/// nonce it reads there reflects its own finalized transactions) until `stop`.
fn run_client(
    genesis: &Genesis,
    url: &str,
    node: usize,
    members: &[String],
    stop: &AtomicBool,
    log: &Mutex<Vec<Submission>>,
) -> ClientCounts {
    let mut counts = ClientCounts::default();
    let mut in_flight: Vec<Option<InFlight>> = members.iter().map(|_| None).collect();
    // After a refusal a member waits before it asks again (a node that is catching up
    // says how long with Retry-After; the nonce query has no header to read).
    let mut not_before: Vec<Instant> = members.iter().map(|_| Instant::now()).collect();
    let mut turn = node as u64;
    while !stop.load(Ordering::Relaxed) {
        for (slot, member) in members.iter().enumerate() {
            if Instant::now() < not_before[slot] {
                continue;
            }
            if let Some(flight) = &in_flight[slot] {
                match get_within(
                    &format!("{url}/v1/transactions/{}", flight.id),
                    STATUS_TIMEOUT,
                ) {
                    Ok((200, body))
                        if read_as::<v1::TransactionStatus>(body.clone())
                            .is_ok_and(|status| status.status == v1::TxState::Finalized) =>
                    {
                        let height = read_as::<v1::TransactionStatus>(body)
                            .ok()
                            .and_then(|status| status.height)
                            .map_or(0, |height| height.0);
                        counts.seen_finalized.insert(flight.id.clone(), height);
                        in_flight[slot] = None;
                    }
                    _ if flight.since.elapsed() > flight.patience => {
                        if flight.patience == FINALIZE_PATIENCE {
                            counts.given_up += 1;
                        }
                        in_flight[slot] = None;
                    }
                    _ => {}
                }
                continue;
            }
            let nonce = match next_nonce(url, member) {
                Ok(Ok(next)) => next,
                Ok(Err((status, reason))) => {
                    *counts
                        .nonce_refusals
                        .entry(format!("{status} {reason}"))
                        .or_default() += 1;
                    not_before[slot] = Instant::now() + REFUSAL_BACKOFF;
                    continue;
                }
                Err(_) => {
                    not_before[slot] = Instant::now() + REFUSAL_BACKOFF;
                    continue;
                }
            };
            turn += 1;
            let transaction = sign(genesis, member, nonce, order(turn));
            let id = transaction.id().to_string();
            // After no answer the node may or may not hold the transaction: wait a
            // while for it rather than sign another with the same nonce at once.
            let patience = match submit_recorded(log, url, node, member, &transaction) {
                Answer::Accepted => FINALIZE_PATIENCE,
                Answer::Unanswered { .. } => UNKNOWN_PATIENCE,
                Answer::Refused { retry_after, .. } => {
                    let wait = retry_after
                        .and_then(|seconds| seconds.trim().parse::<u64>().ok())
                        .map_or(REFUSAL_BACKOFF, |seconds| {
                            Duration::from_secs(seconds.min(MAX_RETRY_AFTER_S))
                        });
                    not_before[slot] = Instant::now() + wait;
                    continue;
                }
            };
            in_flight[slot] = Some(InFlight {
                id,
                since: Instant::now(),
                patience,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    counts
}

/// Submits one order for [`LAST_WORDS`] to node `index` and kills the node the moment
/// it answers 202; returns the acknowledged transaction's id.
fn acknowledge_then_kill(
    testnet: &mut Testnet,
    index: usize,
    log: &Mutex<Vec<Submission>>,
    turn: u64,
) -> Option<String> {
    let url = testnet.nodes[index].url();
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        let nonce = match next_nonce(&url, LAST_WORDS) {
            Ok(Ok(next)) => next,
            _ => {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        let transaction = sign(&testnet.genesis, LAST_WORDS, nonce, order(turn));
        let answer = submit_recorded(log, &url, index, LAST_WORDS, &transaction);
        if let Answer::Accepted = answer {
            testnet.nodes[index].kill();
            return Some(transaction.id().to_string());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    testnet.nodes[index].kill();
    None
}

/// [`ROAMING`] submits through `node` (a live validator) and waits until `node` has
/// finalized it; `turn` varies the order.
fn roam_through(
    genesis: &Genesis,
    url: &str,
    node: usize,
    log: &Mutex<Vec<Submission>>,
    turn: u64,
) {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        let Ok(Ok(nonce)) = next_nonce(url, ROAMING) else {
            std::thread::sleep(REFUSAL_BACKOFF);
            continue;
        };
        let transaction = sign(genesis, ROAMING, nonce, order(turn));
        if let Answer::Accepted = submit_recorded(log, url, node, ROAMING, &transaction) {
            wait_finalized(url, &transaction.id()).unwrap();
            return;
        }
        std::thread::sleep(REFUSAL_BACKOFF);
    }
    panic!("{ROAMING} could not get a transaction through {url}");
}

/// The moment node `index` answers after its restart, [`ROAMING`] asks it for the next
/// nonce and submits there, until the node acknowledges (it may refuse while it
/// catches up); returns how many times it was refused.
fn submit_to_the_returning_node(
    testnet: &Testnet,
    index: usize,
    log: &Mutex<Vec<Submission>>,
    turn: u64,
) -> u64 {
    let url = testnet.nodes[index].url();
    let started = Instant::now();
    let mut refused = 0;
    while started.elapsed() < PATIENCE {
        match next_nonce(&url, ROAMING) {
            Ok(Ok(nonce)) => {
                let transaction = sign(&testnet.genesis, ROAMING, nonce, order(turn));
                if let Answer::Accepted = submit_recorded(log, &url, index, ROAMING, &transaction) {
                    return refused;
                }
                refused += 1;
            }
            Ok(Err(_)) => refused += 1,
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{} acknowledged nothing of {ROAMING} within {PATIENCE:?} of its restart",
        testnet.nodes[index].name
    );
}

/// The height and receipt of a transaction finalized on one node, or what the node
/// answered instead.
fn finalized_on(node_url: &str, id: &str) -> Result<(u64, Receipt), String> {
    match get(&format!("{node_url}/v1/transactions/{id}")) {
        Ok((200, body)) => {
            let status: v1::TransactionStatus =
                read_as(body).map_err(|error| format!("200 {error}"))?;
            match status {
                v1::TransactionStatus {
                    status: v1::TxState::Finalized,
                    height: Some(height),
                    receipt: Some(receipt),
                    ..
                } => Ok((height.0, receipt)),
                other => Err(format!("200 {other:?}")),
            }
        }
        Ok((status, body)) => Err(format!("{status} {}", refusal_code(body))),
        Err(error) => Err(format!("{error:#}")),
    }
}

#[test]
fn every_acknowledged_transaction_is_finalized_while_each_validator_restarts() {
    let mut testnet = Testnet::start_with(11, funded).unwrap();
    testnet.wait_for_height(&[0, 1, 2], 1).unwrap();
    let genesis = testnet.genesis.clone();
    let urls: Vec<String> = testnet.nodes.iter().map(NodeProcess::url).collect();
    let stop = AtomicBool::new(false);
    let log = Mutex::new(Vec::new());
    let mut last_words = Vec::new();
    let mut restarted_at = Vec::new();
    let counts: Vec<ClientCounts> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..urls.len())
            .map(|node| {
                let members: Vec<String> = (0..MEMBERS_PER_CLIENT)
                    .map(|slot| load_member(node, slot))
                    .collect();
                let (genesis, url, stop, log) = (&genesis, &urls[node], &stop, &log);
                scope.spawn(move || run_client(genesis, url, node, &members, stop, log))
            })
            .collect();
        std::thread::sleep(STEADY_LOAD);
        for index in 0..urls.len() {
            let name = testnet.nodes[index].name.clone();
            let stood = testnet.highest(&[0, 1, 2]).unwrap_or(0);
            match acknowledge_then_kill(&mut testnet, index, &log, 1_000 + index as u64) {
                Some(id) => {
                    println!("recovery: {name} acknowledged {id} and was killed at once");
                    last_words.push(id);
                }
                None => println!("recovery: {name} acknowledged nothing; killed anyway"),
            }
            let others: Vec<usize> = (0..urls.len()).filter(|other| *other != index).collect();
            let down_since = Instant::now();
            for turn in 0..ROAMING_WHILE_DOWN {
                let through = others[turn % others.len()];
                roam_through(&genesis, &urls[through], through, &log, 2_000 + turn as u64);
            }
            std::thread::sleep(DOWN_FOR.saturating_sub(down_since.elapsed()));
            testnet.launch(index).unwrap();
            let launched = Instant::now();
            while node_height(&testnet.nodes[index]).is_none() {
                assert!(launched.elapsed() < PATIENCE, "{name} never answered");
                testnet.relaunch_if_exited(index);
                std::thread::sleep(POLL);
            }
            restarted_at.push(Instant::now());
            let refused = submit_to_the_returning_node(&testnet, index, &log, 3_000 + index as u64);
            println!(
                "recovery: {name} acknowledged a {ROAMING} transaction {:.1} s after it answered again ({refused} refusals before)",
                restarted_at[index].elapsed().as_secs_f64()
            );
            let chain = testnet.highest(&others).unwrap_or(stood);
            testnet
                .wait_for_height(&[index], chain)
                .unwrap_or_else(|error| panic!("{name} did not catch up: {error:#}"));
            println!(
                "recovery: {name} restarted and caught up with height {chain} after {:.1} s",
                restarted_at[index].elapsed().as_secs_f64()
            );
            std::thread::sleep(STEADY_LOAD);
        }
        stop.store(true, Ordering::Relaxed);
        clients
            .into_iter()
            .map(|client| client.join().expect("client thread"))
            .collect()
    });
    let submissions = log.into_inner().expect("submission log");

    // Every acknowledged transaction, finalized with one receipt at one height on every
    // node, or it is lost.
    let acknowledged: Vec<&Submission> = submissions
        .iter()
        .filter(|submission| matches!(submission.answer, Answer::Accepted))
        .collect();
    let drain = Instant::now();
    let mut lost = Vec::new();
    for submission in &acknowledged {
        let mut seen = Vec::new();
        for url in &urls {
            let mut found = finalized_on(url, &submission.id);
            while found.is_err() && drain.elapsed() < DRAIN {
                std::thread::sleep(Duration::from_millis(200));
                found = finalized_on(url, &submission.id);
            }
            seen.push(
                found.map(|(height, receipt)| format!("height {height}, receipt {receipt:?}")),
            );
        }
        let first = &seen[0];
        if first.is_err() || seen.iter().any(|other| other != first) {
            let reported = counts
                .iter()
                .find_map(|client| client.seen_finalized.get(&submission.id))
                .map_or(String::new(), |height| {
                    format!(" (its node had reported it finalized at height {height})")
                });
            lost.push(format!(
                "{} nonce {} acknowledged by {} {:.1} s into the run{reported}: {seen:?}",
                submission.member,
                submission.nonce,
                testnet.nodes[submission.node].name,
                (submission.at - submissions[0].at).as_secs_f64()
            ));
        }
    }

    let mut refusals: BTreeMap<String, u64> = BTreeMap::new();
    let mut unreasoned = Vec::new();
    let mut no_answer: BTreeMap<String, u64> = BTreeMap::new();
    for submission in &submissions {
        match &submission.answer {
            Answer::Accepted => {}
            Answer::Refused {
                status,
                reason,
                retry_after,
            } => {
                *refusals
                    .entry(format!(
                        "{status} {reason}{}",
                        if retry_after.is_some() {
                            " (Retry-After)"
                        } else {
                            ""
                        }
                    ))
                    .or_default() += 1;
                if reason.is_empty() || (*status == 503 && retry_after.is_none()) {
                    unreasoned.push(format!("{submission:?}"));
                }
            }
            Answer::Unanswered { error } => {
                *no_answer
                    .entry(error.chars().take(60).collect::<String>())
                    .or_default() += 1;
            }
        }
    }
    let mut nonce_refusals: BTreeMap<String, u64> = BTreeMap::new();
    for client in &counts {
        for (reason, count) in &client.nonce_refusals {
            *nonce_refusals.entry(reason.clone()).or_default() += count;
        }
    }
    println!(
        "recovery: load: submitted={} acknowledged={} lost={} refused={refusals:?} no_answer={no_answer:?}; nonce queries refused={nonce_refusals:?}; clients gave up waiting on {} transactions; acknowledged then killed: {}",
        submissions.len(),
        acknowledged.len(),
        lost.len(),
        counts.iter().map(|client| client.given_up).sum::<u64>(),
        last_words.len()
    );
    // One chain: the same block hash and state root at every height on every node.
    let top = testnet.highest(&[0, 1, 2]).expect("the nodes answer");
    testnet.wait_for_height(&[0, 1, 2], top).unwrap();
    for h in 1..=top {
        let first = block_root(&urls[0], h).unwrap();
        for (index, url) in urls.iter().enumerate().skip(1) {
            assert_eq!(
                block_root(url, h).unwrap(),
                first,
                "{} and {} differ at height {h}",
                testnet.nodes[index].name,
                testnet.nodes[0].name
            );
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged transactions were not finalized with the same receipt on every node: {lost:#?}",
        lost.len(),
        acknowledged.len()
    );
    assert!(
        unreasoned.is_empty(),
        "refusals without a reason (or a 503 without Retry-After): {unreasoned:#?}"
    );
    // The load went on through every restart: each node acknowledged transactions
    // after it came back.
    for (index, restarted) in restarted_at.iter().enumerate() {
        assert!(
            acknowledged
                .iter()
                .any(|submission| submission.node == index && submission.at > *restarted),
            "{} acknowledged nothing after its restart",
            testnet.nodes[index].name
        );
    }
    assert_eq!(
        last_words.len(),
        urls.len(),
        "every validator acknowledged a transaction right before it was killed"
    );
}
