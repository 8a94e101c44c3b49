//! The bank watcher's shell: an actor (one task and its state) that does the I/O for
//! the pure bank planner (`seisan_watch::bank`, whose docs say what a pass decides:
//! attest trust-account entries, mirror settlement and pay withdrawals (clearing
//! house), confirm mirrors; patent S210, S250-S290, S331-S335, claims 7-8).
//!
//! One pass every [`POLL_INTERVAL_MS`] while the node is not syncing: ask the planner
//! what to read (under the commit lock, released before any bank call); read it
//! through the `BankAdapter` (blocking HTTP, off the async runtime); plan from the
//! committed ledger, the answers, the stored mirror cursor and the clock; then carry
//! out the actions in order, stopping at the first that fails and telling the planner
//! which were done and which not. Attestations go through the node's attester (its
//! own nonce lane); transfers go to the bank with the member's own token, reads with
//! the validator's auditor token when one is configured (every trust account). What
//! the watcher last did is published through a `tokio::sync::watch` channel that the
//! API reads ([`BankStatus`]).
//!
//! The mirror cursor is a node record, stored after the bank confirmed every transfer
//! of a height, so a crash in between re-sends the same references after the restart
//! and the bank moves each once ([`CRASH_AFTER_TRANSFER_FILE`] makes a test crash
//! exactly there).

use super::api::ApiContext;
use super::attester::AttesterHandle;
use super::config::NodeConfig;
use seisan_bank::{BankAdapter, BankError, HttpBank};
use seisan_types::{Height, MemberId, Role};
use seisan_watch::bank::{
    BankAction, BankAnswer, BankNotice, BankPlanner, BankPlannerConfig, BankRead, TransferPurpose,
};
// The clock the shell passes to the planner.
use super::clock::wall_clock as now;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

pub use seisan_watch::bank::{entry_fact, fiat_currencies};

/// How often the watcher polls the bank.
pub const POLL_INTERVAL_MS: u64 = 500;
/// The node record holding the last height whose settlement the bank mirrored.
pub const MIRRORED_RECORD: &[u8] = b"bank/mirrored";
/// A file in the data directory that makes the clearing-house node abort right after
/// the bank confirmed a mirrored transfer and before it records that (removed first):
/// the crash window the idempotent references protect, for fault tests. Obeyed only in
/// a build with the `test-hooks` feature; a release binary ignores the file.
pub const CRASH_AFTER_TRANSFER_FILE: &str = "bank-crash-after-transfer";

/// What the API reads about the bank watcher.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BankStatus {
    /// The last pass's failure, if it failed.
    pub last_error: Option<String>,
    /// Entry and mirror attestations admitted and not on the ledger yet.
    pub pending_entries: usize,
    pub pending_mirrors: usize,
}

/// The node's clients at the bank: `own` (the member's token) moves money, `reader`
/// reads the trust accounts (the validator's auditor token when configured, which
/// reads every one; else the member's own).
#[derive(Clone)]
pub struct BankConnection {
    pub own: Arc<dyn BankAdapter>,
    pub reader: Arc<dyn BankAdapter>,
    pub audits_all: bool,
    pub url: String,
}

impl std::fmt::Debug for BankConnection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BankConnection")
            .field("url", &self.url)
            .field("audits_all", &self.audits_all)
            .finish_non_exhaustive()
    }
}

/// The node's bank clients, if it has a bank URL and a token (its own or an auditor's);
/// an unreadable `bank_ca` is an error.
pub fn connect(config: &NodeConfig) -> anyhow::Result<Option<BankConnection>> {
    let Some(url) = config.bank_url.clone() else {
        return Ok(None);
    };
    let tls = seisan_tls::client_tls(config.bank_ca.as_deref())?;
    let client = |token: &str| HttpBank::new(&url, token).with_tls(tls.clone());
    let own = config.bank_token.as_deref().map(client);
    let auditor = config.bank_auditor_token.as_deref().map(client);
    let Some(own) = own.or_else(|| auditor.clone()) else {
        return Ok(None);
    };
    let audits_all = auditor.is_some();
    let reader = auditor.unwrap_or_else(|| own.clone());
    Ok(Some(BankConnection {
        own: Arc::new(own),
        reader: Arc::new(reader),
        audits_all,
        url,
    }))
}

/// Starts the watcher when the node has a bank connection and genesis a fiat asset;
/// `status` is where it publishes (the API holds the receiver).
pub fn spawn(
    config: &NodeConfig,
    member: MemberId,
    context: ApiContext,
    attester: AttesterHandle,
    connection: Option<BankConnection>,
    status: watch::Sender<BankStatus>,
) -> anyhow::Result<()> {
    let Some(connection) = connection else {
        return Ok(());
    };
    if fiat_currencies(&context.genesis).is_empty() {
        warn!("--bank-url is set but genesis has no fiat asset; the bank watcher is off");
        return Ok(());
    }
    let lie = super::fault::lies_in_attestations(config.fault, &context.genesis)?;
    let clearing_house =
        context.genesis.member(member).map(|m| m.role) == Some(Role::ClearingHouse);
    info!(url = %connection.url, clearing_house, auditor = connection.audits_all, "bank watcher starting");
    let shell = Shell {
        planner: BankPlanner::new(BankPlannerConfig {
            me: member,
            clearing_house,
            audits_all: connection.audits_all,
            lie,
        }),
        context,
        attester,
        connection,
        status,
        crash_file: config.data.join(CRASH_AFTER_TRANSFER_FILE),
    };
    tokio::spawn(shell.run());
    Ok(())
}

/// Runs a blocking bank call off the async runtime.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, BankError> + Send + 'static,
) -> Result<T, BankError> {
    tokio::task::spawn_blocking(call)
        .await
        .expect("bank call does not panic")
}

/// Asks the bank one planner question.
async fn ask(bank: &Arc<dyn BankAdapter>, read: &BankRead) -> BankAnswer {
    let bank = bank.clone();
    match read.clone() {
        BankRead::Statement { account, after, .. } => {
            BankAnswer::Statement(blocking(move || bank.statement(&account, after)).await)
        }
        BankRead::Transfer { reference, .. } => {
            BankAnswer::Transfer(blocking(move || bank.transfer_by_reference(&reference)).await)
        }
    }
}

/// The stored mirror cursor.
fn mirrored(context: &ApiContext) -> Height {
    Height(
        context
            .db
            .record(MIRRORED_RECORD)
            .map(|bytes| u64::from_be_bytes(bytes.try_into().expect("8-byte height")))
            .unwrap_or(0),
    )
}

struct Shell {
    planner: BankPlanner,
    context: ApiContext,
    attester: AttesterHandle,
    connection: BankConnection,
    status: watch::Sender<BankStatus>,
    crash_file: std::path::PathBuf,
}

impl Shell {
    async fn run(mut self) {
        loop {
            tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
            if self.context.status.borrow().syncing {
                // Attestations from a stale ledger would be planned twice.
                continue;
            }
            let result = self.pass().await;
            let (entries, mirrors) = self.planner.pending();
            self.status.send_modify(|status| {
                status.pending_entries = entries;
                status.pending_mirrors = mirrors;
                match result {
                    Ok(()) => status.last_error = None,
                    Err(error) => {
                        if status.last_error.as_deref() != Some(&error) {
                            warn!(%error, "bank pass failed");
                        }
                        status.last_error = Some(error);
                    }
                }
            });
        }
    }

    async fn pass(&mut self) -> Result<(), String> {
        let genesis = self.context.genesis.clone();
        let reads = {
            let _read = self.context.commit_lock.read().expect("commit lock");
            self.planner
                .reads(&self.context.db.committed_view(), &genesis)
        };
        let mut answers = Vec::with_capacity(reads.len());
        let mut unreadable = None;
        for read in reads {
            let answer = ask(&self.connection.reader, &read).await;
            if let BankAnswer::Statement(Err(error)) | BankAnswer::Transfer(Err(error)) = &answer {
                if !matches!(
                    error,
                    BankError::UnknownAccount { .. } | BankError::Forbidden { .. }
                ) {
                    unreadable.get_or_insert_with(|| format!("bank: {error}"));
                }
            }
            answers.push((read, answer));
        }
        let actions = {
            let _read = self.context.commit_lock.read().expect("commit lock");
            let tip =
                super::pipeline::read_tip(&self.context.db).map_or(Height(0), |tip| tip.height);
            self.planner.plan(
                &self.context.db.committed_view(),
                &genesis,
                tip,
                mirrored(&self.context),
                answers,
                now(),
            )
        };
        let mut failure = None;
        for (index, action) in actions.iter().enumerate() {
            if let Err(error) = self.carry_out(action).await {
                for rest in &actions[index..] {
                    self.planner.not_done(rest);
                }
                failure = Some(error);
                break;
            }
            self.planner.done(action, now());
        }
        for notice in self.planner.take_notices() {
            match notice {
                BankNotice::MissingAccount(account) => {
                    warn!(%account, "the bank has no such trust account; its currency is not attested")
                }
                BankNotice::MirrorDiffers { reference } => {
                    warn!(%reference, "the bank's transfer under a settlement reference differs from the settlement; not attesting")
                }
                BankNotice::GaveUp(what) => {
                    warn!(%what, "the ledger never recorded this node's attestation; its statement is read again")
                }
            }
        }
        match failure.or(unreadable) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    async fn carry_out(&mut self, action: &BankAction) -> Result<(), String> {
        match action {
            BankAction::Attest(body) => {
                self.attester
                    .attest(body.clone())
                    .await
                    .map_err(|error| error.to_string())?;
                info!(kind = body.kind_name(), "attested");
            }
            BankAction::Transfer { request, purpose } => {
                let bank = self.connection.own.clone();
                let sent = request.clone();
                let receipt = blocking(move || bank.transfer(&sent))
                    .await
                    .map_err(|error| format!("bank: {error}"))?;
                match purpose {
                    TransferPurpose::Mirror { height } => {
                        info!(%height, reference = %request.reference, amount = %request.amount, duplicate = receipt.duplicate, "settlement mirrored at the bank");
                        if cfg!(feature = "test-hooks")
                            && std::fs::remove_file(&self.crash_file).is_ok()
                        {
                            warn!("crash file present: aborting between the bank's confirmation and the record");
                            std::process::abort();
                        }
                    }
                    TransferPurpose::Withdrawal { withdrawal } => {
                        info!(%withdrawal, to = %request.to, amount = %request.amount, "fiat withdrawal paid at the bank")
                    }
                }
            }
            BankAction::MirroredThrough(height) => {
                self.context.db.put_records(vec![(
                    MIRRORED_RECORD.to_vec(),
                    Some(height.0.to_be_bytes().to_vec()),
                )]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::test_support;
    use seisan_bank::{
        AccountBalance, AccountId, BankStore, Entry, TransferReceipt, TransferReference,
        TransferRequest,
    };
    use seisan_types::tx::TxBody;
    use seisan_types::Amount;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The embedded bank's books, answering `Unavailable` while `down`.
    struct Flaky {
        books: BankStore,
        down: AtomicBool,
    }

    impl Flaky {
        fn check(&self) -> Result<(), BankError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(BankError::Unavailable {
                    reason: "connection refused".into(),
                });
            }
            Ok(())
        }
    }

    impl BankAdapter for Flaky {
        fn balance(&self, account: &AccountId) -> Result<AccountBalance, BankError> {
            self.check()?;
            self.books.balance(account)
        }
        fn statement(&self, account: &AccountId, after: u64) -> Result<Vec<Entry>, BankError> {
            self.check()?;
            self.books.statement(account, after)
        }
        fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, BankError> {
            self.check()?;
            self.books.transfer(request, 0)
        }
        fn transfer_by_reference(
            &self,
            reference: &TransferReference,
        ) -> Result<Option<TransferReceipt>, BankError> {
            self.check()?;
            self.books.transfer_by_reference(reference)
        }
    }

    /// exchange-b's node (a validator with the auditor's view) watching a bank where
    /// exchange-a moved 700 JPY into its trust account.
    fn shell(dir: &std::path::Path) -> (Shell, Arc<Flaky>, ApiContext) {
        let (context, gossip) = test_support::context(dir, test_support::genesis(7311));
        std::mem::forget(gossip);
        let books = BankStore::temporary().unwrap();
        for account in [
            AccountId::operating("exchange-a"),
            AccountId::trust("exchange-a"),
            AccountId::trust("exchange-b"),
        ] {
            let opening = if account.0.ends_with("operating") {
                5_000
            } else {
                0
            };
            books
                .open_account(&account, "JPY", Amount(opening), 0)
                .unwrap();
        }
        books
            .transfer(
                &TransferRequest {
                    from: AccountId::operating("exchange-a"),
                    to: AccountId::trust("exchange-a"),
                    amount: Amount(700),
                    reference: TransferReference("deposit-1".into()),
                },
                0,
            )
            .unwrap();
        let bank = Arc::new(Flaky {
            books,
            down: AtomicBool::new(false),
        });
        let member = MemberId(2);
        let attester = crate::node::attester::spawn(
            context.clone(),
            seisan_crypto::Keypair::dev("exchange-b"),
            member,
        );
        let shell = Shell {
            planner: BankPlanner::new(BankPlannerConfig {
                me: member,
                clearing_house: false,
                audits_all: true,
                lie: false,
            }),
            context: context.clone(),
            attester,
            connection: BankConnection {
                own: bank.clone(),
                reader: bank.clone(),
                audits_all: true,
                url: "in-process".into(),
            },
            status: watch::channel(BankStatus::default()).0,
            crash_file: dir.join(CRASH_AFTER_TRANSFER_FILE),
        };
        (shell, bank, context)
    }

    fn attested_entries(context: &ApiContext) -> Vec<String> {
        test_support::mempool_bodies(context)
            .into_iter()
            .filter_map(|body| match body {
                TxBody::AttestBankEntry(fact) => Some(format!("{} {}", fact.entry, fact.amount)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_pass_attests_what_the_bank_shows_through_the_attester_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut shell, _bank, context) = shell(dir.path());
        shell.pass().await.unwrap();
        assert_eq!(attested_entries(&context).len(), 1);
        assert!(attested_entries(&context)[0].ends_with(" 700"));
        assert_eq!(shell.planner.pending(), (1, 0));
        shell.pass().await.unwrap();
        assert_eq!(
            attested_entries(&context).len(),
            1,
            "pending: not attested twice"
        );
    }

    #[tokio::test]
    async fn an_unreachable_bank_fails_the_pass_by_name_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut shell, bank, context) = shell(dir.path());
        bank.down.store(true, Ordering::SeqCst);
        let error = shell.pass().await.unwrap_err();
        assert!(error.contains("bank unavailable"), "{error}");
        assert!(attested_entries(&context).is_empty());
        bank.down.store(false, Ordering::SeqCst);
        shell.pass().await.unwrap();
        assert_eq!(
            attested_entries(&context).len(),
            1,
            "attested once it answers"
        );
    }

    #[tokio::test]
    async fn an_attestation_the_attester_refuses_is_attested_on_a_later_pass() {
        let dir = tempfile::tempdir().unwrap();
        let (mut shell, _bank, context) = shell(dir.path());
        // The mempool is full for now: the attester cannot admit.
        let limits = crate::node::mempool::MempoolLimits {
            max_txs: 0,
            ..Default::default()
        };
        let full = std::mem::replace(
            &mut *context.mempool.lock().unwrap(),
            crate::node::mempool::Mempool::new(limits),
        );
        let error = shell.pass().await.unwrap_err();
        assert!(error.contains("not admitted"), "{error}");
        *context.mempool.lock().unwrap() = full;
        shell.pass().await.unwrap();
        assert_eq!(attested_entries(&context).len(), 1);
    }
}
