//! The public chain as the custody watcher uses it: one trait over the calls it makes,
//! so the node's shell is generic over the chain (the Ethereum adapter in production,
//! an in-memory fake in tests) and the decisions stay in the pure planner
//! (`seisan_watch::custody`).

use crate::evm::{EvmChain, ReceiptView};
use crate::journal::SignedTransfer;
use crate::keys::WalletKey;
use crate::plan::ObservedTransfer;
use crate::CustodyError;
use seisan_types::custody::{ChainAddress, ChainTxHash};
use seisan_types::{Amount, AssetId};
use std::future::Future;

/// What the custody watcher reads from and sends to a public chain.
pub trait PublicChain: Send + Sync + 'static {
    /// The newest block number.
    fn latest_block(&self) -> impl Future<Output = Result<u64, CustodyError>> + Send;

    /// Successful transfers of every custody asset to `to` in blocks `from..=until`.
    fn transfers_to(
        &self,
        to: &ChainAddress,
        from: u64,
        until: u64,
    ) -> impl Future<Output = Result<Vec<ObservedTransfer>, CustodyError>> + Send;

    /// A transaction's receipt, or `None` if it is not mined (yet).
    fn receipt(
        &self,
        hash: &ChainTxHash,
    ) -> impl Future<Output = Result<Option<ReceiptView>, CustodyError>> + Send;

    /// The balance of `asset` at `address` as of `block`.
    fn balance(
        &self,
        asset: AssetId,
        address: &ChainAddress,
        block: u64,
    ) -> impl Future<Output = Result<Amount, CustodyError>> + Send;

    /// The native coin (what pays gas) `address` holds as of `block`.
    fn gas_balance(
        &self,
        address: &ChainAddress,
        block: u64,
    ) -> impl Future<Output = Result<u128, CustodyError>> + Send;

    /// The next nonce of `address`: counting mined transactions only, or also those
    /// waiting in the chain node's pool.
    fn nonce(
        &self,
        address: &ChainAddress,
        pending: bool,
    ) -> impl Future<Output = Result<u64, CustodyError>> + Send;

    /// The most one payout may cost in fees, in the native coin's minor units.
    fn max_payout_fee(&self) -> impl Future<Output = Result<u128, CustodyError>> + Send;

    /// Signs a transfer (tagged with `tag`) without sending it: journal it, then
    /// [`PublicChain::broadcast`] it.
    fn sign_transfer(
        &self,
        key: &WalletKey,
        asset: AssetId,
        to: &ChainAddress,
        value: Amount,
        nonce: u64,
        tag: &[u8],
    ) -> impl Future<Output = Result<SignedTransfer, CustodyError>> + Send;

    /// Sends a journaled transaction; sending the same bytes again is harmless.
    fn broadcast(
        &self,
        transfer: &SignedTransfer,
    ) -> impl Future<Output = Result<(), CustodyError>> + Send;
}

impl PublicChain for EvmChain {
    async fn latest_block(&self) -> Result<u64, CustodyError> {
        EvmChain::latest_block(self).await
    }

    async fn transfers_to(
        &self,
        to: &ChainAddress,
        from: u64,
        until: u64,
    ) -> Result<Vec<ObservedTransfer>, CustodyError> {
        EvmChain::transfers_to(self, to, from, until).await
    }

    async fn receipt(&self, hash: &ChainTxHash) -> Result<Option<ReceiptView>, CustodyError> {
        EvmChain::receipt(self, hash).await
    }

    async fn balance(
        &self,
        asset: AssetId,
        address: &ChainAddress,
        block: u64,
    ) -> Result<Amount, CustodyError> {
        EvmChain::balance(self, asset, address, block).await
    }

    async fn gas_balance(&self, address: &ChainAddress, block: u64) -> Result<u128, CustodyError> {
        EvmChain::gas_balance(self, address, block).await
    }

    async fn nonce(&self, address: &ChainAddress, pending: bool) -> Result<u64, CustodyError> {
        EvmChain::nonce(self, address, pending).await
    }

    async fn max_payout_fee(&self) -> Result<u128, CustodyError> {
        EvmChain::max_payout_fee(self).await
    }

    async fn sign_transfer(
        &self,
        key: &WalletKey,
        asset: AssetId,
        to: &ChainAddress,
        value: Amount,
        nonce: u64,
        tag: &[u8],
    ) -> Result<SignedTransfer, CustodyError> {
        EvmChain::sign_transfer(self, key, asset, to, value, nonce, tag).await
    }

    async fn broadcast(&self, transfer: &SignedTransfer) -> Result<(), CustodyError> {
        EvmChain::broadcast(self, transfer).await
    }
}
