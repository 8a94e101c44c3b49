//! Model-based test: the contracts' order book and balances against a small reference
//! model written for obviousness, not speed (linear scans, no indexes, no overlay). On
//! random limit orders, cancels, deposits and block boundaries, after every step the
//! balances of every member, the open orders (remaining, lock, live or parked), the
//! book in priority order and the trade list (with each fill's value under the value
//! rule) must be equal. Orders and cancels are signed in the member lane; node-lane
//! attestations and transactions with a wrong nonce in either lane are mixed in, and
//! each member's last nonce per lane must equal the model's (a lane advances only on
//! its own next nonce, whatever the other lane did).

mod common;

use common::*;
use proptest::prelude::*;
use seisan_contracts::{query, Ledger};
use seisan_types::clearing::{OrderId, OrderRequest, OrderStatus, Side, TimeInForce};
use seisan_types::custody::{ChainTxHash, WithdrawalId};
use seisan_types::genesis::SettlementSettings;
use seisan_types::receipt::TxOutcome;
use seisan_types::state::MapView;
use seisan_types::tx::{Lane, SignedTransaction, Transaction, TxBody};
use seisan_types::{Amount, AssetId, Height, MemberId, Nonce, Signature};
use std::collections::{BTreeMap, BTreeSet};

const DEADLINE_MS: u64 = 3_000;

#[derive(Clone, Debug)]
enum Op {
    Place {
        member: u32,
        side: Side,
        quantity: u128,
        price: u128,
        gtc: bool,
    },
    Cancel {
        member: u32,
        order: u64,
    },
    Deposit {
        member: u32,
        asset: u32,
        amount: u128,
    },
    EndBlock {
        advance_ms: u64,
    },
    /// A node-lane transaction (an attestation of a payout nobody asked for, which the
    /// contracts reject but which still uses its nonce) at the lane's next nonce.
    Attest {
        member: u32,
    },
    /// A transaction in `lane` whose nonce is the lane's last plus `offset` (0 repeats
    /// it, 2 skips one, -1 is stale): refused, and no lane's nonce moves.
    WrongNonce {
        member: u32,
        lane: Lane,
        offset: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelOrder {
    id: u64,
    member: u32,
    side: Side,
    remaining: u128,
    price: u128,
    locked: u128,
    /// A buy's value remainder: what its fills were charged less than their exact
    /// value, in 1/COIN of a yen.
    remainder: u128,
    /// 0 until it rests in the book.
    sequence: u64,
    live: bool,
    gtc: bool,
    deadline_ms: u64,
}

#[derive(Default)]
struct Model {
    inventory: BTreeMap<(u32, u32), u128>,
    locked: BTreeMap<(u32, u32), u128>,
    /// Open orders only.
    orders: Vec<ModelOrder>,
    next_id: u64,
    next_sequence: u64,
    /// (buyer, seller, quantity, price, value) of every fill.
    trades: Vec<(u32, u32, u128, u128, u128)>,
    raised: BTreeSet<(u32, u32)>,
    /// The last applied nonce per (member, lane); absent is none yet.
    nonces: BTreeMap<(u32, Lane), u64>,
}

fn value(quantity: u128, price: u128) -> u128 {
    quantity * price / COIN
}

fn locked_asset(side: Side) -> u32 {
    match side {
        Side::Buy => JPY.0,
        Side::Sell => BTC.0,
    }
}

impl Model {
    fn needed(order: &ModelOrder) -> u128 {
        match order.side {
            Side::Buy => (order.remainder + order.remaining * order.price) / COIN,
            Side::Sell => order.remaining,
        }
    }

    fn inv(&mut self, member: u32, asset: u32) -> &mut u128 {
        self.inventory.entry((member, asset)).or_insert(0)
    }

    fn lck(&mut self, member: u32, asset: u32) -> &mut u128 {
        self.locked.entry((member, asset)).or_insert(0)
    }

    fn release(&mut self, order: &ModelOrder) {
        if order.locked > 0 {
            let asset = locked_asset(order.side);
            *self.lck(order.member, asset) -= order.locked;
            *self.inv(order.member, asset) += order.locked;
            self.raised.insert((order.member, asset));
        }
    }

    fn place(&mut self, member: u32, side: Side, quantity: u128, price: u128, gtc: bool, now: u64) {
        if value(quantity, price) == 0 {
            return; // rejected: worth less than one yen
        }
        self.next_id += 1;
        let mut order = ModelOrder {
            id: self.next_id,
            member,
            side,
            remaining: quantity,
            price,
            locked: 0,
            remainder: 0,
            sequence: 0,
            live: false,
            gtc,
            deadline_ms: now + DEADLINE_MS,
        };
        let needed = Self::needed(&order);
        let asset = locked_asset(side);
        if *self.inv(member, asset) >= needed {
            *self.inv(member, asset) -= needed;
            *self.lck(member, asset) += needed;
            order.locked = needed;
            order.live = true;
            self.run(order);
        } else {
            self.orders.push(order);
        }
    }

    /// Matches a live incoming order against the book, then rests or closes it.
    fn run(&mut self, mut order: ModelOrder) {
        let mut self_match = false;
        while order.remaining > 0 {
            let best = self
                .orders
                .iter()
                .enumerate()
                .filter(|(_, o)| o.live && o.sequence > 0 && o.side != order.side)
                .min_by_key(|(_, o)| {
                    let price_rank = match o.side {
                        Side::Sell => o.price,
                        Side::Buy => u128::MAX - o.price,
                    };
                    (price_rank, o.sequence)
                })
                .map(|(index, _)| index);
            let Some(index) = best else { break };
            let resting = self.orders[index].clone();
            let crosses = match order.side {
                Side::Buy => resting.price <= order.price,
                Side::Sell => resting.price >= order.price,
            };
            if !crosses {
                break;
            }
            if resting.member == order.member {
                self_match = true;
                break;
            }
            let quantity = order.remaining.min(resting.remaining);
            let price = resting.price;
            let mut resting = resting;
            let (buyer, seller) = match order.side {
                Side::Buy => (&mut order, &mut resting),
                Side::Sell => (&mut resting, &mut order),
            };
            // The buy order pays the exact value of its fills so far rounded down.
            let exact = buyer.remainder + quantity * price;
            let paid = exact / COIN;
            buyer.remainder = exact % COIN;
            buyer.locked -= paid;
            buyer.remaining -= quantity;
            seller.locked -= quantity;
            seller.remaining -= quantity;
            let (b, s) = (buyer.member, seller.member);
            *self.lck(b, JPY.0) -= paid;
            *self.inv(b, BTC.0) += quantity;
            self.raised.insert((b, BTC.0));
            *self.lck(s, BTC.0) -= quantity;
            *self.inv(s, JPY.0) += paid;
            if paid > 0 {
                self.raised.insert((s, JPY.0));
            }
            self.trades.push((b, s, quantity, price, paid));
            if resting.remaining == 0 {
                self.orders.remove(index);
                self.release(&resting);
            } else {
                self.orders[index] = resting;
            }
        }
        if order.remaining == 0 || self_match || !order.gtc {
            self.release(&order);
        } else {
            self.next_sequence += 1;
            order.sequence = self.next_sequence;
            self.orders.push(order);
        }
    }

    fn cancel(&mut self, member: u32, id: u64) {
        if let Some(index) = self
            .orders
            .iter()
            .position(|o| o.id == id && o.member == member)
        {
            let order = self.orders.remove(index);
            self.release(&order);
        }
    }

    fn deposit(&mut self, member: u32, asset: u32, amount: u128) {
        *self.inv(member, asset) += amount;
        self.raised.insert((member, asset));
    }

    /// Parked orders whose member's available balance now covers them go live, in
    /// (member, asset) order, then order (= top-up request) order.
    fn cure(&mut self) {
        while let Some((member, asset)) = self.raised.pop_first() {
            let mut parked: Vec<u64> = self
                .orders
                .iter()
                .filter(|o| !o.live && o.member == member && locked_asset(o.side) == asset)
                .map(|o| o.id)
                .collect();
            parked.sort();
            for id in parked {
                let Some(index) = self.orders.iter().position(|o| o.id == id && !o.live) else {
                    continue;
                };
                let needed = Self::needed(&self.orders[index]);
                if *self.inv(member, asset) >= needed {
                    let mut order = self.orders.remove(index);
                    *self.inv(member, asset) -= needed;
                    *self.lck(member, asset) += needed;
                    order.locked = needed;
                    order.live = true;
                    self.run(order);
                }
            }
        }
    }

    /// The lane's next nonce, taken (the transaction carrying it will be applied).
    fn take_nonce(&mut self, member: u32, lane: Lane) -> u64 {
        let last = self.nonces.entry((member, lane)).or_insert(0);
        *last += 1;
        *last
    }

    /// The code the contracts must refuse a nonce `offset` away from the lane's last
    /// with, and the nonce (the lane's state does not change).
    fn wrong_nonce(&self, member: u32, lane: Lane, offset: i64) -> (u64, &'static str) {
        let last = self.nonces.get(&(member, lane)).copied().unwrap_or(0);
        let nonce = last.checked_add_signed(offset).expect("offset in range");
        let code = match nonce.cmp(&last) {
            std::cmp::Ordering::Equal if last == 0 => "nonce_gap",
            std::cmp::Ordering::Equal => "repeated_nonce",
            std::cmp::Ordering::Less => "stale_nonce",
            std::cmp::Ordering::Greater => "nonce_gap",
        };
        (nonce, code)
    }

    fn end_block(&mut self, now: u64) {
        self.orders.retain(|o| o.live || o.deadline_ms > now);
    }
}

fn op() -> impl Strategy<Value = Op> {
    let member = 1u32..=3;
    let side = prop_oneof![Just(Side::Buy), Just(Side::Sell)];
    let quantity = prop_oneof![
        (1u128..=20).prop_map(|tenths| tenths * COIN / 10),
        Just(33_300_000u128),
        Just(1u128),
    ];
    prop_oneof![
        8 => (member.clone(), side, quantity, 97u128..=103, proptest::bool::weighted(0.8)).prop_map(
            |(member, side, quantity, price, gtc)| Op::Place { member, side, quantity, price, gtc }
        ),
        2 => (member.clone(), 1u64..30).prop_map(|(member, order)| Op::Cancel { member, order }),
        2 => (member, 0u32..2, 1u128..200).prop_map(|(member, asset, amount)| Op::Deposit {
            member,
            asset,
            amount: if asset == 0 { amount * COIN / 100 } else { amount },
        }),
        2 => (0u64..2_500).prop_map(|advance_ms| Op::EndBlock { advance_ms }),
        2 => (1u32..=3).prop_map(|member| Op::Attest { member }),
        2 => (
            1u32..=3,
            prop_oneof![Just(Lane::Member), Just(Lane::Node)],
            prop_oneof![Just(-1i64), Just(0), Just(2)],
        )
            .prop_map(|(member, lane, offset)| Op::WrongNonce { member, lane, offset }),
    ]
}

fn compare(model: &Model, view: &MapView) {
    for member in 1..=3u32 {
        for asset in [BTC, JPY] {
            let balance = query::balance(view, MemberId(member), asset);
            let key = (member, asset.0);
            assert_eq!(
                balance.inventory.0,
                model.inventory.get(&key).copied().unwrap_or(0),
                "inventory {key:?}"
            );
            assert_eq!(
                balance.locked.0,
                model.locked.get(&key).copied().unwrap_or(0),
                "locked {key:?}"
            );
        }
        let mut actual: Vec<_> = query::open_orders(view, MemberId(member))
            .into_iter()
            .map(|o| {
                (
                    o.id.0,
                    o.remaining.0,
                    o.locked.0,
                    o.status == OrderStatus::Live,
                )
            })
            .collect();
        actual.sort();
        let mut expected: Vec<_> = model
            .orders
            .iter()
            .filter(|o| o.member == member)
            .map(|o| (o.id, o.remaining, o.locked, o.live))
            .collect();
        expected.sort();
        assert_eq!(actual, expected, "open orders of member {member}");
        for lane in Lane::ALL {
            assert_eq!(
                query::last_nonce(view, MemberId(member), lane).map(|n| n.0),
                model.nonces.get(&(member, lane)).copied(),
                "{lane} lane nonce of member {member}"
            );
        }
    }
    for side in [Side::Buy, Side::Sell] {
        let actual: Vec<u64> = query::book(view, PAIR, side, 1000)
            .into_iter()
            .map(|o| o.id.0)
            .collect();
        let mut resting: Vec<&ModelOrder> = model
            .orders
            .iter()
            .filter(|o| o.live && o.sequence > 0 && o.side == side)
            .collect();
        resting.sort_by_key(|o| {
            let rank = match side {
                Side::Sell => o.price,
                Side::Buy => u128::MAX - o.price,
            };
            (rank, o.sequence)
        });
        let expected: Vec<u64> = resting.iter().map(|o| o.id).collect();
        assert_eq!(actual, expected, "{side:?} book");
    }
    let trades: Vec<_> = query::trades(view, None, 1000)
        .into_iter()
        .map(|t| (t.buyer.0, t.seller.0, t.quantity.0, t.price.0, t.value.0))
        .collect();
    assert_eq!(trades, model.trades);
}

fn run(ops: &[Op]) {
    let mut harness = Harness::with_settings(SettlementSettings {
        order_top_up_deadline_ms: DEADLINE_MS,
        ..SettlementSettings::default()
    });
    let seeds = [
        (A, JPY, 300),
        (B, JPY, 200),
        (C, JPY, 100),
        (A, BTC, COIN),
        (B, BTC, 2 * COIN),
        (C, BTC, COIN / 2),
    ];
    harness.seed(&seeds);
    let mut model = Model::default();
    for (member, asset, amount) in seeds {
        model.deposit(member.0, asset.0, amount);
    }
    model.raised.clear();
    let mut blocks: Vec<Vec<Op>> = vec![Vec::new()];
    for op in ops {
        blocks.last_mut().unwrap().push(op.clone());
        if matches!(op, Op::EndBlock { .. }) {
            blocks.push(Vec::new());
        }
    }
    for (index, block) in blocks.iter().enumerate() {
        let advance_ms = match block.last() {
            Some(Op::EndBlock { advance_ms }) => *advance_ms,
            _ => 1,
        };
        let now = harness.now_ms + advance_ms;
        let ctx = seisan_contracts::BlockContext {
            height: Height(index as u64 + 1),
            timestamp_ms: now,
            proposer: CH,
        };
        let view = harness.view.clone();
        let mut ledger = Ledger::new(&view, &harness.genesis, ctx);
        for op in block {
            match op {
                Op::Place {
                    member,
                    side,
                    quantity,
                    price,
                    gtc,
                } => {
                    let nonce = model.take_nonce(*member, Lane::Member);
                    let body = TxBody::PlaceOrder(OrderRequest {
                        pair: PAIR,
                        side: *side,
                        quantity: Amount(*quantity),
                        limit_price: Amount(*price),
                        time_in_force: if *gtc {
                            TimeInForce::GoodTillCancel
                        } else {
                            TimeInForce::ImmediateOrCancel
                        },
                        expires_at_ms: None,
                    });
                    ledger.apply_transaction(&signed(&harness, *member, nonce, body));
                    model.place(*member, *side, *quantity, *price, *gtc, now);
                }
                Op::Cancel { member, order } => {
                    let nonce = model.take_nonce(*member, Lane::Member);
                    let body = TxBody::CancelOrder {
                        order: OrderId(*order),
                    };
                    ledger.apply_transaction(&signed(&harness, *member, nonce, body));
                    model.cancel(*member, *order);
                }
                Op::Deposit {
                    member,
                    asset,
                    amount,
                } => {
                    ledger
                        .deposit(MemberId(*member), AssetId(*asset), Amount(*amount))
                        .unwrap();
                    model.deposit(*member, *asset, *amount);
                }
                Op::Attest { member } => {
                    let nonce = model.take_nonce(*member, Lane::Node);
                    let receipt =
                        ledger.apply_transaction(&signed(&harness, *member, nonce, attestation()));
                    assert!(
                        matches!(&receipt.outcome, TxOutcome::Rejected { code, .. } if !code.contains("nonce")),
                        "a node-lane transaction at the lane's next nonce passes the nonce check: {receipt:?}"
                    );
                }
                Op::WrongNonce {
                    member,
                    lane,
                    offset,
                } => {
                    let last = model.nonces.get(&(*member, *lane)).copied().unwrap_or(0);
                    if last as i64 + offset < 0 {
                        continue;
                    }
                    let (nonce, expected) = model.wrong_nonce(*member, *lane, *offset);
                    let body = match lane {
                        Lane::Member => TxBody::CancelOrder { order: OrderId(1) },
                        Lane::Node => attestation(),
                    };
                    assert_eq!(body.lane(), *lane);
                    let receipt = ledger.apply_transaction(&signed(&harness, *member, nonce, body));
                    match &receipt.outcome {
                        TxOutcome::Rejected { code, reason } => {
                            assert_eq!(code, expected, "{reason}");
                            assert!(reason.contains(&format!("{lane} lane")), "{reason}");
                        }
                        TxOutcome::Applied => panic!("nonce {nonce} in the {lane} lane applied"),
                    }
                }
                Op::EndBlock { .. } => {}
            }
            model.cure();
            let mut probe = harness.view.clone();
            probe.apply(&ledger.pending_writes());
            compare(&model, &probe);
        }
        let outcome = ledger.finish();
        harness.now_ms = now;
        harness.view.apply(&outcome.writes);
        harness.check();
        model.end_block(now);
        compare(&model, &harness.view);
    }
}

/// A node-lane body that changes nothing: an attestation of a payout for a withdrawal
/// that does not exist.
fn attestation() -> TxBody {
    TxBody::AttestPayout {
        withdrawal: WithdrawalId(9_999),
        tx_hash: ChainTxHash("0x01".into()),
    }
}

fn signed(harness: &Harness, member: u32, nonce: u64, body: TxBody) -> SignedTransaction {
    SignedTransaction {
        tx: Transaction {
            chain_id: harness.genesis.chain_id.clone(),
            member: MemberId(member),
            nonce: Nonce(nonce),
            body,
        },
        signature: Signature([0; 64]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn order_book_and_balances_match_the_reference_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops);
    }
}
