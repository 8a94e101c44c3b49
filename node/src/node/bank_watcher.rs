//! The bank watcher: every node reads the fiat trust-account statements it may see at
//! the accounting system and attests their entries; the clearing-house node also
//! mirrors settlement and pays fiat withdrawals there (patent S210, S331-S335, claims
//! 7-8).
//!
//! One task, one pass every [`POLL_INTERVAL_MS`]:
//! 1. Attest (every node with `--bank-url` and `--bank-token` or
//!    `--bank-auditor-token`): for each exchange whose trust account this node may
//!    read (every one with the validator's read-only auditor token, so every validator
//!    attests every credit; without it, its own, or all for the clearing house), each
//!    statement entry that came from the exchange's operating account (a trust credit,
//!    S210) or went to it under a `fiat-withdrawal-<id>` reference (a withdrawal
//!    payment) is attested once, unless the ledger already acted on it or holds this
//!    member's attestation. Transfers between trust accounts are the mirror of what the
//!    ledger already settled and are not attested.
//! 2. Mirror (clearing house only): for every committed height above the mirrored
//!    cursor, the block's settlement report gives each member's net fiat change from
//!    fills and cycle netting; payers are matched to payees in member order and each
//!    pair becomes one bank transfer between trust accounts, referenced
//!    `settle-<height>-<payer>-<payee>`. The cursor (a node record) advances only after
//!    the bank confirmed every transfer of the height, so a crash in between re-sends
//!    the same references after the restart and the bank moves each once.
//! 3. Confirm mirrors (every node with a bank connection): for each mirror the ledger
//!    holds open (see `seisan_contracts::mirror`), oldest first, the bank's transfer
//!    under its reference is looked up; when the bank shows it with the ledger's terms,
//!    its debit and credit entry ids are attested (`AttestMirror`), so q validators put
//!    the fiat leg's confirmation on chain. It reads with the auditor token when one is
//!    configured (every trust-to-trust transfer), else with the member's own (the bank
//!    lets a party read a transfer touching its own accounts; the clearing house reads
//!    all); a mirror this node may not read is skipped.
//! 4. Withdrawals (clearing house only): each open fiat withdrawal is paid by a transfer
//!    from the exchange's trust account to its operating account, referenced
//!    `fiat-withdrawal-<id>`; the attestations of step 1 then complete it.
//!
//! Every step works per fiat asset of the genesis: each is a currency at the bank (its
//! symbol) with its own trust and operating accounts (`exchange-a:trust` in JPY,
//! `exchange-a:trust:USD` in USD), so the statements read, the mirrors made and the
//! withdrawals paid are each in the currency of their asset.
//!
//! No lock is held across a bank call: the shared state below is locked only to copy
//! the client or record the last error, and ledger reads happen between calls.
//!
//! Attestations are transactions signed with the node's member key. The custody
//! watcher signs with the same key; both go through `signer::submit_signed`, which
//! chooses the nonce and admits under one lock; a submission that still loses a race
//! (to a person using the member key at the same moment) is refused and retried on the
//! next pass (the attestation is only marked submitted once admitted). An admitted
//! attestation can still lose: the exchange's own clients sign with the same member
//! key, and their transaction at the same nonce, admitted at another node, may be
//! finalized first, so this one is dropped as stale. So an attestation stays
//! unconfirmed until the committed ledger holds it, and is signed again when it has
//! not arrived after [`RESUBMIT_AFTER_MS`].
//!
//! `GET /v1/reconciliation` (module `reconciliation`) puts, per exchange, the ledger's
//! fiat balance beside the bank's trust balance with what is in flight, and lists every
//! settlement whose bank leg is not confirmed on chain.

use super::api::ApiContext;
use super::config::NodeConfig;
use seisan_bank::{
    AccountId, AccountKind, BankAdapter, BankError, Direction, Entry, HttpBank, TransferReference,
    TransferRequest,
};
use seisan_contracts::bank as ledger_bank;
pub use seisan_contracts::mirror::mirror_transfers;
use seisan_types::bank::{BankEntryId, BankEntryKind, BankFact, FiatWithdrawalId};
use seisan_types::mirror::{MirrorFact, MirrorId, MirrorRecord};
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetId, Genesis, Height, MemberId, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tracing::{info, warn};

/// How often the watcher polls the bank.
pub const POLL_INTERVAL_MS: u64 = 500;
/// The most attestations one pass submits.
pub const MAX_ATTESTATIONS_PER_PASS: usize = 256;
/// How long an admitted attestation may be missing from the committed ledger before
/// it is signed again (it may have lost its nonce to another holder of the key).
pub const RESUBMIT_AFTER_MS: u64 = 15_000;
/// The most heights one pass mirrors (bounds a catch-up burst).
pub const MAX_HEIGHTS_PER_PASS: u64 = 512;
/// The most open mirrors one pass looks up at the bank.
pub const MAX_MIRROR_CHECKS_PER_PASS: usize = 64;
/// The node record holding the last height whose settlement the bank mirrored.
pub const MIRRORED_RECORD: &[u8] = b"bank/mirrored";
/// A file in the data directory that makes the clearing-house node abort right after
/// the bank confirmed a mirrored transfer and before it records that (removed first):
/// the crash window the idempotent references protect, for fault tests.
pub const CRASH_AFTER_TRANSFER_FILE: &str = "bank-crash-after-transfer";

/// What the API reads.
#[derive(Debug, Default)]
struct Shared {
    bank: Option<HttpBank>,
    last_error: Option<String>,
}

static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();

fn shared() -> &'static Mutex<Shared> {
    SHARED.get_or_init(Default::default)
}

/// This node's bank client, if it has a bank connection (a copy: no lock is kept).
pub fn shared_bank() -> Option<HttpBank> {
    shared().lock().expect("bank state").bank.clone()
}

/// The watcher's last failed pass, if the latest pass failed.
pub fn last_error() -> Option<String> {
    shared().lock().expect("bank state").last_error.clone()
}

/// Every fiat asset of the genesis with its currency at the bank (the asset's symbol):
/// each has its own trust accounts there (`AccountId::trust_in`).
pub fn fiat_currencies(genesis: &Genesis) -> Vec<(AssetId, String)> {
    seisan_contracts::mirror::fiat_assets(genesis)
        .into_iter()
        .map(|asset| {
            let symbol = genesis
                .asset(asset)
                .expect("a genesis asset")
                .symbol
                .clone();
            (asset, symbol)
        })
        .collect()
}

/// The currency at the bank of the fiat asset `asset` (its symbol).
fn currency_of(genesis: &Genesis, asset: AssetId) -> String {
    genesis
        .asset(asset)
        .map(|found| found.symbol.clone())
        .expect("ledger records name genesis assets")
}

/// Starts the watcher if this node has a bank URL and token.
pub fn spawn(config: &NodeConfig, member: MemberId, context: ApiContext) -> anyhow::Result<()> {
    let Some(url) = config.bank_url.clone() else {
        return Ok(());
    };
    // The member's own token (the clearing house moves money with it) and the
    // validator's read-only auditor token (it reads every trust account): either
    // starts the watcher.
    let own = config
        .bank_token
        .as_deref()
        .map(|token| HttpBank::new(&url, token));
    let auditor = config
        .bank_auditor_token
        .as_deref()
        .map(|token| HttpBank::new(&url, token));
    let Some(bank) = own.or_else(|| auditor.clone()) else {
        return Ok(());
    };
    let fiat = fiat_currencies(&context.genesis);
    if fiat.is_empty() {
        warn!("--bank-url is set but genesis has no fiat asset; the bank watcher is off");
        return Ok(());
    }
    let keypair = seisan_crypto::keyfile::read_key_file(&config.key)?;
    let lie = super::fault::lies_in_attestations(config.fault, &context.genesis)?;
    // Reconciliation only reads: the auditor token, when configured, reads every
    // exchange's trust account.
    shared().lock().expect("bank state").bank =
        Some(auditor.clone().unwrap_or_else(|| bank.clone()));
    let clearing_house =
        context.genesis.member(member).map(|m| m.role) == Some(Role::ClearingHouse);
    info!(url = %url, clearing_house, auditor = auditor.is_some(), "bank watcher starting");
    let watcher = Watcher {
        context,
        keypair,
        member,
        fiat,
        reader: auditor.clone().unwrap_or_else(|| bank.clone()),
        audits_all: auditor.is_some(),
        lie,
        squatted: BTreeSet::new(),
        bank,
        clearing_house,
        crash_file: config.data.join(CRASH_AFTER_TRANSFER_FILE),
        cursors: BTreeMap::new(),
        missing_accounts: BTreeSet::new(),
        unconfirmed: BTreeMap::new(),
        paid: BTreeSet::new(),
        mirror_signed: BTreeMap::new(),
        mirror_unreadable: BTreeSet::new(),
    };
    tokio::spawn(watcher.run());
    Ok(())
}

struct Watcher {
    context: ApiContext,
    keypair: seisan_crypto::Keypair,
    member: MemberId,
    /// Every fiat asset and its currency at the bank, in asset order.
    fiat: Vec<(AssetId, String)>,
    bank: HttpBank,
    /// Reads the trust accounts' statements: the auditor token when configured (every
    /// trust account), else the member's own token.
    reader: HttpBank,
    /// Whether `reader` is an auditor (reads every exchange's trust account).
    audits_all: bool,
    /// Test-only fault injection (`--fault lie-attestations`): attest false facts.
    lie: bool,
    /// Bank sequence numbers a lying watcher already attested an invented fact for.
    squatted: BTreeSet<u64>,
    clearing_house: bool,
    crash_file: std::path::PathBuf,
    /// Per exchange and fiat asset, the last statement sequence fully handled (in
    /// memory: after a restart statements are read again and handled entries skipped by
    /// state).
    cursors: BTreeMap<(MemberId, AssetId), u64>,
    /// Attestations admitted but not yet in the committed ledger, with when they were
    /// last signed (in memory: after a restart the statements are read again).
    unconfirmed: BTreeMap<BankEntryId, (BankFact, std::time::Instant)>,
    /// Trust accounts the bank does not know (a currency it is not configured with),
    /// warned about once.
    missing_accounts: BTreeSet<AccountId>,
    /// Withdrawals whose transfer the bank confirmed in this run.
    paid: BTreeSet<FiatWithdrawalId>,
    /// Mirror attestations this run signed, with when (signed again after
    /// [`RESUBMIT_AFTER_MS`] if the ledger still lacks them).
    mirror_signed: BTreeMap<MirrorId, std::time::Instant>,
    /// Mirrors whose transfer this node's token may not read (not asked again).
    mirror_unreadable: BTreeSet<MirrorId>,
}

/// Runs a blocking bank call off the async runtime.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, BankError> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .expect("bank call does not panic")
        .map_err(|error| anyhow::anyhow!("bank: {error}"))
}

/// The fact an entry on `member`'s trust account in `asset`'s currency states, if it is
/// one to attest (the bank keeps every transfer within one currency, so the operating
/// account on the other side is the same currency's).
pub fn entry_fact(member: MemberId, name: &str, asset: AssetId, entry: &Entry) -> Option<BankFact> {
    let from_own_operating = matches!(
        entry.counterparty.split(),
        Some((owner, AccountKind::Operating)) if owner == name
    );
    if !from_own_operating {
        return None;
    }
    let kind = match entry.direction {
        Direction::Credit => BankEntryKind::TrustCredit,
        Direction::Debit => {
            let id = entry.reference.0.strip_prefix("fiat-withdrawal-")?;
            BankEntryKind::WithdrawalPaid {
                withdrawal: FiatWithdrawalId(id.parse().ok()?),
            }
        }
    };
    Some(BankFact {
        entry: BankEntryId(entry.id.0.clone()),
        member,
        asset,
        amount: entry.amount,
        kind,
    })
}

/// How many entry ids after each entry it sees a lying watcher attests invented facts
/// for (test-only fault injection).
pub const LIE_SQUAT_AHEAD: u64 = 4;

/// What a lying watcher (`--fault lie-attestations`, tests only) attests for `entry`
/// instead of `truths`: each true fact with another amount, and an invented trust
/// credit to `member` for each of the next [`LIE_SQUAT_AHEAD`] entry ids the bank has
/// not assigned yet (the embedded bank's ids are `E` and the 12-digit global sequence),
/// each once (`squatted`). Pure.
pub fn lies_about(
    member: MemberId,
    asset: AssetId,
    entry: &Entry,
    truths: Vec<BankFact>,
    squatted: &mut BTreeSet<u64>,
) -> Vec<BankFact> {
    let mut lies: Vec<BankFact> = truths
        .into_iter()
        .map(|mut fact| {
            fact.amount = Amount(fact.amount.0.saturating_add(1));
            fact
        })
        .collect();
    for sequence in entry.sequence + 1..=entry.sequence + LIE_SQUAT_AHEAD {
        if squatted.insert(sequence) {
            lies.push(BankFact {
                entry: BankEntryId(format!("E{sequence:012}")),
                member,
                asset,
                amount: Amount(999_999),
                kind: BankEntryKind::TrustCredit,
            });
        }
    }
    lies
}

impl Watcher {
    async fn run(mut self) {
        loop {
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
            let result = self.pass().await;
            let mut state = shared().lock().expect("bank state");
            match result {
                Ok(()) => state.last_error = None,
                Err(error) => {
                    let text = format!("{error:#}");
                    if state.last_error.as_deref() != Some(&text) {
                        warn!(error = %text, "bank pass failed");
                    }
                    state.last_error = Some(text);
                }
            }
        }
    }

    async fn pass(&mut self) -> anyhow::Result<()> {
        self.attest().await?;
        if self.clearing_house {
            self.mirror().await?;
        }
        self.confirm_mirrors().await?;
        if self.clearing_house {
            self.pay_withdrawals().await?;
        }
        Ok(())
    }

    fn visible_exchanges(&self) -> Vec<(MemberId, String)> {
        let genesis = &self.context.genesis;
        genesis
            .members
            .iter()
            .enumerate()
            .map(|(index, member)| (MemberId(index as u32), member))
            .filter(|(id, member)| {
                member.role == Role::Exchange
                    && (self.clearing_house || self.audits_all || *id == self.member)
            })
            .map(|(id, member)| (id, member.name.clone()))
            .collect()
    }

    /// Forgets the unconfirmed attestations the committed ledger now holds and signs
    /// again those missing for longer than [`RESUBMIT_AFTER_MS`].
    async fn resubmit_unconfirmed(&mut self) -> anyhow::Result<()> {
        let due: Vec<BankFact> = {
            let view = self.context.db.committed_view();
            let member = self.member;
            self.unconfirmed.retain(|entry, _| {
                !ledger_bank::entry(&view, entry).is_some_and(|record| {
                    record.applied.is_some()
                        || record.attestations.iter().any(|(by, _)| *by == member)
                })
            });
            let patience = Duration::from_millis(RESUBMIT_AFTER_MS);
            self.unconfirmed
                .values()
                .filter(|(_, signed)| signed.elapsed() >= patience)
                .map(|(fact, _)| fact.clone())
                .collect()
        };
        for fact in due {
            warn!(entry = %fact.entry, "attestation missing from the ledger; signing it again");
            self.submit(TxBody::AttestBankEntry(fact.clone())).await?;
            self.unconfirmed
                .insert(fact.entry.clone(), (fact, std::time::Instant::now()));
        }
        Ok(())
    }

    async fn attest(&mut self) -> anyhow::Result<()> {
        self.resubmit_unconfirmed().await?;
        let mut budget = MAX_ATTESTATIONS_PER_PASS;
        let mut accounts: Vec<(MemberId, String, AssetId, String)> = Vec::new();
        for (member, name) in self.visible_exchanges() {
            for (asset, currency) in &self.fiat {
                accounts.push((member, name.clone(), *asset, currency.clone()));
            }
        }
        for (member, name, asset, currency) in accounts {
            let after = self.cursors.get(&(member, asset)).copied().unwrap_or(0);
            let bank = self.reader.clone();
            let account = AccountId::trust_in(&name, &currency);
            let asked = account.clone();
            let read = tokio::task::spawn_blocking(move || bank.statement(&asked, after))
                .await
                .expect("bank call does not panic");
            let entries = match read {
                Ok(entries) => entries,
                // A bank configured without this currency: its other currencies are
                // still attested (reconciliation reports the missing account).
                Err(BankError::UnknownAccount { .. }) => {
                    if self.missing_accounts.insert(account.clone()) {
                        warn!(account = %account, "the bank has no such trust account; its currency is not attested");
                    }
                    continue;
                }
                Err(error) => return Err(anyhow::anyhow!("bank: {error}")),
            };
            for entry in entries {
                let mut facts: Vec<BankFact> = entry_fact(member, &name, asset, &entry)
                    .into_iter()
                    .collect();
                if self.lie {
                    facts = lies_about(member, asset, &entry, facts, &mut self.squatted);
                }
                for fact in facts {
                    if budget == 0 {
                        return Ok(());
                    }
                    if !self.already_handled(&fact) {
                        info!(entry = %fact.entry, member = %name, amount = %fact.amount, "attesting bank entry");
                        self.submit(TxBody::AttestBankEntry(fact.clone())).await?;
                        self.unconfirmed.insert(
                            fact.entry.clone(),
                            (fact.clone(), std::time::Instant::now()),
                        );
                        budget -= 1;
                    }
                }
                self.cursors.insert((member, asset), entry.sequence);
            }
        }
        Ok(())
    }

    fn already_handled(&self, fact: &BankFact) -> bool {
        if self.unconfirmed.contains_key(&fact.entry) {
            return true;
        }
        let view = self.context.db.committed_view();
        ledger_bank::entry(&view, &fact.entry).is_some_and(|record| {
            record.applied.is_some()
                || record
                    .attestations
                    .iter()
                    .any(|(member, _)| *member == self.member)
        })
    }

    fn mirrored(&self) -> u64 {
        self.context
            .db
            .record(MIRRORED_RECORD)
            .map(|bytes| u64::from_be_bytes(bytes.try_into().expect("8-byte height")))
            .unwrap_or(0)
    }

    async fn mirror(&mut self) -> anyhow::Result<()> {
        let tip = super::pipeline::read_tip(&self.context.db).map_or(0, |tip| tip.height.0);
        let from = self.mirrored() + 1;
        let until = tip.min(self.mirrored() + MAX_HEIGHTS_PER_PASS);
        for height in from..=until {
            let view = self.context.db.committed_view();
            let report = seisan_contracts::query::settlement_report(&view, Height(height));
            let mut transfers: Vec<(AssetId, MemberId, MemberId, Amount)> = Vec::new();
            for (asset, _) in &self.fiat {
                if let Some(report) = &report {
                    for (payer, payee, amount) in mirror_transfers(report, *asset) {
                        transfers.push((*asset, payer, payee, amount));
                    }
                }
            }
            for (asset, payer, payee, amount) in transfers {
                let request = self.trust_transfer(height, asset, payer, payee, amount);
                let bank = self.bank.clone();
                let sent = request.clone();
                let receipt = blocking(move || bank.transfer(&sent)).await?;
                info!(height, reference = %request.reference, amount = %amount, duplicate = receipt.duplicate, "settlement mirrored at the bank");
                if std::fs::remove_file(&self.crash_file).is_ok() {
                    warn!("crash file present: aborting between the bank's confirmation and the record");
                    std::process::abort();
                }
            }
            self.context.db.put_records(vec![(
                MIRRORED_RECORD.to_vec(),
                Some(height.to_be_bytes().to_vec()),
            )]);
        }
        Ok(())
    }

    fn name(&self, member: MemberId) -> String {
        self.context
            .genesis
            .member(member)
            .map(|member| member.name.clone())
            .expect("report names genesis members")
    }

    fn trust_transfer(
        &self,
        height: u64,
        asset: AssetId,
        payer: MemberId,
        payee: MemberId,
        amount: Amount,
    ) -> TransferRequest {
        let (payer, payee) = (self.name(payer), self.name(payee));
        let genesis = &self.context.genesis;
        let currency = currency_of(genesis, asset);
        TransferRequest {
            from: AccountId::trust_in(&payer, &currency),
            to: AccountId::trust_in(&payee, &currency),
            amount,
            reference: TransferReference(seisan_contracts::mirror::mirror_reference_in(
                genesis,
                asset,
                Height(height),
                &payer,
                &payee,
            )),
        }
    }

    /// Step 3: attests the bank's confirmation of each open mirror it shows.
    async fn confirm_mirrors(&mut self) -> anyhow::Result<()> {
        let open = seisan_contracts::mirror::open_mirrors(
            &self.context.db.committed_view(),
            seisan_contracts::mirror::MAX_MIRROR_RECORDS_PER_QUERY,
        );
        let patience = Duration::from_millis(RESUBMIT_AFTER_MS);
        let due: Vec<MirrorRecord> = open
            .into_iter()
            .filter(|record| {
                let mine = record.attestations.iter().any(|(by, _)| *by == self.member);
                let recent = self
                    .mirror_signed
                    .get(&record.mirror)
                    .is_some_and(|signed| signed.elapsed() < patience);
                !mine && !recent && !self.mirror_unreadable.contains(&record.mirror)
            })
            .take(MAX_MIRROR_CHECKS_PER_PASS)
            .collect();
        for record in due {
            // The auditor token (when configured) reads every trust-to-trust transfer.
            let bank = self.reader.clone();
            let reference = TransferReference(record.reference.clone());
            let looked_up =
                tokio::task::spawn_blocking(move || bank.transfer_by_reference(&reference))
                    .await
                    .expect("bank call does not panic");
            let receipt = match looked_up {
                Ok(Some(receipt)) => receipt,
                // Not made yet: the clearing house has not got to it.
                Ok(None) => continue,
                Err(BankError::Forbidden { .. }) => {
                    self.mirror_unreadable.insert(record.mirror);
                    continue;
                }
                Err(error) => return Err(anyhow::anyhow!("bank: {error}")),
            };
            let (payer, payee) = (
                self.name(record.mirror.payer),
                self.name(record.mirror.payee),
            );
            let currency = currency_of(&self.context.genesis, record.asset);
            let as_settled = receipt.request.from == AccountId::trust_in(&payer, &currency)
                && receipt.request.to == AccountId::trust_in(&payee, &currency)
                && receipt.request.amount == record.amount;
            if !as_settled {
                warn!(reference = %record.reference, receipt = ?receipt.request, "the bank's transfer under a settlement reference differs from the settlement; not attesting");
                self.mirror_unreadable.insert(record.mirror);
                continue;
            }
            let fact = MirrorFact {
                mirror: record.mirror,
                asset: record.asset,
                amount: record.amount,
                reference: record.reference.clone(),
                debit_entry: BankEntryId(receipt.debit_entry.0.clone()),
                credit_entry: BankEntryId(receipt.credit_entry.0.clone()),
            };
            info!(reference = %record.reference, debit = %fact.debit_entry, credit = %fact.credit_entry, "attesting the bank's confirmation of a mirrored settlement");
            self.submit(TxBody::AttestMirror(fact)).await?;
            self.mirror_signed
                .insert(record.mirror, std::time::Instant::now());
        }
        // Forget what the ledger no longer holds open.
        let view = self.context.db.committed_view();
        self.mirror_signed.retain(|id, _| {
            seisan_contracts::mirror::mirror(&view, *id)
                .is_some_and(|record| record.confirmed.is_none())
        });
        Ok(())
    }

    async fn pay_withdrawals(&mut self) -> anyhow::Result<()> {
        let open = ledger_bank::open_withdrawals(&self.context.db.committed_view());
        for withdrawal in open {
            if self.paid.contains(&withdrawal.id) {
                continue;
            }
            let name = self.name(withdrawal.member);
            let currency = currency_of(&self.context.genesis, withdrawal.asset);
            let request = TransferRequest {
                from: AccountId::trust_in(&name, &currency),
                to: AccountId::operating_in(&name, &currency),
                amount: withdrawal.amount,
                reference: TransferReference(ledger_bank::withdrawal_reference(withdrawal.id)),
            };
            let bank = self.bank.clone();
            let sent = request.clone();
            blocking(move || bank.transfer(&sent)).await?;
            info!(withdrawal = %withdrawal.id, member = %name, amount = %withdrawal.amount, "fiat withdrawal paid at the bank");
            self.paid.insert(withdrawal.id);
        }
        Ok(())
    }

    async fn submit(&mut self, body: TxBody) -> anyhow::Result<()> {
        super::signer::submit_signed(&self.context, &self.keypair, self.member, body)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lying_watcher_misstates_amounts_and_claims_the_next_entry_ids_once() {
        let entry = Entry {
            id: seisan_bank::EntryId("E000000000006".into()),
            sequence: 6,
            account: AccountId::trust("a"),
            direction: Direction::Credit,
            amount: Amount(200),
            counterparty: AccountId::operating("a"),
            reference: TransferReference("r".into()),
            timestamp_ms: 0,
            balance_after: Amount(200),
        };
        let truth = entry_fact(MemberId(1), "a", AssetId(1), &entry).unwrap();
        let mut squatted = BTreeSet::new();
        let lies = lies_about(
            MemberId(1),
            AssetId(1),
            &entry,
            vec![truth.clone()],
            &mut squatted,
        );
        assert_eq!(lies.len(), 1 + LIE_SQUAT_AHEAD as usize);
        assert_eq!(lies[0].entry, truth.entry);
        assert_ne!(lies[0].amount, truth.amount);
        let invented: Vec<&str> = lies[1..].iter().map(|fact| fact.entry.0.as_str()).collect();
        assert_eq!(
            invented,
            [
                "E000000000007",
                "E000000000008",
                "E000000000009",
                "E000000000010"
            ]
        );
        // The next entry's claims overlap: each id is claimed once.
        let next = Entry {
            sequence: 7,
            ..entry
        };
        let again = lies_about(MemberId(1), AssetId(1), &next, vec![], &mut squatted);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].entry.0, "E000000000011");
    }

    #[test]
    fn only_operating_account_entries_are_attested() {
        let entry = |counterparty: &str, direction, reference: &str| Entry {
            id: seisan_bank::EntryId("E1".into()),
            sequence: 1,
            account: AccountId::trust("a"),
            direction,
            amount: Amount(9),
            counterparty: AccountId(counterparty.into()),
            reference: TransferReference(reference.into()),
            timestamp_ms: 0,
            balance_after: Amount(9),
        };
        let credit = entry_fact(
            MemberId(1),
            "a",
            AssetId(1),
            &entry("a:operating", Direction::Credit, "x"),
        );
        assert_eq!(credit.unwrap().kind, BankEntryKind::TrustCredit);
        let paid = entry_fact(
            MemberId(1),
            "a",
            AssetId(1),
            &entry("a:operating", Direction::Debit, "fiat-withdrawal-4"),
        );
        assert_eq!(
            paid.unwrap().kind,
            BankEntryKind::WithdrawalPaid {
                withdrawal: FiatWithdrawalId(4)
            }
        );
        assert!(entry_fact(
            MemberId(1),
            "a",
            AssetId(1),
            &entry("b:trust", Direction::Credit, "settle-1")
        )
        .is_none());
        assert!(entry_fact(
            MemberId(1),
            "a",
            AssetId(1),
            &entry("a:operating", Direction::Debit, "other")
        )
        .is_none());
        // A USD credit from the USD operating account states a USD fact; another
        // member's USD trust account is a mirror, not a credit.
        let usd = entry_fact(
            MemberId(1),
            "a",
            AssetId(3),
            &entry("a:operating:USD", Direction::Credit, "x"),
        )
        .unwrap();
        assert_eq!(
            (usd.asset, usd.kind),
            (AssetId(3), BankEntryKind::TrustCredit)
        );
        assert!(entry_fact(
            MemberId(1),
            "a",
            AssetId(3),
            &entry("b:trust:USD", Direction::Credit, "settle-1-b-a-USD")
        )
        .is_none());
    }
}
