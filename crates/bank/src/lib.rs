//! Seisan's link to the accounting system (the patent's trust bank, 160), where the
//! per-exchange fiat trust accounts (124, 134) live (DESIGN.md section 7).
//!
//! - [`adapter`]: the interface Seisan needs ([`BankAdapter`]: balances, statements,
//!   transfers idempotent by reference) and its types and errors;
//! - [`client`]: [`HttpBank`], the adapter over the embedded bank's HTTP API;
//! - [`store`]: the embedded bank's books in sled (atomic, flushed transfers; a
//!   restart loses nothing);
//! - [`access`]: the bank config (parties, tokens, opening balances) and who may do
//!   what;
//! - [`camt`]: ISO 20022 camt.053 statement export;
//! - [`server`]: the embedded bank's axum API, run by `seisan bank`.

pub mod access;
pub mod adapter;
pub mod camt;
pub mod client;
pub mod server;
pub mod store;

pub use access::{
    auditor_name, dev_auditor_token, dev_token, Access, BankConfig, CurrencyConfig, PartyConfig,
    PartyRole,
};
pub use adapter::{
    AccountBalance, AccountId, AccountKind, BankAdapter, BankError, Direction, Entry, EntryId,
    TransferReceipt, TransferReference, TransferRequest, DEFAULT_CURRENCY,
};
pub use client::HttpBank;
pub use store::BankStore;

impl BankAdapter for BankStore {
    fn balance(&self, account: &AccountId) -> Result<AccountBalance, BankError> {
        BankStore::balance(self, account)
    }

    fn statement(&self, account: &AccountId, after: u64) -> Result<Vec<Entry>, BankError> {
        BankStore::statement(self, account, after)
    }

    fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, BankError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or(0);
        BankStore::transfer(self, request, now_ms)
    }

    fn transfer_by_reference(
        &self,
        reference: &TransferReference,
    ) -> Result<Option<TransferReceipt>, BankError> {
        BankStore::transfer_by_reference(self, reference)
    }
}
