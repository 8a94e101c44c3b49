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
//! Attestations (and the clearing house's `PayoutSent`) go through the node's attester
//! (`super::attester`), which signs them with the member key on the node lane.

use super::api::{ApiContext, ApiError};
use super::attester::AttesterHandle;
use super::config::NodeConfig;
use super::files::DurableRecord;
use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use seisan_api::v1;
use seisan_contracts::custody as ledger_custody;
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
// The clock the shell passes to the planner.
use super::clock::wall_clock as now;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    /// Why payouts and sweeps are held: the hot wallet mined transactions the payout
    /// journal never recorded (restored from an older backup), said in words.
    pub payer_journal_behind: Option<String>,
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
    attester: AttesterHandle,
    status: watch::Sender<CustodyStatus>,
) -> anyhow::Result<()> {
    let Some(url) = config.eth_rpc.clone() else {
        return Ok(());
    };
    let Some(settings) = context.genesis.public_chain.clone() else {
        warn!("--eth-rpc is set but genesis has no public_chain section; custody is off");
        return Ok(());
    };
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
    let scan_cursor = DurableRecord::whole_file(cursor_path.clone());
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
        config.idle_block_interval_ms,
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
            attester,
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
    attester: AttesterHandle,
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
            self.publish(result);
        }
    }

    /// Publishes what the last pass saw and how it ended.
    fn publish(&self, result: anyhow::Result<()>) {
        let planned = self.planner.status().clone();
        if let Some(undercovered) = planned.undercovered {
            self.context
                .metrics
                .custody_undercovered
                .set(i64::from(undercovered));
        }
        self.status.send_if_modified(|status| {
            let before = status.clone();
            status.waiting_for_hot_wallet = planned.waiting_for_hot_wallet;
            status.scanned_until = planned.scanned_until;
            status.undercovered = planned.undercovered;
            status.payer_waiting_for_ledger = planned.payer_waiting_for_ledger;
            status.payer_journal_behind = planned.journal_behind_chain.map(|behind| {
                format!(
                    "the hot wallet has mined transactions up to nonce {} but the payout journal holds them only below {}: it is older than the wallet (restored from a backup?), so a lost payout could be paid twice; payouts and sweeps are held until the journal kept with the hot key is put back in the data directory (custody-journal)",
                    behind.mined_next_nonce.saturating_sub(1),
                    behind.journal_next_nonce
                )
            });
            if status.payer_journal_behind.is_some() && before.payer_journal_behind.is_none() {
                tracing::error!(reason = ?status.payer_journal_behind, "payouts held");
            }
            *status != before
        });
        publish_error(&self.status, result.err().map(|error| format!("{error:#}")));
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

    /// Has the attester sign `body` on the node lane and admit it.
    async fn attest(&self, body: TxBody) -> anyhow::Result<()> {
        if let TxBody::AttestDeposit(fact) = &body {
            info!(deposit = %fact.deposit_id(), tx = %fact.tx_hash, from = %fact.from, amount = %fact.amount, "attesting deposit");
        } else {
            info!(kind = body.kind_name(), body = ?body, "attesting");
        }
        self.attester.attest(body).await?;
        Ok(())
    }
}

// ---- API ------------------------------------------------------------------------------

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(reserves))
        .routes(routes!(withdrawals))
        .routes(routes!(deposits))
}

/// `?after=N&limit=M` paging of withdrawals.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read through the raw query map (its errors name the parameter).
struct WithdrawalPaging {
    /// List the withdrawals with ids after this one.
    #[param(minimum = 0)]
    after: Option<u64>,
    /// At most this many withdrawals (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// `?after=ID&limit=M` paging of deposits.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read through the raw query map (its errors name the parameter).
struct DepositPaging {
    /// List the deposits whose id sorts after this deposit id (64 hex digits).
    #[param(pattern = "^(0x)?[0-9a-fA-F]{64}$")]
    after: Option<String>,
    /// At most this many deposits (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
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

/// Proof of reserves at the public chain's newest block: per custody asset, the
/// ledger's liabilities (balances + pending withdrawals) beside the hot and cold
/// balances, coverage and hot share.
#[utoipa::path(get, path = "/v1/reserves", tag = "custody",
    responses(
        (status = 200, description = "Reserves", body = v1::Reserves),
        (status = 404, description = "`custody_not_configured`: no public_chain in genesis, or this node has no --eth-rpc", body = v1::ErrorBody),
        (status = 503, description = "`custody_unavailable`: the public chain is not reachable", body = v1::ErrorBody),
    ))]
async fn reserves(State(context): State<ApiContext>) -> Result<Json<v1::Reserves>, ApiError> {
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
    Ok(Json(v1::Reserves {
        public_chain_block: block,
        ledger_height: height,
        hot_address: settings.hot_address,
        cold_address: settings.cold_address,
        status: if undercovered {
            v1::ReservesStatus::Undercovered
        } else {
            v1::ReservesStatus::Covered
        },
        assets,
        waiting_for_hot_wallet: state.waiting_for_hot_wallet.into_iter().collect(),
        watcher_error: state.last_error,
        payer_waiting_for_ledger: state.payer_waiting_for_ledger,
        payer_journal_behind: state.payer_journal_behind,
        scanned_until_block: state.scanned_until,
    }))
}

/// Crypto withdrawals (pending, sent, completed), oldest first, and those waiting for
/// the hot wallet: an exchange sees its own, operators every member's. `next_after` is
/// the cursor of the next page when this one is full.
#[utoipa::path(get, path = "/v1/withdrawals", tag = "custody", params(WithdrawalPaging),
    responses(
        (status = 200, description = "Withdrawals", body = v1::Withdrawals),
        (status = 400, description = "`bad_number` or `bad_limit`: a paging parameter is malformed or out of range", body = v1::ErrorBody),
    ))]
async fn withdrawals(
    State(context): State<ApiContext>,
    axum::Extension(caller): axum::Extension<seisan_api::Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<v1::Withdrawals>, ApiError> {
    let after = params
        .get("after")
        .map(|text| super::queries::number(text, "after"))
        .transpose()?;
    let limit = super::queries::page_limit(&params, ledger_custody::MAX_WITHDRAWALS_PER_QUERY)?;
    let view = context.db.committed_view();
    let (list, next_after) = super::queries::filtered_page(
        after.map(WithdrawalId),
        limit,
        |after, chunk| ledger_custody::withdrawals(&view, after, chunk),
        |withdrawal| withdrawal.id,
        |withdrawal| caller.may_read(withdrawal.member),
    );
    let next_after = next_after.map(|id| id.0);
    let waiting: Vec<_> = context
        .custody
        .borrow()
        .waiting_for_hot_wallet
        .iter()
        .filter(|id| caller.is_operator() || list.iter().any(|w| w.id == **id))
        .cloned()
        .collect();
    Ok(Json(v1::Withdrawals {
        withdrawals: list,
        waiting_for_hot_wallet: waiting,
        next_after,
    }))
}

/// Public-chain deposits attested so far, in deposit-id order, with their attestations
/// and outcome (credited or unregistered): an exchange sees those credited to it and
/// those still being attested that come from one of its registered addresses.
/// `next_after` is the cursor of the next page when this one is full.
#[utoipa::path(get, path = "/v1/deposits", tag = "custody", params(DepositPaging),
    responses(
        (status = 200, description = "Deposits", body = v1::Deposits),
        (status = 400, description = "`bad_deposit_id`, `bad_number` or `bad_limit`: a paging parameter is malformed or out of range", body = v1::ErrorBody),
    ))]
async fn deposits(
    State(context): State<ApiContext>,
    axum::Extension(caller): axum::Extension<seisan_api::Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<v1::Deposits>, ApiError> {
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
    // An exchange sees the deposits credited to it, and those still being attested
    // that come from one of its registered addresses.
    let chain =
        seisan_contracts::governance::consortium_or_genesis(&view, &context.genesis).public_chain;
    let sent_by_caller = |record: &seisan_types::custody::DepositRecord| {
        record.attestations.iter().any(|(fact, _)| {
            chain
                .as_ref()
                .is_some_and(|chain| chain.is_registered_to(&caller.name, &fact.from))
        })
    };
    let (list, next_after) = super::queries::filtered_page(
        after,
        limit,
        |after, chunk| ledger_custody::deposits(&view, after, chunk),
        |record| record.id,
        |record| match &record.outcome {
            _ if caller.is_operator() => true,
            Some((_, seisan_types::custody::DepositOutcome::Credited { member })) => {
                *member == caller.member
            }
            Some(_) => false,
            None => sent_by_caller(record),
        },
    );
    let next_after = next_after.map(|id| id.to_string());
    Ok(Json(v1::Deposits {
        deposits: list,
        next_after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::test_support;
    use seisan_custody::evm::ReceiptView;
    use seisan_custody::plan::ObservedTransfer;
    use seisan_types::custody::{ChainAddress, ChainTxHash, RegisteredAddress};
    use std::sync::{Arc, Mutex};

    fn address(digit: char) -> ChainAddress {
        ChainAddress(format!("0x{}", digit.to_string().repeat(40)))
    }

    /// A public chain in memory: transfers into the hot address, unreachable while
    /// `down`.
    #[derive(Default)]
    struct Fake {
        latest: u64,
        transfers: Vec<ObservedTransfer>,
        down: bool,
        /// Broadcasts fail (the chain node took them or not: the answer is lost).
        refuse_broadcast: bool,
        broadcasts: Vec<SignedTransfer>,
    }

    #[derive(Clone, Default)]
    struct FakeChain(Arc<Mutex<Fake>>);

    impl FakeChain {
        fn answer<T>(&self, read: impl FnOnce(&Fake) -> T) -> Result<T, CustodyError> {
            let fake = self.0.lock().unwrap();
            if fake.down {
                return Err(CustodyError::Rpc {
                    operation: "eth_blockNumber".into(),
                    reason: "connection refused".into(),
                });
            }
            Ok(read(&fake))
        }
    }

    impl PublicChain for FakeChain {
        async fn latest_block(&self) -> Result<u64, CustodyError> {
            self.answer(|fake| fake.latest)
        }
        async fn transfers_to(
            &self,
            to: &ChainAddress,
            from: u64,
            until: u64,
        ) -> Result<Vec<ObservedTransfer>, CustodyError> {
            self.answer(|fake| {
                fake.transfers
                    .iter()
                    .filter(|t| t.to == *to && (from..=until).contains(&t.block))
                    .cloned()
                    .collect()
            })
        }
        async fn receipt(&self, _: &ChainTxHash) -> Result<Option<ReceiptView>, CustodyError> {
            self.answer(|_| None)
        }
        async fn balance(
            &self,
            asset: AssetId,
            address: &ChainAddress,
            block: u64,
        ) -> Result<Amount, CustodyError> {
            self.answer(|fake| {
                Amount(
                    fake.transfers
                        .iter()
                        .filter(|t| t.asset == asset && t.to == *address && t.block <= block)
                        .map(|t| t.amount.0)
                        .sum(),
                )
            })
        }
        async fn gas_balance(
            &self,
            address: &ChainAddress,
            block: u64,
        ) -> Result<u128, CustodyError> {
            Ok(self.balance(AssetId(0), address, block).await?.0)
        }
        async fn nonce(&self, _: &ChainAddress, _: bool) -> Result<u64, CustodyError> {
            self.answer(|_| 0)
        }
        async fn max_payout_fee(&self) -> Result<u128, CustodyError> {
            self.answer(|_| 1_000)
        }
        async fn sign_transfer(
            &self,
            _: &WalletKey,
            asset: AssetId,
            to: &ChainAddress,
            value: Amount,
            nonce: u64,
            _: &[u8],
        ) -> Result<SignedTransfer, CustodyError> {
            self.answer(|_| SignedTransfer {
                nonce,
                raw: format!("{}|{to}|{value}|{nonce}", asset.0),
                tx_hash: format!("0x{nonce:064x}"),
            })
        }
        async fn broadcast(&self, transfer: &SignedTransfer) -> Result<(), CustodyError> {
            let mut fake = self.0.lock().unwrap();
            if fake.refuse_broadcast {
                return Err(CustodyError::Rpc {
                    operation: "eth_sendRawTransaction".into(),
                    reason: "timed out".into(),
                });
            }
            fake.broadcasts.push(transfer.clone());
            Ok(())
        }
    }

    /// exchange-b's node (a validator, not the payer) watching a chain where
    /// exchange-a's address sent 700 wei to the hot address in block 3 (K = 2).
    fn shell(dir: &std::path::Path) -> (Shell<FakeChain>, FakeChain, ApiContext) {
        let mut genesis = (*test_support::genesis(7321)).clone();
        genesis.public_chain = Some(PublicChainSettings {
            chain_id: 31337,
            confirmations: 2,
            hot_address: address('1'),
            cold_address: address('2'),
            registered_addresses: vec![RegisteredAddress {
                member: "exchange-a".into(),
                address: address('a'),
            }],
            hot_cap_bps: 500,
        });
        genesis.validate().unwrap();
        let (context, gossip) = test_support::context(dir, Arc::new(genesis));
        std::mem::forget(gossip);
        let chain = FakeChain::default();
        {
            let mut fake = chain.0.lock().unwrap();
            fake.latest = 3;
            fake.transfers.push(ObservedTransfer {
                block: 3,
                tx_hash: ChainTxHash(format!("0x{}", "7".repeat(64))),
                log_index: None,
                from: address('a'),
                to: address('1'),
                asset: AssetId(0),
                amount: Amount(700),
            });
        }
        let member = MemberId(2);
        let attester = crate::node::attester::spawn(
            context.clone(),
            seisan_crypto::Keypair::dev("exchange-b"),
            member,
        );
        let config = CustodyConfig::new(&context.genesis, member, false, 1_000).unwrap();
        let shell = Shell {
            chain: chain.clone(),
            planner: CustodyPlanner::new(config, 0),
            context: context.clone(),
            attester,
            payer: None,
            scan_cursor: DurableRecord::whole_file(dir.join("custody-scan-cursor")),
            status: watch::channel(CustodyStatus::default()).0,
        };
        (shell, chain, context)
    }

    fn attested_amounts(context: &ApiContext) -> Vec<u128> {
        test_support::mempool_bodies(context)
            .into_iter()
            .filter_map(|body| match body {
                TxBody::AttestDeposit(fact) => Some(fact.amount.0),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_k_deep_deposit_is_attested_through_the_attester_once_and_the_cursor_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut shell, chain, context) = shell(dir.path());
        let status = shell.status.subscribe();
        let result = shell.pass().await;
        shell.publish(result);
        assert!(
            attested_amounts(&context).is_empty(),
            "one confirmation of two"
        );
        assert_eq!(status.borrow().scanned_until, Some(2));
        assert_eq!(status.borrow().undercovered, Some(false));
        chain.0.lock().unwrap().latest = 4;
        let result = shell.pass().await;
        shell.publish(result);
        assert_eq!(attested_amounts(&context), vec![700]);
        assert_eq!(status.borrow().scanned_until, Some(3));
        assert_eq!(
            shell.scan_cursor.load().unwrap(),
            Some(b"3".to_vec()),
            "a restart rescans the block until the ledger shows the attestation"
        );
        shell.pass().await.unwrap();
        assert_eq!(attested_amounts(&context), vec![700], "pending: not twice");
    }

    #[tokio::test]
    async fn an_unreachable_chain_fails_the_pass_by_name_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut shell, chain, context) = shell(dir.path());
        let status = shell.status.subscribe();
        {
            let mut fake = chain.0.lock().unwrap();
            fake.latest = 4;
            fake.down = true;
        }
        let result = shell.pass().await;
        shell.publish(result);
        let error = status.borrow().last_error.clone().expect("the pass failed");
        assert!(error.contains("connection refused"), "{error}");
        assert!(attested_amounts(&context).is_empty());
        chain.0.lock().unwrap().down = false;
        let result = shell.pass().await;
        shell.publish(result);
        assert_eq!(status.borrow().last_error, None);
        assert_eq!(
            attested_amounts(&context),
            vec![700],
            "attested once it answers"
        );
    }

    #[tokio::test]
    async fn a_transfer_is_journaled_before_it_is_broadcast_and_never_signed_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (mut shell, chain, _context) = shell(dir.path());
        let journal = Journal::open(&dir.path().join("custody-journal")).unwrap();
        let key = WalletKey::from_hex(&"11".repeat(32)).unwrap();
        shell.payer = Some((key, journal.clone()));
        chain.0.lock().unwrap().refuse_broadcast = true;
        let sweep = CustodyAction::Sweep(Outgoing {
            asset: AssetId(0),
            to: address('2'),
            amount: Amount(5),
            nonce: 7,
            tag: seisan_watch::custody::SWEEP_TAG.to_vec(),
            journal_name: "sweep-7".into(),
        });
        let error = shell.execute(&sweep).await.unwrap_err();
        assert!(
            format!("{error:#}").contains("eth_sendRawTransaction"),
            "{error:#}"
        );
        let entry = journal
            .get("sweep-7")
            .unwrap()
            .expect("journaled before the broadcast");
        assert_eq!(entry.nonce, 7);
        // The next pass sends the journaled bytes again, as they are.
        chain.0.lock().unwrap().refuse_broadcast = false;
        shell
            .execute(&CustodyAction::Broadcast(entry.clone()))
            .await
            .unwrap();
        assert_eq!(chain.0.lock().unwrap().broadcasts, vec![entry.clone()]);
        // A journaled name is never signed over: the same transfer planned again fails
        // before anything is broadcast.
        assert!(shell.execute(&sweep).await.is_err());
        assert_eq!(chain.0.lock().unwrap().broadcasts, vec![entry]);
    }
}
