//! The reserves probe: every [`PROBE_INTERVAL`], reads the public chain's head and the
//! hot and cold balances of every custody asset through this node's own Ethereum node,
//! sets them beside the committed ledger's liabilities (the same computation as
//! `GET /v1/reserves`), and publishes per asset the coverage, the hot wallet's share and
//! its cap, and the chain head, for `/metrics`. Read-only: it signs and sends nothing,
//! so a failed probe only leaves the gauges as they were (and counts the failure).
//!
//! It runs beside the custody watcher rather than inside it so monitoring needs no
//! change to the watcher: one `eth_blockNumber` and two balance reads per asset a
//! minute.

use super::api::ApiContext;
use super::metrics::{Asset, Metrics};
use seisan_custody::evm::EvmChain;
use seisan_custody::plan::{self, AssetReserves};
use seisan_custody::CustodyError;
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::debug;

/// How often the probe reads the public chain.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// Basis points in one.
const BPS: f64 = 10_000.0;

/// Starts the probe when this node watches a public chain (`--eth-rpc` and a genesis
/// `public_chain` section); otherwise does nothing.
pub fn spawn(eth_rpc: Option<String>, context: ApiContext) {
    let (Some(url), Some(_)) = (eth_rpc, context.genesis.public_chain.as_ref()) else {
        return;
    };
    tokio::spawn(async move {
        let mut chain: Option<EvmChain> = None;
        loop {
            if let Err(error) = probe(&url, &context, &mut chain).await {
                debug!(%error, "reserves probe failed");
                context.metrics.reserves_probe_failures.inc();
                // Reconnect on the next round.
                chain = None;
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    });
}

async fn probe(
    url: &str,
    context: &ApiContext,
    chain: &mut Option<EvmChain>,
) -> Result<(), CustodyError> {
    let genesis = &context.genesis;
    let settings = genesis
        .public_chain
        .clone()
        .expect("spawned only with a public_chain");
    let assets = plan::chain_assets(genesis);
    if chain.is_none() {
        *chain = Some(EvmChain::connect(url, settings.chain_id, assets.clone()).await?);
    }
    let chain = chain.as_ref().expect("connected above");
    let head = chain.latest_block().await?;
    let mut hot = BTreeMap::new();
    let mut cold = BTreeMap::new();
    for (asset, _) in &assets {
        hot.insert(
            *asset,
            chain.balance(*asset, &settings.hot_address, head).await?,
        );
        cold.insert(
            *asset,
            chain.balance(*asset, &settings.cold_address, head).await?,
        );
    }
    let lines = {
        let _read = context.commit_lock.read().expect("commit lock");
        seisan_watch::custody::reserves(
            &context.db.committed_view(),
            genesis,
            &settings,
            &assets,
            &hot,
            &cold,
        )
    };
    context
        .metrics
        .custody_chain_head_block
        .set(i64::try_from(head).unwrap_or(i64::MAX));
    record(&context.metrics, &lines);
    Ok(())
}

/// Sets the per-asset gauges from reserves lines. A ratio that is undefined (nothing
/// owed, or empty custody) is removed rather than shown as a number.
pub fn record(metrics: &Metrics, lines: &[AssetReserves]) {
    for line in lines {
        let label = Asset {
            asset: line.symbol.clone(),
        };
        match line.coverage_bps {
            Some(bps) => {
                metrics
                    .reserves_coverage_ratio
                    .get_or_create(&label)
                    .set(bps as f64 / BPS);
            }
            None => {
                metrics.reserves_coverage_ratio.remove(&label);
            }
        }
        match line.hot_share_bps {
            Some(bps) => {
                metrics
                    .reserves_hot_share_ratio
                    .get_or_create(&label)
                    .set(bps as f64 / BPS);
            }
            None => {
                metrics.reserves_hot_share_ratio.remove(&label);
            }
        }
        metrics
            .reserves_hot_cap_ratio
            .get_or_create(&label)
            .set(f64::from(line.hot_cap_bps) / BPS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_types::{Amount, AssetId};

    #[test]
    fn coverage_and_hot_share_become_ratios_per_asset() {
        let metrics = Metrics::new();
        // 1,000 owed; 900 hot and 300 cold: 120% covered, 75% hot against a 20% cap.
        let eth = plan::reserves(
            AssetId(0),
            "ETH".into(),
            Amount(1000),
            Amount(0),
            Amount(900),
            Amount(300),
            2000,
        );
        // Nothing owed and nothing held: neither ratio is defined.
        let wbtc = plan::reserves(
            AssetId(2),
            "WBTC".into(),
            Amount(0),
            Amount(0),
            Amount(0),
            Amount(0),
            2000,
        );
        record(&metrics, &[eth, wbtc]);
        let text = metrics.render();
        for line in [
            "seisan_reserves_coverage_ratio{asset=\"ETH\"} 1.2",
            "seisan_reserves_hot_share_ratio{asset=\"ETH\"} 0.75",
            "seisan_reserves_hot_cap_ratio{asset=\"ETH\"} 0.2",
            "seisan_reserves_hot_cap_ratio{asset=\"WBTC\"} 0.2",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("seisan_reserves_coverage_ratio{asset=\"WBTC\"}"));
        assert!(!text.contains("seisan_reserves_hot_share_ratio{asset=\"WBTC\"}"));
        // Custody falls to 500: the gauge follows (50%, under 100%).
        let short = plan::reserves(
            AssetId(0),
            "ETH".into(),
            Amount(1000),
            Amount(0),
            Amount(200),
            Amount(300),
            2000,
        );
        record(&metrics, &[short]);
        assert!(metrics
            .render()
            .contains("seisan_reserves_coverage_ratio{asset=\"ETH\"} 0.5"));
    }
}
