//! Pure custody decisions: no I/O, so every rule here is unit-tested directly.

use seisan_types::custody::{
    ChainAddress, ChainTxHash, DepositFact, PublicChainSettings, Withdrawal, WithdrawalId,
    BPS_PER_WHOLE,
};
use seisan_types::{Amount, AssetId, AssetKind, Genesis};
use serde::{Deserialize, Serialize};

/// The most blocks one watcher pass scans (bounds the RPC calls of a catch-up).
pub const MAX_BLOCKS_PER_SCAN: u64 = 256;

/// How a custody asset exists on the public chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainAsset {
    Native,
    Token { contract: ChainAddress },
}

/// The genesis assets that live on the public chain, with their on-chain form.
pub fn chain_assets(genesis: &Genesis) -> Vec<(AssetId, ChainAsset)> {
    genesis
        .assets
        .iter()
        .enumerate()
        .filter_map(|(index, asset)| {
            let id = AssetId(index as u32);
            match asset.kind {
                AssetKind::NativeCoin => Some((id, ChainAsset::Native)),
                AssetKind::Token => asset.contract.as_ref().map(|contract| {
                    (
                        id,
                        ChainAsset::Token {
                            contract: ChainAddress(contract.to_lowercase()),
                        },
                    )
                }),
                AssetKind::Fiat => None,
            }
        })
        .collect()
}

/// One value transfer seen on the public chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedTransfer {
    pub block: u64,
    pub tx_hash: ChainTxHash,
    /// The token Transfer log's index; `None` for a native-coin transfer.
    pub log_index: Option<u64>,
    pub from: ChainAddress,
    pub to: ChainAddress,
    pub asset: AssetId,
    pub amount: Amount,
}

/// The blocks a watcher may scan now: from `next` up to the newest block with at least
/// K confirmations (the block itself counts as one), at most [`MAX_BLOCKS_PER_SCAN`].
/// A deposit in a block that is reorganised away before it is K deep is therefore
/// never seen, let alone attested.
pub fn scan_range(next: u64, latest: u64, confirmations: u64) -> Option<(u64, u64)> {
    assert!(confirmations >= 1, "genesis validation keeps K >= 1");
    let deepest = (latest + 1).checked_sub(confirmations)?;
    if next > deepest {
        return None;
    }
    Some((next, deepest.min(next + MAX_BLOCKS_PER_SCAN - 1)))
}

/// Where a restarted watcher resumes its deposit scan: the earliest block holding a
/// deposit it attested that the committed ledger does not show attested yet (the
/// attestation may be lost with the mempool in a crash), else `next`, the first block
/// not scanned.
pub fn resume_block(next: u64, unconfirmed_blocks: impl IntoIterator<Item = u64>) -> u64 {
    unconfirmed_blocks.into_iter().fold(next, u64::min)
}

/// Whether a transaction in `block` has K confirmations at `latest`.
pub fn is_confirmed(block: u64, latest: u64, confirmations: u64) -> bool {
    latest >= block && latest - block + 1 >= confirmations
}

/// The deposits among observed transfers: into the hot address, not from the clearing
/// house's own addresses (a refill from cold is an internal move), non-zero; each with
/// the block it is in.
pub fn deposit_facts(
    settings: &PublicChainSettings,
    transfers: &[ObservedTransfer],
) -> Vec<(u64, DepositFact)> {
    transfers
        .iter()
        .filter(|t| t.to == settings.hot_address)
        .filter(|t| t.from != settings.cold_address && t.from != settings.hot_address)
        .filter(|t| !t.amount.is_zero())
        .map(|t| {
            let fact = DepositFact {
                chain_id: settings.chain_id,
                tx_hash: t.tx_hash.clone(),
                log_index: t.log_index,
                from: t.from.clone(),
                asset: t.asset,
                amount: t.amount,
            };
            (t.block, fact)
        })
        .collect()
}

/// The bytes appended to a payout's call data, so anyone reading the chain can tell
/// which withdrawal a transfer pays.
pub fn payout_tag(withdrawal: WithdrawalId) -> Vec<u8> {
    let mut tag = b"SEISAN-WD:".to_vec();
    tag.extend_from_slice(&withdrawal.0.to_be_bytes());
    tag
}

/// The journal name of a withdrawal's payout.
pub fn payout_journal_name(withdrawal: WithdrawalId) -> String {
    format!("withdrawal-{}", withdrawal.0)
}

/// Whether a confirmed, successful transaction's transfers pay `withdrawal` in full
/// from the hot address.
pub fn pays(
    settings: &PublicChainSettings,
    withdrawal: &Withdrawal,
    transfers: &[ObservedTransfer],
) -> bool {
    transfers.iter().any(|t| {
        t.from == settings.hot_address
            && t.to == withdrawal.to
            && t.asset == withdrawal.asset
            && t.amount == withdrawal.amount
    })
}

/// How much of an asset to sweep from hot to cold: what the hot wallet holds above the
/// cap (a share of hot + cold) once the pending payouts it must still make are set
/// aside. Zero when hot is within the cap.
pub fn sweep_amount(hot: Amount, cold: Amount, pending_payouts: Amount, cap_bps: u32) -> Amount {
    assert!(cap_bps <= BPS_PER_WHOLE, "validated genesis bounds the cap");
    let total = hot.0.saturating_add(cold.0);
    let cap = total / BPS_PER_WHOLE as u128 * cap_bps as u128
        + total % BPS_PER_WHOLE as u128 * cap_bps as u128 / BPS_PER_WHOLE as u128;
    let keep = cap.saturating_add(pending_payouts.0);
    Amount(hot.0.saturating_sub(keep))
}

/// One asset's proof of reserves at a public-chain block: the body of `GET /v1/reserves`'s
/// lines, so defined with the API's types (seisan-api).
pub use seisan_api::v1::AssetReserves;

/// Fills in the ratios of a reserves line.
#[allow(clippy::too_many_arguments)]
pub fn reserves(
    asset: AssetId,
    symbol: String,
    balances: Amount,
    pending_withdrawals: Amount,
    hot: Amount,
    cold: Amount,
    hot_cap_bps: u32,
) -> AssetReserves {
    let liabilities = Amount(balances.0.saturating_add(pending_withdrawals.0));
    let custody = hot.0.saturating_add(cold.0);
    let ratio = |part: u128, whole: u128| {
        (whole > 0).then(|| {
            // part * 10000 / whole without overflow for realistic supplies; a ratio
            // past u64 (dust owed against a funded wallet) is shown as u64::MAX.
            u64::try_from(part.saturating_mul(BPS_PER_WHOLE as u128) / whole).unwrap_or(u64::MAX)
        })
    };
    AssetReserves {
        asset,
        symbol,
        balances,
        pending_withdrawals,
        liabilities,
        hot,
        cold,
        coverage_bps: ratio(custody, liabilities.0),
        hot_share_bps: ratio(hot.0, custody),
        hot_cap_bps,
        undercovered: custody < liabilities.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few wei owed against a funded wallet: the coverage saturates instead of
    /// becoming a number a JSON reader holds only as a float, so the line still reads
    /// back as the API's type through `serde_json::Value` (as the CLI and chaos read it).
    #[test]
    fn a_huge_coverage_saturates_and_still_reads_back() {
        let line = reserves(
            AssetId(1),
            "ETH".into(),
            Amount(3),
            Amount::ZERO,
            Amount(10u128.pow(24)),
            Amount::ZERO,
            2_000,
        );
        assert_eq!(line.coverage_bps, Some(u64::MAX));
        assert_eq!(line.hot_share_bps, Some(10_000));
        let value = serde_json::to_value(&line).expect("serializes");
        let back: AssetReserves = serde_json::from_value(value).expect("reads back");
        assert_eq!(back, line);
    }

    #[test]
    fn the_scan_resumes_at_the_earliest_unconfirmed_deposit() {
        assert_eq!(resume_block(40, []), 40);
        assert_eq!(resume_block(40, [35, 12, 39]), 12);
        assert_eq!(
            resume_block(40, [41]),
            40,
            "never past the first unscanned block"
        );
    }
    use seisan_types::custody::{RegisteredAddress, WithdrawalStatus};

    fn address(digit: char) -> ChainAddress {
        ChainAddress(format!("0x{}", digit.to_string().repeat(40)))
    }

    fn settings() -> PublicChainSettings {
        PublicChainSettings {
            chain_id: 31337,
            confirmations: 3,
            hot_address: address('1'),
            cold_address: address('2'),
            registered_addresses: vec![RegisteredAddress {
                member: "exchange-a".into(),
                address: address('a'),
            }],
            hot_cap_bps: 500,
        }
    }

    fn transfer(from: char, to: char, amount: u128) -> ObservedTransfer {
        ObservedTransfer {
            block: 5,
            tx_hash: ChainTxHash(format!("0x{}", "7".repeat(64))),
            log_index: None,
            from: address(from),
            to: address(to),
            asset: AssetId(0),
            amount: Amount(amount),
        }
    }

    #[test]
    fn scans_only_blocks_k_deep() {
        // Block 10 at latest 12 has 3 confirmations.
        assert_eq!(scan_range(0, 12, 3), Some((0, 10)));
        assert_eq!(scan_range(11, 12, 3), None);
        assert_eq!(scan_range(0, 1, 3), None);
        assert_eq!(scan_range(0, 10_000, 1), Some((0, MAX_BLOCKS_PER_SCAN - 1)));
        assert!(is_confirmed(10, 12, 3));
        assert!(!is_confirmed(11, 12, 3));
        assert!(!is_confirmed(13, 12, 1));
    }

    #[test]
    fn deposits_are_incoming_non_internal_transfers() {
        let transfers = vec![
            transfer('a', '1', 5),
            transfer('b', '1', 6),
            transfer('2', '1', 7),
            transfer('1', 'a', 8),
            transfer('a', '1', 0),
        ];
        let facts = deposit_facts(&settings(), &transfers);
        let amounts: Vec<u128> = facts.iter().map(|(_, f)| f.amount.0).collect();
        assert_eq!(
            amounts,
            vec![5, 6],
            "unregistered senders are still reported"
        );
        assert_eq!(facts[0].1.chain_id, 31337);
    }

    #[test]
    fn payouts_must_match_destination_asset_and_amount() {
        let withdrawal = Withdrawal {
            id: WithdrawalId(1),
            member: seisan_types::MemberId(1),
            asset: AssetId(0),
            amount: Amount(8),
            to: address('a'),
            status: WithdrawalStatus::Pending,
            payout_attesters: vec![],
        };
        assert!(pays(&settings(), &withdrawal, &[transfer('1', 'a', 8)]));
        assert!(!pays(&settings(), &withdrawal, &[transfer('1', 'a', 7)]));
        assert!(!pays(&settings(), &withdrawal, &[transfer('1', 'b', 8)]));
        assert!(!pays(&settings(), &withdrawal, &[transfer('2', 'a', 8)]));
        assert_ne!(payout_tag(WithdrawalId(1)), payout_tag(WithdrawalId(2)));
    }

    #[test]
    fn sweeps_the_excess_over_the_cap() {
        // 5% of 1000 is 50: hot 100 sweeps 50, or 30 with 20 of payouts pending.
        assert_eq!(
            sweep_amount(Amount(100), Amount(900), Amount(0), 500),
            Amount(50)
        );
        assert_eq!(
            sweep_amount(Amount(100), Amount(900), Amount(20), 500),
            Amount(30)
        );
        assert_eq!(
            sweep_amount(Amount(40), Amount(960), Amount(0), 500),
            Amount(0)
        );
        assert_eq!(
            sweep_amount(Amount(0), Amount(0), Amount(0), 500),
            Amount(0)
        );
    }

    #[test]
    fn reserves_report_coverage_and_hot_share() {
        let line = reserves(
            AssetId(0),
            "ETH".into(),
            Amount(90),
            Amount(10),
            Amount(5),
            Amount(95),
            500,
        );
        assert_eq!(line.liabilities, Amount(100));
        assert_eq!(line.coverage_bps, Some(10_000));
        assert_eq!(line.hot_share_bps, Some(500));
        assert!(!line.undercovered);
        let short = reserves(
            AssetId(0),
            "ETH".into(),
            Amount(100),
            Amount(0),
            Amount(5),
            Amount(94),
            500,
        );
        assert!(short.undercovered);
        assert_eq!(short.coverage_bps, Some(9_900));
    }
}
