//! The bank planner: what a node does about the accounting system (patent S210,
//! S250-S290, S331-S335, claims 7-8), decided from the committed ledger, what the bank
//! showed and the node's own memory, with the time passed in.
//!
//! A pass has two halves. [`BankPlanner::reads`] says what to ask the bank: the
//! statement of every trust account this node may read (every exchange's in every fiat
//! currency with the validator's auditor token; without it, its own, or all for the
//! clearing house), above the last entry handled, and the transfer under the reference
//! of every open mirror this node has not confirmed. The shell reads them through the
//! `BankAdapter` and [`BankPlanner::plan`] turns the answers into [`BankAction`]s:
//! 1. **Attest** each statement entry that came from the exchange's own operating
//!    account (a trust credit, S210) or went to it under `fiat-withdrawal-<id>` (a
//!    withdrawal paid), unless the ledger acted on it already, holds this member's
//!    attestation, or one is pending ([`crate::follow_up`]). Transfers between trust
//!    accounts are the mirror of what the ledger settled and are not attested.
//! 2. **Mirror** (clearing house): for every committed height above the mirrored
//!    cursor, each payer-payee pair of the settlement report's net fiat becomes a bank
//!    transfer between trust accounts referenced `settle-<height>-<payer>-<payee>`
//!    (idempotent at the bank); the cursor moves past a height only after every transfer
//!    of the height was confirmed ([`BankAction::MirroredThrough`] comes after them).
//! 3. **Confirm mirrors**: the bank's transfer under an open mirror's reference, when it
//!    shows the ledger's terms, becomes an `AttestMirror` with its debit and credit
//!    entry ids, so q validators put the fiat leg's confirmation on chain.
//! 4. **Withdrawals** (clearing house): each open fiat withdrawal becomes a transfer from
//!    the exchange's trust account to its operating account, referenced
//!    `fiat-withdrawal-<id>`; step 1 then completes it.
//!
//! The shell carries the actions out in order and stops at the first failure, telling
//! the planner about each one done ([`BankPlanner::done`]) and each one not done
//! ([`BankPlanner::not_done`]), so an entry whose attestation was not admitted is read
//! again next pass. Members and their names come from the committed membership, so an
//! exchange added on the live chain is watched like a genesis one.

use super::follow_up::FollowUp;
use super::Millis;
use seisan_bank::{
    AccountId, AccountKind, BankError, Direction, Entry, TransferReceipt, TransferReference,
    TransferRequest,
};
use seisan_contracts::{bank as ledger_bank, governance, mirror as ledger_mirror};
use seisan_types::bank::{BankEntryId, BankEntryKind, BankFact, FiatWithdrawalId};
use seisan_types::membership::Membership;
use seisan_types::mirror::{MirrorFact, MirrorId};
use seisan_types::state::StateView;
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetId, Genesis, Height, MemberId, Role};
use std::collections::{BTreeMap, BTreeSet};

/// The most attestations one pass plans (bounds a catch-up burst).
pub const MAX_ATTESTATIONS_PER_PASS: usize = 256;
/// How long an admitted attestation may be missing from the committed ledger before
/// it is planned again.
pub const RESUBMIT_AFTER_MS: u64 = 15_000;
/// How many times one attestation is admitted before it is given up and reported.
pub const MAX_TRIES: u32 = 4;
/// The most heights one pass mirrors.
pub const MAX_HEIGHTS_PER_PASS: u64 = 512;
/// The most open mirrors one pass looks up at the bank.
pub const MAX_MIRROR_CHECKS_PER_PASS: usize = 64;
/// How many entry ids after each entry it sees a lying planner attests invented facts
/// for (test-only fault injection).
pub const LIE_SQUAT_AHEAD: u64 = 4;

/// What the planner is for: fixed for the node's life.
#[derive(Clone, Debug)]
pub struct BankPlannerConfig {
    /// This node's member.
    pub me: MemberId,
    /// The clearing house moves money: it mirrors settlement and pays withdrawals.
    pub clearing_house: bool,
    /// Reads every exchange's trust accounts (the validator's auditor token).
    pub audits_all: bool,
    /// Test-only fault injection (`--fault lie-attestations`): attest false facts.
    pub lie: bool,
}

/// One question for the bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankRead {
    /// Entries of `account` (member's trust account in the asset's currency) after
    /// sequence `after`.
    Statement {
        member: MemberId,
        name: String,
        asset: AssetId,
        account: AccountId,
        after: u64,
    },
    /// The transfer executed under an open mirror's reference.
    Transfer {
        mirror: MirrorId,
        reference: TransferReference,
    },
}

/// The bank's answer to one [`BankRead`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankAnswer {
    Statement(Result<Vec<Entry>, BankError>),
    Transfer(Result<Option<TransferReceipt>, BankError>),
}

/// Why a transfer is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferPurpose {
    /// Mirrors the settlement at `height`.
    Mirror { height: Height },
    /// Pays a fiat withdrawal.
    Withdrawal { withdrawal: FiatWithdrawalId },
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankAction {
    /// Sign and admit (through the node's attester) an `AttestBankEntry` or
    /// `AttestMirror`.
    Attest(TxBody),
    /// Move money at the bank (idempotent by reference).
    Transfer {
        request: TransferRequest,
        purpose: TransferPurpose,
    },
    /// Every transfer of heights up to this one is confirmed: store the cursor.
    MirroredThrough(Height),
}

/// Something an operator should hear about (the shell logs it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankNotice {
    /// The bank has no such trust account (a currency it is not configured with).
    MissingAccount(AccountId),
    /// The bank's transfer under a settlement reference differs from the settlement.
    MirrorDiffers { reference: String },
    /// An attestation admitted [`MAX_TRIES`] times never reached the ledger.
    GaveUp(String),
}

/// Where an entry stands in the statements: the account (exchange, fiat asset) and the
/// bank's sequence number.
pub type Position = ((MemberId, AssetId), u64);

/// The bank planner's memory (lost on restart: statements are then read again and
/// what the ledger already holds is skipped).
#[derive(Debug)]
pub struct BankPlanner {
    config: BankPlannerConfig,
    /// Per exchange and fiat asset, the last statement sequence fully handled.
    cursors: BTreeMap<(MemberId, AssetId), u64>,
    /// Entry attestations admitted and not on the ledger yet, with the statement
    /// position they came from (a given-up one rewinds its account there, so the entry
    /// is read and planned afresh: the rule bounds the retries, not the liveness).
    entries: FollowUp<BankEntryId, (BankFact, Position)>,
    /// Mirror attestations admitted and not on the ledger yet.
    mirrors: FollowUp<MirrorId, MirrorFact>,
    /// Mirrors this node may not read, or whose bank transfer differs (not asked again).
    unreadable: BTreeSet<MirrorId>,
    /// Withdrawals whose transfer the bank confirmed.
    paid: BTreeSet<FiatWithdrawalId>,
    /// Accounts reported missing (each reported once).
    missing: BTreeSet<AccountId>,
    /// Bank sequences a lying planner already invented facts for.
    squatted: BTreeSet<u64>,
    /// The statement position of each entry attestation the last plan holds, so one
    /// not carried out rewinds its account's cursor to just before it.
    planned_at: BTreeMap<BankEntryId, Position>,
    notices: Vec<BankNotice>,
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

/// What a lying planner attests for `entry` instead of `truths`: each true fact with
/// another amount, and an invented trust credit to `member` for each of the next
/// [`LIE_SQUAT_AHEAD`] entry ids the bank has not assigned yet (the embedded bank's ids
/// are `E` and the 12-digit global sequence), each once (`squatted`).
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

/// Every fiat asset of the genesis with its currency at the bank (the asset's symbol).
pub fn fiat_currencies(genesis: &Genesis) -> Vec<(AssetId, String)> {
    ledger_mirror::fiat_assets(genesis)
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

/// The name of `member` in `membership` (members are never deleted, only marked).
fn name_in(membership: &Membership, member: MemberId) -> String {
    membership
        .members
        .get(member.0 as usize)
        .map(|entry| entry.member.name.clone())
        .expect("ledger records name members of the membership")
}

/// The trust-to-trust transfer mirroring `amount` of `asset` from `payer` to `payee`
/// settled at `height`.
pub fn mirror_transfer(
    genesis: &Genesis,
    membership: &Membership,
    height: Height,
    asset: AssetId,
    payer: MemberId,
    payee: MemberId,
    amount: Amount,
) -> TransferRequest {
    let (payer, payee) = (name_in(membership, payer), name_in(membership, payee));
    let currency = currency_of(genesis, asset);
    TransferRequest {
        from: AccountId::trust_in(&payer, &currency),
        to: AccountId::trust_in(&payee, &currency),
        amount,
        reference: TransferReference(ledger_mirror::mirror_reference_in(
            genesis, asset, height, &payer, &payee,
        )),
    }
}

impl BankPlanner {
    pub fn new(config: BankPlannerConfig) -> BankPlanner {
        BankPlanner {
            config,
            cursors: BTreeMap::new(),
            entries: FollowUp::new(RESUBMIT_AFTER_MS, MAX_TRIES),
            mirrors: FollowUp::new(RESUBMIT_AFTER_MS, MAX_TRIES),
            unreadable: BTreeSet::new(),
            paid: BTreeSet::new(),
            missing: BTreeSet::new(),
            squatted: BTreeSet::new(),
            planned_at: BTreeMap::new(),
            notices: Vec::new(),
        }
    }

    pub fn config(&self) -> &BankPlannerConfig {
        &self.config
    }

    /// Attestations admitted and not on the ledger yet (entries, mirrors).
    pub fn pending(&self) -> (usize, usize) {
        (self.entries.len(), self.mirrors.len())
    }

    /// What happened since the last call, for the shell to log.
    pub fn take_notices(&mut self) -> Vec<BankNotice> {
        std::mem::take(&mut self.notices)
    }

    /// The exchanges whose trust accounts this node reads, with their names.
    fn visible_exchanges(&self, membership: &Membership) -> Vec<(MemberId, String)> {
        membership
            .members
            .iter()
            .enumerate()
            .map(|(index, entry)| (MemberId(index as u32), entry))
            .filter(|(id, entry)| {
                entry.member.role == Role::Exchange
                    && (self.config.clearing_house
                        || self.config.audits_all
                        || *id == self.config.me)
            })
            .map(|(id, entry)| (id, entry.member.name.clone()))
            .collect()
    }

    /// What to ask the bank this pass.
    pub fn reads(&self, view: &dyn StateView, genesis: &Genesis) -> Vec<BankRead> {
        let membership = governance::consortium_or_genesis(view, genesis).membership;
        let mut reads = Vec::new();
        if !membership.is_validator(self.config.me) {
            // Attests nothing (see `plan`), so reads nothing.
            return reads;
        }
        for (member, name) in self.visible_exchanges(&membership) {
            for (asset, currency) in fiat_currencies(genesis) {
                reads.push(BankRead::Statement {
                    member,
                    account: AccountId::trust_in(&name, &currency),
                    name: name.clone(),
                    asset,
                    after: self.cursors.get(&(member, asset)).copied().unwrap_or(0),
                });
            }
        }
        let me = self.config.me;
        reads.extend(
            ledger_mirror::open_mirrors(view, ledger_mirror::MAX_MIRROR_RECORDS_PER_QUERY)
                .into_iter()
                .filter(|record| {
                    !record.attestations.iter().any(|(by, _)| *by == me)
                        && !self.mirrors.is_pending(&record.mirror)
                        && !self.unreadable.contains(&record.mirror)
                })
                .take(MAX_MIRROR_CHECKS_PER_PASS)
                .map(|record| BankRead::Transfer {
                    mirror: record.mirror,
                    reference: TransferReference(record.reference),
                }),
        );
        reads
    }

    /// Whether the ledger acted on `entry` or holds this member's attestation of it.
    fn entry_on_ledger(view: &dyn StateView, me: MemberId, entry: &BankEntryId) -> bool {
        ledger_bank::entry(view, entry).is_some_and(|record| {
            record.applied.is_some() || record.attestations.iter().any(|(by, _)| *by == me)
        })
    }

    /// The actions for this pass, from the committed ledger `view` (at height `tip`),
    /// the answers to [`BankPlanner::reads`], the stored mirror cursor and the time.
    pub fn plan(
        &mut self,
        view: &dyn StateView,
        genesis: &Genesis,
        tip: Height,
        mirrored: Height,
        answers: Vec<(BankRead, BankAnswer)>,
        now: Millis,
    ) -> Vec<BankAction> {
        let me = self.config.me;
        let membership = governance::consortium_or_genesis(view, genesis).membership;
        let mut actions = Vec::new();
        self.planned_at.clear();

        // The follow-up rule: forget what the ledger shows, plan again what is overdue.
        self.entries
            .settle(|entry, _| Self::entry_on_ledger(view, me, entry));
        self.mirrors.settle(|id, _| {
            ledger_mirror::mirror(view, *id).is_none_or(|record| {
                record.confirmed.is_some() || record.attestations.iter().any(|(by, _)| *by == me)
            })
        });
        let due = self.entries.due(now);
        for (entry, (_, position)) in due.given_up {
            self.rewind(position);
            self.notices.push(BankNotice::GaveUp(format!(
                "attestation of bank entry {entry}"
            )));
        }
        for (_, (fact, position)) in due.again {
            self.planned_at.insert(fact.entry.clone(), position);
            actions.push(BankAction::Attest(TxBody::AttestBankEntry(fact)));
        }
        let due = self.mirrors.due(now);
        for (mirror, _) in due.given_up {
            self.notices.push(BankNotice::GaveUp(format!(
                "confirmation of the mirror at height {} ({} -> {})",
                mirror.height, mirror.payer, mirror.payee
            )));
        }
        actions.extend(
            due.again
                .into_iter()
                .map(|(_, fact)| BankAction::Attest(TxBody::AttestMirror(fact))),
        );

        // 1 and 3: what the bank showed. Only a validator's attestations count; a node
        // that is none (an observer, a removed validator) reads and attests nothing.
        let mut budget = if membership.is_validator(me) {
            MAX_ATTESTATIONS_PER_PASS
        } else {
            0
        };
        let mut planned: BTreeSet<BankEntryId> = BTreeSet::new();
        for (read, answer) in answers {
            match (read, answer) {
                (
                    BankRead::Statement {
                        member,
                        name,
                        asset,
                        account,
                        ..
                    },
                    BankAnswer::Statement(read),
                ) => {
                    let statement = match read {
                        Ok(entries) => entries,
                        Err(BankError::UnknownAccount { .. }) => {
                            if self.missing.insert(account.clone()) {
                                self.notices.push(BankNotice::MissingAccount(account));
                            }
                            continue;
                        }
                        // Unreadable now: asked again next pass from the same cursor.
                        Err(_) => continue,
                    };
                    for entry in statement {
                        let mut facts: Vec<BankFact> = entry_fact(member, &name, asset, &entry)
                            .into_iter()
                            .collect();
                        if self.config.lie {
                            facts = lies_about(member, asset, &entry, facts, &mut self.squatted);
                        }
                        let to_attest: Vec<BankFact> = facts
                            .into_iter()
                            .filter(|fact| {
                                !self.entries.is_pending(&fact.entry)
                                    && !planned.contains(&fact.entry)
                                    && !Self::entry_on_ledger(view, me, &fact.entry)
                            })
                            .collect();
                        if to_attest.len() > budget {
                            // Read again from here next pass.
                            break;
                        }
                        budget -= to_attest.len();
                        for fact in to_attest {
                            planned.insert(fact.entry.clone());
                            self.planned_at
                                .insert(fact.entry.clone(), ((member, asset), entry.sequence));
                            actions.push(BankAction::Attest(TxBody::AttestBankEntry(fact)));
                        }
                        self.cursors.insert((member, asset), entry.sequence);
                    }
                }
                (BankRead::Transfer { mirror, .. }, BankAnswer::Transfer(looked_up)) => {
                    if budget == 0 {
                        continue;
                    }
                    let Some(record) = ledger_mirror::mirror(view, mirror) else {
                        continue;
                    };
                    let receipt = match looked_up {
                        Ok(Some(receipt)) => receipt,
                        // Not made yet: the clearing house has not got to it.
                        Ok(None) => continue,
                        Err(BankError::Forbidden { .. }) => {
                            self.unreadable.insert(mirror);
                            continue;
                        }
                        Err(_) => continue,
                    };
                    let expected = mirror_transfer(
                        genesis,
                        &membership,
                        mirror.height,
                        record.asset,
                        mirror.payer,
                        mirror.payee,
                        record.amount,
                    );
                    let as_settled = receipt.request.from == expected.from
                        && receipt.request.to == expected.to
                        && receipt.request.amount == expected.amount;
                    if !as_settled {
                        self.unreadable.insert(mirror);
                        self.notices.push(BankNotice::MirrorDiffers {
                            reference: record.reference,
                        });
                        continue;
                    }
                    budget -= 1;
                    actions.push(BankAction::Attest(TxBody::AttestMirror(MirrorFact {
                        mirror,
                        asset: record.asset,
                        amount: record.amount,
                        reference: record.reference,
                        debit_entry: BankEntryId(receipt.debit_entry.0),
                        credit_entry: BankEntryId(receipt.credit_entry.0),
                    })));
                }
                (read, answer) => {
                    panic!("the shell answered {read:?} with {answer:?}")
                }
            }
        }

        if self.config.clearing_house {
            // 2: mirror what settled above the cursor.
            let until = tip.0.min(mirrored.0 + MAX_HEIGHTS_PER_PASS);
            for height in mirrored.0 + 1..=until {
                if let Some(report) =
                    seisan_contracts::query::settlement_report(view, Height(height))
                {
                    for (asset, _) in fiat_currencies(genesis) {
                        for (payer, payee, amount) in
                            ledger_mirror::mirror_transfers(&report, asset)
                        {
                            actions.push(BankAction::Transfer {
                                request: mirror_transfer(
                                    genesis,
                                    &membership,
                                    Height(height),
                                    asset,
                                    payer,
                                    payee,
                                    amount,
                                ),
                                purpose: TransferPurpose::Mirror {
                                    height: Height(height),
                                },
                            });
                        }
                    }
                }
                actions.push(BankAction::MirroredThrough(Height(height)));
            }
            // 4: pay open fiat withdrawals.
            for withdrawal in ledger_bank::open_withdrawals(view) {
                if self.paid.contains(&withdrawal.id) {
                    continue;
                }
                let name = name_in(&membership, withdrawal.member);
                let currency = currency_of(genesis, withdrawal.asset);
                actions.push(BankAction::Transfer {
                    request: TransferRequest {
                        from: AccountId::trust_in(&name, &currency),
                        to: AccountId::operating_in(&name, &currency),
                        amount: withdrawal.amount,
                        reference: TransferReference(ledger_bank::withdrawal_reference(
                            withdrawal.id,
                        )),
                    },
                    purpose: TransferPurpose::Withdrawal {
                        withdrawal: withdrawal.id,
                    },
                });
            }
        }
        actions
    }

    /// The shell carried out `action` at `now`.
    pub fn done(&mut self, action: &BankAction, now: Millis) {
        match action {
            BankAction::Attest(TxBody::AttestBankEntry(fact)) => {
                let position = *self
                    .planned_at
                    .get(&fact.entry)
                    .expect("the last plan holds every entry attestation it made");
                self.entries
                    .admitted(fact.entry.clone(), (fact.clone(), position), now)
            }
            BankAction::Attest(TxBody::AttestMirror(fact)) => {
                self.mirrors.admitted(fact.mirror, fact.clone(), now)
            }
            BankAction::Attest(other) => panic!("the bank planner never plans {other:?}"),
            BankAction::Transfer {
                purpose: TransferPurpose::Withdrawal { withdrawal },
                ..
            } => {
                self.paid.insert(*withdrawal);
            }
            BankAction::Transfer { .. } | BankAction::MirroredThrough(_) => {}
        }
    }

    /// The shell did not carry out `action` (it failed, or an earlier one did): an
    /// entry attestation's statement is read again from before the entry.
    pub fn not_done(&mut self, action: &BankAction) {
        if let BankAction::Attest(TxBody::AttestBankEntry(fact)) = action {
            // A follow-up that was not admitted again stays due and comes again; one
            // from a statement is read again.
            if !self.entries.is_pending(&fact.entry) {
                let position = *self
                    .planned_at
                    .get(&fact.entry)
                    .expect("the last plan holds every entry attestation it made");
                self.rewind(position);
            }
        }
    }

    /// Reads the account of `position` again from just before its entry.
    fn rewind(&mut self, ((member, asset), sequence): Position) {
        if let Some(cursor) = self.cursors.get_mut(&(member, asset)) {
            *cursor = (*cursor).min(sequence.saturating_sub(1));
        }
    }
}
