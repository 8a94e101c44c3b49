//! The custody watcher's shell: an actor (one task and its state) that does the I/O for
//! the pure custody planner (`seisan_watch::custody`, whose docs say what a pass
//! decides). Every node watches the public chain through its own RPC endpoint and
//! attests what it sees; the clearing-house node (with `--hot-key`) also pays
//! withdrawals and sweeps the hot wallet's excess to cold.
//!
//! One pass every [`POLL_INTERVAL_MS`]: read the newest block; ask the planner what
//! else to read (under the commit lock, released before any chain call); read it
//! through [`PublicChain`]; plan from the committed ledger, the observation, the payout
//! journal and the clock; then carry out the actions in order, stopping at the first
//! that fails (its effects are planned again next pass). An outgoing transfer is
//! signed, journaled durably, and only then broadcast. What the watcher last saw is
//! published through a `tokio::sync::watch` channel that the API reads
//! ([`CustodyStatus`]).
//!
//! Attestations are ordinary transactions signed with the node's member key on its
//! node lane, through [`Shell::attest`].

use super::api::{ApiContext, ApiError};
use super::config::NodeConfig;
use super::files::DurableRecord;
use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use seisan_contracts::custody as ledger_custody;
use seisan_crypto::Keypair;
use seisan_custody::chain::PublicChain;
use seisan_custody::evm::EvmChain;
use seisan_custody::journal::{Journal, SignedTransfer};
use seisan_custody::keys::WalletKey;
use seisan_custody::plan::{self, ChainAsset};
use seisan_custody::CustodyError;
use seisan_types::custody::{DepositId, PublicChainSettings, WithdrawalId};
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetId, Genesis, Height, MemberId, Role};
use seisan_watch::custody::{
    ChainObservation, CustodyAction, CustodyConfig, CustodyPlanner, Outcome, Outgoing,
    PayerObservation,
};
use seisan_watch::Millis;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// How often the watcher polls the public chain.
pub const POLL_INTERVAL_MS: u64 = 500;

/// What the API reads: the node's chain connection and what the watcher last saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustodyStatus {
    /// This node's public-chain endpoint (`None`: it watches no public chain).
    pub rpc_url: Option<String>,
    /// Withdrawals the hot wallet cannot cover right now (clearing-house node only).
    pub waiting_for_hot_wallet: BTreeSet<WithdrawalId>,
    pub last_error: Option<String>,
    pub scanned_until: Option<u64>,
    /// Whether the last reserves check found custody below liabilities.
    pub undercovered: Option<bool>,
    /// Whether payouts and sweeps wait for this node's ledger to catch up.
    pub payer_waiting_for_ledger: bool,
}

/// The clock the shell passes to the planner.
fn now() -> Millis {
    Millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64),
    )
}

/// The hot and cold balances of every chain asset as of `block`.
async fn read_balances<C: PublicChain>(
    chain: &C,
    settings: &PublicChainSettings,
    assets: &[(AssetId, ChainAsset)],
    block: u64,
) -> Result<(BTreeMap<AssetId, Amount>, BTreeMap<AssetId, Amount>), CustodyError> {
    let mut hot = BTreeMap::new();
    let mut cold = BTreeMap::new();
    for (asset, _) in assets {
        hot.insert(
            *asset,
            chain.balance(*asset, &settings.hot_address, block).await?,
        );
        cold.insert(
            *asset,
            chain.balance(*asset, &settings.cold_address, block).await?,
        );
    }
    Ok((hot, cold))
}

/// Starts the watcher if this node has an RPC URL and genesis a `public_chain`;
/// `status` is where it publishes what it sees (the API holds the receiver).
pub fn spawn(
    config: &NodeConfig,
    member: MemberId,
    context: ApiContext,
    status: watch::Sender<CustodyStatus>,
) -> anyhow::Result<()> {
    let Some(url) = config.eth_rpc.clone() else {
        return Ok(());
    };
    let Some(settings) = context.genesis.public_chain.clone() else {
        warn!("--eth-rpc is set but genesis has no public_chain section; custody is off");
        return Ok(());
    };
    let keypair = seisan_crypto::keyfile::read_key_file(&config.key)?;
    let role = context.genesis.member(member).map(|m| m.role);
    let payer = match (&config.hot_key, role) {
        (Some(path), Some(Role::ClearingHouse)) => {
            let key = WalletKey::load(path)?;
            if key.address() != settings.hot_address {
                anyhow::bail!(
                    "hot key {} is for {}, genesis names hot address {}",
                    path.display(),
                    key.address(),
                    settings.hot_address
                );
            }
            let journal = Journal::open(&config.data.join("custody-journal"))?;
            Some((key, journal))
        }
        _ => None,
    };
    let cursor_path = config.data.join("custody-scan-cursor");
    let scan_cursor = DurableRecord::new(cursor_path.clone());
    let next_block = match scan_cursor.load()? {
        Some(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .with_context(|| format!("{} is not a block number", cursor_path.display()))?,
        None => 0,
    };
    let mut planner_config = CustodyConfig::new(
        &context.genesis,
        member,
        payer.is_some(),
        config.empty_block_delay_ms,
    )
    .expect("genesis has a public_chain section");
    planner_config.lies_about_deposits =
        super::fault::lies_in_attestations(config.fault, &context.genesis)?;
    status.send_modify(|status| status.rpc_url = Some(url.clone()));
    info!(rpc = %url, payer = payer.is_some(), from_block = next_block, "custody watcher starting");
    let assets = planner_config.assets.clone();
    let planner = CustodyPlanner::new(planner_config, next_block);
    tokio::spawn(async move {
        // Connect (and check the chain id) until the endpoint answers.
        let chain = loop {
            match EvmChain::connect(&url, settings.chain_id, assets.clone()).await {
                Ok(chain) => break chain,
                Err(error) => {
                    publish_error(&status, Some(format!("{error:#}")));
                    tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
                }
            }
        };
        let shell = Shell {
            chain,
            planner,
            context,
            keypair,
            member,
            payer,
            scan_cursor,
            status,
        };
        shell.run().await;
    });
    Ok(())
}

/// Publishes a pass's error (logged once per distinct error) or its absence.
fn publish_error(status: &watch::Sender<CustodyStatus>, error: Option<String>) {
    status.send_if_modified(|status| {
        if status.last_error == error {
            return false;
        }
        if let Some(error) = &error {
            warn!(%error, "custody pass failed");
        }
        status.last_error = error;
        true
    });
}

/// The watcher actor: the chain, the planner and the node's means to act.
struct Shell<C: PublicChain> {
    chain: C,
    planner: CustodyPlanner,
    context: ApiContext,
    keypair: Keypair,
    member: MemberId,
    /// The hot wallet's key and the payout journal (clearing-house node only).
    payer: Option<(WalletKey, Journal)>,
    /// Where a restart resumes scanning, kept on disk.
    scan_cursor: DurableRecord,
    status: watch::Sender<CustodyStatus>,
}

impl<C: PublicChain> Shell<C> {
    async fn run(mut self) {
        loop {
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
            let result = self.pass().await;
            let planned = self.planner.status().clone();
            self.status.send_if_modified(|status| {
                let before = status.clone();
                status.waiting_for_hot_wallet = planned.waiting_for_hot_wallet;
                status.scanned_until = planned.scanned_until;
                status.undercovered = planned.undercovered;
                status.payer_waiting_for_ledger = planned.payer_waiting_for_ledger;
                *status != before
            });
            if let Some(undercovered) = planned.undercovered {
                self.context
                    .metrics
                    .custody_undercovered
                    .set(i64::from(undercovered));
            }
            publish_error(&self.status, result.err().map(|error| format!("{error:#}")));
        }
    }

    /// Reads what the planner needs, plans, and carries the actions out.
    async fn pass(&mut self) -> anyhow::Result<()> {
        let settings = self.planner.config().settings.clone();
        let assets = self.planner.config().assets.clone();
        let latest = self.chain.latest_block().await?;
        let reads = {
            let _read = self.context.commit_lock.read().expect("commit lock");
            self.planner
                .reads(&self.context.db.committed_view(), latest)
        };
        let mut observed = ChainObservation {
            latest,
            ..ChainObservation::default()
        };
        if let Some((from, until)) = reads.scan {
            let transfers = self
                .chain
                .transfers_to(&settings.hot_address, from, until)
                .await?;
            observed.transfers = Some(((from, until), transfers));
        }
        for hash in reads.receipts {
            let receipt = self.chain.receipt(&hash).await?;
            observed.receipts.insert(hash, receipt);
        }
        (observed.hot, observed.cold) =
            read_balances(&self.chain, &settings, &assets, latest).await?;
        observed.hot_gas = self
            .chain
            .gas_balance(&settings.hot_address, latest)
            .await?;
        let mut journal = Vec::new();
        if let Some((_, payout_journal)) = &self.payer {
            observed.payer = Some(PayerObservation {
                mined_nonce: self.chain.nonce(&settings.hot_address, false).await?,
                pending_nonce: self.chain.nonce(&settings.hot_address, true).await?,
                max_fee: self.chain.max_payout_fee().await?,
            });
            journal = payout_journal.entries()?;
        }
        let ledger_time = {
            let height = self.context.status.borrow().height;
            super::pipeline::read_block(&self.context.db, Height(height))
                .map(|block| Millis(block.header.timestamp_ms))
        };
        let now = now();
        let actions = {
            let _read = self.context.commit_lock.read().expect("commit lock");
            self.planner.plan(
                &self.context.db.committed_view(),
                &self.context.genesis,
                &observed,
                &journal,
                ledger_time,
                now,
            )
        };
        for action in actions {
            let result = self.execute(&action).await;
            let outcome = if result.is_ok() {
                Outcome::Done
            } else {
                Outcome::Failed
            };
            self.planner.record(&action, outcome, now);
            result?;
        }
        Ok(())
    }

    async fn execute(&mut self, action: &CustodyAction) -> anyhow::Result<()> {
        match action {
            CustodyAction::Attest { body, .. } => self.attest(body.clone()).await,
            CustodyAction::Broadcast(entry) => Ok(self.chain.broadcast(entry).await?),
            CustodyAction::Pay {
                withdrawal,
                transfer,
            } => {
                let signed = self.send(transfer).await?;
                info!(withdrawal = %withdrawal, tx = %signed.tx_hash, nonce = signed.nonce, "paid withdrawal");
                Ok(())
            }
            CustodyAction::Sweep(transfer) => {
                let signed = self.send(transfer).await?;
                info!(asset = %transfer.asset, amount = %transfer.amount, tx = %signed.tx_hash, "swept hot wallet excess to cold");
                Ok(())
            }
            CustodyAction::Scanned { .. } => Ok(()),
            CustodyAction::StoreCursor(cursor) => {
                self.scan_cursor.store(cursor.to_string().as_bytes())
            }
            CustodyAction::GiveUp(body) => {
                warn!(kind = body.kind_name(), body = ?body, "the ledger never recorded this node's attestation; giving up");
                Ok(())
            }
        }
    }

    /// Signs an outgoing transfer, journals it durably, then broadcasts it (a failed
    /// broadcast is repeated from the journal next pass).
    async fn send(&self, transfer: &Outgoing) -> anyhow::Result<SignedTransfer> {
        let (key, journal) = self.payer.as_ref().expect("only the payer plans transfers");
        let signed = self
            .chain
            .sign_transfer(
                key,
                transfer.asset,
                &transfer.to,
                transfer.amount,
                transfer.nonce,
                &transfer.tag,
            )
            .await?;
        journal.record(&transfer.journal_name, &signed)?;
        self.chain.broadcast(&signed).await?;
        Ok(signed)
    }

    /// Signs `body` with this node's member key on its node lane and admits it.
    async fn attest(&self, body: TxBody) -> anyhow::Result<()> {
        if let TxBody::AttestDeposit(fact) = &body {
            info!(deposit = %fact.deposit_id(), tx = %fact.tx_hash, from = %fact.from, amount = %fact.amount, "attesting deposit");
        } else {
            info!(kind = body.kind_name(), body = ?body, "attesting");
        }
        super::signer::submit_signed(&self.context, &self.keypair, self.member, body)
            .await
            .map(|_| ())
    }
}

// ---- API ------------------------------------------------------------------------------

pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/v1/reserves", get(reserves))
        .route("/v1/withdrawals", get(withdrawals))
        .route("/v1/deposits", get(deposits))
}

/// Custody is not set up here: the genesis has no public chain, or this node watches
/// none. A fact about the chain or the node, not an outage, so a 4xx.
fn not_configured(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "custody_not_configured", message)
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "custody_unavailable",
        message,
    )
}

/// Proof of reserves at the public chain's newest block.
async fn reserves(State(context): State<ApiContext>) -> Result<Json<Value>, ApiError> {
    let genesis: &Genesis = &context.genesis;
    let settings = genesis
        .public_chain
        .clone()
        .ok_or_else(|| not_configured("genesis has no public_chain section"))?;
    let url = context.custody.borrow().rpc_url.clone().ok_or_else(|| {
        not_configured("this node has no --eth-rpc; ask a node that watches the public chain")
    })?;
    let chain_assets = plan::chain_assets(genesis);
    let chain = EvmChain::connect(&url, settings.chain_id, chain_assets.clone())
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let block = chain
        .latest_block()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let (hot, cold) = read_balances(&chain, &settings, &chain_assets, block)
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let assets = {
        let _read = context.commit_lock.read().expect("commit lock");
        seisan_watch::custody::reserves(
            &context.db.committed_view(),
            genesis,
            &settings,
            &chain_assets,
            &hot,
            &cold,
        )
    };
    let height = context.status.borrow().height;
    let undercovered = assets.iter().any(|line| line.undercovered);
    let state = context.custody.borrow().clone();
    Ok(Json(json!({
        "public_chain_block": block,
        "ledger_height": height,
        "hot_address": settings.hot_address,
        "cold_address": settings.cold_address,
        "status": if undercovered { "undercovered" } else { "covered" },
        "assets": assets,
        "waiting_for_hot_wallet": state.waiting_for_hot_wallet,
        "watcher_error": state.last_error,
        "payer_waiting_for_ledger": state.payer_waiting_for_ledger,
        "scanned_until_block": state.scanned_until,
    })))
}

/// Withdrawals oldest first, `?after=<id>&limit=<n>`; `next_after` names the cursor of
/// the next page when this one is full.
async fn withdrawals(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let after = params
        .get("after")
        .map(|text| super::queries::number(text, "after"))
        .transpose()?;
    let limit = super::queries::page_limit(&params, ledger_custody::MAX_WITHDRAWALS_PER_QUERY)?;
    let view = context.db.committed_view();
    let list = ledger_custody::withdrawals(&view, after.map(WithdrawalId), limit);
    let next_after = (list.len() == limit)
        .then(|| list.last().map(|w| w.id.0))
        .flatten();
    let waiting = context.custody.borrow().waiting_for_hot_wallet.clone();
    Ok(Json(
        json!({ "withdrawals": list, "waiting_for_hot_wallet": waiting, "next_after": next_after }),
    ))
}

/// Deposit records in deposit-id order, `?after=<deposit id, 64 hex>&limit=<n>`;
/// `next_after` names the cursor of the next page when this one is full.
async fn deposits(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let after = params
        .get("after")
        .map(|text| {
            seisan_types::hash::Hash::from_hex(text)
                .map(DepositId)
                .map_err(|_| {
                    super::queries::bad_request(
                        "bad_deposit_id",
                        format!("after {text:?} is not a deposit id (64 hex digits)"),
                    )
                })
        })
        .transpose()?;
    let limit = super::queries::page_limit(&params, ledger_custody::MAX_WITHDRAWALS_PER_QUERY)?;
    let view = context.db.committed_view();
    let list = ledger_custody::deposits(&view, after, limit);
    let next_after = (list.len() == limit)
        .then(|| list.last().map(|record| record.id.to_string()))
        .flatten();
    Ok(Json(json!({ "deposits": list, "next_after": next_after })))
}
