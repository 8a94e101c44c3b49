//! The accounting-system adapter interface: what Seisan needs from a bank.
//!
//! A bank holds accounts named by [`AccountId`], per party, kind and currency; each has
//! a balance in minor units of its one currency and a statement: every movement as an [`Entry`] with a bank-assigned
//! [`EntryId`], the amount, the direction, the [`TransferReference`] that caused it
//! and a timestamp. Money moves only by [`BankAdapter::transfer`], which is
//! idempotent by reference (see its contract). The embedded bank
//! ([`crate::store::BankStore`] behind [`crate::server`]) and the HTTP client
//! ([`crate::client::HttpBank`]) both speak this interface, so a real bank link
//! (reading its statements, instructing its transfers in its own format) can replace
//! them.

use seisan_types::Amount;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest account id, reference or entry id, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// The most entries one statement call returns; callers page with `after`.
pub const MAX_STATEMENT_ENTRIES: usize = 1000;

/// The currency whose accounts carry no currency suffix (`<party>:trust`), so configs
/// and tools written before the bank knew several currencies keep working.
pub const DEFAULT_CURRENCY: &str = "JPY";

/// Whether `code` is a currency code the bank accepts: three ASCII capital letters
/// (ISO 4217 style, e.g. `JPY`, `USD`).
pub fn valid_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase())
}

/// A bank account's name: `<party>:<kind>` in [`DEFAULT_CURRENCY`] (e.g.
/// `exchange-a:trust`), `<party>:<kind>:<currency>` in any other (e.g.
/// `exchange-a:trust:USD`). Each party holds one account of each kind per currency.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub String);

impl AccountId {
    /// The operating account of a party (its own money).
    pub fn operating(party: &str) -> AccountId {
        AccountId(format!("{party}:operating"))
    }

    /// The segregated trust account of a party, held for the clearing system.
    pub fn trust(party: &str) -> AccountId {
        AccountId(format!("{party}:trust"))
    }

    /// The operating account of a party in `currency`.
    pub fn operating_in(party: &str, currency: &str) -> AccountId {
        Self::in_currency(AccountId::operating(party), currency)
    }

    /// The trust account of a party in `currency`.
    pub fn trust_in(party: &str, currency: &str) -> AccountId {
        Self::in_currency(AccountId::trust(party), currency)
    }

    fn in_currency(default: AccountId, currency: &str) -> AccountId {
        if currency == DEFAULT_CURRENCY {
            default
        } else {
            AccountId(format!("{default}:{currency}"))
        }
    }

    /// The party and the kind of a `party:kind` or `party:kind:CUR` account id.
    pub fn split(&self) -> Option<(&str, AccountKind)> {
        self.parts().map(|(party, kind, _)| (party, kind))
    }

    /// The party, the kind and the currency named by the account id.
    pub fn parts(&self) -> Option<(&str, AccountKind, &str)> {
        let (rest, last) = self.0.rsplit_once(':')?;
        let (party, kind, currency) = match Self::kind(last) {
            Some(kind) => (rest, kind, DEFAULT_CURRENCY),
            None if valid_currency(last) => {
                let (party, kind) = rest.rsplit_once(':')?;
                (party, Self::kind(kind)?, last)
            }
            None => return None,
        };
        Some((party, kind, currency))
    }

    fn kind(text: &str) -> Option<AccountKind> {
        match text {
            "operating" => Some(AccountKind::Operating),
            "trust" => Some(AccountKind::Trust),
            _ => None,
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The two kinds of account every party has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Operating,
    Trust,
}

/// A bank-assigned statement entry id, unique across the bank and never reused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryId(pub String);

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The caller's idempotency key of a transfer; unique per transfer the caller means.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransferReference(pub String);

impl fmt::Display for TransferReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which way an entry moved the account's balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Credit,
    Debit,
}

/// One line of an account's statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: EntryId,
    /// The bank's global sequence number of the entry (ascending in time).
    pub sequence: u64,
    pub account: AccountId,
    pub direction: Direction,
    pub amount: Amount,
    /// The other side of the transfer (`opening` for an opening balance).
    pub counterparty: AccountId,
    pub reference: TransferReference,
    pub timestamp_ms: u64,
    /// The account's balance after this entry.
    pub balance_after: Amount,
}

/// An account's balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    pub account: AccountId,
    pub currency: String,
    pub balance: Amount,
}

/// A transfer instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    pub from: AccountId,
    pub to: AccountId,
    pub amount: Amount,
    pub reference: TransferReference,
}

/// What a transfer did (or, for a repeated reference, what it had done).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReceipt {
    pub request: TransferRequest,
    /// The debit entry on `from` and the credit entry on `to`.
    pub debit_entry: EntryId,
    pub credit_entry: EntryId,
    pub timestamp_ms: u64,
    /// True when this reference had already been executed and nothing moved now.
    pub duplicate: bool,
}

/// Why the bank refused a call. Every refusal changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum BankError {
    #[error("unknown account {account}")]
    UnknownAccount { account: AccountId },
    #[error("account {account} holds {available}; {needed} needed")]
    InsufficientFunds {
        account: AccountId,
        needed: Amount,
        available: Amount,
    },
    #[error("reference {reference} was already used for a different transfer ({existing_from} -> {existing_to}, {existing_amount})")]
    ReferenceConflict {
        reference: TransferReference,
        existing_from: AccountId,
        existing_to: AccountId,
        existing_amount: Amount,
    },
    #[error("{from} holds {from_currency} but {to} holds {to_currency}: a transfer stays within one currency")]
    CurrencyMismatch {
        from: AccountId,
        from_currency: String,
        to: AccountId,
        to_currency: String,
    },
    #[error("missing or unknown API token")]
    Unauthenticated,
    #[error("party {party} may not {action}")]
    Forbidden { party: String, action: String },
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    #[error("bank unavailable: {reason}")]
    Unavailable { reason: String },
}

impl BankError {
    /// A stable machine-readable name of the error.
    pub fn code(&self) -> &'static str {
        match self {
            BankError::UnknownAccount { .. } => "unknown_account",
            BankError::InsufficientFunds { .. } => "insufficient_funds",
            BankError::ReferenceConflict { .. } => "reference_conflict",
            BankError::CurrencyMismatch { .. } => "currency_mismatch",
            BankError::Unauthenticated => "unauthenticated",
            BankError::Forbidden { .. } => "forbidden",
            BankError::InvalidRequest { .. } => "invalid_request",
            BankError::Unavailable { .. } => "unavailable",
        }
    }
}

/// What Seisan needs from an accounting system.
///
/// Contract for every implementation:
/// - A call that returns an error changed nothing.
/// - [`BankAdapter::transfer`] is idempotent by reference: the first call with a
///   reference moves the money (or fails, moving nothing, and the reference stays
///   unused); a later call with the same reference and the same (from, to, amount)
///   moves nothing and returns the first receipt with `duplicate: true`; a later call
///   with the same reference and different terms is [`BankError::ReferenceConflict`].
///   So a caller that crashed without knowing whether a transfer happened retries
///   with the same reference, safely.
/// - Entries, once on a statement, never change or disappear, and survive a restart
///   of the bank.
/// - Implementations are blocking; call them from a blocking context.
pub trait BankAdapter: Send + Sync {
    fn balance(&self, account: &AccountId) -> Result<AccountBalance, BankError>;

    /// The account's entries with a sequence above `after` (0 for all), oldest first,
    /// at most [`MAX_STATEMENT_ENTRIES`].
    fn statement(&self, account: &AccountId, after: u64) -> Result<Vec<Entry>, BankError>;

    fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, BankError>;

    /// The transfer already executed under `reference`, if any.
    fn transfer_by_reference(
        &self,
        reference: &TransferReference,
    ) -> Result<Option<TransferReceipt>, BankError>;
}

/// Checks a name (account, reference) from a caller: 1 to [`MAX_NAME_BYTES`] bytes of
/// printable ASCII without spaces.
pub fn check_name(what: &str, name: &str) -> Result<(), BankError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.bytes().all(|byte| byte.is_ascii_graphic());
    if valid {
        Ok(())
    } else {
        Err(BankError::InvalidRequest {
            reason: format!("{what} must be 1 to {MAX_NAME_BYTES} printable ASCII characters"),
        })
    }
}
