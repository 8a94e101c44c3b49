//! Settlement certificates: one fill, proven to anyone who holds only the genesis file.
//!
//! The chain of trust: genesis names the validators; the epoch links (as in a balance
//! proof, [`super::proof`]) lead to the set that signed; a quorum certificate of
//! finalize votes by that set certifies a block (the fill's block, or a descendant whose
//! headers link back to it by parent hashes); that block's header commits to its
//! receipts (`receipts_root`); the certificate carries the receipt that holds the fill
//! event with its Merkle path. The transaction that caused the fill (the order, quote
//! acceptance or confirmation) is proven the same way under the header's `txs_root`,
//! and is the one the receipt names. Every field of the fill is compared with the
//! proven event, so a changed field fails with its name.

use super::proof::{follow_epochs, EpochLink, ProofCheckError};
use seisan_crypto::CertificateError;
use seisan_types::clearing::TradeId;
use seisan_types::hash::Hash;
use seisan_types::ids::{ChainId, Epoch, Height, MemberId};
use seisan_types::receipt::{receipts_root_of, Event, Receipt, ReceiptLeaf};
use seisan_types::{
    tags, Block, BlockHeader, Genesis, QuorumCertificate, SignedTransaction, VoteKind,
};

/// The most descendant headers between a fill's block and the certified one (a node
/// keeps one certificate per block, for it or a close descendant).
pub const MAX_CERTIFICATE_DESCENDANTS: usize = 64;

/// The document (nothing in it is trusted yet) is the API's own type: the node serves
/// it and this module verifies it.
pub use seisan_api::v1::{Fill, Leg, Source, TradeCertificate, TRADE_CERTIFICATE_FORMAT};

/// What a verified certificate proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTrade {
    pub fill: Fill,
    pub block: Hash,
    pub certified_height: Height,
    pub epoch: Epoch,
    pub signers: Vec<MemberId>,
    /// The source transaction's id and kind, when the fill came from one.
    pub source: Option<(Hash, String)>,
}

/// Why a certificate is refused: the broken link, or the field that differs.
#[derive(Debug, thiserror::Error)]
pub enum TradeCheckError {
    #[error("the document's format is {got:?}, not {TRADE_CERTIFICATE_FORMAT:?}")]
    Format { got: String },
    #[error("the certificate is of chain {got:?}, not the genesis chain {expected:?}")]
    WrongChain { expected: String, got: String },
    #[error("{0}")]
    Epochs(ProofCheckError),
    #[error("the quorum certificate does not verify: {reason}")]
    Certificate { reason: CertificateError },
    #[error("the quorum certificate holds {kind:?} votes; only finalize votes make a block final")]
    NotFinalization { kind: VoteKind },
    #[error("{count} descendant headers; the limit is {MAX_CERTIFICATE_DESCENDANTS}")]
    TooManyDescendants { count: usize },
    #[error("descendant header at height {height} does not extend the chain at height {expected_parent_height}")]
    BrokenDescendant {
        height: Height,
        expected_parent_height: Height,
    },
    #[error("the quorum certificate is for block {certified} at height {certified_height}, not the header (or its descendants) {block} at height {height}")]
    OtherBlock {
        certified: Hash,
        certified_height: Height,
        block: Hash,
        height: Height,
    },
    #[error("the receipt is not in the block: its path leads to receipts root {computed}, the header commits to {committed}")]
    ReceiptNotInBlock { computed: Hash, committed: Hash },
    #[error("the proven receipt holds no fill of trade {trade}")]
    NoFill { trade: TradeId },
    #[error("fill field {field} is {document} in the document but {proven} in the proven receipt")]
    FillMismatch {
        field: &'static str,
        document: String,
        proven: String,
    },
    #[error("the source transaction {got} is not the one the receipt names ({expected})")]
    SourceNotReceipt { expected: Hash, got: Hash },
    #[error("the source transaction is not in the block: its path leads to transactions root {computed}, the header commits to {committed}")]
    SourceNotInBlock { computed: Hash, committed: Hash },
    #[error("the receipt belongs to a transaction, but the document names no source")]
    MissingSource,
    #[error("a block-level event has no source transaction, but the document names one")]
    UnexpectedSource,
}

/// Builds the certificate of `trade` from a committed block, its receipts and its
/// finalization (the node's side). `None` if the block holds no fill of `trade`.
#[allow(clippy::too_many_arguments)]
pub fn build_trade_certificate(
    trade: TradeId,
    block: &Block,
    receipts: &[Receipt],
    events: &[Event],
    descendants: Vec<BlockHeader>,
    certificate: QuorumCertificate,
    epochs: Vec<EpochLink>,
) -> Option<TradeCertificate> {
    let in_receipt = receipts
        .iter()
        .position(|receipt| fill_of(&receipt.events, trade).is_some());
    let (index, leaf, source) = match in_receipt {
        Some(index) => {
            let receipt = receipts[index].clone();
            let position = block.txs.iter().position(|tx| tx.id() == receipt.tx_id)?;
            let ids: Vec<Hash> = block.txs.iter().map(SignedTransaction::id).collect();
            let source = Source {
                transaction: block.txs[position].clone(),
                path: Hash::merkle_path(tags::SEISAN_BLOCK_TXS_V1, &ids, position),
            };
            (index, ReceiptLeaf::Receipt(receipt), Some(source))
        }
        None => {
            let position = events
                .iter()
                .position(|event| fill_of(std::slice::from_ref(event), trade).is_some())?;
            (
                receipts.len() + position,
                ReceiptLeaf::Event(events[position].clone()),
                None,
            )
        }
    };
    let event = match &leaf {
        ReceiptLeaf::Receipt(receipt) => fill_of(&receipt.events, trade),
        ReceiptLeaf::Event(event) => fill_of(std::slice::from_ref(event), trade),
    }
    .expect("found above");
    Some(TradeCertificate {
        format: TRADE_CERTIFICATE_FORMAT.into(),
        chain_id: block.header.chain_id.clone(),
        fill: fill_from(event, &block.header).expect("a fill event"),
        source,
        receipt: leaf,
        receipt_path: seisan_types::receipt::receipt_path(receipts, events, index),
        header: block.header.clone(),
        descendants,
        certificate,
        epochs,
    })
}

/// The fill event of `trade` among `events`.
fn fill_of(events: &[Event], trade: TradeId) -> Option<&Event> {
    events
        .iter()
        .find(|event| matches!(event, Event::Fill { trade: id, .. } if *id == trade))
}

/// The reader's form of a fill event in a block with `header`.
fn fill_from(event: &Event, header: &BlockHeader) -> Option<Fill> {
    let Event::Fill {
        trade,
        pair,
        buyer,
        seller,
        quantity,
        price,
        value,
    } = event
    else {
        return None;
    };
    Some(Fill {
        trade: *trade,
        pair: *pair,
        buyer: *buyer,
        seller: *seller,
        quantity: *quantity,
        price: *price,
        base_leg: Leg {
            asset: pair.base,
            from: *seller,
            to: *buyer,
            amount: *quantity,
        },
        quote_leg: Leg {
            asset: pair.quote,
            from: *buyer,
            to: *seller,
            amount: *value,
        },
        height: header.height,
        timestamp_ms: header.timestamp_ms,
    })
}

/// Verifies a trade certificate against `genesis`, with no node.
pub fn verify_trade_certificate(
    genesis: &Genesis,
    document: &TradeCertificate,
) -> Result<VerifiedTrade, TradeCheckError> {
    if document.format != TRADE_CERTIFICATE_FORMAT {
        return Err(TradeCheckError::Format {
            got: document.format.clone(),
        });
    }
    let header = &document.header;
    for chain in [&document.chain_id, &header.chain_id] {
        if *chain != genesis.chain_id {
            return Err(TradeCheckError::WrongChain {
                expected: genesis.chain_id.0.clone(),
                got: chain.0.clone(),
            });
        }
    }
    // The validator set that signed, followed from genesis.
    let set = follow_epochs(genesis, &document.epochs).map_err(TradeCheckError::Epochs)?;
    let certificate = &document.certificate;
    seisan_crypto::verify_certificate_in(&genesis.domain(), &set, certificate)
        .map_err(|reason| TradeCheckError::Certificate { reason })?;
    if certificate.vote.kind != VoteKind::Finalize {
        return Err(TradeCheckError::NotFinalization {
            kind: certificate.vote.kind,
        });
    }
    // The certified block is the header or a descendant linked to it by parent hashes.
    if document.descendants.len() > MAX_CERTIFICATE_DESCENDANTS {
        return Err(TradeCheckError::TooManyDescendants {
            count: document.descendants.len(),
        });
    }
    certified_through(
        header,
        &document.descendants,
        &genesis.chain_id,
        certificate,
    )
    .map_err(|link| match link {
        Link::Broken {
            descendant,
            parent_height,
        } => TradeCheckError::BrokenDescendant {
            height: descendant,
            expected_parent_height: parent_height,
        },
        Link::OtherBlock { block, height } => TradeCheckError::OtherBlock {
            certified: certificate.vote.block,
            certified_height: certificate.vote.height,
            block,
            height,
        },
    })?;
    // The receipt is in the certified block.
    let computed = receipts_root_of(&document.receipt, &document.receipt_path);
    if computed != header.receipts_root {
        return Err(TradeCheckError::ReceiptNotInBlock {
            computed,
            committed: header.receipts_root,
        });
    }
    let trade = document.fill.trade;
    let (event, source) = match &document.receipt {
        ReceiptLeaf::Receipt(receipt) => {
            let event = fill_of(&receipt.events, trade).ok_or(TradeCheckError::NoFill { trade })?;
            let source = document
                .source
                .as_ref()
                .ok_or(TradeCheckError::MissingSource)?;
            let id = source.transaction.id();
            if id != receipt.tx_id {
                return Err(TradeCheckError::SourceNotReceipt {
                    expected: receipt.tx_id,
                    got: id,
                });
            }
            let computed = Hash::merkle_fold(tags::SEISAN_BLOCK_TXS_V1, id, &source.path);
            if computed != header.txs_root {
                return Err(TradeCheckError::SourceNotInBlock {
                    computed,
                    committed: header.txs_root,
                });
            }
            (event, Some((id, receipt.kind.clone())))
        }
        ReceiptLeaf::Event(event) => {
            if document.source.is_some() {
                return Err(TradeCheckError::UnexpectedSource);
            }
            (
                fill_of(std::slice::from_ref(event), trade)
                    .ok_or(TradeCheckError::NoFill { trade })?,
                None,
            )
        }
    };
    let proven = fill_from(event, header).expect("fill_of returns fills");
    compare_fills(&document.fill, &proven)?;
    Ok(VerifiedTrade {
        fill: proven,
        block: header.hash(),
        certified_height: certificate.vote.height,
        epoch: set.epoch,
        signers: certificate
            .signatures
            .iter()
            .map(|(signer, _)| *signer)
            .collect(),
        source,
    })
}

/// The first field in which the document's fill differs from the proven one.
fn compare_fills(document: &Fill, proven: &Fill) -> Result<(), TradeCheckError> {
    let differ = |field: &'static str, document: String, proven: String| {
        Err(TradeCheckError::FillMismatch {
            field,
            document,
            proven,
        })
    };
    let fields: [(&'static str, String, String); 16] = [
        (
            "trade",
            document.trade.to_string(),
            proven.trade.to_string(),
        ),
        (
            "pair.base",
            document.pair.base.0.to_string(),
            proven.pair.base.0.to_string(),
        ),
        (
            "pair.quote",
            document.pair.quote.0.to_string(),
            proven.pair.quote.0.to_string(),
        ),
        (
            "buyer",
            document.buyer.0.to_string(),
            proven.buyer.0.to_string(),
        ),
        (
            "seller",
            document.seller.0.to_string(),
            proven.seller.0.to_string(),
        ),
        (
            "quantity",
            document.quantity.0.to_string(),
            proven.quantity.0.to_string(),
        ),
        (
            "price",
            document.price.0.to_string(),
            proven.price.0.to_string(),
        ),
        (
            "height",
            document.height.0.to_string(),
            proven.height.0.to_string(),
        ),
        (
            "timestamp_ms",
            document.timestamp_ms.to_string(),
            proven.timestamp_ms.to_string(),
        ),
        (
            "base_leg.asset",
            document.base_leg.asset.0.to_string(),
            proven.base_leg.asset.0.to_string(),
        ),
        (
            "base_leg.from",
            document.base_leg.from.0.to_string(),
            proven.base_leg.from.0.to_string(),
        ),
        (
            "base_leg.to",
            document.base_leg.to.0.to_string(),
            proven.base_leg.to.0.to_string(),
        ),
        (
            "base_leg.amount",
            document.base_leg.amount.0.to_string(),
            proven.base_leg.amount.0.to_string(),
        ),
        (
            "quote_leg.asset",
            document.quote_leg.asset.0.to_string(),
            proven.quote_leg.asset.0.to_string(),
        ),
        (
            "quote_leg.from",
            format!("{}>{}", document.quote_leg.from.0, document.quote_leg.to.0),
            format!("{}>{}", proven.quote_leg.from.0, proven.quote_leg.to.0),
        ),
        (
            "quote_leg.amount",
            document.quote_leg.amount.0.to_string(),
            proven.quote_leg.amount.0.to_string(),
        ),
    ];
    for (field, in_document, in_proof) in fields {
        if in_document != in_proof {
            return differ(field, in_document, in_proof);
        }
    }
    assert_eq!(document, proven, "every field of a fill is compared above");
    Ok(())
}

/// `seisan certificate trade <id> --out FILE`: fetches the fill's certificate from the
/// node, checks it here against genesis when a genesis file is given, and writes it.
pub fn fetch_trade_certificate(
    session: &mut super::session::Session,
    trade: u64,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let answer = session
        .node
        .get(&format!("/v1/trades/{trade}/certificate"))?;
    let document: TradeCertificate =
        serde_json::from_value(answer).context("the node's certificate answer is malformed")?;
    let text = serde_json::to_string_pretty(&document).expect("a certificate serializes");
    std::fs::write(out, format!("{text}\n"))
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote the certificate of trade {trade} (block {}, certified at height {}) to {}",
        document.header.height,
        document.certificate.vote.height,
        out.display()
    );
    Ok(())
}

/// `seisan verify FILE --genesis GENESIS`: checks a trade certificate with no node and
/// prints what it proves; any broken link or changed field is an error naming it.
pub fn verify_file(path: &std::path::Path, genesis: &Genesis, json: bool) -> anyhow::Result<()> {
    use super::describe::{amount, member_name, pair_name};
    use anyhow::{anyhow, Context};
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let document: TradeCertificate = serde_json::from_str(&text).map_err(|error| {
        anyhow!(
            "certificate REFUSED: {} is not a trade certificate: {error}",
            path.display()
        )
    })?;
    let verified = verify_trade_certificate(genesis, &document)
        .map_err(|error| anyhow!("certificate REFUSED: {error}"))?;
    let fill = &verified.fill;
    // No node is asked: names come from genesis alone, and a member added later by
    // governance is shown as `member N`.
    let member_name = |member| member_name(genesis, None, member);
    let signers: Vec<String> = verified
        .signers
        .iter()
        .map(|signer| member_name(*signer))
        .collect();
    if json {
        let value = serde_json::json!({
            "verified": true,
            "fill": fill,
            "block": verified.block,
            "certified_height": verified.certified_height,
            "epoch": verified.epoch,
            "signers": signers,
            "source": verified.source.as_ref().map(|(id, kind)| serde_json::json!({"tx_id": id, "kind": kind})),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON serializes")
        );
        return Ok(());
    }
    println!(
        "trade {} VERIFIED against genesis {}",
        fill.trade, genesis.chain_id.0
    );
    println!(
        "  {} bought {} of {} from {} at {}",
        member_name(fill.buyer),
        amount(genesis, fill.pair.base, fill.quantity),
        pair_name(genesis, fill.pair),
        member_name(fill.seller),
        amount(genesis, fill.pair.quote, fill.price),
    );
    for (name, leg) in [("base leg", &fill.base_leg), ("quote leg", &fill.quote_leg)] {
        println!(
            "  {name}: {} from {} to {}",
            amount(genesis, leg.asset, leg.amount),
            member_name(leg.from),
            member_name(leg.to)
        );
    }
    match &verified.source {
        Some((id, kind)) => println!("  from transaction {id} ({kind})"),
        None => println!("  from block-level settlement work"),
    }
    println!(
        "  in block {} at height {} ({}), finalized by {} of epoch {} (certificate at height {})",
        verified.block,
        fill.height,
        super::text::format_time_ms(fill.timestamp_ms),
        signers.join(", "),
        verified.epoch,
        verified.certified_height
    );
    Ok(())
}

/// Why a certificate does not certify a header through its descendants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// `descendant` does not follow the header at `parent_height` (parent hash, height
    /// or chain).
    Broken {
        descendant: Height,
        parent_height: Height,
    },
    /// The run ends at `block` (`height`), which is not the certified block.
    OtherBlock { block: Hash, height: Height },
}

/// Checks that `certificate` certifies `header` itself or its descendant at the end of
/// `descendants`, each the child of the one before (parent hash, next height, same
/// chain): a finalization of a descendant finalizes its ancestors (consensus R8).
pub(super) fn certified_through(
    header: &seisan_types::BlockHeader,
    descendants: &[seisan_types::BlockHeader],
    chain_id: &ChainId,
    certificate: &seisan_types::QuorumCertificate,
) -> Result<(), Link> {
    let (mut hash, mut height) = (header.hash(), header.height);
    for descendant in descendants {
        if descendant.parent != hash
            || descendant.height != height.next()
            || descendant.chain_id != *chain_id
        {
            return Err(Link::Broken {
                descendant: descendant.height,
                parent_height: height,
            });
        }
        hash = descendant.hash();
        height = descendant.height;
    }
    if certificate.vote.block != hash || certificate.vote.height != height {
        return Err(Link::OtherBlock {
            block: hash,
            height,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis_command::testnet_genesis;
    use seisan_crypto::Keypair;
    use seisan_types::clearing::Pair;
    use seisan_types::ids::{AssetId, Nonce, View};
    use seisan_types::receipt::{receipts_root, TxOutcome};
    use seisan_types::tx::{AllocationDirection, CustomerId, Transaction, TxBody};
    use seisan_types::Amount;
    use seisan_types::{tx::Allocation, Vote};

    fn certificate(genesis: &Genesis, header: &BlockHeader, signers: &[&str]) -> QuorumCertificate {
        let vote = Vote {
            chain_id: genesis.chain_id.clone(),
            epoch: Epoch(0),
            view: header.view,
            height: header.height,
            block: header.hash(),
            kind: VoteKind::Finalize,
        };
        crate::node::test_support::dev_certificate(genesis, vote, signers)
    }

    fn transaction(genesis: &Genesis, nonce: u64) -> SignedTransaction {
        let (member, _) = genesis.member_by_name("exchange-a").unwrap();
        seisan_crypto::sign_transaction(
            &Keypair::dev("exchange-a"),
            &genesis.hash(),
            Transaction {
                chain_id: genesis.chain_id.clone(),
                member,
                nonce: Nonce(nonce),
                body: TxBody::Allocate(Allocation {
                    asset: AssetId(0),
                    customer: CustomerId("c".into()),
                    amount: Amount(1),
                    direction: AllocationDirection::ToCustomer,
                }),
            },
        )
    }

    /// A block of three transactions whose second filled trade 7, with an end-of-block
    /// event, a child block, and a certificate of the child by two validators: built
    /// the way the node builds it.
    fn genuine() -> (Genesis, TradeCertificate) {
        let genesis = testnet_genesis(7101, 0);
        let txs: Vec<SignedTransaction> = (1..=3).map(|n| transaction(&genesis, n)).collect();
        let receipts: Vec<Receipt> = txs
            .iter()
            .enumerate()
            .map(|(index, tx)| Receipt {
                tx_id: tx.id(),
                member: tx.tx.member,
                nonce: tx.tx.nonce,
                kind: "place_order".into(),
                outcome: TxOutcome::Applied,
                events: if index == 1 {
                    vec![Event::Fill {
                        trade: TradeId(7),
                        pair: Pair {
                            base: AssetId(1),
                            quote: AssetId(0),
                        },
                        buyer: MemberId(1),
                        seller: MemberId(2),
                        quantity: Amount(1_500_000_000_000_000_000),
                        price: Amount(400_000),
                        value: Amount(600_000),
                    }]
                } else {
                    vec![]
                },
            })
            .collect();
        let events = vec![Event::OrderFilled {
            order: seisan_types::clearing::OrderId(3),
            member: MemberId(2),
        }];
        let header = BlockHeader {
            chain_id: genesis.chain_id.clone(),
            epoch: Epoch(0),
            height: Height(5),
            view: View(6),
            parent: Hash([4; 32]),
            timestamp_ms: 1_800_000_000_000,
            proposer: MemberId(0),
            txs_root: Block::compute_txs_root(&txs),
            state_root: Hash([9; 32]),
            receipts_root: receipts_root(&receipts, &events),
            epoch_end: None,
            next_validators: None,
        };
        let child = BlockHeader {
            height: Height(6),
            view: View(7),
            parent: header.hash(),
            txs_root: Block::compute_txs_root(&[]),
            receipts_root: receipts_root(&[], &[]),
            ..header.clone()
        };
        let qc = certificate(&genesis, &child, &["clearing-house", "exchange-b"]);
        let block = Block { header, txs };
        let document = build_trade_certificate(
            TradeId(7),
            &block,
            &receipts,
            &events,
            vec![child],
            qc,
            vec![],
        )
        .expect("the block holds trade 7");
        (genesis, document)
    }

    fn refusal(genesis: &Genesis, document: &TradeCertificate) -> String {
        verify_trade_certificate(genesis, document)
            .expect_err("a tampered certificate verified")
            .to_string()
    }

    #[test]
    fn a_genuine_certificate_verifies_and_survives_json() {
        let (genesis, document) = genuine();
        let text = serde_json::to_string_pretty(&document).unwrap();
        let parsed: TradeCertificate = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, document);
        let verified = verify_trade_certificate(&genesis, &parsed).unwrap();
        assert_eq!(verified.fill.trade, TradeId(7));
        assert_eq!(verified.fill.quote_leg.amount, Amount(600_000));
        assert_eq!(verified.fill.quote_leg.from, MemberId(1));
        assert_eq!(verified.fill.base_leg.from, MemberId(2));
        assert_eq!(verified.fill.height, Height(5));
        assert_eq!(verified.certified_height, Height(6));
        assert_eq!(verified.signers, vec![MemberId(0), MemberId(2)]);
        assert_eq!(
            verified.source.unwrap().0,
            document.source.unwrap().transaction.id()
        );
    }

    #[test]
    fn a_changed_price_or_quantity_fails_naming_the_field() {
        let (genesis, genuine) = genuine();
        let mut document = genuine.clone();
        document.fill.price = Amount(400_001);
        let reason = refusal(&genesis, &document);
        assert!(reason.contains("fill field price is 400001"), "{reason}");

        let mut document = genuine.clone();
        document.fill.quantity = Amount(1);
        document.fill.base_leg.amount = Amount(1);
        let reason = refusal(&genesis, &document);
        assert!(reason.contains("fill field quantity"), "{reason}");

        let mut document = genuine.clone();
        document.fill.quote_leg.amount = Amount(1);
        assert!(refusal(&genesis, &document).contains("quote_leg.amount"));

        // Changing the proven receipt too breaks its path to the receipts root.
        let mut document = genuine.clone();
        document.fill.price = Amount(1);
        if let ReceiptLeaf::Receipt(receipt) = &mut document.receipt {
            if let Event::Fill { price, .. } = &mut receipt.events[0] {
                *price = Amount(1);
            }
        }
        assert!(refusal(&genesis, &document).contains("the receipt is not in the block"));
    }

    #[test]
    fn a_changed_signature_header_path_or_source_fails_with_its_reason() {
        let (genesis, genuine) = genuine();
        let mut document = genuine.clone();
        document.certificate.signatures[0].1 .0[0] ^= 1;
        let reason = refusal(&genesis, &document);
        assert!(
            reason.contains("the quorum certificate does not verify"),
            "{reason}"
        );

        let mut document = genuine.clone();
        document.certificate.signatures.pop();
        assert!(refusal(&genesis, &document).contains("the quorum certificate does not verify"));

        let mut document = genuine.clone();
        document.header.state_root = Hash([8; 32]);
        let reason = refusal(&genesis, &document);
        assert!(reason.contains("does not extend the chain"), "{reason}");

        let mut document = genuine.clone();
        document.descendants.clear();
        assert!(refusal(&genesis, &document).contains("the quorum certificate is for block"));

        let mut document = genuine.clone();
        document.receipt_path[0].sibling = Hash([1; 32]);
        assert!(refusal(&genesis, &document).contains("the receipt is not in the block"));

        let mut document = genuine.clone();
        let source = document.source.as_mut().unwrap();
        source.transaction.signature.0[0] ^= 1;
        assert!(refusal(&genesis, &document).contains("is not the one the receipt names"));

        let mut document = genuine.clone();
        document.source.as_mut().unwrap().path.clear();
        assert!(refusal(&genesis, &document).contains("the source transaction is not in the block"));

        let mut document = genuine.clone();
        document.fill.trade = TradeId(8);
        assert!(refusal(&genesis, &document).contains("holds no fill of trade 8"));

        let mut document = genuine.clone();
        document.format = "other".into();
        assert!(refusal(&genesis, &document).contains("format"));

        let mut other_genesis = genesis.clone();
        other_genesis.chain_id = ChainId("other-chain".into());
        assert!(refusal(&other_genesis, &genuine).contains("not the genesis chain"));
    }
}
