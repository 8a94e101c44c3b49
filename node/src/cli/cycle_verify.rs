//! Cycle certificates: a settlement cycle's netting, recomputed by anyone who holds
//! only the genesis file.
//!
//! A cycle settles the confirmations matched in it with one multilateral netting
//! ([`seisan_contracts::settlement`]). The certificate carries, for every confirmation
//! the cycle settled, both members' signed `confirm` transactions, each with its path
//! to its block's `txs_root` and its receipt with its path to the block's
//! `receipts_root` (the receipt says the submission was received, and the second one
//! that it matched in this cycle). It carries the `CycleSettled` event (the matched
//! count and the per-asset gross and net the chain settled) proven under its block's
//! `receipts_root`, and the cycle record (the positions the chain settled, and the
//! members removed for shortfalls) proven under the state root of a certified block.
//! A submission is checked against its member's key in the genesis file; a member
//! added later by governance is not in it, so its key is taken from the consortium
//! record proven at the same certified state root (a genesis member's key is never
//! taken from there: a quorum that rotated it could otherwise sign in its name).
//! Every block is certified by a quorum certificate of finalize votes of the validator
//! set of its epoch, followed from genesis through the epoch links as in a balance
//! proof ([`super::proof`]).
//!
//! The verifier checks every signature and every inclusion, checks that the proven
//! confirmations are all the cycle settled (their count is the proven `matched`, and no
//! trade of a removed member is among them), recomputes the netting locally with
//! [`seisan_contracts::settlement::net_trades`] (the rule the contracts run) and lists
//! every difference from what the chain settled. A broken proof is an error naming the
//! broken link; a proven cycle whose netting differs is a list of differences.

use super::proof::{follow_epochs, EpochLink, ProofCheckError};
use seisan_contracts::consortium::Consortium;
use seisan_crypto::{CertificateError, SignatureError};
use seisan_state::{ProofError, StateProof};
use seisan_types::clearing::{
    trade_value, AssetNetting, ConfirmationField, ConfirmationId, Cycle, CycleId, CycleStatus,
    NetPosition, RemovalReason, TradeTerms,
};
use seisan_types::hash::Hash;
use seisan_types::ids::{AssetId, ChainId, Epoch, Height, MemberId};
use seisan_types::membership::Membership;
use seisan_types::receipt::{receipts_root_of, Event, Receipt, ReceiptLeaf, TxOutcome};
use seisan_types::{
    codec, tags, BlockHeader, Genesis, QuorumCertificate, SignedTransaction, TxBody, ValidatorSet,
    VoteKind,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The most confirmations one certificate carries (a node refuses to build a larger
/// one; a verifier refuses to read it).
pub const MAX_CYCLE_CONFIRMATIONS: usize = 10_000;
/// The most certified blocks one certificate carries: two submissions per
/// confirmation, the settlement block and the record's block.
pub const MAX_CYCLE_BLOCKS: usize = 2 * MAX_CYCLE_CONFIRMATIONS + 2;
/// The most descendant headers between a block and its certified descendant (as for
/// a trade certificate).
pub const MAX_CYCLE_DESCENDANTS: usize = super::certificate::MAX_CERTIFICATE_DESCENDANTS;

/// The document (nothing in it is trusted yet) is the API's own type: the node serves
/// it and this module verifies it.
pub use seisan_api::v1::{
    CertifiedBlock, CycleCertificate, ProvenConfirmation, ProvenRecord, ProvenSettlement,
    ProvenSubmission, CYCLE_CERTIFICATE_FORMAT,
};

/// One settled trade, as proven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenTrade {
    pub confirmation: ConfirmationId,
    pub terms: TradeTerms,
    /// The heights of the first and second submission.
    pub heights: (Height, Height),
}

/// Where the recomputed netting and the settled one differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What differs, e.g. `position of member 1 in asset 0: pay`.
    pub what: String,
    pub recomputed: String,
    pub settled: String,
}

/// What a verified certificate establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCycle {
    pub cycle: CycleId,
    pub settled_height: Height,
    pub settled_at_ms: u64,
    /// The latest epoch whose validators certified a block used.
    pub epoch: Epoch,
    pub trades: Vec<ProvenTrade>,
    pub removed: Vec<(MemberId, RemovalReason)>,
    /// The proven membership (names, and the keys of members added by governance).
    pub membership: Membership,
    /// Signers checked against a key from the proven consortium record (members added
    /// after genesis).
    pub added_signers: BTreeSet<MemberId>,
    /// The netting recomputed here.
    pub positions: Vec<NetPosition>,
    pub netting: Vec<AssetNetting>,
    /// Empty when the chain settled exactly the recomputed netting.
    pub differences: Vec<Difference>,
}

/// Why a submission is refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionFault {
    #[error("refers to block {index}, the document has {count}")]
    NoBlock { index: usize, count: usize },
    #[error("the transaction is for chain {got:?}, not the genesis chain")]
    WrongChain { got: String },
    #[error("member {member} is neither in genesis nor in the proven consortium record")]
    UnknownMember { member: MemberId },
    #[error("signature of member {member} does not verify against its {origin} key: {reason}")]
    NotSigned {
        member: MemberId,
        origin: &'static str,
        reason: SignatureError,
    },
    #[error("the transaction is a {kind}, not a confirmation")]
    NotConfirmation { kind: String },
    #[error("the transaction is not in the block: its path leads to transactions root {computed}, the header commits to {committed}")]
    NotInBlock { computed: Hash, committed: Hash },
    #[error("the receipt is of transaction {receipt}, not of this one ({transaction})")]
    OtherReceipt { receipt: Hash, transaction: Hash },
    #[error("the receipt is not in the block: its path leads to receipts root {computed}, the header commits to {committed}")]
    ReceiptNotInBlock { computed: Hash, committed: Hash },
    #[error("the receipt says the transaction was not applied ({outcome:?})")]
    NotApplied { outcome: TxOutcome },
    #[error("the receipt does not say confirmation {confirmation} received it")]
    NotReceived { confirmation: ConfirmationId },
    #[error("the receipt does not say confirmation {confirmation} matched in cycle {cycle}")]
    NotMatched {
        confirmation: ConfirmationId,
        cycle: CycleId,
    },
}

/// Why a cycle certificate is refused: the broken link, named.
#[derive(Debug, thiserror::Error)]
pub enum CycleCheckError {
    #[error("the document's format is {got:?}, not {CYCLE_CERTIFICATE_FORMAT:?}")]
    Format { got: String },
    #[error("the certificate is of chain {got:?}, not the genesis chain {expected:?}")]
    WrongChain { expected: String, got: String },
    #[error("{0}")]
    Epochs(ProofCheckError),
    #[error("{what}: {count}; the limit is {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("block {index} (height {height}): the quorum certificate is of epoch {epoch}, the epoch links reach epoch {known}")]
    UnknownEpoch {
        index: usize,
        height: Height,
        epoch: Epoch,
        known: Epoch,
    },
    #[error("block {index} (height {height}): the quorum certificate does not verify: {reason}")]
    Certificate {
        index: usize,
        height: Height,
        reason: CertificateError,
    },
    #[error("block {index} (height {height}): the quorum certificate holds {kind:?} votes; only finalize votes make a block final")]
    NotFinalization {
        index: usize,
        height: Height,
        kind: VoteKind,
    },
    #[error("block {index} (height {height}): the descendant at height {descendant} does not extend the chain")]
    BrokenDescendant {
        index: usize,
        height: Height,
        descendant: Height,
    },
    #[error("block {index} (height {height}): the quorum certificate is for block {certified} at height {certified_height}, not this header or its descendants")]
    OtherBlock {
        index: usize,
        height: Height,
        certified: Hash,
        certified_height: Height,
    },
    #[error("block {index} is of chain {got:?}, not the genesis chain")]
    BlockChain { index: usize, got: String },
    #[error(
        "confirmation {confirmation}: {count} submissions; a settled confirmation has exactly two"
    )]
    SubmissionCount {
        confirmation: ConfirmationId,
        count: usize,
    },
    #[error("confirmation {confirmation}, submission {side} (member {member}, block height {height}): {fault}")]
    Submission {
        confirmation: ConfirmationId,
        side: usize,
        member: MemberId,
        height: Height,
        fault: SubmissionFault,
    },
    #[error("confirmation {confirmation}: the submissions are not by its buyer {buyer} and seller {seller} (members {first} and {second})")]
    NotTheParties {
        confirmation: ConfirmationId,
        buyer: MemberId,
        seller: MemberId,
        first: MemberId,
        second: MemberId,
    },
    #[error("confirmation {confirmation}: the two submissions differ in {fields:?}")]
    TermsDiffer {
        confirmation: ConfirmationId,
        fields: Vec<ConfirmationField>,
    },
    #[error("confirmation {confirmation}: the first submission (height {first}) is after the second (height {second})")]
    SubmissionOrder {
        confirmation: ConfirmationId,
        first: Height,
        second: Height,
    },
    #[error("confirmation {confirmation} appears twice, or out of id order")]
    ConfirmationOrder { confirmation: ConfirmationId },
    #[error("confirmation {confirmation}: its pair or value is outside the genesis assets and bounds, so it cannot be netted")]
    NotNettable { confirmation: ConfirmationId },
    #[error("settlement: refers to block {index}, the document has {count}")]
    SettlementBlock { index: usize, count: usize },
    #[error("settlement: the event is not in the block: its path leads to receipts root {computed}, the header commits to {committed}")]
    SettlementNotInBlock { computed: Hash, committed: Hash },
    #[error("settlement: the proven receipt holds no CycleSettled event of cycle {cycle}")]
    NoSettlement { cycle: CycleId },
    #[error("{what}: refers to block {index}, the document has {count}")]
    RecordBlock {
        what: &'static str,
        index: usize,
        count: usize,
    },
    #[error("{what}: not hex: {reason}")]
    RecordHex { what: &'static str, reason: String },
    #[error("{what}: the Merkle proof under the state root of height {height} fails: {reason}")]
    RecordProof {
        what: &'static str,
        height: Height,
        reason: ProofError,
    },
    #[error("{what}: the proven value does not decode: {reason}")]
    RecordValue { what: &'static str, reason: String },
    #[error("the cycle record and the consortium record are proven at different blocks ({cycle} and {consortium})")]
    RecordsApart { cycle: usize, consortium: usize },
    #[error("cycle record: the record is of cycle {got}, not {expected}")]
    RecordOtherCycle { expected: CycleId, got: CycleId },
    #[error("cycle record: cycle {cycle} is {status}, not settled")]
    NotSettled { cycle: CycleId, status: String },
    #[error("cycle record: the cycle settled at height {record}, but the settlement event is at height {event}")]
    SettledElsewhere { record: Height, event: Height },
    #[error("confirmation {confirmation} involves member {member}, whom the chain removed from the cycle; its trades did not settle")]
    RemovedMemberTrade {
        confirmation: ConfirmationId,
        member: MemberId,
    },
    #[error("the chain settled {settled} matched confirmations in cycle {cycle}; the document proves {proven}")]
    Incomplete {
        cycle: CycleId,
        settled: u64,
        proven: usize,
    },
}

/// Checks each block's certification; returns the latest epoch used.
fn check_blocks(
    genesis: &Genesis,
    sets: &[ValidatorSet],
    blocks: &[CertifiedBlock],
) -> Result<Epoch, CycleCheckError> {
    let mut latest = Epoch(0);
    for (index, block) in blocks.iter().enumerate() {
        let header = &block.header;
        let height = header.height;
        if header.chain_id != genesis.chain_id {
            return Err(CycleCheckError::BlockChain {
                index,
                got: header.chain_id.0.clone(),
            });
        }
        let certificate = &block.certificate;
        let epoch = certificate.vote.epoch;
        let set = sets
            .get(epoch.0 as usize)
            .ok_or(CycleCheckError::UnknownEpoch {
                index,
                height,
                epoch,
                known: Epoch(sets.len() as u64 - 1),
            })?;
        seisan_crypto::verify_certificate_in(&genesis.domain(), set, certificate).map_err(
            |reason| CycleCheckError::Certificate {
                index,
                height,
                reason,
            },
        )?;
        if certificate.vote.kind != VoteKind::Finalize {
            return Err(CycleCheckError::NotFinalization {
                index,
                height,
                kind: certificate.vote.kind,
            });
        }
        if block.descendants.len() > MAX_CYCLE_DESCENDANTS {
            return Err(CycleCheckError::TooMany {
                what: "descendant headers of one block",
                count: block.descendants.len(),
                limit: MAX_CYCLE_DESCENDANTS,
            });
        }
        super::certificate::certified_through(
            header,
            &block.descendants,
            &genesis.chain_id,
            certificate,
        )
        .map_err(|link| match link {
            super::certificate::Link::Broken { descendant, .. } => {
                CycleCheckError::BrokenDescendant {
                    index,
                    height,
                    descendant,
                }
            }
            super::certificate::Link::OtherBlock { .. } => CycleCheckError::OtherBlock {
                index,
                height,
                certified: certificate.vote.block,
                certified_height: certificate.vote.height,
            },
        })?;
        latest = latest.max(epoch);
    }
    Ok(latest)
}

/// Checks one submission of `confirmation`; returns its terms.
fn check_submission<'a>(
    genesis: &Genesis,
    membership: &Membership,
    blocks: &[CertifiedBlock],
    cycle: CycleId,
    confirmation: ConfirmationId,
    side: usize,
    submission: &'a ProvenSubmission,
) -> Result<&'a TradeTerms, CycleCheckError> {
    let member = submission.transaction.tx.member;
    let fail = |height: Height, fault: SubmissionFault| CycleCheckError::Submission {
        confirmation,
        side,
        member,
        height,
        fault,
    };
    let block = blocks.get(submission.block).ok_or_else(|| {
        fail(
            Height(0),
            SubmissionFault::NoBlock {
                index: submission.block,
                count: blocks.len(),
            },
        )
    })?;
    let header = &block.header;
    let fail = |fault| fail(header.height, fault);
    let transaction = &submission.transaction;
    if transaction.tx.chain_id != genesis.chain_id {
        return Err(fail(SubmissionFault::WrongChain {
            got: transaction.tx.chain_id.0.clone(),
        }));
    }
    let (key, origin) = signing_key(genesis, membership, member)
        .ok_or_else(|| fail(SubmissionFault::UnknownMember { member }))?;
    seisan_crypto::verify_digest(
        &key,
        &transaction.tx.signing_digest(&genesis.hash()),
        &transaction.signature,
    )
    .map_err(|reason| {
        fail(SubmissionFault::NotSigned {
            member,
            origin,
            reason,
        })
    })?;
    let TxBody::Confirm(terms) = &transaction.tx.body else {
        return Err(fail(SubmissionFault::NotConfirmation {
            kind: transaction.tx.body.kind_name().to_string(),
        }));
    };
    let id = transaction.id();
    let computed = Hash::merkle_fold(tags::SEISAN_BLOCK_TXS_V1, id, &submission.tx_path);
    if computed != header.txs_root {
        return Err(fail(SubmissionFault::NotInBlock {
            computed,
            committed: header.txs_root,
        }));
    }
    let receipt = &submission.receipt;
    if receipt.tx_id != id {
        return Err(fail(SubmissionFault::OtherReceipt {
            receipt: receipt.tx_id,
            transaction: id,
        }));
    }
    let leaf = ReceiptLeaf::Receipt(receipt.clone());
    let computed = receipts_root_of(&leaf, &submission.receipt_path);
    if computed != header.receipts_root {
        return Err(fail(SubmissionFault::ReceiptNotInBlock {
            computed,
            committed: header.receipts_root,
        }));
    }
    if !receipt.is_applied() {
        return Err(fail(SubmissionFault::NotApplied {
            outcome: receipt.outcome.clone(),
        }));
    }
    let received = receipt.events.iter().any(|event| {
        matches!(event, Event::ConfirmationReceived { confirmation: id, member: by }
            if *id == confirmation && *by == member)
    });
    if !received {
        return Err(fail(SubmissionFault::NotReceived { confirmation }));
    }
    let matched = receipt.events.iter().any(|event| {
        matches!(event, Event::ConfirmationMatched { confirmation: id, cycle: at }
            if *id == confirmation && *at == cycle)
    });
    if side == 2 && !matched {
        return Err(fail(SubmissionFault::NotMatched {
            confirmation,
            cycle,
        }));
    }
    Ok(terms)
}

/// Checks one confirmation; returns the trade it settles.
fn check_confirmation(
    genesis: &Genesis,
    membership: &Membership,
    blocks: &[CertifiedBlock],
    cycle: CycleId,
    proven: &ProvenConfirmation,
) -> Result<ProvenTrade, CycleCheckError> {
    let confirmation = proven.confirmation;
    let [first, second] = proven.submissions.as_slice() else {
        return Err(CycleCheckError::SubmissionCount {
            confirmation,
            count: proven.submissions.len(),
        });
    };
    let first_terms = check_submission(genesis, membership, blocks, cycle, confirmation, 1, first)?;
    let second_terms =
        check_submission(genesis, membership, blocks, cycle, confirmation, 2, second)?;
    let fields = seisan_contracts::settlement::differing_fields(first_terms, second_terms);
    if !fields.is_empty() {
        return Err(CycleCheckError::TermsDiffer {
            confirmation,
            fields,
        });
    }
    let terms = first_terms;
    let (a, b) = (first.transaction.tx.member, second.transaction.tx.member);
    let parties = [terms.buyer, terms.seller];
    if a == b || !parties.contains(&a) || !parties.contains(&b) {
        return Err(CycleCheckError::NotTheParties {
            confirmation,
            buyer: terms.buyer,
            seller: terms.seller,
            first: a,
            second: b,
        });
    }
    let heights = (
        blocks[first.block].header.height,
        blocks[second.block].header.height,
    );
    if heights.0 > heights.1 {
        return Err(CycleCheckError::SubmissionOrder {
            confirmation,
            first: heights.0,
            second: heights.1,
        });
    }
    // `net_trades` nets only what a confirmation could have carried: genesis pairs
    // with a value that fits.
    let nettable = [terms.pair.base, terms.pair.quote]
        .iter()
        .all(|asset| genesis.asset(*asset).is_some())
        && trade_value(
            terms.quantity,
            terms.price,
            genesis
                .asset(terms.pair.base)
                .map_or(0, |asset| asset.scale),
        )
        .is_some();
    if !nettable {
        return Err(CycleCheckError::NotNettable { confirmation });
    }
    Ok(ProvenTrade {
        confirmation,
        terms: terms.clone(),
        heights,
    })
}

/// The proven `CycleSettled` event: (height, matched, netting).
fn check_settlement(
    blocks: &[CertifiedBlock],
    cycle: CycleId,
    settlement: &ProvenSettlement,
) -> Result<(Height, u64, Vec<AssetNetting>), CycleCheckError> {
    let block = blocks
        .get(settlement.block)
        .ok_or(CycleCheckError::SettlementBlock {
            index: settlement.block,
            count: blocks.len(),
        })?;
    let computed = receipts_root_of(&settlement.leaf, &settlement.path);
    if computed != block.header.receipts_root {
        return Err(CycleCheckError::SettlementNotInBlock {
            computed,
            committed: block.header.receipts_root,
        });
    }
    let events: &[Event] = match &settlement.leaf {
        ReceiptLeaf::Receipt(receipt) => &receipt.events,
        ReceiptLeaf::Event(event) => std::slice::from_ref(event),
    };
    events
        .iter()
        .find_map(|event| match event {
            Event::CycleSettled {
                cycle: settled,
                matched,
                netting,
            } if *settled == cycle => Some((block.header.height, *matched, netting.clone())),
            _ => None,
        })
        .ok_or(CycleCheckError::NoSettlement { cycle })
}

/// The value of `key` proven under the state root of one of `blocks`.
fn proven_value<T: serde::de::DeserializeOwned + Serialize>(
    what: &'static str,
    blocks: &[CertifiedBlock],
    key: &[u8],
    record: &ProvenRecord,
) -> Result<T, CycleCheckError> {
    let block = blocks
        .get(record.block)
        .ok_or(CycleCheckError::RecordBlock {
            what,
            index: record.block,
            count: blocks.len(),
        })?;
    let value = hex::decode(&record.value).map_err(|error| CycleCheckError::RecordHex {
        what,
        reason: error.to_string(),
    })?;
    seisan_state::verify_proof(block.header.state_root, key, Some(&value), &record.proof).map_err(
        |reason| CycleCheckError::RecordProof {
            what,
            height: block.header.height,
            reason,
        },
    )?;
    codec::decode(&value).map_err(|error| CycleCheckError::RecordValue {
        what,
        reason: error.to_string(),
    })
}

/// The proven cycle record.
fn check_record(
    blocks: &[CertifiedBlock],
    cycle: CycleId,
    record: &ProvenRecord,
) -> Result<Cycle, CycleCheckError> {
    let key = seisan_contracts::keys::cycle(cycle);
    let proven: Cycle = proven_value("cycle record", blocks, &key, record)?;
    if proven.id != cycle {
        return Err(CycleCheckError::RecordOtherCycle {
            expected: cycle,
            got: proven.id,
        });
    }
    Ok(proven)
}

/// The key `member` signs with: its genesis key, or for a member added by governance,
/// its key in the proven `membership`. Returns the key and where it came from.
fn signing_key(
    genesis: &Genesis,
    membership: &Membership,
    member: MemberId,
) -> Option<(seisan_types::PublicKey, &'static str)> {
    match genesis.member(member) {
        Some(entry) => Some((entry.public_key, "genesis")),
        None => membership
            .member(member)
            .map(|entry| (entry.member.public_key, "consortium-record")),
    }
}

/// Verifies a cycle certificate against `genesis`, with no node, and recomputes the
/// netting. `Ok` with differences means every proof holds but the chain settled
/// something other than the published rule gives.
pub fn verify_cycle_certificate(
    genesis: &Genesis,
    document: &CycleCertificate,
) -> Result<VerifiedCycle, CycleCheckError> {
    if document.format != CYCLE_CERTIFICATE_FORMAT {
        return Err(CycleCheckError::Format {
            got: document.format.clone(),
        });
    }
    if document.chain_id != genesis.chain_id {
        return Err(CycleCheckError::WrongChain {
            expected: genesis.chain_id.0.clone(),
            got: document.chain_id.0.clone(),
        });
    }
    for (what, count, limit) in [
        (
            "confirmations",
            document.confirmations.len(),
            MAX_CYCLE_CONFIRMATIONS,
        ),
        ("blocks", document.blocks.len(), MAX_CYCLE_BLOCKS),
    ] {
        if count > limit {
            return Err(CycleCheckError::TooMany { what, count, limit });
        }
    }
    // The validator set of every epoch up to the last link, each followed from genesis.
    let mut sets = vec![ValidatorSet::genesis(genesis)];
    for end in 1..=document.epochs.len() {
        sets.push(
            follow_epochs(genesis, &document.epochs[..end]).map_err(CycleCheckError::Epochs)?,
        );
    }
    let epoch = check_blocks(genesis, &sets, &document.blocks)?;
    let blocks = &document.blocks;
    let cycle = document.cycle;

    let (settled_height, settled_matched, settled_netting) =
        check_settlement(blocks, cycle, &document.settlement)?;
    let record = check_record(blocks, cycle, &document.record)?;
    // The members' keys from the same certified state as the cycle record.
    if document.consortium.block != document.record.block {
        return Err(CycleCheckError::RecordsApart {
            cycle: document.record.block,
            consortium: document.consortium.block,
        });
    }
    let consortium: Consortium = proven_value(
        "consortium record",
        blocks,
        &seisan_contracts::keys::consortium(),
        &document.consortium,
    )?;
    let membership = consortium.membership;
    let CycleStatus::Settled {
        settled_at_ms,
        height: record_height,
    } = record.status
    else {
        return Err(CycleCheckError::NotSettled {
            cycle,
            status: format!("{:?}", record.status),
        });
    };
    if record_height != settled_height {
        return Err(CycleCheckError::SettledElsewhere {
            record: record_height,
            event: settled_height,
        });
    }

    let mut trades = Vec::with_capacity(document.confirmations.len());
    let mut last: Option<ConfirmationId> = None;
    let removed: BTreeSet<MemberId> = record.removed.iter().map(|(member, _)| *member).collect();
    for proven in &document.confirmations {
        if last.is_some_and(|last| last >= proven.confirmation) {
            return Err(CycleCheckError::ConfirmationOrder {
                confirmation: proven.confirmation,
            });
        }
        last = Some(proven.confirmation);
        let trade = check_confirmation(genesis, &membership, blocks, cycle, proven)?;
        for member in [trade.terms.buyer, trade.terms.seller] {
            if removed.contains(&member) {
                return Err(CycleCheckError::RemovedMemberTrade {
                    confirmation: trade.confirmation,
                    member,
                });
            }
        }
        trades.push(trade);
    }
    // Distinct confirmations matched in this cycle, none of a removed member, as many
    // as the chain settled: these are all the trades it netted.
    if trades.len() as u64 != settled_matched {
        return Err(CycleCheckError::Incomplete {
            cycle,
            settled: settled_matched,
            proven: trades.len(),
        });
    }

    let terms: Vec<TradeTerms> = trades.iter().map(|trade| trade.terms.clone()).collect();
    let (positions, netting) = seisan_contracts::settlement::net_trades(genesis, &terms);
    let mut differences = Vec::new();
    compare_netting(
        "settled event",
        &netting,
        &settled_netting,
        &mut differences,
    );
    compare_netting("cycle record", &netting, &record.netting, &mut differences);
    compare_positions(&positions, &record.positions, &mut differences);
    if record.matched != settled_matched {
        differences.push(Difference {
            what: "cycle record: matched confirmations".into(),
            recomputed: trades.len().to_string(),
            settled: record.matched.to_string(),
        });
    }
    let added_signers = trades
        .iter()
        .flat_map(|trade| [trade.terms.buyer, trade.terms.seller])
        .filter(|member| genesis.member(*member).is_none())
        .collect();
    Ok(VerifiedCycle {
        cycle,
        settled_height,
        settled_at_ms,
        epoch,
        trades,
        removed: record.removed.clone(),
        membership,
        added_signers,
        positions,
        netting,
        differences,
    })
}

/// Every per-asset figure that differs.
fn compare_netting(
    source: &str,
    recomputed: &[AssetNetting],
    settled: &[AssetNetting],
    differences: &mut Vec<Difference>,
) {
    // Per asset: (gross, net, efficiency), each as printed.
    let by_asset = |entries: &[AssetNetting]| -> BTreeMap<AssetId, [String; 3]> {
        entries
            .iter()
            .map(|entry| {
                let figures = [
                    entry.gross.0.to_string(),
                    entry.net.0.to_string(),
                    entry.efficiency_bps.to_string(),
                ];
                (entry.asset, figures)
            })
            .collect()
    };
    let (recomputed, settled) = (by_asset(recomputed), by_asset(settled));
    let assets: BTreeSet<AssetId> = recomputed.keys().chain(settled.keys()).copied().collect();
    let absent = || {
        [
            "absent".to_string(),
            "absent".to_string(),
            "absent".to_string(),
        ]
    };
    for asset in assets {
        let ours = recomputed.get(&asset).cloned().unwrap_or_else(absent);
        let theirs = settled.get(&asset).cloned().unwrap_or_else(absent);
        for ((name, ours), theirs) in ["gross", "net", "efficiency_bps"]
            .into_iter()
            .zip(ours)
            .zip(theirs)
        {
            if ours != theirs {
                differences.push(Difference {
                    what: format!("{source}: netting of asset {asset}: {name}"),
                    recomputed: ours,
                    settled: theirs,
                });
            }
        }
    }
}

/// Every position figure that differs (whether a payment was locked is the chain's
/// business, not the netting's, so `covered` and `top_up` are not compared).
fn compare_positions(
    recomputed: &[NetPosition],
    settled: &[NetPosition],
    differences: &mut Vec<Difference>,
) {
    let by_key = |entries: &[NetPosition]| -> BTreeMap<(MemberId, AssetId), (u128, u128)> {
        entries
            .iter()
            .map(|entry| ((entry.member, entry.asset), (entry.receive.0, entry.pay.0)))
            .collect()
    };
    let (recomputed, settled) = (by_key(recomputed), by_key(settled));
    let keys: BTreeSet<(MemberId, AssetId)> =
        recomputed.keys().chain(settled.keys()).copied().collect();
    for key in keys {
        let (ours, theirs) = (
            recomputed.get(&key).copied().unwrap_or((0, 0)),
            settled.get(&key).copied().unwrap_or((0, 0)),
        );
        for (name, ours, theirs) in [("receive", ours.0, theirs.0), ("pay", ours.1, theirs.1)] {
            if ours != theirs {
                differences.push(Difference {
                    what: format!(
                        "cycle record: position of member {} in asset {}: {name}",
                        key.0, key.1
                    ),
                    recomputed: ours.to_string(),
                    settled: theirs.to_string(),
                });
            }
        }
    }
}

/// What the builder reads from a node's store (committed blocks, receipts and the
/// certification of each block).
pub trait CycleSource {
    fn block(&self, height: Height) -> Option<seisan_types::Block>;
    /// The block's receipts and block-level events.
    fn receipts(&self, height: Height) -> Option<(Vec<Receipt>, Vec<Event>)>;
    /// The headers above `height` up to its certified descendant, and the certificate.
    fn certification(
        &self,
        height: Height,
    ) -> Result<(Vec<BlockHeader>, QuorumCertificate), String>;
}

/// Why a node cannot build a cycle's certificate.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cycle {cycle} is not settled")]
    NotSettled { cycle: CycleId },
    #[error("cycle {cycle} settled {count} confirmations; a certificate carries at most {MAX_CYCLE_CONFIRMATIONS}")]
    TooLarge { cycle: CycleId, count: usize },
    #[error("block {height} is not stored on this node")]
    MissingBlock { height: Height },
    #[error("confirmation {confirmation}: block {height} holds no confirm transaction of member {member} with its terms")]
    MissingSubmission {
        confirmation: ConfirmationId,
        member: MemberId,
        height: Height,
    },
    #[error("block {height} holds no CycleSettled event of cycle {cycle}")]
    MissingSettlement { cycle: CycleId, height: Height },
    #[error("block {height}: {reason}")]
    Uncertified { height: Height, reason: String },
    #[error("the epoch links up to epoch {latest}: {reason}")]
    NoEpochLinks { latest: Epoch, reason: String },
}

/// The cycle record and the consortium record (value bytes and proof) under the state
/// root of `header`, a certified block (the node's tip).
pub struct TipRecords {
    pub header: BlockHeader,
    pub cycle: (Vec<u8>, StateProof),
    pub consortium: (Vec<u8>, StateProof),
}

/// Collects the certified blocks a certificate refers to, one entry per height.
struct Blocks<'a, S: CycleSource> {
    source: &'a S,
    index: BTreeMap<Height, usize>,
    list: Vec<CertifiedBlock>,
    /// Block bodies and receipts read so far (a block holds many submissions).
    bodies: BTreeMap<Height, (seisan_types::Block, Vec<Receipt>, Vec<Event>)>,
}

impl<'a, S: CycleSource> Blocks<'a, S> {
    fn body(
        &mut self,
        height: Height,
    ) -> Result<&(seisan_types::Block, Vec<Receipt>, Vec<Event>), BuildError> {
        if !self.bodies.contains_key(&height) {
            let block = self
                .source
                .block(height)
                .ok_or(BuildError::MissingBlock { height })?;
            let (receipts, events) = self
                .source
                .receipts(height)
                .ok_or(BuildError::MissingBlock { height })?;
            self.bodies.insert(height, (block, receipts, events));
        }
        Ok(&self.bodies[&height])
    }

    /// The index of `header`'s certified block, added if new.
    fn certified(&mut self, header: &BlockHeader) -> Result<usize, BuildError> {
        if let Some(index) = self.index.get(&header.height) {
            return Ok(*index);
        }
        let (descendants, certificate) =
            self.source
                .certification(header.height)
                .map_err(|reason| BuildError::Uncertified {
                    height: header.height,
                    reason,
                })?;
        self.list.push(CertifiedBlock {
            header: header.clone(),
            descendants,
            certificate,
        });
        self.index.insert(header.height, self.list.len() - 1);
        Ok(self.list.len() - 1)
    }
}

/// Builds the certificate of settled `cycle` (the node's side): its settled
/// confirmations in id order (`confirmations` holds at least those), the cycle and
/// consortium records proven at a certified block (`tip`), and the epoch links
/// `epochs` gives from genesis up to the latest epoch of any certificate used.
pub fn build_cycle_certificate<S: CycleSource>(
    source: &S,
    chain_id: ChainId,
    cycle: &Cycle,
    confirmations: &[seisan_types::clearing::Confirmation],
    tip: TipRecords,
    epochs: impl FnOnce(Epoch) -> Result<Vec<EpochLink>, String>,
) -> Result<CycleCertificate, BuildError> {
    use seisan_types::clearing::ConfirmationStatus;
    let CycleStatus::Settled { height, .. } = cycle.status else {
        return Err(BuildError::NotSettled { cycle: cycle.id });
    };
    let mut settled: Vec<&seisan_types::clearing::Confirmation> = confirmations
        .iter()
        .filter(|confirmation| {
            confirmation.status == ConfirmationStatus::Settled { cycle: cycle.id }
        })
        .collect();
    settled.sort_by_key(|confirmation| confirmation.id);
    if settled.len() > MAX_CYCLE_CONFIRMATIONS {
        return Err(BuildError::TooLarge {
            cycle: cycle.id,
            count: settled.len(),
        });
    }
    let mut blocks = Blocks {
        source,
        index: BTreeMap::new(),
        list: Vec::new(),
        bodies: BTreeMap::new(),
    };
    let mut proven = Vec::with_capacity(settled.len());
    for confirmation in settled {
        let mut submissions = Vec::with_capacity(2);
        for submission in &confirmation.submissions {
            let (block, receipts, events) = blocks.body(submission.height)?.clone();
            let position = block
                .txs
                .iter()
                .position(|tx| {
                    tx.tx.member == submission.member
                        && tx.tx.body == TxBody::Confirm(submission.terms.clone())
                        && receipts.iter().any(|receipt| {
                            receipt.tx_id == tx.id()
                                && receipt.events.iter().any(|event| {
                                    matches!(event, Event::ConfirmationReceived { confirmation: id, .. } if *id == confirmation.id)
                                })
                        })
                })
                .ok_or(BuildError::MissingSubmission {
                    confirmation: confirmation.id,
                    member: submission.member,
                    height: submission.height,
                })?;
            let transaction = block.txs[position].clone();
            let ids: Vec<Hash> = block.txs.iter().map(SignedTransaction::id).collect();
            let receipt_index = receipts
                .iter()
                .position(|receipt| receipt.tx_id == ids[position])
                .expect("found above");
            submissions.push(ProvenSubmission {
                block: blocks.certified(&block.header)?,
                tx_path: Hash::merkle_path(tags::SEISAN_BLOCK_TXS_V1, &ids, position),
                transaction,
                receipt: receipts[receipt_index].clone(),
                receipt_path: seisan_types::receipt::receipt_path(
                    &receipts,
                    &events,
                    receipt_index,
                ),
            });
        }
        proven.push(ProvenConfirmation {
            confirmation: confirmation.id,
            submissions,
        });
    }
    let settles = |events: &[Event]| {
        events
            .iter()
            .any(|event| matches!(event, Event::CycleSettled { cycle: id, .. } if *id == cycle.id))
    };
    let (block, receipts, events) = blocks.body(height)?.clone();
    let (index, leaf) = match receipts.iter().position(|receipt| settles(&receipt.events)) {
        Some(index) => (index, ReceiptLeaf::Receipt(receipts[index].clone())),
        None => {
            let position = events
                .iter()
                .position(|event| settles(std::slice::from_ref(event)))
                .ok_or(BuildError::MissingSettlement {
                    cycle: cycle.id,
                    height,
                })?;
            (
                receipts.len() + position,
                ReceiptLeaf::Event(events[position].clone()),
            )
        }
    };
    let settlement = ProvenSettlement {
        block: blocks.certified(&block.header)?,
        leaf,
        path: seisan_types::receipt::receipt_path(&receipts, &events, index),
    };
    let at = blocks.certified(&tip.header)?;
    let record = ProvenRecord {
        block: at,
        value: hex::encode(&tip.cycle.0),
        proof: tip.cycle.1,
    };
    let consortium = ProvenRecord {
        block: at,
        value: hex::encode(&tip.consortium.0),
        proof: tip.consortium.1,
    };
    let latest = latest_epoch(&blocks.list);
    let epochs = epochs(latest).map_err(|reason| BuildError::NoEpochLinks { latest, reason })?;
    Ok(CycleCertificate {
        format: CYCLE_CERTIFICATE_FORMAT.into(),
        chain_id,
        cycle: cycle.id,
        epochs,
        blocks: blocks.list,
        confirmations: proven,
        settlement,
        record,
        consortium,
    })
}

/// The latest epoch whose validators certified one of `blocks` (how many epoch links
/// the certificate needs).
fn latest_epoch(blocks: &[CertifiedBlock]) -> Epoch {
    blocks
        .iter()
        .map(|block| block.certificate.vote.epoch)
        .max()
        .unwrap_or(Epoch(0))
}

/// Whether the JSON file at `path` names itself a cycle certificate (so `seisan verify
/// FILE` can tell it from a trade certificate).
pub fn is_cycle_certificate(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|value| value["format"] == CYCLE_CERTIFICATE_FORMAT)
}

/// `seisan cycle verify <n> [--out FILE]`: fetches cycle `n`'s certificate from the
/// node, writes it when asked, and verifies it here against the user's genesis file.
/// `seisan cycle verify --file FILE` (or `seisan verify FILE`) verifies a saved one.
pub fn run(
    session: &mut super::session::Session,
    cycle: Option<u64>,
    file: Option<&std::path::Path>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use anyhow::{anyhow, bail, Context};
    let document: CycleCertificate = match (cycle, file) {
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).map_err(|error| {
                anyhow!(
                    "cycle certificate REFUSED: {} is not a cycle certificate: {error}",
                    path.display()
                )
            })?
        }
        (Some(cycle), None) => {
            let answer = session
                .node
                .get(&format!("/v1/cycles/{cycle}/certificate"))?;
            let document: CycleCertificate = serde_json::from_value(answer).map_err(|error| {
                anyhow!("cycle certificate REFUSED: the node's answer is not a cycle certificate: {error}")
            })?;
            if document.cycle.0 != cycle {
                bail!(
                    "cycle certificate REFUSED: asked for cycle {cycle}, the node answered cycle {}",
                    document.cycle
                );
            }
            if let Some(out) = out {
                let text =
                    serde_json::to_string_pretty(&document).expect("a certificate serializes");
                std::fs::write(out, format!("{text}\n"))
                    .with_context(|| format!("writing {}", out.display()))?;
                if !session.json {
                    println!(
                        "wrote the certificate of cycle {cycle} to {}",
                        out.display()
                    );
                }
            }
            document
        }
        (None, None) => bail!("name a cycle number, or a saved certificate with --file FILE"),
    };
    let json = session.json;
    let genesis = session.genesis()?;
    let verified = verify_cycle_certificate(genesis, &document)
        .map_err(|error| anyhow!("cycle certificate REFUSED: {error}"))?;
    report(genesis, &verified, json);
    if !verified.differences.is_empty() {
        bail!(
            "cycle {}: {} difference(s) between the netting recomputed here and what the chain settled",
            verified.cycle,
            verified.differences.len()
        );
    }
    Ok(())
}

/// Prints what a verified certificate proves (and any difference).
fn report(genesis: &Genesis, verified: &VerifiedCycle, json: bool) {
    use super::describe::{amount, asset_symbol, member_name, pair_name};
    use super::text::{format_time_ms, Align, Table};
    // No node is asked: names come from genesis and the proven consortium record.
    let name = |member| member_name(genesis, Some(&verified.membership), member);
    if json {
        let trades: Vec<serde_json::Value> = verified
            .trades
            .iter()
            .map(|trade| {
                serde_json::json!({
                    "confirmation": trade.confirmation,
                    "terms": trade.terms,
                    "heights": [trade.heights.0, trade.heights.1],
                })
            })
            .collect();
        let value = serde_json::json!({
            "cycle": verified.cycle,
            "verified": verified.differences.is_empty(),
            "settled_height": verified.settled_height,
            "settled_at_ms": verified.settled_at_ms,
            "epoch": verified.epoch,
            "trades": trades,
            "removed": verified.removed,
            "added_signers": verified.added_signers,
            "positions": verified.positions,
            "netting": verified.netting,
            "differences": verified.differences,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON serializes")
        );
        return;
    }
    let verdict = if verified.differences.is_empty() {
        "VERIFIED: the chain settled the netting recomputed here"
    } else {
        "DIFFERS from the netting recomputed here"
    };
    println!(
        "cycle {} {verdict} (genesis {})",
        verified.cycle, genesis.chain_id.0
    );
    println!(
        "  {} confirmations, each signed by both sides and in a finalized block; settled at height {} ({}), certificates up to epoch {}",
        verified.trades.len(),
        verified.settled_height,
        format_time_ms(verified.settled_at_ms),
        verified.epoch
    );
    if !verified.added_signers.is_empty() {
        let names: Vec<String> = verified.added_signers.iter().map(|m| name(*m)).collect();
        println!(
            "  not in genesis (added by governance), checked with their keys in the proven consortium record: {}",
            names.join(", ")
        );
    }
    for (member, reason) in &verified.removed {
        println!("  {} was removed from the cycle: {reason:?}", name(*member));
    }
    let mut table = Table::new(&[
        ("CONFIRMATION", Align::Right),
        ("REF", Align::Left),
        ("BUYER", Align::Left),
        ("SELLER", Align::Left),
        ("PAIR", Align::Left),
        ("QTY", Align::Right),
        ("PRICE", Align::Right),
        ("HEIGHTS", Align::Left),
    ]);
    for trade in &verified.trades {
        let terms = &trade.terms;
        table.row(vec![
            trade.confirmation.to_string(),
            terms.trade_ref.clone(),
            name(terms.buyer),
            name(terms.seller),
            pair_name(genesis, terms.pair),
            amount(genesis, terms.pair.base, terms.quantity),
            amount(genesis, terms.pair.quote, terms.price),
            format!("{}, {}", trade.heights.0, trade.heights.1),
        ]);
    }
    print!("{}", table.render());
    let mut table = Table::new(&[
        ("MEMBER", Align::Left),
        ("RECEIVES", Align::Right),
        ("PAYS", Align::Right),
    ]);
    for position in &verified.positions {
        table.row(vec![
            name(position.member),
            amount(genesis, position.asset, position.receive),
            amount(genesis, position.asset, position.pay),
        ]);
    }
    print!("{}", table.render());
    let mut table = Table::new(&[
        ("ASSET", Align::Left),
        ("GROSS", Align::Right),
        ("NET", Align::Right),
        ("SAVED", Align::Right),
    ]);
    for entry in &verified.netting {
        table.row(vec![
            asset_symbol(genesis, entry.asset),
            amount(genesis, entry.asset, entry.gross),
            amount(genesis, entry.asset, entry.net),
            format!(
                "{}.{:02}%",
                entry.efficiency_bps / 100,
                entry.efficiency_bps % 100
            ),
        ]);
    }
    print!("{}", table.render());
    for difference in &verified.differences {
        println!(
            "  DIFFERENCE {}: recomputed {}, settled {}",
            difference.what, difference.recomputed, difference.settled
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis_command::testnet_genesis;
    use seisan_crypto::Keypair;
    use seisan_state::{MemoryBackend, StageParent, StateDb};
    use seisan_types::clearing::{Confirmation, ConfirmationStatus, ConfirmationSubmission, Pair};
    use seisan_types::ids::{Nonce, View};
    use seisan_types::receipt::receipts_root;
    use seisan_types::tx::Transaction;
    use seisan_types::{Amount, Block, Vote};

    const ETH: u128 = 1_000_000_000_000_000_000;

    fn member(genesis: &Genesis, name: &str) -> MemberId {
        genesis.member_by_name(name).unwrap().0
    }

    /// Signs as `name` (its id in `members`) on the chain started from `chain`.
    fn sign_under(
        chain: &Genesis,
        genesis: &Genesis,
        name: &str,
        nonce: u64,
        body: TxBody,
    ) -> SignedTransaction {
        seisan_crypto::sign_transaction(
            &Keypair::dev(name),
            &chain.hash(),
            Transaction {
                chain_id: genesis.chain_id.clone(),
                member: member(genesis, name),
                nonce: Nonce(nonce),
                body,
            },
        )
    }

    /// Certifies `header` on the chain started from `genesis`.
    fn certify(
        genesis: &Genesis,
        header: &BlockHeader,
        epoch: Epoch,
        signers: [&str; 2],
    ) -> QuorumCertificate {
        let vote = Vote {
            chain_id: genesis.chain_id.clone(),
            epoch,
            view: header.view,
            height: header.height,
            block: header.hash(),
            kind: VoteKind::Finalize,
        };
        let votes: Vec<_> = signers
            .iter()
            .map(|name| {
                seisan_crypto::sign_vote(
                    &Keypair::dev(name),
                    &genesis.hash(),
                    member(genesis, name),
                    vote.clone(),
                )
            })
            .collect();
        seisan_crypto::assemble_certificate(vote, &votes)
    }

    /// A store holding a few blocks, each certified directly except the first, which
    /// is certified through its child (as a node may hold it).
    #[derive(Default)]
    struct Memory {
        blocks: BTreeMap<Height, (Block, Vec<Receipt>, Vec<Event>)>,
        certificates: BTreeMap<Height, QuorumCertificate>,
    }

    impl CycleSource for Memory {
        fn block(&self, height: Height) -> Option<Block> {
            self.blocks.get(&height).map(|(block, _, _)| block.clone())
        }

        fn receipts(&self, height: Height) -> Option<(Vec<Receipt>, Vec<Event>)> {
            self.blocks
                .get(&height)
                .map(|(_, receipts, events)| (receipts.clone(), events.clone()))
        }

        fn certification(
            &self,
            height: Height,
        ) -> Result<(Vec<BlockHeader>, QuorumCertificate), String> {
            let certificate = self.certificates[&height].clone();
            let descendants = (height.0 + 1..=certificate.vote.height.0)
                .map(|above| self.blocks[&Height(above)].0.header.clone())
                .collect();
            Ok((descendants, certificate))
        }
    }

    fn receipt(tx: &SignedTransaction, events: Vec<Event>) -> Receipt {
        Receipt {
            tx_id: tx.id(),
            member: tx.tx.member,
            nonce: tx.tx.nonce,
            kind: tx.tx.body.kind_name().into(),
            outcome: TxOutcome::Applied,
            events,
        }
    }

    /// The ring A -> B -> C -> A (exchange-a, exchange-b, bench-0), one ETH each way at
    /// 100, 110 and 120 JPY, confirmed in blocks 3 and 4, settled by a `close_cycle` in
    /// block 5, the record proven at block 6. `chain` may change what the chain settled
    /// (the record, and the settlement event made from it) and the confirmations' fate
    /// before the node builds the certificate. With `epoch_change`, block 5 ends epoch 0
    /// and block 6 is certified by epoch 1's validators (exchange-a and exchange-b).
    fn build_with(
        epoch_change: bool,
        chain: impl FnOnce(&mut Cycle, &mut Vec<Confirmation>),
    ) -> (Genesis, CycleCertificate) {
        let genesis = testnet_genesis(7101, 1);
        build_on(genesis.clone(), genesis, epoch_change, chain)
    }

    /// A cycle on the chain started from `chain_genesis` whose members, by the time of
    /// the cycle, are those of `genesis` (the same, or with bench-0 added since, as a
    /// governance change would have added it).
    fn build_on(
        chain_genesis: Genesis,
        genesis: Genesis,
        epoch_change: bool,
        chain: impl FnOnce(&mut Cycle, &mut Vec<Confirmation>),
    ) -> (Genesis, CycleCertificate) {
        let (a, b, c) = (
            member(&genesis, "exchange-a"),
            member(&genesis, "exchange-b"),
            member(&genesis, "bench-0"),
        );
        let pair = Pair {
            base: genesis.asset_by_symbol("ETH").unwrap().0,
            quote: genesis.asset_by_symbol("JPY").unwrap().0,
        };
        let ring = [
            ("R-1", "exchange-a", "exchange-b", a, b, 100),
            ("R-2", "exchange-b", "bench-0", b, c, 110),
            ("R-3", "bench-0", "exchange-a", c, a, 120),
        ];
        let terms: Vec<TradeTerms> = ring
            .iter()
            .map(|(trade_ref, _, _, seller, buyer, price)| TradeTerms {
                trade_ref: (*trade_ref).into(),
                buyer: *buyer,
                seller: *seller,
                pair,
                quantity: Amount(ETH),
                price: Amount(*price),
                trade_time_ms: 1_800_000_000_000,
            })
            .collect();
        let header = |height: u64,
                      parent: Hash,
                      txs: &[SignedTransaction],
                      receipts: &[Receipt],
                      events: &[Event],
                      state_root: Hash| BlockHeader {
            chain_id: genesis.chain_id.clone(),
            epoch: Epoch(0),
            height: Height(height),
            view: View(height + 1),
            parent,
            timestamp_ms: 1_800_000_000_000 + height * 1000,
            proposer: MemberId(0),
            txs_root: Block::compute_txs_root(txs),
            state_root,
            receipts_root: receipts_root(receipts, events),
            epoch_end: None,
            next_validators: None,
        };
        let mut memory = Memory::default();
        let mut confirmations = Vec::new();
        // Block 3: the sellers' submissions; block 4: the buyers', which match.
        let (mut first, mut second) = (Vec::new(), Vec::new());
        for (index, ((_, seller, buyer, seller_id, buyer_id, _), terms)) in
            ring.iter().zip(&terms).enumerate()
        {
            let id = ConfirmationId(index as u64 + 1);
            let tx = sign_under(
                &chain_genesis,
                &genesis,
                seller,
                1,
                TxBody::Confirm(terms.clone()),
            );
            first.push((
                tx.clone(),
                receipt(
                    &tx,
                    vec![Event::ConfirmationReceived {
                        confirmation: id,
                        member: *seller_id,
                    }],
                ),
            ));
            let tx = sign_under(
                &chain_genesis,
                &genesis,
                buyer,
                2,
                TxBody::Confirm(terms.clone()),
            );
            second.push((
                tx.clone(),
                receipt(
                    &tx,
                    vec![
                        Event::ConfirmationReceived {
                            confirmation: id,
                            member: *buyer_id,
                        },
                        Event::ConfirmationMatched {
                            confirmation: id,
                            cycle: CycleId(1),
                        },
                    ],
                ),
            ));
            confirmations.push(Confirmation {
                id,
                trade_ref: terms.trade_ref.clone(),
                parties: ((*seller_id).min(*buyer_id), (*seller_id).max(*buyer_id)),
                submissions: vec![
                    ConfirmationSubmission {
                        member: *seller_id,
                        terms: terms.clone(),
                        height: Height(3),
                    },
                    ConfirmationSubmission {
                        member: *buyer_id,
                        terms: terms.clone(),
                        height: Height(4),
                    },
                ],
                status: ConfirmationStatus::Settled { cycle: CycleId(1) },
            });
        }
        let (positions, netting) = seisan_contracts::settlement::net_trades(&genesis, &terms);
        let mut cycle = Cycle {
            id: CycleId(1),
            opened_at_ms: 0,
            status: CycleStatus::Settled {
                settled_at_ms: 1_800_000_005_000,
                height: Height(5),
            },
            matched: 3,
            positions,
            removed: vec![],
            netting,
            report: vec![],
        };
        chain(&mut cycle, &mut confirmations);
        let close = sign_under(
            &chain_genesis,
            &genesis,
            "clearing-house",
            1,
            TxBody::CloseCycle,
        );
        let settle = receipt(
            &close,
            vec![Event::CycleSettled {
                cycle: CycleId(1),
                matched: cycle.matched,
                netting: cycle.netting.clone(),
            }],
        );
        // Block 5 settles: the clearing house's close, or (when the chain removed a
        // short member) block-level work at the top-up deadline.
        let block_5 = if cycle.removed.is_empty() {
            let closed = Event::CycleClosed {
                cycle: CycleId(1),
                matched: cycle.matched,
                short: vec![],
            };
            (5, vec![(close, settle)], vec![closed])
        } else {
            (5, vec![], settle.events)
        };
        let db = StateDb::open(MemoryBackend::new()).unwrap();
        let mut writes = seisan_contracts::genesis_writes(&genesis);
        let key = seisan_contracts::keys::cycle(CycleId(1));
        let value = codec::encode(&cycle);
        writes.put(key.clone(), value.clone());
        let staged = db.stage(StageParent::Committed, writes).unwrap();
        db.commit(&staged, vec![]).unwrap();
        let (proven_value, proof) = db.prove(&key, Height(0)).unwrap();
        assert_eq!(proven_value.as_deref(), Some(value.as_slice()));
        let (consortium, consortium_proof) = db
            .prove(&seisan_contracts::keys::consortium(), Height(0))
            .unwrap();

        let next_set = ValidatorSet {
            epoch: Epoch(1),
            quorum: 2,
            validators: ["exchange-a", "exchange-b"]
                .iter()
                .map(|name| (member(&genesis, name), Keypair::dev(name).public_key()))
                .collect(),
        };
        let mut parent = Hash([2; 32]);
        for (height, pairs, events) in [
            (3, first, vec![]),
            (4, second, vec![]),
            block_5,
            (6, vec![], vec![]),
        ] {
            let (txs, receipts): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
            let root = if height == 6 {
                staged.root
            } else {
                Hash([9; 32])
            };
            let mut block = Block {
                header: header(height, parent, &txs, &receipts, &events, root),
                txs,
            };
            let (mut epoch, mut signers) = (Epoch(0), ["clearing-house", "exchange-b"]);
            if epoch_change && height == 5 {
                block.header.next_validators = Some(next_set.hash());
            }
            if epoch_change && height == 6 {
                block.header.epoch = Epoch(1);
                (epoch, signers) = (Epoch(1), ["exchange-a", "exchange-b"]);
            }
            parent = block.header.hash();
            memory.certificates.insert(
                Height(height),
                certify(&chain_genesis, &block.header, epoch, signers),
            );
            memory
                .blocks
                .insert(Height(height), (block, receipts, events));
        }
        // Block 3 is certified through its child.
        let child = memory.certificates[&Height(4)].clone();
        memory.certificates.insert(Height(3), child);
        let record_header = memory.blocks[&Height(6)].0.header.clone();
        let document = build_cycle_certificate(
            &memory,
            genesis.chain_id.clone(),
            &cycle,
            &confirmations,
            TipRecords {
                header: record_header,
                cycle: (value, proof),
                consortium: (consortium.unwrap(), consortium_proof),
            },
            |epoch| {
                if !epoch_change {
                    assert_eq!(epoch, Epoch(0));
                    return Ok(vec![]);
                }
                assert_eq!(epoch, Epoch(1));
                Ok(vec![EpochLink {
                    set: next_set.clone(),
                    last_header: memory.blocks[&Height(5)].0.header.clone(),
                    certificate: memory.certificates[&Height(5)].clone(),
                    seals: vec![],
                }])
            },
        )
        .unwrap();
        (chain_genesis, document)
    }

    fn genuine() -> (Genesis, CycleCertificate) {
        build_with(false, |_, _| {})
    }

    fn refusal(genesis: &Genesis, document: &CycleCertificate) -> String {
        verify_cycle_certificate(genesis, document)
            .expect_err("a tampered certificate verified")
            .to_string()
    }

    #[test]
    fn a_genuine_ring_cycle_verifies_and_recomputes_the_netting() {
        let (genesis, document) = genuine();
        let text = serde_json::to_string_pretty(&document).unwrap();
        let parsed: CycleCertificate = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, document);
        assert_eq!(document.blocks.len(), 4);
        assert_eq!(document.blocks[0].descendants.len(), 1);
        let verified = verify_cycle_certificate(&genesis, &parsed).unwrap();
        assert_eq!(verified.differences, vec![]);
        assert_eq!(verified.trades.len(), 3);
        assert_eq!(verified.settled_height, Height(5));
        assert_eq!(verified.trades[1].heights, (Height(3), Height(4)));
        // ETH nets to nothing around the ring; in JPY, A pays 120 and receives 100.
        let (a, b, c) = (
            member(&genesis, "exchange-a"),
            member(&genesis, "exchange-b"),
            member(&genesis, "bench-0"),
        );
        let jpy = genesis.asset_by_symbol("JPY").unwrap().0;
        let figures: Vec<(MemberId, AssetId, u128, u128)> = verified
            .positions
            .iter()
            .map(|p| (p.member, p.asset, p.receive.0, p.pay.0))
            .collect();
        assert_eq!(
            figures,
            vec![(a, jpy, 0, 20), (b, jpy, 10, 0), (c, jpy, 10, 0)]
        );
        let eth = genesis.asset_by_symbol("ETH").unwrap().0;
        let eth_netting = verified.netting.iter().find(|n| n.asset == eth).unwrap();
        assert_eq!(
            (
                eth_netting.gross,
                eth_netting.net,
                eth_netting.efficiency_bps
            ),
            (Amount(3 * ETH), Amount(0), 10_000)
        );
    }

    #[test]
    fn a_chain_that_settled_another_netting_shows_each_difference() {
        let (genesis, document) = build_with(false, |cycle, _| {
            cycle.positions[0].pay = Amount(25);
            cycle.netting[1].net = Amount(25);
        });
        let verified = verify_cycle_certificate(&genesis, &document).unwrap();
        let whats: Vec<&str> = verified
            .differences
            .iter()
            .map(|difference| difference.what.as_str())
            .collect();
        let a = member(&genesis, "exchange-a");
        assert_eq!(
            whats,
            vec![
                "settled event: netting of asset 1: net",
                "cycle record: netting of asset 1: net",
                &format!("cycle record: position of member {a} in asset 1: pay"),
            ],
            "{:?}",
            verified.differences
        );
        assert_eq!(verified.differences[2].recomputed, "20");
        assert_eq!(verified.differences[2].settled, "25");
    }

    #[test]
    fn an_altered_confirmation_fails_naming_it() {
        let (genesis, genuine) = genuine();
        let b = member(&genesis, "exchange-b");
        let set_quantity = |submission: &mut ProvenSubmission, quantity| {
            let TxBody::Confirm(terms) = &mut submission.transaction.tx.body else {
                panic!("a confirmation");
            };
            terms.quantity = Amount(quantity);
        };

        // A changed quantity: the member's signature no longer covers it.
        let mut document = genuine.clone();
        set_quantity(&mut document.confirmations[0].submissions[1], 2 * ETH);
        let reason = refusal(&genesis, &document);
        assert!(
            reason.starts_with(&format!("confirmation 1, submission 2 (member {b}, block height 4): signature of member {b} does not verify")),
            "{reason}"
        );

        // A changed signature.
        let mut document = genuine.clone();
        document.confirmations[1].submissions[0]
            .transaction
            .signature
            .0[3] ^= 1;
        let reason = refusal(&genesis, &document);
        assert!(
            reason.starts_with("confirmation 2, submission 1"),
            "{reason}"
        );
        assert!(reason.contains("signature of member"), "{reason}");

        // Both sides' terms changed and signed again (by keys the members hold): those
        // are not the transactions the blocks hold.
        let mut document = genuine.clone();
        for (side, name) in [(0, "exchange-a"), (1, "exchange-b")] {
            let submission = &mut document.confirmations[0].submissions[side];
            set_quantity(submission, 2 * ETH);
            let tx = submission.transaction.tx.clone();
            submission.transaction =
                seisan_crypto::sign_transaction(&Keypair::dev(name), &genesis.hash(), tx);
        }
        let reason = refusal(&genesis, &document);
        assert!(
            reason.contains("the transaction is not in the block"),
            "{reason}"
        );

        // A path that leads elsewhere; a receipt that says something else.
        let mut document = genuine.clone();
        document.confirmations[2].submissions[0].tx_path.clear();
        assert!(refusal(&genesis, &document).contains("the transaction is not in the block"));
        let mut document = genuine.clone();
        document.confirmations[2].submissions[1]
            .receipt
            .events
            .pop();
        assert!(refusal(&genesis, &document).contains("the receipt is not in the block"));

        // The submissions swapped: the second one must be the match.
        let mut document = genuine.clone();
        document.confirmations[0].submissions.swap(0, 1);
        assert!(refusal(&genesis, &document).contains("matched in cycle 1"));
        let mut document = genuine.clone();
        document.confirmations[0].submissions.pop();
        assert!(refusal(&genesis, &document).contains("1 submissions"));
    }

    #[test]
    fn a_missing_or_repeated_confirmation_fails() {
        let (genesis, genuine) = genuine();
        let mut document = genuine.clone();
        document.confirmations.remove(1);
        let reason = refusal(&genesis, &document);
        assert!(
            reason.contains(
                "the chain settled 3 matched confirmations in cycle 1; the document proves 2"
            ),
            "{reason}"
        );
        let mut document = genuine.clone();
        let repeated = document.confirmations[0].clone();
        document.confirmations[2] = repeated;
        assert!(refusal(&genesis, &document).contains("twice, or out of id order"));
    }

    #[test]
    fn a_broken_certificate_settlement_or_record_fails_with_its_reason() {
        let (genesis, genuine) = genuine();
        let mut document = genuine.clone();
        document.blocks[1].certificate.signatures[0].1 .0[0] ^= 1;
        let reason = refusal(&genesis, &document);
        assert!(
            reason.contains("(height 4): the quorum certificate does not verify"),
            "{reason}"
        );

        let mut document = genuine.clone();
        document.blocks[3].header.state_root = Hash([7; 32]);
        let reason = refusal(&genesis, &document);
        assert!(
            reason.contains("(height 6): the quorum certificate is for block"),
            "{reason}"
        );

        let mut document = genuine.clone();
        document.blocks[0].descendants.clear();
        assert!(refusal(&genesis, &document)
            .contains("(height 3): the quorum certificate is for block"));

        let mut document = genuine.clone();
        if let ReceiptLeaf::Receipt(receipt) = &mut document.settlement.leaf {
            if let Event::CycleSettled { netting, .. } = &mut receipt.events[0] {
                netting[1].net = Amount(0);
            }
        }
        assert!(refusal(&genesis, &document).contains("settlement: the event is not in the block"));

        let mut document = genuine.clone();
        let mut record: Cycle =
            codec::decode(&hex::decode(&document.record.value).unwrap()).unwrap();
        record.positions[0].pay = Amount(25);
        document.record.value = hex::encode(codec::encode(&record));
        assert!(refusal(&genesis, &document).contains("cycle record: the Merkle proof"));

        let mut document = genuine.clone();
        document.record.block = 9;
        assert!(refusal(&genesis, &document).contains("cycle record: refers to block 9"));

        let mut document = genuine.clone();
        document.format = "seisan-trade-certificate-v1".into();
        assert!(refusal(&genesis, &document).contains("format"));

        let mut other = genesis.clone();
        other.chain_id = ChainId("other-chain".into());
        assert!(refusal(&other, &genuine).contains("not the genesis chain"));
    }

    #[test]
    fn blocks_of_two_epochs_verify_through_the_epoch_link() {
        let (genesis, document) = build_with(true, |_, _| {});
        assert_eq!(document.epochs.len(), 1);
        let verified = verify_cycle_certificate(&genesis, &document).unwrap();
        assert_eq!(verified.epoch, Epoch(1));
        assert_eq!(verified.differences, vec![]);

        // Without the link, epoch 1's certificate has no set to check it against.
        let mut broken = document.clone();
        broken.epochs.clear();
        let reason = refusal(&genesis, &broken);
        assert!(
            reason.contains(
                "(height 6): the quorum certificate is of epoch 1, the epoch links reach epoch 0"
            ),
            "{reason}"
        );
        // A link naming another set does not match the hash block 5 committed to.
        let mut broken = document;
        broken.epochs[0].set.quorum = 1;
        let reason = refusal(&genesis, &broken);
        assert!(reason.contains("epoch link 0"), "{reason}");
    }

    #[test]
    fn a_removed_members_trades_are_left_out_and_may_not_be_slipped_back_in() {
        // bench-0 was short at the deadline: its two trades left the cycle, and R-1
        // alone was netted and settled.
        let removal = |cycle: &mut Cycle, confirmations: &mut Vec<Confirmation>| {
            let bench = confirmations[1].submissions[1].member;
            let jpy = confirmations[0].submissions[0].terms.pair.quote;
            let reason = RemovalReason::ShortAtDeadline { asset: jpy };
            for confirmation in &mut confirmations[1..] {
                confirmation.status = ConfirmationStatus::Removed {
                    cycle: CycleId(1),
                    reason,
                };
            }
            let terms = vec![confirmations[0].submissions[0].terms.clone()];
            let genesis = testnet_genesis(7101, 1);
            let (positions, netting) = seisan_contracts::settlement::net_trades(&genesis, &terms);
            cycle.matched = 1;
            cycle.removed = vec![(bench, reason)];
            cycle.positions = positions;
            cycle.netting = netting;
        };
        let (genesis, document) = build_with(false, removal);
        assert_eq!(document.confirmations.len(), 1);
        // Settled by block-level work at the deadline: the event is a leaf of its own.
        assert!(matches!(
            document.settlement.leaf,
            ReceiptLeaf::Event(Event::CycleSettled { matched: 1, .. })
        ));
        let verified = verify_cycle_certificate(&genesis, &document).unwrap();
        assert_eq!(verified.differences, vec![]);
        assert_eq!(verified.trades.len(), 1);
        assert_eq!(verified.removed.len(), 1);

        // A removed member's confirmation offered as settled is refused (blocks 3 and 4
        // are the same in both builds, at the same indexes).
        let (_, full) = genuine();
        assert_eq!(document.blocks[..2], full.blocks[..2]);
        let mut document = document;
        document.confirmations.push(full.confirmations[1].clone());
        let reason = refusal(&genesis, &document);
        assert!(
            reason.contains("whom the chain removed from the cycle"),
            "{reason}"
        );
    }

    #[test]
    fn a_member_added_after_genesis_is_checked_with_its_proven_key() {
        // The chain's genesis did not name bench-0; a governance change added it (the
        // consortium record lists it): its key comes from that record, proven at the
        // same certified block as the cycle record.
        let older = testnet_genesis(7101, 0);
        assert!(older.member_by_name("bench-0").is_none());
        let (_, document) = build_on(older.clone(), testnet_genesis(7101, 1), false, |_, _| {});
        let verified = verify_cycle_certificate(&older, &document).unwrap();
        assert_eq!(verified.differences, vec![]);
        let bench = verified
            .membership
            .members
            .iter()
            .position(|entry| entry.member.name == "bench-0")
            .unwrap();
        assert_eq!(
            verified.added_signers,
            BTreeSet::from([MemberId(bench as u32)])
        );

        // Checked against any other genesis (here the one that names bench-0 from the
        // start), nothing verifies: every signature is bound to the genesis hash.
        let reason = refusal(&testnet_genesis(7101, 1), &document);
        assert!(reason.contains("another genesis"), "{reason}");

        // A changed key in the consortium record breaks its proof.
        let mut broken = document.clone();
        let mut consortium: Consortium =
            codec::decode(&hex::decode(&broken.consortium.value).unwrap()).unwrap();
        consortium.membership.members[bench].member.public_key =
            Keypair::dev("someone-else").public_key();
        broken.consortium.value = hex::encode(codec::encode(&consortium));
        let reason = refusal(&older, &broken);
        assert!(
            reason.contains("consortium record: the Merkle proof"),
            "{reason}"
        );

        // The consortium record must be of the cycle record's block.
        let mut broken = document;
        broken.consortium.block = 0;
        let reason = refusal(&older, &broken);
        assert!(reason.contains("proven at different blocks"), "{reason}");
    }
}
