//! The client workload: several threads, each owning a disjoint set of members (so a
//! member's member-lane nonces have one writer; its node's watchers sign in the node
//! lane, a sequence of their own), submit signed
//! transactions to different nodes and record every one the API reports finalized.
//!
//! What the members do: limit orders that cross (fills move ETH and yen between
//! members, delivery versus payment), cancels, allocations between inventory and
//! customer sub-accounts (single and batched) and, for the exchanges of
//! [`FIAT_MEMBERS`], fiat through the bank: deposits into their trust account at the
//! bank (a bank transfer, not a transaction: the nodes' watchers attest it and the
//! ledger credits it at quorum) and `WithdrawFiat` transactions (debited at once into
//! a pending withdrawal that the clearing house pays at the bank). A deposit whose
//! outcome is unknown (the bank died mid-call) is retried under the same reference
//! until the bank answers, which is what makes it safe: the bank books a reference
//! once. An order's side follows the member's inventory, so members short of yen sell
//! rather than park orders waiting for a top-up.
//!
//! The same two exchanges move crypto through the public chain (anvil): deposits are
//! `eth_sendTransaction`s of ETH or WBTC from their registered addresses to the hot
//! wallet (the nodes attest them K blocks deep and the ledger credits them at quorum),
//! and `Withdraw` transactions send ETH or WBTC back to the registered address (debited
//! at once; the clearing house pays it from the hot wallet). Every crypto deposit is
//! counted in [`CryptoTraffic::deposits_asked`] before it is sent, so the checker's
//! bound holds even for a send whose answer was lost.
//!
//! A member has at most one transaction in flight. Its next nonce is exactly the last
//! finalized one + 1; after an unknown outcome (a node died, a request timed out, the
//! transaction stayed pending too long) the client re-reads the committed nonce from
//! every node that answers and takes the highest, which also fills any gap a lost
//! mempool left behind.

use crate::chain::{self, Chain};
use crate::cluster::FIAT_MEMBERS;
use crate::http::{self, Answer};
use crate::invariants::Acknowledged;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seisan_api::v1;
use seisan_bank::{
    AccountId, BankAdapter, BankError, HttpBank, TransferReference, TransferRequest,
};
use seisan_types::amount::Amount;
use seisan_types::clearing::{OrderId, OrderRequest, Pair, Side, TimeInForce};
use seisan_types::custody::ChainAddress;
use seisan_types::genesis::Genesis;
use seisan_types::ids::AssetId;
use seisan_types::tx::{Allocation, AllocationDirection, CustomerId, TxBody};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a transaction may stay pending before its outcome counts as unknown.
pub const PENDING_PATIENCE: Duration = Duration::from_secs(20);
/// Customer sub-accounts each member allocates to and back from.
const CUSTOMERS: u32 = 4;
/// The most allocations in one `AllocateBatch`.
const MAX_BATCH: usize = 4;
/// The pause between two passes over a client's members.
const PASS_PAUSE: Duration = Duration::from_millis(30);
/// One in this many turns of a fiat member is a deposit at the bank.
const DEPOSIT_ONE_IN: u32 = 15;
/// Deposits during the run, in yen.
const DEPOSIT_MIN_JPY: u128 = 1_000_000;
const DEPOSIT_MAX_JPY: u128 = 20_000_000;
/// Fiat withdrawals, in yen (the largest exceeds what a member holds now and then, so
/// some are refused for want of balance).
const WITHDRAWAL_MAX_JPY: u128 = 5_000_000;
/// The most yen a buy order of [`random_order`] can lock (0.02 ETH at 305,000).
const MAX_BUY_COST_JPY: u128 = 6_200;
/// One in this many turns of a member with a registered address is a crypto deposit.
const CRYPTO_DEPOSIT_ONE_IN: u32 = 15;
/// Crypto deposits during the run, in minor units (ETH: 0.01-1; WBTC: 0.01-1).
const DEPOSIT_WEI: std::ops::RangeInclusive<u128> = 10_000_000_000_000_000..=ETH_UNIT;
const DEPOSIT_SATOSHI: std::ops::RangeInclusive<u128> = 1_000_000..=100_000_000;
/// Crypto withdrawals, in minor units (ETH: 0.001-0.1; WBTC: 0.0001-0.01): small
/// beside the hot wallet's share, so a payout never waits for a refill from cold.
const WITHDRAWAL_WEI: std::ops::RangeInclusive<u128> = 1_000_000_000_000_000..=ETH_UNIT / 10;
const WITHDRAWAL_SATOSHI: std::ops::RangeInclusive<u128> = 10_000..=1_000_000;

/// One crypto deposit anvil accepted (its transaction hash is the key in
/// [`CryptoTraffic::deposits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptoDeposit {
    pub member: String,
    pub symbol: &'static str,
    pub amount: u128,
}

/// The workload's crypto traffic: what the ledger may have credited and debited at
/// most, per symbol.
#[derive(Debug, Default)]
pub struct CryptoTraffic {
    /// Every deposit asked of anvil (counted before the call).
    pub deposits_asked: BTreeMap<&'static str, u128>,
    /// Deposits anvil accepted, by transaction hash.
    pub deposits: BTreeMap<String, CryptoDeposit>,
    /// Every `Withdraw` submitted.
    pub withdrawals_asked: BTreeMap<&'static str, u128>,
    pub withdrawal_transactions: u64,
    /// Sends anvil did not answer (their outcome is settled by the chain scan).
    pub chain_failures: u64,
}

/// One deposit the workload asked the bank for, by its transfer reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deposit {
    pub member: String,
    pub amount: u128,
    /// The bank confirmed it (a deposit never confirmed may still have been booked).
    pub confirmed: bool,
}

/// The workload's fiat traffic: what the ledger may have credited and debited at most.
#[derive(Debug, Default)]
pub struct FiatTraffic {
    /// Every deposit reference asked for.
    pub deposits: BTreeMap<String, Deposit>,
    /// The sum of every deposit asked for: the ledger's yen credited can never exceed it.
    pub deposits_asked: u128,
    /// The sum of every `WithdrawFiat` submitted: the ledger's yen debited can never
    /// exceed it.
    pub withdrawals_asked: u128,
    pub withdrawal_transactions: u64,
    /// Bank calls that failed (unavailable or refused).
    pub bank_failures: u64,
}

/// What the clients and the checker share.
#[derive(Debug, Default)]
pub struct Shared {
    pub stop: AtomicBool,
    pub acknowledged: Mutex<Vec<Acknowledged>>,
    /// Transactions submitted whose outcome the client never learned.
    pub unknown: Mutex<Vec<String>>,
    pub submitted: AtomicU64,
    /// Refused at admission (a 4xx other than a nonce conflict).
    pub refused: AtomicU64,
    pub nonce_rereads: AtomicU64,
    pub fiat: Mutex<FiatTraffic>,
    pub crypto: Mutex<CryptoTraffic>,
}

#[derive(Debug)]
struct InFlight {
    id: String,
    nonce: u64,
    node: usize,
    since: Instant,
}

#[derive(Debug)]
struct MemberState {
    name: String,
    next: Option<u64>,
    in_flight: Option<InFlight>,
    /// The member's bank client, for the exchanges of [`FIAT_MEMBERS`].
    bank: Option<HttpBank>,
    /// A deposit (reference, amount) whose outcome is not known yet.
    unsettled_deposit: Option<(String, u128)>,
    deposits_made: u64,
    /// The member's registered public-chain address, for the exchanges of
    /// [`chain::REGISTERED`].
    registered: Option<&'static str>,
}

/// Asks the bank to move `amount` yen from `member`'s operating account to its trust
/// account under `reference` and records it in `fiat`. Safe to repeat with the same
/// reference: the bank books a reference once. `Ok` means the bank confirmed it (new
/// or repeated); [`BankError::Unavailable`] leaves its outcome unknown.
pub fn deposit(
    bank: &HttpBank,
    fiat: &Mutex<FiatTraffic>,
    member: &str,
    reference: &str,
    amount: u128,
) -> Result<(), BankError> {
    {
        let mut fiat = fiat.lock().expect("fiat lock");
        if !fiat.deposits.contains_key(reference) {
            fiat.deposits_asked += amount;
            fiat.deposits.insert(
                reference.to_string(),
                Deposit {
                    member: member.to_string(),
                    amount,
                    confirmed: false,
                },
            );
        }
    }
    let result = bank.transfer(&TransferRequest {
        from: AccountId::operating(member),
        to: AccountId::trust(member),
        amount: Amount(amount),
        reference: TransferReference(reference.to_string()),
    });
    let mut fiat = fiat.lock().expect("fiat lock");
    match result {
        Ok(_) => {
            fiat.deposits
                .get_mut(reference)
                .expect("recorded above")
                .confirmed = true;
            Ok(())
        }
        Err(error) => {
            fiat.bank_failures += 1;
            Err(error)
        }
    }
}

/// Sends a crypto deposit of `amount` `symbol` from `member`'s registered address to
/// the hot wallet and records it in `crypto` (the bound first, then the hash).
pub fn crypto_deposit(
    chain: &Chain,
    crypto: &Mutex<CryptoTraffic>,
    member: &str,
    from: &str,
    symbol: &'static str,
    amount: u128,
) -> anyhow::Result<String> {
    *crypto
        .lock()
        .expect("crypto lock")
        .deposits_asked
        .entry(symbol)
        .or_default() += amount;
    let result = chain.send(from, chain::HOT_ADDRESS, symbol, amount);
    let mut crypto = crypto.lock().expect("crypto lock");
    match &result {
        Ok(hash) => {
            crypto.deposits.insert(
                hash.clone(),
                CryptoDeposit {
                    member: member.to_string(),
                    symbol,
                    amount,
                },
            );
        }
        Err(_) => crypto.chain_failures += 1,
    }
    result
}

/// Where a client thread sends its work.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub urls: Vec<String>,
    pub bank_url: String,
    pub chain: Chain,
}

/// One client thread's loop; returns when `shared.stop` is set.
pub fn run_client(
    genesis: Arc<Genesis>,
    endpoints: Endpoints,
    members: Vec<String>,
    preferred_node: usize,
    seed: u64,
    shared: Arc<Shared>,
) {
    let Endpoints {
        urls,
        bank_url,
        chain,
    } = endpoints;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut node = preferred_node % urls.len();
    let mut states: Vec<MemberState> = members
        .into_iter()
        .map(|name| MemberState {
            bank: FIAT_MEMBERS
                .contains(&name.as_str())
                .then(|| HttpBank::new(&bank_url, &seisan_bank::dev_token(&name))),
            next: None,
            in_flight: None,
            unsettled_deposit: None,
            deposits_made: 0,
            registered: chain::REGISTERED
                .iter()
                .find(|(member, _)| *member == name)
                .map(|(_, address)| *address),
            name,
        })
        .collect();
    while !shared.stop.load(Ordering::Relaxed) {
        for state in &mut states {
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
            if state.in_flight.is_some() {
                poll(state, &urls, &shared);
                continue;
            }
            if state.bank.is_some()
                && (state.unsettled_deposit.is_some() || rng.gen_ratio(1, DEPOSIT_ONE_IN))
            {
                bank_turn(state, &mut rng, &shared);
                continue;
            }
            if let Some(from) = state.registered {
                if rng.gen_ratio(1, CRYPTO_DEPOSIT_ONE_IN) {
                    let (symbol, amount) = if rng.gen_bool(0.5) {
                        (chain::NATIVE_SYMBOL, rng.gen_range(DEPOSIT_WEI))
                    } else {
                        (chain::TOKEN_SYMBOL, rng.gen_range(DEPOSIT_SATOSHI))
                    };
                    if let Err(error) =
                        crypto_deposit(&chain, &shared.crypto, &state.name, from, symbol, amount)
                    {
                        eprintln!("chaos: a crypto deposit of {}: {error:#}", state.name);
                    }
                    continue;
                }
            }
            if state.next.is_none() {
                state.next = read_next_nonce(&urls, &state.name);
                shared.nonce_rereads.fetch_add(1, Ordering::Relaxed);
                if state.next.is_none() {
                    continue;
                }
            }
            let nonce = state.next.expect("nonce known");
            let body = next_body(
                &mut rng,
                &urls[node],
                &state.name,
                state.bank.is_some(),
                state.registered,
            );
            match &body {
                TxBody::WithdrawFiat { amount, .. } => {
                    let mut fiat = shared.fiat.lock().expect("fiat lock");
                    fiat.withdrawals_asked += amount.0;
                    fiat.withdrawal_transactions += 1;
                }
                TxBody::Withdraw { asset, amount, .. } => {
                    let mut crypto = shared.crypto.lock().expect("crypto lock");
                    let symbol = if *asset == ETH {
                        chain::NATIVE_SYMBOL
                    } else {
                        chain::TOKEN_SYMBOL
                    };
                    *crypto.withdrawals_asked.entry(symbol).or_default() += amount.0;
                    crypto.withdrawal_transactions += 1;
                }
                _ => {}
            }
            let transaction = seisan_tests::sign(&genesis, &state.name, nonce, body);
            let id = transaction.id().to_string();
            let value = serde_json::to_value(&transaction).expect("transaction serializes");
            shared.submitted.fetch_add(1, Ordering::Relaxed);
            match http::post_json(&format!("{}/v1/transactions", urls[node]), &value) {
                Ok((202, _)) => {
                    state.in_flight = Some(InFlight {
                        id,
                        nonce,
                        node,
                        since: Instant::now(),
                    });
                }
                Ok((code, body)) => {
                    let reason = http::error_code(&body).unwrap_or_default();
                    // `nonce_gap`: the node is a block behind the one the nonce was read
                    // from; the nonce is read again and the member retries.
                    if matches!(
                        reason.as_str(),
                        "stale_nonce" | "nonce_pending" | "repeated_nonce" | "nonce_gap"
                    ) {
                        state.next = None;
                    } else {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                        if code >= 500 || code == 0 {
                            node = (node + 1) % urls.len();
                        }
                    }
                }
                Err(_) => {
                    // The node may or may not have taken it.
                    shared.unknown.lock().expect("unknown lock").push(id);
                    state.next = None;
                    node = (node + 1) % urls.len();
                }
            }
        }
        std::thread::sleep(PASS_PAUSE);
        // Drift back to the preferred node so load stays spread over the nodes.
        if rng.gen_ratio(1, 20) {
            node = preferred_node % urls.len();
        }
    }
}

/// A fiat member's turn at the bank: finish the deposit whose outcome is unknown, or
/// make a new one.
fn bank_turn(state: &mut MemberState, rng: &mut StdRng, shared: &Shared) {
    let bank = state
        .bank
        .as_ref()
        .expect("a fiat member has a bank client");
    let (reference, amount) = match state.unsettled_deposit.take() {
        Some(unsettled) => unsettled,
        None => {
            state.deposits_made += 1;
            (
                format!("chaos-{}-deposit-{}", state.name, state.deposits_made),
                rng.gen_range(DEPOSIT_MIN_JPY..=DEPOSIT_MAX_JPY),
            )
        }
    };
    match deposit(bank, &shared.fiat, &state.name, &reference, amount) {
        Ok(()) => {}
        // The bank may have booked it before it died: ask again under the same
        // reference until it answers.
        Err(BankError::Unavailable { .. }) => state.unsettled_deposit = Some((reference, amount)),
        Err(error) => eprintln!("chaos: the bank refused deposit {reference}: {error}"),
    }
}

fn poll(state: &mut MemberState, urls: &[String], shared: &Shared) {
    let in_flight = state
        .in_flight
        .as_ref()
        .expect("polling a transaction in flight");
    for offset in 0..urls.len() {
        let url = &urls[(in_flight.node + offset) % urls.len()];
        let Ok(answer) = http::get_as::<v1::TransactionStatus>(&format!(
            "{url}/v1/transactions/{}",
            in_flight.id
        )) else {
            continue;
        };
        let Answer::Document(status) = answer else {
            // Unknown here (404), or unreadable: ask the next node.
            continue;
        };
        match status {
            v1::TransactionStatus {
                status: v1::TxState::Finalized,
                height: Some(height),
                receipt: Some(receipt),
                ..
            } => {
                shared
                    .acknowledged
                    .lock()
                    .expect("acknowledged lock")
                    .push(Acknowledged {
                        id: in_flight.id.clone(),
                        height: height.0,
                        receipt,
                    });
                state.next = Some(in_flight.nonce + 1);
                state.in_flight = None;
                return;
            }
            // Pending on the node it was sent to (or another): keep waiting. (A
            // finalized status without its height and receipt is no acknowledgement.)
            _ => break,
        }
    }
    if in_flight.since.elapsed() > PENDING_PATIENCE {
        shared
            .unknown
            .lock()
            .expect("unknown lock")
            .push(in_flight.id.clone());
        state.next = None;
        state.in_flight = None;
    }
}

/// The highest committed member-lane nonce any reachable node reports, + 1 (the
/// top-level fields of the nonce answer are the member lane's).
fn read_next_nonce(urls: &[String], member: &str) -> Option<u64> {
    let mut best: Option<u64> = None;
    for url in urls {
        if let Ok(Answer::Document(answer)) =
            http::get_as::<v1::NonceInfo>(&format!("{url}/v1/members/{member}/nonce"))
        {
            let committed = answer.committed.map_or(0, |nonce| nonce.0);
            best = Some(best.map_or(committed, |seen| seen.max(committed)));
        }
    }
    best.map(|committed| committed + 1)
}

pub const ETH: AssetId = AssetId(0);
pub const JPY: AssetId = AssetId(1);
/// The token the chaos genesis adds after the testnet's ETH and JPY (`seisan genesis
/// testnet` without `--usd`; the run checks that genesis agrees before it starts).
pub const WBTC: AssetId = AssetId(2);
/// One ETH in minor units (scale 18).
const ETH_UNIT: u128 = 1_000_000_000_000_000_000;

/// A random transaction body: mostly crossing limit orders on ETH/JPY, some cancels of
/// the member's open orders, fiat withdrawals (for a member that moves fiat through
/// the bank), crypto withdrawals to the member's registered address (if it has one),
/// allocations to customers and back.
pub fn next_body(
    rng: &mut StdRng,
    node_url: &str,
    member: &str,
    fiat: bool,
    registered: Option<&str>,
) -> TxBody {
    let roll = rng.gen_range(0..100);
    if roll < 15 {
        if let Some(order) = open_order(rng, node_url, member) {
            return TxBody::CancelOrder { order };
        }
    }
    if fiat && (15..25).contains(&roll) {
        return TxBody::WithdrawFiat {
            asset: JPY,
            amount: Amount(rng.gen_range(1..=WITHDRAWAL_MAX_JPY)),
        };
    }
    if let Some(address) = registered.filter(|_| (25..31).contains(&roll)) {
        let (asset, amount) = if rng.gen_bool(0.5) {
            (ETH, rng.gen_range(WITHDRAWAL_WEI))
        } else {
            (WBTC, rng.gen_range(WITHDRAWAL_SATOSHI))
        };
        return TxBody::Withdraw {
            asset,
            amount: Amount(amount),
            to: ChainAddress(address.to_string()),
        };
    }
    if roll < 65 {
        let mut order = random_order(rng);
        if let Some((eth, jpy)) = inventory(node_url, member) {
            let can_buy = jpy >= MAX_BUY_COST_JPY;
            let can_sell = eth >= order.quantity.0;
            order.side = match (can_buy, can_sell) {
                (true, false) => Side::Buy,
                (false, true) => Side::Sell,
                _ => order.side,
            };
        }
        return TxBody::PlaceOrder(order);
    }
    if roll < 85 {
        return TxBody::Allocate(random_allocation(rng));
    }
    let count = rng.gen_range(2..=MAX_BATCH);
    TxBody::AllocateBatch((0..count).map(|_| random_allocation(rng)).collect())
}

/// Prices cluster around 300,000 JPY per ETH on both sides, so orders cross.
pub fn random_order(rng: &mut StdRng) -> OrderRequest {
    OrderRequest {
        pair: Pair {
            base: ETH,
            quote: JPY,
        },
        side: if rng.gen_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        },
        quantity: Amount(rng.gen_range(1..=20) * ETH_UNIT / 1_000),
        limit_price: Amount(rng.gen_range(295_000..=305_000)),
        time_in_force: if rng.gen_bool(0.6) {
            TimeInForce::ImmediateOrCancel
        } else {
            TimeInForce::GoodTillCancel
        },
        expires_at_ms: None,
    }
}

pub fn random_allocation(rng: &mut StdRng) -> Allocation {
    let (asset, amount) = if rng.gen_bool(0.5) {
        (ETH, rng.gen_range(1..=50) * ETH_UNIT / 1_000)
    } else {
        (JPY, rng.gen_range(1..=20_000))
    };
    Allocation {
        asset,
        customer: CustomerId(format!("c-{}", rng.gen_range(0..CUSTOMERS))),
        amount: Amount(amount),
        direction: if rng.gen_bool(0.55) {
            AllocationDirection::ToCustomer
        } else {
            AllocationDirection::ToInventory
        },
    }
}

/// The member's available (unlocked, not allocated) ETH and yen, if the node answers.
fn inventory(node_url: &str, member: &str) -> Option<(u128, u128)> {
    let answer: v1::Balances = http::get_as(&format!("{node_url}/v1/members/{member}/balances"))
        .ok()?
        .document()?;
    let of = |symbol: &str| -> u128 {
        answer
            .balances
            .iter()
            .find(|entry| entry.symbol == symbol)
            .map_or(0, |entry| entry.balance.inventory.0)
    };
    Some((of("ETH"), of("JPY")))
}

fn open_order(rng: &mut StdRng, node_url: &str, member: &str) -> Option<OrderId> {
    let answer: v1::Orders = http::get_as(&format!("{node_url}/v1/members/{member}/orders"))
        .ok()?
        .document()?;
    if answer.orders.is_empty() {
        return None;
    }
    Some(answer.orders[rng.gen_range(0..answer.orders.len())].id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_cross_and_allocations_go_both_ways() {
        let mut rng = StdRng::seed_from_u64(1);
        let orders: Vec<OrderRequest> = (0..200).map(|_| random_order(&mut rng)).collect();
        let best_buy = orders
            .iter()
            .filter(|order| order.side == Side::Buy)
            .map(|order| order.limit_price)
            .max()
            .unwrap();
        let best_sell = orders
            .iter()
            .filter(|order| order.side == Side::Sell)
            .map(|order| order.limit_price)
            .min()
            .unwrap();
        assert!(best_buy >= best_sell, "the workload's orders must cross");
        assert!(orders.iter().all(|order| order.quantity > Amount::ZERO));
        let allocations: Vec<Allocation> = (0..100).map(|_| random_allocation(&mut rng)).collect();
        assert!(allocations
            .iter()
            .any(|a| a.direction == AllocationDirection::ToCustomer));
        assert!(allocations
            .iter()
            .any(|a| a.direction == AllocationDirection::ToInventory));
    }
}
