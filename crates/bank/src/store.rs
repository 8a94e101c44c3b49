//! The embedded bank's books: accounts, statements and executed transfers in sled.
//!
//! Layout (one sled tree, JSON values):
//! - `a/<account>`: [`AccountRecord`] (currency and balance);
//! - `e/<sequence u64 BE>`: [`Entry`];
//! - `x/<account>\0<sequence u64 BE>`: empty (the account's statement index);
//! - `r/<reference>`: [`TransferReceipt`] of the transfer executed under it;
//! - `m/next`: the next entry sequence (u64 BE).
//!
//! Guarantees: a transfer writes its two entries, both balances and its reference in
//! one atomic sled batch and flushes before it answers, so an answered transfer
//! survives a crash and a half-done one never exists. Calls are serialised by one
//! mutex (the bank is not a throughput component). Money is conserved: every entry
//! but an opening balance has an opposite entry of the same amount.

use crate::adapter::{
    check_name, AccountBalance, AccountId, BankError, Direction, Entry, EntryId, TransferReceipt,
    TransferReference, TransferRequest, MAX_STATEMENT_ENTRIES,
};
use seisan_types::Amount;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// The counterparty named on opening-balance entries.
pub const OPENING_COUNTERPARTY: &str = "opening";

/// One account's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub id: AccountId,
    pub currency: String,
    pub balance: Amount,
}

/// The embedded bank's persistent books. See the module docs.
#[derive(Debug)]
pub struct BankStore {
    tree: sled::Db,
    /// Serialises read-modify-write calls.
    lock: Mutex<()>,
}

fn unavailable(error: impl std::fmt::Display) -> BankError {
    BankError::Unavailable {
        reason: error.to_string(),
    }
}

fn account_key(account: &AccountId) -> Vec<u8> {
    [b"a/".as_slice(), account.0.as_bytes()].concat()
}

fn entry_key(sequence: u64) -> Vec<u8> {
    [b"e/".as_slice(), &sequence.to_be_bytes()].concat()
}

fn index_prefix(account: &AccountId) -> Vec<u8> {
    [b"x/".as_slice(), account.0.as_bytes(), &[0]].concat()
}

fn index_key(account: &AccountId, sequence: u64) -> Vec<u8> {
    [index_prefix(account), sequence.to_be_bytes().to_vec()].concat()
}

fn reference_key(reference: &TransferReference) -> Vec<u8> {
    [b"r/".as_slice(), reference.0.as_bytes()].concat()
}

const NEXT_KEY: &[u8] = b"m/next";

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("bank records serialise")
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> T {
    serde_json::from_slice(bytes).unwrap_or_else(|error| panic!("corrupt bank record: {error}"))
}

impl BankStore {
    /// Opens (or creates) the books in `dir`.
    pub fn open(dir: &Path) -> Result<BankStore, BankError> {
        // Waits for the lock a just-closed store may still hold (see `open_sled`).
        let tree = seisan_state::open_sled(&sled::Config::new().path(dir)).map_err(unavailable)?;
        Ok(BankStore {
            tree,
            lock: Mutex::new(()),
        })
    }

    /// Books in a temporary sled database, for tests.
    pub fn temporary() -> Result<BankStore, BankError> {
        let tree = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(unavailable)?;
        Ok(BankStore {
            tree,
            lock: Mutex::new(()),
        })
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding the lock left no partial write (batches are atomic),
        // so the books are still consistent.
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, BankError> {
        Ok(self
            .tree
            .get(key)
            .map_err(unavailable)?
            .map(|bytes| from_json(&bytes)))
    }

    /// The account's record, or [`BankError::UnknownAccount`].
    pub fn account(&self, account: &AccountId) -> Result<AccountRecord, BankError> {
        self.get(&account_key(account))?
            .ok_or_else(|| BankError::UnknownAccount {
                account: account.clone(),
            })
    }

    /// Every account, in name order.
    pub fn accounts(&self) -> Result<Vec<AccountRecord>, BankError> {
        self.tree
            .scan_prefix(b"a/")
            .map(|item| {
                item.map(|(_, bytes)| from_json(&bytes))
                    .map_err(unavailable)
            })
            .collect()
    }

    fn next_sequence(&self) -> Result<u64, BankError> {
        Ok(self
            .tree
            .get(NEXT_KEY)
            .map_err(unavailable)?
            .map(|bytes| u64::from_be_bytes(bytes.as_ref().try_into().expect("8-byte sequence")))
            .unwrap_or(1))
    }

    fn entry_id(sequence: u64) -> EntryId {
        EntryId(format!("E{sequence:012}"))
    }

    /// Opens an account with an opening balance, once: if it exists already, nothing
    /// changes (so a restart with the same config is harmless). Returns whether it was
    /// created.
    pub fn open_account(
        &self,
        account: &AccountId,
        currency: &str,
        opening: Amount,
        now_ms: u64,
    ) -> Result<bool, BankError> {
        check_name("account", &account.0)?;
        let _guard = self.guard();
        if self.get::<AccountRecord>(&account_key(account))?.is_some() {
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        let record = AccountRecord {
            id: account.clone(),
            currency: currency.to_string(),
            balance: opening,
        };
        batch.insert(account_key(account), to_json(&record));
        if !opening.is_zero() {
            let sequence = self.next_sequence()?;
            let entry = Entry {
                id: Self::entry_id(sequence),
                sequence,
                account: account.clone(),
                direction: Direction::Credit,
                amount: opening,
                counterparty: AccountId(OPENING_COUNTERPARTY.into()),
                reference: TransferReference(format!("opening:{account}")),
                timestamp_ms: now_ms,
                balance_after: opening,
            };
            batch.insert(entry_key(sequence), to_json(&entry));
            batch.insert(index_key(account, sequence), Vec::new());
            batch.insert(NEXT_KEY, (sequence + 1).to_be_bytes().to_vec());
        }
        self.tree.apply_batch(batch).map_err(unavailable)?;
        self.tree.flush().map_err(unavailable)?;
        Ok(true)
    }

    pub fn balance(&self, account: &AccountId) -> Result<AccountBalance, BankError> {
        let record = self.account(account)?;
        Ok(AccountBalance {
            account: record.id,
            currency: record.currency,
            balance: record.balance,
        })
    }

    /// Entries of `account` with a sequence above `after`, oldest first, at most
    /// [`MAX_STATEMENT_ENTRIES`].
    pub fn statement(&self, account: &AccountId, after: u64) -> Result<Vec<Entry>, BankError> {
        self.account(account)?;
        let start = index_key(account, after.saturating_add(1));
        let prefix = index_prefix(account);
        let mut entries = Vec::new();
        for item in self.tree.range(start..) {
            let (key, _) = item.map_err(unavailable)?;
            if !key.starts_with(&prefix) || entries.len() == MAX_STATEMENT_ENTRIES {
                break;
            }
            let sequence = u64::from_be_bytes(
                key[prefix.len()..]
                    .try_into()
                    .expect("8-byte sequence in index key"),
            );
            let entry: Entry = self
                .get(&entry_key(sequence))?
                .expect("indexed entry exists");
            assert_eq!(&entry.account, account, "index points at another account");
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Every entry of `account` with `from_ms <= timestamp_ms < to_ms`, oldest first,
    /// with the balance before the first of them (for a camt.053 opening balance).
    pub fn statement_range(
        &self,
        account: &AccountId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<(Amount, Vec<Entry>), BankError> {
        let mut opening = Amount::ZERO;
        let mut selected = Vec::new();
        let mut after = 0;
        loop {
            let page = self.statement(account, after)?;
            let Some(last) = page.last() else { break };
            after = last.sequence;
            for entry in page {
                if entry.timestamp_ms < from_ms {
                    opening = entry.balance_after;
                } else if entry.timestamp_ms < to_ms {
                    selected.push(entry);
                }
            }
        }
        Ok((opening, selected))
    }

    pub fn transfer_by_reference(
        &self,
        reference: &TransferReference,
    ) -> Result<Option<TransferReceipt>, BankError> {
        self.get(&reference_key(reference))
    }

    /// Executes a transfer, idempotently by reference (see
    /// [`crate::adapter::BankAdapter::transfer`]). Access rules are the caller's job.
    pub fn transfer(
        &self,
        request: &TransferRequest,
        now_ms: u64,
    ) -> Result<TransferReceipt, BankError> {
        check_name("reference", &request.reference.0)?;
        check_name("account", &request.from.0)?;
        check_name("account", &request.to.0)?;
        if request.amount.is_zero() {
            return Err(BankError::InvalidRequest {
                reason: "a transfer amount must be more than zero".into(),
            });
        }
        if request.from == request.to {
            return Err(BankError::InvalidRequest {
                reason: "a transfer needs two different accounts".into(),
            });
        }
        let _guard = self.guard();
        if let Some(mut existing) = self.transfer_by_reference(&request.reference)? {
            if existing.request != *request {
                return Err(BankError::ReferenceConflict {
                    reference: request.reference.clone(),
                    existing_from: existing.request.from,
                    existing_to: existing.request.to,
                    existing_amount: existing.request.amount,
                });
            }
            existing.duplicate = true;
            return Ok(existing);
        }
        let mut from = self.account(&request.from)?;
        let mut to = self.account(&request.to)?;
        if from.currency != to.currency {
            return Err(BankError::CurrencyMismatch {
                from: from.id,
                from_currency: from.currency,
                to: to.id,
                to_currency: to.currency,
            });
        }
        from.balance = from.balance.checked_sub(request.amount).ok_or_else(|| {
            BankError::InsufficientFunds {
                account: request.from.clone(),
                needed: request.amount,
                available: from.balance,
            }
        })?;
        to.balance =
            to.balance
                .checked_add(request.amount)
                .ok_or_else(|| BankError::InvalidRequest {
                    reason: "the credit would overflow the account".into(),
                })?;
        let debit_sequence = self.next_sequence()?;
        let credit_sequence = debit_sequence + 1;
        let debit = Entry {
            id: Self::entry_id(debit_sequence),
            sequence: debit_sequence,
            account: request.from.clone(),
            direction: Direction::Debit,
            amount: request.amount,
            counterparty: request.to.clone(),
            reference: request.reference.clone(),
            timestamp_ms: now_ms,
            balance_after: from.balance,
        };
        let credit = Entry {
            id: Self::entry_id(credit_sequence),
            sequence: credit_sequence,
            account: request.to.clone(),
            direction: Direction::Credit,
            amount: request.amount,
            counterparty: request.from.clone(),
            reference: request.reference.clone(),
            timestamp_ms: now_ms,
            balance_after: to.balance,
        };
        let receipt = TransferReceipt {
            request: request.clone(),
            debit_entry: debit.id.clone(),
            credit_entry: credit.id.clone(),
            timestamp_ms: now_ms,
            duplicate: false,
        };
        let mut batch = sled::Batch::default();
        batch.insert(account_key(&from.id), to_json(&from));
        batch.insert(account_key(&to.id), to_json(&to));
        batch.insert(entry_key(debit_sequence), to_json(&debit));
        batch.insert(entry_key(credit_sequence), to_json(&credit));
        batch.insert(index_key(&from.id, debit_sequence), Vec::new());
        batch.insert(index_key(&to.id, credit_sequence), Vec::new());
        batch.insert(reference_key(&request.reference), to_json(&receipt));
        batch.insert(NEXT_KEY, (credit_sequence + 1).to_be_bytes().to_vec());
        self.tree.apply_batch(batch).map_err(unavailable)?;
        self.tree.flush().map_err(unavailable)?;
        Ok(receipt)
    }

    /// The sum of every balance and of every opening credit; equal when money was
    /// conserved. For tests and audits.
    pub fn totals(&self) -> Result<(Amount, Amount), BankError> {
        let mut balances = Amount::ZERO;
        for record in self.accounts()? {
            balances = balances.checked_add(record.balance).expect("bounded");
        }
        let mut openings = Amount::ZERO;
        for item in self.tree.scan_prefix(b"e/") {
            let (_, bytes) = item.map_err(unavailable)?;
            let entry: Entry = from_json(&bytes);
            if entry.counterparty.0 == OPENING_COUNTERPARTY {
                openings = openings.checked_add(entry.amount).expect("bounded");
            }
        }
        Ok((balances, openings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(from: &str, to: &str, amount: u128, reference: &str) -> TransferRequest {
        TransferRequest {
            from: AccountId(from.into()),
            to: AccountId(to.into()),
            amount: Amount(amount),
            reference: TransferReference(reference.into()),
        }
    }

    fn books() -> BankStore {
        let store = BankStore::temporary().unwrap();
        store
            .open_account(&AccountId("a:operating".into()), "JPY", Amount(1000), 1)
            .unwrap();
        store
            .open_account(&AccountId("a:trust".into()), "JPY", Amount::ZERO, 1)
            .unwrap();
        store
            .open_account(&AccountId("b:trust".into()), "JPY", Amount::ZERO, 1)
            .unwrap();
        store
    }

    fn balance(store: &BankStore, account: &str) -> u128 {
        store.balance(&AccountId(account.into())).unwrap().balance.0
    }

    #[test]
    fn same_reference_twice_moves_money_once() {
        let store = books();
        let request = transfer("a:operating", "a:trust", 200, "dep-1");
        let first = store.transfer(&request, 10).unwrap();
        assert!(!first.duplicate);
        let second = store.transfer(&request, 20).unwrap();
        assert!(second.duplicate);
        assert_eq!(second.debit_entry, first.debit_entry);
        assert_eq!(second.timestamp_ms, 10);
        assert_eq!(balance(&store, "a:operating"), 800);
        assert_eq!(balance(&store, "a:trust"), 200);
        let entries = store.statement(&AccountId("a:trust".into()), 0).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, first.credit_entry);
        assert_eq!(entries[0].reference.0, "dep-1");
        assert_eq!(entries[0].direction, Direction::Credit);
        assert_eq!(entries[0].balance_after, Amount(200));
    }

    #[test]
    fn same_reference_with_different_terms_is_refused_and_changes_nothing() {
        let store = books();
        store
            .transfer(&transfer("a:operating", "a:trust", 200, "dep-1"), 10)
            .unwrap();
        for other in [
            transfer("a:operating", "a:trust", 201, "dep-1"),
            transfer("a:operating", "b:trust", 200, "dep-1"),
        ] {
            let error = store.transfer(&other, 11).unwrap_err();
            assert!(
                matches!(error, BankError::ReferenceConflict { ref existing_amount, .. } if *existing_amount == Amount(200)),
                "{error:?}"
            );
        }
        assert_eq!(balance(&store, "a:operating"), 800);
        assert_eq!(balance(&store, "a:trust"), 200);
        assert_eq!(balance(&store, "b:trust"), 0);
    }

    #[test]
    fn unknown_account_and_insufficient_funds_change_nothing() {
        let store = books();
        let error = store
            .transfer(&transfer("a:operating", "nobody:trust", 5, "x-1"), 10)
            .unwrap_err();
        assert_eq!(
            error,
            BankError::UnknownAccount {
                account: AccountId("nobody:trust".into())
            }
        );
        let error = store
            .transfer(&transfer("a:operating", "a:trust", 1001, "x-2"), 10)
            .unwrap_err();
        assert_eq!(
            error,
            BankError::InsufficientFunds {
                account: AccountId("a:operating".into()),
                needed: Amount(1001),
                available: Amount(1000),
            }
        );
        assert_eq!(balance(&store, "a:operating"), 1000);
        assert!(store
            .transfer_by_reference(&TransferReference("x-2".into()))
            .unwrap()
            .is_none());
        // A refused reference stays unused: the same reference may succeed later.
        store
            .transfer(&transfer("a:operating", "a:trust", 1000, "x-2"), 11)
            .unwrap();
        assert_eq!(balance(&store, "a:trust"), 1000);
        assert!(store.balance(&AccountId("nobody:trust".into())).is_err());
    }

    #[test]
    fn a_restart_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let receipt = {
            let store = BankStore::open(dir.path()).unwrap();
            store
                .open_account(&AccountId("a:operating".into()), "JPY", Amount(1000), 1)
                .unwrap();
            store
                .open_account(&AccountId("a:trust".into()), "JPY", Amount::ZERO, 1)
                .unwrap();
            store
                .transfer(&transfer("a:operating", "a:trust", 300, "dep-9"), 5)
                .unwrap()
        };
        let store = BankStore::open(dir.path()).unwrap();
        // Opening again with other terms does not reset an existing account.
        assert!(!store
            .open_account(&AccountId("a:operating".into()), "JPY", Amount(5), 2)
            .unwrap());
        assert_eq!(balance(&store, "a:operating"), 700);
        assert_eq!(balance(&store, "a:trust"), 300);
        let again = store
            .transfer(&transfer("a:operating", "a:trust", 300, "dep-9"), 6)
            .unwrap();
        assert!(again.duplicate);
        assert_eq!(again.credit_entry, receipt.credit_entry);
        assert_eq!(balance(&store, "a:trust"), 300);
        // Entry ids continue after the restart rather than being reused.
        let next = store
            .transfer(&transfer("a:operating", "a:trust", 1, "dep-10"), 7)
            .unwrap();
        assert!(next.debit_entry > receipt.credit_entry);
        assert_eq!(store.totals().unwrap(), (Amount(1000), Amount(1000)));
    }

    #[test]
    fn statements_page_and_filter_by_time() {
        let store = books();
        for (index, at) in [(1, 100), (2, 200), (3, 300)] {
            store
                .transfer(
                    &transfer("a:operating", "a:trust", 10, &format!("r-{index}")),
                    at,
                )
                .unwrap();
        }
        let account = AccountId("a:trust".into());
        let all = store.statement(&account, 0).unwrap();
        assert_eq!(all.len(), 3);
        let after_first = store.statement(&account, all[0].sequence).unwrap();
        assert_eq!(after_first, all[1..].to_vec());
        let (opening, range) = store.statement_range(&account, 150, 300).unwrap();
        assert_eq!(opening, Amount(10));
        assert_eq!(range, vec![all[1].clone()]);
    }

    #[test]
    fn each_currency_has_its_own_accounts_balances_and_statements() {
        let store = books();
        let usd_operating = AccountId::operating_in("a", "USD");
        let usd_trust = AccountId::trust_in("a", "USD");
        assert_eq!(usd_trust.0, "a:trust:USD");
        assert_eq!(AccountId::trust_in("a", "JPY").0, "a:trust");
        store
            .open_account(&usd_operating, "USD", Amount(5000), 1)
            .unwrap();
        store
            .open_account(&usd_trust, "USD", Amount::ZERO, 1)
            .unwrap();
        store
            .transfer(
                &transfer("a:operating:USD", "a:trust:USD", 1250, "usd-1"),
                10,
            )
            .unwrap();
        store
            .transfer(&transfer("a:operating", "a:trust", 300, "jpy-1"), 11)
            .unwrap();
        let usd = store.balance(&usd_trust).unwrap();
        assert_eq!((usd.currency.as_str(), usd.balance), ("USD", Amount(1250)));
        let jpy = store.balance(&AccountId::trust("a")).unwrap();
        assert_eq!((jpy.currency.as_str(), jpy.balance), ("JPY", Amount(300)));
        assert_eq!(balance(&store, "a:operating:USD"), 3750);
        assert_eq!(balance(&store, "a:operating"), 700);
        // Each statement shows only its own currency's movements.
        let usd_lines = store.statement(&usd_trust, 0).unwrap();
        assert_eq!(usd_lines.len(), 1);
        assert_eq!(usd_lines[0].reference.0, "usd-1");
        let jpy_lines = store.statement(&AccountId::trust("a"), 0).unwrap();
        assert_eq!(jpy_lines.len(), 1);
        assert_eq!(jpy_lines[0].reference.0, "jpy-1");
        assert_eq!(store.totals().unwrap(), (Amount(6000), Amount(6000)));
    }

    #[test]
    fn a_cross_currency_transfer_is_refused_and_changes_nothing() {
        let store = books();
        store
            .open_account(&AccountId::trust_in("b", "USD"), "USD", Amount::ZERO, 1)
            .unwrap();
        let error = store
            .transfer(&transfer("a:operating", "b:trust:USD", 100, "fx-1"), 10)
            .unwrap_err();
        assert_eq!(
            error,
            BankError::CurrencyMismatch {
                from: AccountId("a:operating".into()),
                from_currency: "JPY".into(),
                to: AccountId("b:trust:USD".into()),
                to_currency: "USD".into(),
            }
        );
        assert_eq!(error.code(), "currency_mismatch");
        assert_eq!(balance(&store, "a:operating"), 1000);
        assert_eq!(balance(&store, "b:trust:USD"), 0);
        assert!(store
            .transfer_by_reference(&TransferReference("fx-1".into()))
            .unwrap()
            .is_none());
        assert!(store
            .statement(&AccountId("b:trust:USD".into()), 0)
            .unwrap()
            .is_empty());
    }
}
