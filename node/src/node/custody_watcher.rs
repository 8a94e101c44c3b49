//! The custody watcher: every node watches the public chain through its own RPC
//! endpoint and attests what it sees; the clearing-house node also pays withdrawals
//! and sweeps the hot wallet's excess to cold.
//!
//! One task, one pass every [`POLL_INTERVAL_MS`]:
//! 1. Deposits: scan the blocks that are now K deep (never shallower, so a deposit
//!    reorganised away before K confirmations is never seen) for transfers into the hot
//!    address, and attest each deposit this node has not attested yet (settled or
//!    not: a late attestation is recorded without crediting again).
//! 2. Payouts: for every open withdrawal whose payout the clearing house named, attest
//!    it once its transaction is K deep, succeeded and pays exactly the withdrawal.
//! 3. Clearing house only (with `--hot-key`): re-broadcast journaled transactions that
//!    are not mined yet; then, with nothing in flight, pay the oldest pending
//!    withdrawal the hot wallet covers (sign, journal durably, broadcast, name it on
//!    chain with `PayoutSent`) or sweep one asset's excess over the cap to cold. One
//!    outgoing transaction at a time keeps the hot wallet's nonces in journal order,
//!    so a restarted node re-sends the same signed bytes instead of paying twice.
//!
//! Attestations are ordinary transactions signed with the node's member key, through
//! `signer::submit_signed` (one nonce sequence shared with the bank watcher).

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
use seisan_custody::evm::EvmChain;
use seisan_custody::journal::Journal;
use seisan_custody::keys::WalletKey;
use seisan_custody::plan::{self, ChainAsset};
use seisan_custody::CustodyError;
use seisan_types::custody::{
    ChainTxHash, DepositFact, DepositId, PublicChainSettings, WithdrawalId, WithdrawalStatus,
};
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetKind, Genesis, Height, MemberId, Role};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tracing::{info, warn};

/// How often the watcher polls the public chain.
pub const POLL_INTERVAL_MS: u64 = 500;
/// The most attestations one pass submits (bounds a catch-up burst).
pub const MAX_ATTESTATIONS_PER_PASS: usize = 256;
/// Passes after which an attestation the committed ledger still does not show is
/// submitted again (it may have been dropped, or refused in a nonce race).
const RESUBMIT_AFTER_PASSES: u32 = 20;
/// The least a current ledger's newest block may be old (an idle chain still finalizes
/// an empty block every `empty_block_delay_ms`): 10 seconds, or ten idle intervals.
const MIN_LEDGER_AGE_MS: u64 = 10_000;
/// How often one deposit is re-submitted before the watcher gives up and reports it.
const MAX_RESUBMISSIONS: u32 = 3;

/// What the API reads: the node's chain connection and what the watcher last saw.
#[derive(Debug, Default)]
struct Shared {
    rpc_url: Option<String>,
    /// Withdrawals the hot wallet cannot cover right now (clearing-house node only).
    waiting_for_hot_wallet: BTreeSet<WithdrawalId>,
    last_error: Option<String>,
    scanned_until: Option<u64>,
    /// Whether the last reserves check found custody below liabilities.
    undercovered: Option<bool>,
    /// Whether payouts and sweeps wait for this node's ledger to catch up.
    payer_waiting_for_ledger: bool,
}

static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();

fn shared() -> &'static Mutex<Shared> {
    SHARED.get_or_init(Default::default)
}

/// Whether custody was below liabilities at the watcher's last check (`None` when this
/// node watches no public chain or has not checked yet), for `/v1/status`.
pub fn undercovered() -> Option<bool> {
    shared().lock().expect("custody state").undercovered
}

/// Proof of reserves at public-chain block `block`: per custody asset, the ledger's
/// liabilities beside the hot and cold balances.
async fn compute_reserves(
    chain: &EvmChain,
    context: &ApiContext,
    settings: &PublicChainSettings,
    block: u64,
) -> Result<Vec<plan::AssetReserves>, CustodyError> {
    let genesis: &Genesis = &context.genesis;
    let liabilities: Vec<_> = {
        let _read = context.commit_lock.read().expect("commit lock");
        let view = context.db.committed_view();
        chain
            .assets()
            .iter()
            .map(|(asset, _)| ledger_custody::liabilities(&view, genesis, *asset))
            .collect()
    };
    let mut assets = Vec::new();
    for line in liabilities {
        let hot = chain
            .balance(line.asset, &settings.hot_address, block)
            .await?;
        let cold = chain
            .balance(line.asset, &settings.cold_address, block)
            .await?;
        let symbol = genesis
            .asset(line.asset)
            .map(|spec| spec.symbol.clone())
            .unwrap_or_default();
        assets.push(plan::reserves(
            line.asset,
            symbol,
            line.balances,
            line.pending_withdrawals,
            hot,
            cold,
            settings.hot_cap_bps,
        ));
    }
    Ok(assets)
}

/// Starts the watcher if this node has an RPC URL and genesis a `public_chain`.
pub fn spawn(config: &NodeConfig, member: MemberId, context: ApiContext) -> anyhow::Result<()> {
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
    let scan_cursor = DurableRecord::new(config.data.join("custody-scan-cursor"));
    let next_block = match scan_cursor.load()? {
        Some(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .with_context(|| {
                format!(
                    "{} is not a block number",
                    config.data.join("custody-scan-cursor").display()
                )
            })?,
        None => 0,
    };
    shared().lock().expect("custody state").rpc_url = Some(url.clone());
    info!(rpc = %url, payer = payer.is_some(), from_block = next_block, "custody watcher starting");
    let watcher = Watcher {
        lie: super::fault::lies_in_attestations(config.fault, &context.genesis)?,
        assets: plan::chain_assets(&context.genesis),
        settings,
        context,
        keypair,
        member,
        url,
        chain: None,
        next_block,
        scan_cursor,
        stored_resume: Some(next_block),
        unconfirmed: BTreeMap::new(),
        submitted_deposits: BTreeSet::new(),
        submitted_payouts: BTreeMap::new(),
        named_payouts: BTreeSet::new(),
        payer,
        max_ledger_age_ms: MIN_LEDGER_AGE_MS.max(10 * config.empty_block_delay_ms),
    };
    tokio::spawn(watcher.run());
    Ok(())
}

/// A deposit this node attested, until the committed ledger shows its attestation.
struct Unconfirmed {
    block: u64,
    fact: DepositFact,
    passes: u32,
    resubmissions: u32,
}

/// What a lying watcher (`--fault lie-attestations`, tests only) attests instead of
/// the deposits it saw: each with another amount, and beside each an invented deposit
/// (a transaction hash that differs in its last digit) of ten times the amount. Pure.
pub fn lies_about_deposits(facts: Vec<(u64, DepositFact)>) -> Vec<(u64, DepositFact)> {
    let mut lies = Vec::with_capacity(2 * facts.len());
    for (block, fact) in facts {
        let mut inflated = fact.clone();
        inflated.amount = Amount(fact.amount.0.saturating_add(1));
        lies.push((block, inflated));
        let mut invented = fact;
        let mut hash = invented.tx_hash.0.clone();
        let last = if hash.ends_with('0') { '1' } else { '0' };
        hash.pop();
        hash.push(last);
        invented.tx_hash = ChainTxHash(hash);
        invented.amount = Amount(invented.amount.0.saturating_mul(10));
        lies.push((block, invented));
    }
    lies
}

struct Watcher {
    /// Test-only fault injection (`--fault lie-attestations`): attest false facts.
    lie: bool,
    settings: PublicChainSettings,
    assets: Vec<(seisan_types::AssetId, ChainAsset)>,
    context: ApiContext,
    keypair: Keypair,
    member: MemberId,
    url: String,
    chain: Option<EvmChain>,
    /// The first block not scanned yet.
    next_block: u64,
    /// Where a restart resumes scanning ([`plan::resume_block`]), kept on disk.
    scan_cursor: DurableRecord,
    stored_resume: Option<u64>,
    /// Deposits this node attested that the committed ledger does not show attested by
    /// it yet: (block, fact, passes waited, re-submissions).
    unconfirmed: BTreeMap<DepositId, Unconfirmed>,
    submitted_deposits: BTreeSet<DepositId>,
    /// Payout attestations submitted and not yet on the ledger, with the passes since
    /// (one lost to a nonce race is signed again after [`RESUBMIT_AFTER_PASSES`]).
    submitted_payouts: BTreeMap<(WithdrawalId, ChainTxHash), u32>,
    named_payouts: BTreeSet<(WithdrawalId, String)>,
    payer: Option<(WalletKey, Journal)>,
    /// How old the newest finalized block may be for the payer to act.
    max_ledger_age_ms: u64,
}

impl Watcher {
    async fn run(mut self) {
        loop {
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
            let result = self.pass().await;
            let mut state = shared().lock().expect("custody state");
            match result {
                Ok(()) => state.last_error = None,
                Err(error) => {
                    if state.last_error.as_deref() != Some(&format!("{error:#}")) {
                        warn!(error = %format!("{error:#}"), "custody pass failed");
                    }
                    state.last_error = Some(format!("{error:#}"));
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<EvmChain, CustodyError> {
        if let Some(chain) = &self.chain {
            return Ok(chain.clone());
        }
        let chain =
            EvmChain::connect(&self.url, self.settings.chain_id, self.assets.clone()).await?;
        self.chain = Some(chain.clone());
        Ok(chain)
    }

    async fn pass(&mut self) -> anyhow::Result<()> {
        let chain = self.connect().await?;
        let latest = chain.latest_block().await?;
        self.attest_deposits(&chain, latest).await?;
        self.attest_payouts(&chain, latest).await?;
        if self.payer.is_some() {
            let current = self.ledger_is_current();
            shared()
                .lock()
                .expect("custody state")
                .payer_waiting_for_ledger = !current;
            if current {
                self.pay_and_sweep(&chain, latest).await?;
            }
        }
        let reserves = compute_reserves(&chain, &self.context, &self.settings, latest).await?;
        let undercovered = reserves.iter().any(|line| line.undercovered);
        if undercovered {
            warn!(block = latest, "custody is below the ledger's liabilities");
        }
        self.context
            .metrics
            .custody_undercovered
            .set(i64::from(undercovered));
        shared().lock().expect("custody state").undercovered = Some(undercovered);
        Ok(())
    }

    /// Whether the committed ledger holds this node's attestation of deposit `id`.
    fn attested_by_me(&self, id: DepositId) -> bool {
        ledger_custody::deposit(&self.context.db.committed_view(), id).is_some_and(|record| {
            record
                .attestations
                .iter()
                .any(|(_, members)| members.contains(&self.member))
        })
    }

    /// Forgets attestations the ledger now shows and re-submits those it still does not
    /// after [`RESUBMIT_AFTER_PASSES`].
    async fn follow_up_attestations(&mut self) -> anyhow::Result<()> {
        let ids: Vec<DepositId> = self.unconfirmed.keys().copied().collect();
        for id in ids {
            if self.attested_by_me(id) {
                self.unconfirmed.remove(&id);
                continue;
            }
            let entry = self.unconfirmed.get_mut(&id).expect("listed above");
            entry.passes += 1;
            if entry.passes < RESUBMIT_AFTER_PASSES {
                continue;
            }
            if entry.resubmissions == MAX_RESUBMISSIONS {
                warn!(deposit = %id, block = entry.block, "the ledger never recorded this node's attestation; giving up");
                self.unconfirmed.remove(&id);
                continue;
            }
            entry.passes = 0;
            entry.resubmissions += 1;
            let fact = entry.fact.clone();
            warn!(deposit = %id, "attestation not on the ledger yet; submitting it again");
            self.submit(TxBody::AttestDeposit(fact)).await?;
        }
        Ok(())
    }

    async fn attest_deposits(&mut self, chain: &EvmChain, latest: u64) -> anyhow::Result<()> {
        self.follow_up_attestations().await?;
        let Some((from, until)) =
            plan::scan_range(self.next_block, latest, self.settings.confirmations)
        else {
            return Ok(());
        };
        let transfers = chain
            .transfers_to(&self.settings.hot_address, from, until)
            .await?;
        let mut facts = plan::deposit_facts(&self.settings, &transfers);
        if self.lie {
            facts = lies_about_deposits(facts);
        }
        let mut submitted = 0;
        for (block, fact) in facts {
            let id = fact.deposit_id();
            // Attest even a deposit the others already settled: the contract records a
            // late attestation without crediting again, and every validator's own view
            // of every deposit on the chain of record is what lets an operator see a
            // watcher that misses or misreads deposits.
            if self.submitted_deposits.contains(&id) || self.attested_by_me(id) {
                self.submitted_deposits.insert(id);
                continue;
            }
            if submitted == MAX_ATTESTATIONS_PER_PASS {
                // Scan the same blocks again next pass for the rest; what was
                // submitted is skipped then.
                return Ok(());
            }
            info!(deposit = %id, tx = %fact.tx_hash, from = %fact.from, amount = %fact.amount, "attesting deposit");
            self.submit(TxBody::AttestDeposit(fact.clone())).await?;
            self.submitted_deposits.insert(id);
            self.unconfirmed.insert(
                id,
                Unconfirmed {
                    block,
                    fact,
                    passes: 0,
                    resubmissions: 0,
                },
            );
            submitted += 1;
        }
        self.next_block = until + 1;
        let resume = plan::resume_block(
            self.next_block,
            self.unconfirmed.values().map(|entry| entry.block),
        );
        if self.stored_resume != Some(resume) {
            self.scan_cursor.store(resume.to_string().as_bytes())?;
            self.stored_resume = Some(resume);
        }
        shared().lock().expect("custody state").scanned_until = Some(until);
        Ok(())
    }

    async fn attest_payouts(&mut self, chain: &EvmChain, latest: u64) -> anyhow::Result<()> {
        let open = ledger_custody::open_withdrawals(&self.context.db.committed_view());
        self.submitted_payouts
            .retain(|(id, _), _| open.iter().any(|withdrawal| withdrawal.id == *id));
        for withdrawal in open {
            let WithdrawalStatus::Sent { tx_hash } = &withdrawal.status else {
                continue;
            };
            let key = (withdrawal.id, tx_hash.clone());
            if withdrawal.payout_attesters.contains(&self.member) {
                self.submitted_payouts.remove(&key);
                continue;
            }
            if let Some(passes) = self.submitted_payouts.get_mut(&key) {
                *passes += 1;
                if *passes < RESUBMIT_AFTER_PASSES {
                    continue;
                }
                warn!(withdrawal = %withdrawal.id, "payout attestation not on the ledger yet; submitting it again");
            }
            let Some(receipt) = chain.receipt(tx_hash).await? else {
                continue;
            };
            if !receipt.success
                || !plan::is_confirmed(receipt.block, latest, self.settings.confirmations)
                || !plan::pays(&self.settings, &withdrawal, &receipt.transfers)
            {
                continue;
            }
            info!(withdrawal = %withdrawal.id, tx = %tx_hash, "attesting payout");
            self.submit(TxBody::AttestPayout {
                withdrawal: withdrawal.id,
                tx_hash: tx_hash.clone(),
            })
            .await?;
            self.submitted_payouts.insert(key, 0);
        }
        Ok(())
    }

    async fn pay_and_sweep(&mut self, chain: &EvmChain, latest: u64) -> anyhow::Result<()> {
        let (key, journal) = self.payer.clone().expect("checked by caller");
        let hot = self.settings.hot_address.clone();
        // Re-send what is journaled but not mined: same bytes, same nonce.
        let mined_nonce = chain.nonce(&hot, false).await?;
        let entries = journal.entries()?;
        let mut in_flight = false;
        for (_, entry) in &entries {
            if entry.nonce >= mined_nonce {
                chain.broadcast(entry).await?;
                in_flight = true;
            }
        }
        let next_nonce = entries
            .iter()
            .map(|(_, entry)| entry.nonce + 1)
            .max()
            .unwrap_or(0)
            .max(chain.nonce(&hot, true).await?);
        let open = ledger_custody::open_withdrawals(&self.context.db.committed_view());
        let mut waiting = BTreeSet::new();
        for withdrawal in &open {
            let name = plan::payout_journal_name(withdrawal.id);
            if let Some(entry) = journal.get(&name)? {
                // Paid (or paying): make sure the chain of record names this payout.
                let named = matches!(&withdrawal.status, WithdrawalStatus::Sent { tx_hash } if tx_hash.0 == entry.tx_hash);
                if !named
                    && self
                        .named_payouts
                        .insert((withdrawal.id, entry.tx_hash.clone()))
                {
                    self.submit(TxBody::PayoutSent {
                        withdrawal: withdrawal.id,
                        tx_hash: ChainTxHash(entry.tx_hash.clone()),
                    })
                    .await?;
                }
                continue;
            }
            if withdrawal.status != WithdrawalStatus::Pending || in_flight {
                continue;
            }
            // The hot wallet must hold the amount and the gas (in the native coin, even
            // when the payout moves a token); otherwise the withdrawal waits, visible.
            let balance = chain.balance(withdrawal.asset, &hot, latest).await?.0;
            let fee = chain.max_payout_fee().await?;
            let covered = match self.kind(withdrawal.asset) {
                Some(AssetKind::NativeCoin) => balance >= withdrawal.amount.0.saturating_add(fee),
                _ => {
                    balance >= withdrawal.amount.0 && chain.gas_balance(&hot, latest).await? >= fee
                }
            };
            if !covered {
                waiting.insert(withdrawal.id);
                continue;
            }
            let signed = chain
                .sign_transfer(
                    &key,
                    withdrawal.asset,
                    &withdrawal.to,
                    withdrawal.amount,
                    next_nonce,
                    &plan::payout_tag(withdrawal.id),
                )
                .await?;
            journal.record(&name, &signed)?;
            info!(withdrawal = %withdrawal.id, tx = %signed.tx_hash, nonce = signed.nonce, "paying withdrawal");
            chain.broadcast(&signed).await?;
            self.named_payouts
                .insert((withdrawal.id, signed.tx_hash.clone()));
            self.submit(TxBody::PayoutSent {
                withdrawal: withdrawal.id,
                tx_hash: ChainTxHash(signed.tx_hash),
            })
            .await?;
            in_flight = true;
        }
        shared()
            .lock()
            .expect("custody state")
            .waiting_for_hot_wallet = waiting.clone();
        if in_flight || !waiting.is_empty() {
            return Ok(());
        }
        for (asset, _) in self.assets.clone() {
            let hot_balance = chain.balance(asset, &hot, latest).await?;
            let cold_balance = chain
                .balance(asset, &self.settings.cold_address, latest)
                .await?;
            let unpaid = open
                .iter()
                .filter(|w| w.asset == asset && w.status == WithdrawalStatus::Pending)
                .fold(0u128, |sum, w| sum.saturating_add(w.amount.0));
            let mut excess = plan::sweep_amount(
                hot_balance,
                cold_balance,
                Amount(unpaid),
                self.settings.hot_cap_bps,
            );
            if self.kind(asset) == Some(AssetKind::NativeCoin) {
                excess = Amount(excess.0.saturating_sub(chain.max_payout_fee().await?));
            }
            if excess.is_zero() {
                continue;
            }
            let signed = chain
                .sign_transfer(
                    &key,
                    asset,
                    &self.settings.cold_address,
                    excess,
                    next_nonce,
                    b"SEISAN-SWEEP",
                )
                .await?;
            journal.record(&format!("sweep-{}", signed.nonce), &signed)?;
            info!(asset = %asset, amount = %excess, tx = %signed.tx_hash, "sweeping hot wallet excess to cold");
            chain.broadcast(&signed).await?;
            break;
        }
        Ok(())
    }

    /// Whether this node's newest finalized block is recent. A clearing-house node
    /// replaying the chain (restored or wiped) sees withdrawals as they stood long ago,
    /// before their payouts were named; paying from that view could pay twice, so the
    /// payer waits until its ledger is current.
    fn ledger_is_current(&self) -> bool {
        let height = self.context.status.borrow().height;
        let Some(block) = super::pipeline::read_block(&self.context.db, Height(height)) else {
            return false;
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64);
        now_ms.saturating_sub(block.header.timestamp_ms) <= self.max_ledger_age_ms
    }

    fn kind(&self, asset: seisan_types::AssetId) -> Option<AssetKind> {
        self.context.genesis.asset(asset).map(|spec| spec.kind)
    }

    /// Signs `body` with this node's member key at the next nonce and admits it.
    async fn submit(&mut self, body: TxBody) -> anyhow::Result<()> {
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
    let url = shared()
        .lock()
        .expect("custody state")
        .rpc_url
        .clone()
        .ok_or_else(|| {
            not_configured("this node has no --eth-rpc; ask a node that watches the public chain")
        })?;
    let chain = EvmChain::connect(&url, settings.chain_id, plan::chain_assets(genesis))
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let block = chain
        .latest_block()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let assets = compute_reserves(&chain, &context, &settings, block)
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let height = context.status.borrow().height;
    let undercovered = assets.iter().any(|line| line.undercovered);
    let state = shared().lock().expect("custody state");
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
    let waiting = shared()
        .lock()
        .expect("custody state")
        .waiting_for_hot_wallet
        .clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lying_watcher_inflates_each_deposit_and_invents_another() {
        let fact = DepositFact {
            chain_id: 31337,
            tx_hash: ChainTxHash(format!("0x{}", "5".repeat(64))),
            log_index: None,
            from: seisan_types::custody::ChainAddress(format!("0x{}", "a".repeat(40))),
            asset: seisan_types::AssetId(0),
            amount: Amount(7),
        };
        let lies = lies_about_deposits(vec![(9, fact.clone())]);
        assert_eq!(lies.len(), 2);
        let (block, inflated) = &lies[0];
        assert_eq!(*block, 9);
        assert_eq!(inflated.deposit_id(), fact.deposit_id());
        assert_ne!(inflated.content_hash(), fact.content_hash());
        let (_, invented) = &lies[1];
        assert!(invented.tx_hash.is_canonical());
        assert_ne!(invented.deposit_id(), fact.deposit_id());
        assert_eq!(invented.amount, Amount(70));
    }
}
