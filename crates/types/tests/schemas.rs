//! The OpenAPI schemas of the core types say exactly what their JSON is: every type
//! with a schema is given samples (every enum variant, every transaction body), each
//! sample's JSON validates against the type's schema resolved with all the components
//! it references, and reads back to the same value.

#[path = "support/schema_check.rs"]
mod schema_check;

use schema_check::{schema_types_in, SchemaCheck};
use seisan_types::amount::{Amount, Asset, AssetKind};
use seisan_types::attestation::{AttestationEvidence, AttestedFact, AttestedSubject};
use seisan_types::bank::{
    BankEntryId, BankEntryKind, BankEntryRecord, BankFact, FiatWithdrawal, FiatWithdrawalId,
    FiatWithdrawalStatus,
};
use seisan_types::block::{
    Block, BlockHeader, Evidence, QuorumCertificate, SignedVote, Vote, VoteKind,
};
use seisan_types::bytes::{PublicKey, Signature};
use seisan_types::clearing::*;
use seisan_types::custody::{
    ChainAddress, ChainTxHash, DepositFact, DepositOutcome, DepositRecord, PublicChainSettings,
    RegisteredAddress, Withdrawal, WithdrawalId, WithdrawalStatus,
};
use seisan_types::epoch::ValidatorSet;
use seisan_types::genesis::{Genesis, OpeningBalance, PairSpec, Role, SettlementSettings};
use seisan_types::governance::{
    GovernanceChange, Proposal, ProposalId, ProposalRecord, ProposalStatus,
};
use seisan_types::hash::{Hash, MerkleStep};
use seisan_types::ids::{AssetId, ChainId, Epoch, Height, MemberId, Nonce, View};
use seisan_types::membership::{MemberStatus, Membership};
use seisan_types::mirror::{MirrorConfirmation, MirrorFact, MirrorId, MirrorRecord, MirrorState};
use seisan_types::receipt::{Event, Receipt, ReceiptLeaf, TxOutcome};
use seisan_types::tx::{
    Allocation, AllocationDirection, CustomerId, Lane, SignedTransaction, Transaction, TxBody,
};
use serde_json::json;
use std::path::Path;

fn pair() -> Pair {
    Pair {
        base: AssetId(0),
        quote: AssetId(1),
    }
}

fn genesis() -> Genesis {
    let mut genesis = Genesis::from_json(include_str!("../../../genesis/testnet.json"))
        .expect("the testnet genesis loads");
    genesis.opening_balances.push(OpeningBalance {
        member: "exchange-a".into(),
        asset: "JPY".into(),
        amount: "1000000".into(),
    });
    genesis.public_chain = Some(public_chain());
    genesis
}

fn address(byte: u8) -> ChainAddress {
    ChainAddress(format!("0x{}", hex(byte, 20)))
}

fn tx_hash(byte: u8) -> ChainTxHash {
    ChainTxHash(format!("0x{}", hex(byte, 32)))
}

fn hex(byte: u8, bytes: usize) -> String {
    format!("{byte:02x}").repeat(bytes)
}

fn public_chain() -> PublicChainSettings {
    PublicChainSettings {
        chain_id: 1,
        confirmations: 12,
        hot_address: address(0xa1),
        cold_address: address(0xc0),
        registered_addresses: vec![RegisteredAddress {
            member: "exchange-a".into(),
            address: address(0x0a),
        }],
        hot_cap_bps: 500,
    }
}

fn allocation(direction: AllocationDirection) -> Allocation {
    Allocation {
        asset: AssetId(1),
        customer: CustomerId("customer-1".into()),
        amount: Amount(5_000),
        direction,
    }
}

fn order_request() -> OrderRequest {
    OrderRequest {
        pair: pair(),
        side: Side::Buy,
        quantity: Amount(1_500_000_000_000_000_000),
        limit_price: Amount(300_000),
        time_in_force: TimeInForce::GoodTillCancel,
        expires_at_ms: Some(1_767_225_700_000),
    }
}

fn quote_request() -> QuoteRequest {
    QuoteRequest {
        pair: pair(),
        side: Side::Sell,
        quantity: Amount(2),
        counterparties: vec![MemberId(1), MemberId(2)],
        answer_by_ms: 1_767_225_660_000,
    }
}

fn terms() -> TradeTerms {
    TradeTerms {
        trade_ref: "otc-2026-001".into(),
        buyer: MemberId(1),
        seller: MemberId(2),
        pair: pair(),
        quantity: Amount(1_000_000_000_000_000_000),
        price: Amount(299_500),
        trade_time_ms: 1_767_225_601_000,
    }
}

fn bank_fact(kind: BankEntryKind) -> BankFact {
    BankFact {
        entry: BankEntryId("TB-2026-0001".into()),
        member: MemberId(1),
        asset: AssetId(1),
        amount: Amount(1_000_000),
        kind,
    }
}

fn deposit_fact(log_index: Option<u64>) -> DepositFact {
    DepositFact {
        chain_id: 1,
        tx_hash: tx_hash(0x7e),
        log_index,
        from: address(0x0a),
        asset: AssetId(0),
        amount: Amount(u128::MAX),
    }
}

fn mirror_id() -> MirrorId {
    MirrorId {
        height: Height(12),
        payer: MemberId(1),
        payee: MemberId(2),
        asset: AssetId(1),
    }
}

fn mirror_fact() -> MirrorFact {
    MirrorFact {
        mirror: mirror_id(),
        asset: AssetId(1),
        amount: Amount(299_500),
        reference: "settle-12-exchange-a-exchange-b".into(),
        debit_entry: BankEntryId("D-1".into()),
        credit_entry: BankEntryId("C-1".into()),
    }
}

fn governance_changes() -> Vec<GovernanceChange> {
    vec![
        GovernanceChange::AddMember {
            name: "exchange-c".into(),
            role: Role::Exchange,
            public_key: PublicKey([7; 32]),
            validator: false,
            p2p_address: None,
        },
        GovernanceChange::AddMember {
            name: "exchange-d".into(),
            role: Role::Exchange,
            public_key: PublicKey([8; 32]),
            validator: true,
            p2p_address: Some("/ip4/127.0.0.1/tcp/7104".into()),
        },
        GovernanceChange::RemoveMember {
            member: MemberId(2),
        },
        GovernanceChange::SetWithdrawOnly {
            member: MemberId(2),
        },
        GovernanceChange::RotateKey {
            member: MemberId(1),
            public_key: PublicKey([9; 32]),
        },
        GovernanceChange::SetQuorum { quorum: 3 },
        GovernanceChange::AddAsset(Asset {
            symbol: "USDC".into(),
            kind: AssetKind::Token,
            scale: 6,
            contract: Some(format!("0x{}", hex(0x5c, 20))),
        }),
        GovernanceChange::AddPair {
            base: "ETH".into(),
            quote: "USDC".into(),
        },
        GovernanceChange::SetSettlement(SettlementSettings {
            cutoff_time_of_day_ms: Some(54_000_000),
            order_top_up_deadline_ms: 60_000,
            cycle_top_up_deadline_ms: 120_000,
        }),
        GovernanceChange::SetCustody {
            registered_addresses: public_chain().registered_addresses,
            hot_cap_bps: 1_000,
        },
    ]
}

fn proposal() -> Proposal {
    Proposal {
        change: GovernanceChange::SetQuorum { quorum: 3 },
        expires_at_height: Height(100),
    }
}

/// Every transaction body kind; a kind added to `TxBody` without a sample here fails
/// to compile (the match) and the schema check (its `oneOf` alternative).
fn bodies() -> Vec<TxBody> {
    let bodies = vec![
        TxBody::Allocate(allocation(AllocationDirection::ToCustomer)),
        TxBody::AllocateBatch(vec![
            allocation(AllocationDirection::ToCustomer),
            allocation(AllocationDirection::ToInventory),
        ]),
        TxBody::AllocateBatch(vec![]),
        TxBody::PlaceOrder(order_request()),
        TxBody::CancelOrder { order: OrderId(3) },
        TxBody::RequestQuote(quote_request()),
        TxBody::AnswerQuote(QuoteAnswer {
            rfq: RfqId(1),
            price: Amount(301_000),
            valid_until_ms: 1_767_225_660_000,
        }),
        TxBody::AcceptQuote { quote: OrderId(4) },
        TxBody::Confirm(terms()),
        TxBody::CloseCycle,
        TxBody::AttestBankEntry(bank_fact(BankEntryKind::TrustCredit)),
        TxBody::WithdrawFiat {
            asset: AssetId(1),
            amount: Amount(10_000),
        },
        TxBody::AttestDeposit(deposit_fact(None)),
        TxBody::Withdraw {
            asset: AssetId(0),
            amount: Amount(1),
            to: address(0x0a),
        },
        TxBody::PayoutSent {
            withdrawal: WithdrawalId(1),
            tx_hash: tx_hash(0x99),
        },
        TxBody::AttestPayout {
            withdrawal: WithdrawalId(1),
            tx_hash: tx_hash(0x99),
        },
        TxBody::AttestMirror(mirror_fact()),
        TxBody::Propose(proposal()),
        TxBody::Approve {
            proposal: ProposalId(1),
        },
    ];
    let mut seen = [false; 18];
    for body in &bodies {
        let index = match body {
            TxBody::Allocate(_) => 0,
            TxBody::AllocateBatch(_) => 1,
            TxBody::PlaceOrder(_) => 2,
            TxBody::CancelOrder { .. } => 3,
            TxBody::RequestQuote(_) => 4,
            TxBody::AnswerQuote(_) => 5,
            TxBody::AcceptQuote { .. } => 6,
            TxBody::Confirm(_) => 7,
            TxBody::CloseCycle => 8,
            TxBody::AttestBankEntry(_) => 9,
            TxBody::WithdrawFiat { .. } => 10,
            TxBody::AttestDeposit(_) => 11,
            TxBody::Withdraw { .. } => 12,
            TxBody::PayoutSent { .. } => 13,
            TxBody::AttestPayout { .. } => 14,
            TxBody::AttestMirror(_) => 15,
            TxBody::Propose(_) => 16,
            TxBody::Approve { .. } => 17,
        };
        seen[index] = true;
    }
    assert!(seen.iter().all(|&seen| seen), "a body kind has no sample");
    bodies
}

fn signed(nonce: u64, body: TxBody) -> SignedTransaction {
    SignedTransaction {
        tx: Transaction {
            chain_id: ChainId("seisan-dev-testnet".into()),
            member: MemberId(1),
            nonce: Nonce(nonce),
            body,
        },
        signature: Signature([0xab; 64]),
    }
}

fn header(epoch_end: Option<Height>, next_validators: Option<Hash>) -> BlockHeader {
    BlockHeader {
        chain_id: ChainId("seisan-dev-testnet".into()),
        epoch: Epoch(0),
        height: Height(7),
        view: View(9),
        parent: Hash([1; 32]),
        timestamp_ms: 1_767_225_600_500,
        proposer: MemberId(0),
        txs_root: Hash([2; 32]),
        state_root: Hash([3; 32]),
        receipts_root: Hash([4; 32]),
        epoch_end,
        next_validators,
    }
}

fn vote(kind: VoteKind) -> Vote {
    Vote {
        chain_id: ChainId("seisan-dev-testnet".into()),
        epoch: Epoch(1),
        view: View(9),
        height: Height(7),
        block: Hash([5; 32]),
        kind,
    }
}

fn signed_vote(kind: VoteKind, block: u8) -> SignedVote {
    let mut vote = vote(kind);
    vote.block = Hash([block; 32]);
    SignedVote {
        vote,
        member: MemberId(2),
        signature: Signature([0x11; 64]),
    }
}

fn events() -> Vec<Event> {
    vec![
        Event::OrderLive {
            order: OrderId(1),
            member: MemberId(1),
        },
        Event::OrderParked {
            order: OrderId(1),
            member: MemberId(1),
            top_up: TopUpId(1),
        },
        Event::OrderFilled {
            order: OrderId(1),
            member: MemberId(1),
        },
        Event::OrderCancelled {
            order: OrderId(1),
            member: MemberId(1),
            reason: CancelReason::SelfMatch,
            released: Amount(10),
        },
        Event::Fill {
            trade: TradeId(1),
            pair: pair(),
            buyer: MemberId(1),
            seller: MemberId(2),
            quantity: Amount(1),
            price: Amount(300_000),
            value: Amount(0),
        },
        Event::TopUpRaised {
            top_up: TopUpId(2),
            member: MemberId(1),
            asset: AssetId(1),
            needed: Amount(100),
            shortfall: Amount(40),
            deadline_ms: 1_767_229_200_000,
            subject: TopUpSubject::Order { order: OrderId(1) },
        },
        Event::TopUpCured {
            top_up: TopUpId(2),
            member: MemberId(1),
            asset: AssetId(1),
        },
        Event::TopUpExpired {
            top_up: TopUpId(2),
            member: MemberId(1),
            asset: AssetId(1),
            subject: TopUpSubject::Settlement { cycle: CycleId(3) },
        },
        Event::Credited {
            member: MemberId(1),
            asset: AssetId(0),
            amount: Amount(u128::MAX),
            reason: ChangeReason::Deposit,
        },
        Event::Debited {
            member: MemberId(1),
            asset: AssetId(0),
            amount: Amount(1),
            reason: ChangeReason::Withdrawal,
        },
        Event::Allocated {
            member: MemberId(1),
            asset: AssetId(1),
            customer: CustomerId("c".into()),
            amount: Amount(7),
            direction: AllocationDirection::ToInventory,
        },
        Event::QuoteRequested {
            rfq: RfqId(1),
            asker: MemberId(1),
            counterparties: vec![MemberId(2)],
        },
        Event::QuoteAnswered {
            rfq: RfqId(1),
            quote: OrderId(5),
            quoter: MemberId(2),
            price: Amount(301_000),
            valid_until_ms: 1_767_225_660_000,
        },
        Event::ConfirmationReceived {
            confirmation: ConfirmationId(1),
            member: MemberId(1),
        },
        Event::ConfirmationMatched {
            confirmation: ConfirmationId(1),
            cycle: CycleId(1),
        },
        Event::ConfirmationMismatched {
            confirmation: ConfirmationId(1),
            trade_ref: "otc-1".into(),
            parties: (MemberId(1), MemberId(2)),
            fields: vec![ConfirmationField::Price, ConfirmationField::TradeTime],
        },
        Event::ConfirmationUnmatched {
            confirmation: ConfirmationId(1),
            trade_ref: "otc-1".into(),
            member: MemberId(1),
            cycle: CycleId(1),
        },
        Event::CycleClosed {
            cycle: CycleId(1),
            matched: 4,
            short: vec![(MemberId(2), AssetId(1))],
        },
        Event::CycleMemberRemoved {
            cycle: CycleId(1),
            member: MemberId(2),
            reason: RemovalReason::ShortAtDeadline { asset: AssetId(1) },
            confirmations_removed: 2,
        },
        Event::CycleSettled {
            cycle: CycleId(1),
            matched: 2,
            netting: vec![asset_netting()],
        },
    ]
}

fn asset_netting() -> AssetNetting {
    AssetNetting {
        asset: AssetId(1),
        gross: Amount(1_000),
        net: Amount(200),
        efficiency_bps: 8_000,
    }
}

fn report_entry() -> ReportEntry {
    ReportEntry {
        member: MemberId(1),
        asset: AssetId(1),
        account: Account::Inventory,
        reason: ChangeReason::Netting,
        increase: Amount(200),
        decrease: Amount(0),
    }
}

fn receipts() -> Vec<Receipt> {
    vec![
        Receipt {
            tx_id: Hash([6; 32]),
            member: MemberId(1),
            nonce: Nonce(1),
            kind: "place_order".into(),
            outcome: TxOutcome::Applied,
            events: events(),
        },
        Receipt {
            tx_id: Hash([7; 32]),
            member: MemberId(2),
            nonce: Nonce(u64::MAX),
            kind: "withdraw".into(),
            outcome: TxOutcome::Rejected {
                code: "insufficient_funds".into(),
                reason: "exchange-b has 0 ETH available".into(),
            },
            events: vec![],
        },
    ]
}

fn order(status: OrderStatus, kind: OrderKind) -> Order {
    Order {
        id: OrderId(1),
        member: MemberId(1),
        pair: pair(),
        side: Side::Sell,
        quantity: Amount(10),
        remaining: Amount(4),
        limit_price: Amount(299_000),
        time_in_force: TimeInForce::ImmediateOrCancel,
        expires_at_ms: None,
        kind,
        status,
        locked: Amount(4),
        book_sequence: 17,
        placed_height: Height(3),
        placed_at_ms: 1_767_225_600_100,
    }
}

fn membership() -> Membership {
    let genesis = genesis();
    let mut membership = Membership::from_genesis(&genesis);
    membership.members[2].status = MemberStatus::WithdrawOnly;
    membership
}

#[test]
fn every_api_type_serializes_as_its_schema_says() {
    let mut check = SchemaCheck::new();
    check_every_type(&mut check);
    check.finish();
}

/// The same samples against the schemas with enum variant objects closed (no key
/// beside the variant's, as serde reads them), which refuse what serde refuses.
#[test]
fn closed_enum_variants_take_every_sample_and_refuse_extra_keys() {
    let mut check = SchemaCheck::closed();
    check_every_type(&mut check);
    check.refuses::<TxBody>(&[
        json!({"cancel_order": {"order": 1}, "close_cycle": null}),
        json!({"allocate_batch": [], "extra": 1}),
    ]);
    check.refuses::<Event>(&[json!({"order_live": {"order": 1, "member": 1}, "x": 0})]);
    for refused in [
        json!({"cancel_order": {"order": 1}, "close_cycle": null}),
        json!({"allocate_batch": [], "extra": 1}),
    ] {
        assert!(serde_json::from_value::<TxBody>(refused).is_err());
    }
    // Unit variants and untouched shapes stay as they were.
    check.accepts::<TxBody>(&[json!("close_cycle"), json!({"cancel_order": {"order": 1}})]);
    check.finish();
}

/// Samples of every type with a schema, each checked by `check`.
fn check_every_type(check: &mut SchemaCheck) {
    let genesis = genesis();

    // Scalars and ids.
    check.samples(&[Hash::ZERO, Hash([0xff; 32]), genesis.hash()]);
    check.samples(&[
        Amount(0),
        Amount(1),
        Amount(u128::MAX / 7),
        Amount(u128::MAX),
    ]);
    check.samples(&[PublicKey([0; 32]), PublicKey([0xfe; 32])]);
    check.samples(&[Signature([0; 64]), Signature([0x9c; 64])]);
    check.samples(&[MemberId(0), MemberId(u32::MAX)]);
    check.samples(&[AssetId(0), AssetId(u32::MAX)]);
    check.samples(&[Height(0), Height(u64::MAX)]);
    check.samples(&[View(0), View(u64::MAX)]);
    check.samples(&[Epoch(0), Epoch(u64::MAX)]);
    check.samples(&[Nonce(1), Nonce(u64::MAX)]);
    check.samples(&[ChainId("seisan-dev-testnet".into())]);
    check.samples(&[genesis.domain()]);
    check.samples(&[OrderId(0), OrderId(u64::MAX)]);
    check.samples(&[TradeId(1)]);
    check.samples(&[TopUpId(1)]);
    check.samples(&[RfqId(1)]);
    check.samples(&[ConfirmationId(1)]);
    check.samples(&[CycleId(0)]);
    check.samples(&[ProposalId(1)]);
    check.samples(&[WithdrawalId(1)]);
    check.samples(&[FiatWithdrawalId(1)]);
    check.samples(&[CustomerId("customer-1".into())]);
    check.samples(&[BankEntryId("TB-1".into())]);
    check.samples(&[address(0x0a)]);
    check.samples(&[tx_hash(0x7e)]);
    check.samples(&[deposit_fact(None).deposit_id()]);
    check.samples(&[MerkleStep {
        sibling: Hash([8; 32]),
        sibling_is_left: true,
    }]);

    // Transactions.
    check.samples(&[
        AllocationDirection::ToCustomer,
        AllocationDirection::ToInventory,
    ]);
    check.samples(&[allocation(AllocationDirection::ToCustomer)]);
    check.samples(&[Lane::Member, Lane::Node]);
    let bodies = bodies();
    check.samples(&bodies);
    let transactions: Vec<SignedTransaction> = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| signed(index as u64 + 1, body.clone()))
        .collect();
    check.samples(&transactions);
    check.samples(&[transactions[0].tx.clone()]);

    // Blocks, votes, certificates, evidence.
    check.samples(&[
        header(None, None),
        header(Some(Height(15)), Some(Hash([9; 32]))),
    ]);
    check.samples(&[
        Block {
            header: header(None, None),
            txs: transactions.clone(),
        },
        Block {
            header: header(None, None),
            txs: vec![],
        },
    ]);
    check.samples(&[VoteKind::Notarize, VoteKind::Finalize, VoteKind::Nullify]);
    check.samples(&[vote(VoteKind::Finalize)]);
    check.samples(&[signed_vote(VoteKind::Notarize, 1)]);
    check.samples(&[QuorumCertificate {
        vote: vote(VoteKind::Finalize),
        signatures: vec![
            (MemberId(0), Signature([1; 64])),
            (MemberId(2), Signature([2; 64])),
        ],
    }]);
    check.samples(&[Evidence {
        first: signed_vote(VoteKind::Notarize, 1),
        second: signed_vote(VoteKind::Notarize, 2),
    }]);
    check.samples(&[ValidatorSet::genesis(&genesis)]);

    // Receipts and events.
    check.samples(&events());
    check.samples(&[
        TxOutcome::Applied,
        TxOutcome::Rejected {
            code: "bad".into(),
            reason: "why".into(),
        },
    ]);
    check.samples(&receipts());
    check.samples(&[
        ReceiptLeaf::Receipt(receipts()[1].clone()),
        ReceiptLeaf::Event(events()[0].clone()),
    ]);

    // Clearing.
    check.samples(&[pair()]);
    check.samples(&[Side::Buy, Side::Sell]);
    check.samples(&[TimeInForce::GoodTillCancel, TimeInForce::ImmediateOrCancel]);
    check.samples(&[order_request()]);
    check.samples(&[
        OrderKind::Limit,
        OrderKind::Quote { rfq: RfqId(1) },
        OrderKind::Accept { quote: OrderId(2) },
    ]);
    let cancel_reasons = [
        CancelReason::ByMember,
        CancelReason::ImmediateOrCancel,
        CancelReason::SelfMatch,
        CancelReason::Expired,
        CancelReason::TopUpExpired { top_up: TopUpId(1) },
        CancelReason::QuoteUnavailable,
        CancelReason::RequestFilled,
    ];
    check.samples(&cancel_reasons);
    let order_statuses = [
        OrderStatus::AwaitingFunds { top_up: TopUpId(1) },
        OrderStatus::Live,
        OrderStatus::Filled,
        OrderStatus::Cancelled {
            reason: CancelReason::Expired,
        },
    ];
    check.samples(&order_statuses);
    check.samples(&[
        order(OrderStatus::Live, OrderKind::Limit),
        order(
            OrderStatus::Cancelled {
                reason: CancelReason::TopUpExpired { top_up: TopUpId(3) },
            },
            OrderKind::Quote { rfq: RfqId(2) },
        ),
    ]);
    check.samples(&[Trade {
        id: TradeId(1),
        pair: pair(),
        buyer: MemberId(1),
        seller: MemberId(2),
        buy_order: OrderId(1),
        sell_order: OrderId(2),
        quantity: Amount(1),
        price: Amount(300_000),
        value: Amount(0),
        taker_side: Side::Buy,
        height: Height(4),
        timestamp_ms: 1_767_225_600_200,
    }]);
    let subjects = [
        TopUpSubject::Order { order: OrderId(1) },
        TopUpSubject::Settlement { cycle: CycleId(1) },
    ];
    check.samples(&subjects);
    let top_up_statuses = [
        TopUpStatus::Open,
        TopUpStatus::Cured { height: Height(5) },
        TopUpStatus::Expired { height: Height(6) },
        TopUpStatus::Withdrawn { height: Height(7) },
    ];
    check.samples(&top_up_statuses);
    check.samples(&[TopUpRequest {
        id: TopUpId(1),
        member: MemberId(1),
        asset: AssetId(1),
        needed: Amount(100),
        shortfall: Amount(40),
        subject: subjects[1],
        deadline_ms: 1_767_229_200_000,
        raised_height: Height(5),
        status: TopUpStatus::Open,
    }]);
    check.samples(&[quote_request()]);
    check.samples(&[QuoteAnswer {
        rfq: RfqId(1),
        price: Amount(1),
        valid_until_ms: 0,
    }]);
    check.samples(&[
        RfqStatus::Open,
        RfqStatus::Filled {
            quote: OrderId(5),
            trade: TradeId(2),
        },
    ]);
    check.samples(&[Rfq {
        id: RfqId(1),
        asker: MemberId(1),
        request: quote_request(),
        quotes: vec![OrderId(5), OrderId(6)],
        pending_accept: Some(OrderId(5)),
        status: RfqStatus::Open,
        requested_height: Height(3),
    }]);
    check.samples(&[terms()]);
    check.samples(&[
        ConfirmationField::Buyer,
        ConfirmationField::Seller,
        ConfirmationField::Pair,
        ConfirmationField::Quantity,
        ConfirmationField::Price,
        ConfirmationField::TradeTime,
    ]);
    let removal_reasons = [
        RemovalReason::ShortAtDeadline { asset: AssetId(1) },
        RemovalReason::ShortAfterRenetting { asset: AssetId(0) },
    ];
    check.samples(&removal_reasons);
    check.samples(&[
        ConfirmationStatus::AwaitingPartner { cycle: CycleId(1) },
        ConfirmationStatus::Matched { cycle: CycleId(1) },
        ConfirmationStatus::Mismatched {
            fields: vec![ConfirmationField::Quantity],
        },
        ConfirmationStatus::Unmatched { cycle: CycleId(1) },
        ConfirmationStatus::Settled { cycle: CycleId(1) },
        ConfirmationStatus::Removed {
            cycle: CycleId(1),
            reason: removal_reasons[1],
        },
    ]);
    let submission = ConfirmationSubmission {
        member: MemberId(1),
        terms: terms(),
        height: Height(3),
    };
    check.samples(std::slice::from_ref(&submission));
    check.samples(&[Confirmation {
        id: ConfirmationId(1),
        trade_ref: "otc-2026-001".into(),
        parties: (MemberId(1), MemberId(2)),
        submissions: vec![submission],
        status: ConfirmationStatus::Matched { cycle: CycleId(1) },
    }]);
    let position = NetPosition {
        member: MemberId(1),
        asset: AssetId(1),
        receive: Amount(0),
        pay: Amount(200),
        covered: false,
        top_up: Some(TopUpId(9)),
    };
    check.samples(std::slice::from_ref(&position));
    check.samples(&[asset_netting()]);
    let cycle_statuses = [
        CycleStatus::Open,
        CycleStatus::Closing {
            closed_at_ms: 1,
            deadline_ms: 2,
        },
        CycleStatus::Settled {
            settled_at_ms: 3,
            height: Height(9),
        },
    ];
    check.samples(&cycle_statuses);
    check.samples(&[Cycle {
        id: CycleId(1),
        opened_at_ms: 1_767_225_600_000,
        status: cycle_statuses[2].clone(),
        matched: 2,
        positions: vec![position],
        removed: vec![(MemberId(2), removal_reasons[0])],
        netting: vec![asset_netting()],
        report: vec![report_entry()],
    }]);
    let balance = Balance {
        inventory: Amount(1),
        locked: Amount(2),
        customers: Amount(3),
    };
    check.samples(&[balance]);
    check.samples(&[AssetBalance {
        asset: AssetId(1),
        symbol: "JPY".into(),
        balance,
    }]);
    check.samples(&[CustomerBalance {
        customer: CustomerId("customer-1".into()),
        amount: Amount(5),
    }]);
    check.samples(&[AssetTotals {
        credited: Amount(10),
        debited: Amount(3),
    }]);
    check.samples(&[Account::Inventory, Account::Customers]);
    check.samples(&[
        ChangeReason::Opening,
        ChangeReason::Deposit,
        ChangeReason::Withdrawal,
        ChangeReason::Allocation,
        ChangeReason::Fill,
        ChangeReason::Netting,
        ChangeReason::Seed,
    ]);
    check.samples(&[report_entry()]);
    check.samples(&[SettlementReport {
        height: Height(9),
        timestamp_ms: 1_767_225_600_900,
        entries: vec![report_entry()],
    }]);

    // Custody.
    check.samples(&[public_chain().registered_addresses[0].clone()]);
    check.samples(&[public_chain()]);
    check.samples(&[deposit_fact(None), deposit_fact(Some(3))]);
    check.samples(&[
        DepositOutcome::Credited {
            member: MemberId(1),
        },
        DepositOutcome::Unregistered,
    ]);
    check.samples(&[
        DepositRecord {
            id: deposit_fact(None).deposit_id(),
            attestations: vec![(deposit_fact(None), vec![MemberId(0), MemberId(1)])],
            outcome: Some((
                deposit_fact(None),
                DepositOutcome::Credited {
                    member: MemberId(1),
                },
            )),
        },
        DepositRecord {
            id: deposit_fact(None).deposit_id(),
            attestations: vec![],
            outcome: None,
        },
    ]);
    let withdrawal_statuses = [
        WithdrawalStatus::Pending,
        WithdrawalStatus::Sent {
            tx_hash: tx_hash(0x99),
        },
        WithdrawalStatus::Completed {
            tx_hash: tx_hash(0x99),
        },
    ];
    check.samples(&withdrawal_statuses);
    check.samples(&[Withdrawal {
        id: WithdrawalId(1),
        member: MemberId(1),
        asset: AssetId(0),
        amount: Amount(1),
        to: address(0x0a),
        status: withdrawal_statuses[1].clone(),
        payout_attesters: vec![MemberId(0)],
    }]);

    // Bank, mirror, attestation.
    check.samples(&[
        BankEntryKind::TrustCredit,
        BankEntryKind::WithdrawalPaid {
            withdrawal: FiatWithdrawalId(2),
        },
    ]);
    check.samples(&[bank_fact(BankEntryKind::TrustCredit)]);
    check.samples(&[BankEntryRecord {
        entry: BankEntryId("TB-2026-0001".into()),
        attestations: vec![(MemberId(0), bank_fact(BankEntryKind::TrustCredit))],
        applied: Some(bank_fact(BankEntryKind::TrustCredit)),
    }]);
    check.samples(&[
        FiatWithdrawalStatus::Pending,
        FiatWithdrawalStatus::Paid {
            entry: BankEntryId("W-1".into()),
        },
    ]);
    check.samples(&[FiatWithdrawal {
        id: FiatWithdrawalId(2),
        member: MemberId(1),
        asset: AssetId(1),
        amount: Amount(10_000),
        requested_at_ms: 1_767_225_600_000,
        status: FiatWithdrawalStatus::Pending,
    }]);
    check.samples(&[mirror_id()]);
    check.samples(&[mirror_fact()]);
    let mirror_confirmation = MirrorConfirmation {
        debit_entry: BankEntryId("D-1".into()),
        credit_entry: BankEntryId("C-1".into()),
        confirmed_at_ms: 1_767_225_700_000,
    };
    check.samples(std::slice::from_ref(&mirror_confirmation));
    check.samples(&[MirrorRecord {
        mirror: mirror_id(),
        asset: AssetId(1),
        amount: Amount(299_500),
        reference: "settle-12-exchange-a-exchange-b".into(),
        settled_at_ms: 1_767_225_600_000,
        attestations: vec![(MemberId(0), mirror_fact())],
        confirmed: Some(mirror_confirmation),
    }]);
    check.samples(&[
        MirrorState::Confirmed,
        MirrorState::Pending,
        MirrorState::Stalled,
    ]);
    let facts = [
        AttestedFact::BankEntry(bank_fact(BankEntryKind::TrustCredit)),
        AttestedFact::Deposit(deposit_fact(Some(1))),
        AttestedFact::Payout {
            withdrawal: WithdrawalId(1),
            tx_hash: tx_hash(0x99),
        },
    ];
    check.samples(&facts);
    check.samples(&facts.iter().map(AttestedFact::subject).collect::<Vec<_>>());
    check.samples(&[AttestationEvidence {
        member: MemberId(2),
        attested: facts[2].clone(),
        credited: AttestedFact::Payout {
            withdrawal: WithdrawalId(1),
            tx_hash: tx_hash(0x98),
        },
        height: Height(20),
    }]);
    // Every subject kind, not only those of the facts above.
    check.samples(&[
        AttestedSubject::BankEntry {
            entry: BankEntryId("TB-1".into()),
        },
        AttestedSubject::Deposit {
            deposit: deposit_fact(None).deposit_id(),
        },
        AttestedSubject::Payout {
            withdrawal: WithdrawalId(1),
        },
    ]);

    // Governance and membership.
    check.samples(&governance_changes());
    check.samples(&[proposal()]);
    let proposal_statuses = [
        ProposalStatus::Open,
        ProposalStatus::Scheduled {
            activation_height: Height(30),
        },
        ProposalStatus::Applied { height: Height(30) },
        ProposalStatus::Lapsed {
            reason: "expired".into(),
        },
        ProposalStatus::Rejected {
            reason: "quorum unsafe".into(),
        },
    ];
    check.samples(&proposal_statuses);
    check.samples(&[ProposalRecord {
        id: ProposalId(1),
        proposer: MemberId(1),
        change: governance_changes()[0].clone(),
        proposed_at: Height(10),
        expires_at_height: Height(100),
        approvals: vec![MemberId(0), MemberId(1)],
        status: proposal_statuses[1].clone(),
    }]);
    check.samples(&[
        MemberStatus::Active,
        MemberStatus::WithdrawOnly,
        MemberStatus::Removed,
    ]);
    check.samples(&membership().members);
    check.samples(&[membership()]);

    // Genesis.
    check.samples(&[Role::ClearingHouse, Role::Exchange, Role::Observer]);
    check.samples(&genesis.members);
    check.samples(&[PairSpec {
        base: "ETH".into(),
        quote: "JPY".into(),
    }]);
    check.samples(&genesis.opening_balances);
    check.samples(&[SettlementSettings::default()]);
    check.samples(&[AssetKind::NativeCoin, AssetKind::Token, AssetKind::Fiat]);
    check.samples(&genesis.assets);
    check.samples(std::slice::from_ref(&genesis));

    // Every type of this crate with a schema was checked above.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let with_schema = schema_types_in(&source);
    assert!(
        with_schema.len() > 100,
        "the source scan found only {with_schema:?}"
    );
    check.assert_every_type_sampled(&with_schema);
}

#[test]
fn schemas_refuse_what_deserialization_refuses() {
    let mut check = SchemaCheck::new();
    let too_big = "340282366920938463463374607431768211456";
    check.refuses::<Amount>(&[
        json!(too_big),
        json!("-1"),
        json!("+1"),
        json!("1.5"),
        json!("1e3"),
        json!(""),
        json!(" 1"),
        json!(5),
    ]);
    assert!(serde_json::from_value::<Amount>(json!(too_big)).is_err());
    check.accepts::<Amount>(&[
        json!("0"),
        json!("340282366920938463463374607431768211455"),
        json!("339999999999999999999999999999999999999"),
        json!("99999999999999999999999999999999999999"),
    ]);
    check.refuses::<Hash>(&[
        json!("ab".repeat(31)),
        json!("ab".repeat(33)),
        json!("AB".repeat(32)),
        json!(format!("0x{}", "ab".repeat(32))),
        json!("zz".repeat(32)),
    ]);
    check.accepts::<Hash>(&[json!("0a".repeat(32))]);
    check.refuses::<Signature>(&[json!("ab".repeat(32)), json!("ab".repeat(65))]);
    check.accepts::<Signature>(&[json!("9f".repeat(64))]);
    check.refuses::<PublicKey>(&[json!("ab".repeat(64))]);
    check.refuses::<Nonce>(&[json!(0), json!(-1), json!("1")]);
    // Ids are numbers within their integer type, as serde reads them.
    check.refuses::<MemberId>(&[json!(-1), json!(1.5), json!(u64::from(u32::MAX) + 1)]);
    check.accepts::<MemberId>(&[json!(0), json!(u32::MAX)]);
    // 2^64 (JSON reads it as a float with no fraction, which is still an integer).
    let past_u64: serde_json::Value = serde_json::from_str("18446744073709551616").unwrap();
    check.refuses::<Height>(&[json!(-1), past_u64.clone()]);
    check.accepts::<Height>(&[json!(0), json!(u64::MAX)]);
    check.refuses::<OrderId>(&[past_u64]);
    check.accepts::<ProposalId>(&[json!(u64::MAX)]);
    check.accepts::<Nonce>(&[json!(1), json!(u64::MAX)]);
    check.refuses::<TxBody>(&[
        json!("allocate"),
        json!({"cancel_order": {}}),
        json!({"close_cycle": null}),
        json!("cancel_order"),
    ]);
    check.refuses::<SignedTransaction>(&[json!({"tx": {}, "signature": "00"})]);
    // Genesis refuses unknown fields, and so does its schema.
    let mut genesis = serde_json::to_value(genesis()).expect("genesis serializes");
    genesis["extra"] = json!(1);
    check.refuses::<Genesis>(&[genesis]);
    check.finish();
}
