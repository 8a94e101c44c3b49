//! The Ethereum adapter, over alloy's JSON-RPC provider.
//!
//! Reads: the newest block, native-coin transfers (block bodies) and ERC-20 `Transfer`
//! logs into or out of an address, balances at a block, receipts. Writes: EIP-1559
//! transfers signed with a local [`WalletKey`], journaled before they are broadcast.
//! Native coins sent by a contract's internal call are not seen (only top-level
//! transfers); exchanges deposit from their registered externally-owned addresses.

use crate::journal::SignedTransfer;
use crate::keys::WalletKey;
use crate::plan::{ChainAsset, ObservedTransfer};
use crate::CustodyError;
use alloy_consensus::Transaction as _;
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_network::{Ethereum, EthereumWallet, TransactionBuilder, TransactionResponse};
use alloy_primitives::{b256, Address, Bytes, B256, U256};
use alloy_provider::{Provider, RootProvider};
use alloy_rpc_types_eth::{Filter, TransactionRequest};
use seisan_types::custody::{ChainAddress, ChainTxHash};
use seisan_types::{Amount, AssetId};

/// `keccak256("Transfer(address,address,uint256)")`, the ERC-20 event's topic 0.
pub const TRANSFER_TOPIC: B256 =
    b256!("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
/// Gas allowed for one payout (a native transfer with a tag, or an ERC-20 transfer).
pub const PAYOUT_GAS_LIMIT: u64 = 100_000;
/// The tip offered to the block producer, in wei.
pub const PRIORITY_FEE_WEI: u128 = 1_000_000_000;

/// Canonical (lowercase `0x`-hex) form of an address.
pub fn canonical_address(address: Address) -> ChainAddress {
    ChainAddress(format!("{address:#x}"))
}

fn canonical_hash(hash: B256) -> ChainTxHash {
    ChainTxHash(format!("{hash:#x}"))
}

fn parse_address(address: &ChainAddress) -> Result<Address, CustodyError> {
    address.0.parse().map_err(|_| CustodyError::Unexpected {
        operation: "address".into(),
        reason: format!("{address} is not an address"),
    })
}

fn parse_hash(hash: &ChainTxHash) -> Result<B256, CustodyError> {
    hash.0.parse().map_err(|_| CustodyError::Unexpected {
        operation: "transaction hash".into(),
        reason: format!("{hash} is not a hash"),
    })
}

fn amount(value: U256, operation: &str) -> Result<Amount, CustodyError> {
    u128::try_from(value)
        .map(Amount)
        .map_err(|_| CustodyError::Unexpected {
            operation: operation.into(),
            reason: format!("amount {value} exceeds 128 bits"),
        })
}

fn rpc<E: std::fmt::Display>(operation: &str) -> impl Fn(E) -> CustodyError + '_ {
    move |error| CustodyError::Rpc {
        operation: operation.to_string(),
        reason: error.to_string(),
    }
}

/// A receipt's outcome, with the value transfers it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptView {
    pub block: u64,
    pub success: bool,
    pub transfers: Vec<ObservedTransfer>,
}

/// A connection to an Ethereum JSON-RPC endpoint and the custody assets on it.
#[derive(Clone, Debug)]
pub struct EvmChain {
    provider: RootProvider<Ethereum>,
    assets: Vec<(AssetId, ChainAsset)>,
    chain_id: u64,
}

impl EvmChain {
    /// Connects and checks the chain id.
    pub async fn connect(
        url: &str,
        expected_chain_id: u64,
        assets: Vec<(AssetId, ChainAsset)>,
    ) -> Result<EvmChain, CustodyError> {
        let provider = RootProvider::<Ethereum>::connect(url)
            .await
            .map_err(rpc("connect"))?;
        let chain_id = provider.get_chain_id().await.map_err(rpc("eth_chainId"))?;
        if chain_id != expected_chain_id {
            return Err(CustodyError::WrongChain {
                got: chain_id,
                expected: expected_chain_id,
            });
        }
        Ok(EvmChain {
            provider,
            assets,
            chain_id,
        })
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn assets(&self) -> &[(AssetId, ChainAsset)] {
        &self.assets
    }

    pub async fn latest_block(&self) -> Result<u64, CustodyError> {
        self.provider
            .get_block_number()
            .await
            .map_err(rpc("eth_blockNumber"))
    }

    /// Successful transfers of every custody asset to `to` in blocks `from..=until`.
    pub async fn transfers_to(
        &self,
        to: &ChainAddress,
        from: u64,
        until: u64,
    ) -> Result<Vec<ObservedTransfer>, CustodyError> {
        let target = parse_address(to)?;
        let mut transfers = Vec::new();
        for (asset, kind) in &self.assets {
            match kind {
                ChainAsset::Native => {
                    for number in from..=until {
                        transfers.extend(self.native_transfers_to(*asset, target, number).await?);
                    }
                }
                ChainAsset::Token { contract } => {
                    let filter = Filter::new()
                        .address(parse_address(contract)?)
                        .event_signature(TRANSFER_TOPIC)
                        .topic2(target.into_word())
                        .from_block(from)
                        .to_block(until);
                    let logs = self
                        .provider
                        .get_logs(&filter)
                        .await
                        .map_err(rpc("eth_getLogs"))?;
                    for log in logs {
                        if log.removed {
                            continue;
                        }
                        if let Some(transfer) = token_transfer(*asset, &log)? {
                            transfers.push(transfer);
                        }
                    }
                }
            }
        }
        Ok(transfers)
    }

    /// The time of block `number`, in seconds since the Unix epoch (the header's).
    pub async fn block_timestamp(&self, number: u64) -> Result<u64, CustodyError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(rpc("eth_getBlockByNumber"))?
            .ok_or_else(|| CustodyError::Unexpected {
                operation: "eth_getBlockByNumber".into(),
                reason: format!("block {number} is missing"),
            })?;
        Ok(block.header.timestamp)
    }

    /// The newest block at or before `latest` whose time is at or before `time_s`
    /// (block times never decrease), with its time; `None` when even block 0 is later.
    /// A binary search: about log2(latest) header reads.
    pub async fn last_block_at(
        &self,
        time_s: u64,
        latest: u64,
    ) -> Result<Option<(u64, u64)>, CustodyError> {
        let first = self.block_timestamp(0).await?;
        if first > time_s {
            return Ok(None);
        }
        let newest = self.block_timestamp(latest).await?;
        if newest <= time_s {
            return Ok(Some((latest, newest)));
        }
        // Invariant: block `low` is at or before the time, block `high` after it.
        let (mut low, mut low_time, mut high) = (0, first, latest);
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            let time = self.block_timestamp(middle).await?;
            if time <= time_s {
                (low, low_time) = (middle, time);
            } else {
                high = middle;
            }
        }
        Ok(Some((low, low_time)))
    }

    async fn native_transfers_to(
        &self,
        asset: AssetId,
        target: Address,
        number: u64,
    ) -> Result<Vec<ObservedTransfer>, CustodyError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .full()
            .await
            .map_err(rpc("eth_getBlockByNumber"))?
            .ok_or_else(|| CustodyError::Unexpected {
                operation: "eth_getBlockByNumber".into(),
                reason: format!("block {number} is missing"),
            })?;
        let mut transfers = Vec::new();
        for tx in block.transactions.as_transactions().unwrap_or_default() {
            if tx.to() != Some(target) || tx.value().is_zero() {
                continue;
            }
            let receipt = self
                .provider
                .get_transaction_receipt(tx.tx_hash())
                .await
                .map_err(rpc("eth_getTransactionReceipt"))?;
            if !receipt.is_some_and(|receipt| receipt.status()) {
                continue;
            }
            transfers.push(ObservedTransfer {
                block: number,
                tx_hash: canonical_hash(tx.tx_hash()),
                log_index: None,
                from: canonical_address(tx.from()),
                to: canonical_address(target),
                asset,
                amount: amount(tx.value(), "native transfer")?,
            });
        }
        Ok(transfers)
    }

    /// A transaction's receipt with the custody-asset transfers it made, or `None` if
    /// it is not mined (yet).
    pub async fn receipt(&self, hash: &ChainTxHash) -> Result<Option<ReceiptView>, CustodyError> {
        let hash = parse_hash(hash)?;
        let Some(receipt) = self
            .provider
            .get_transaction_receipt(hash)
            .await
            .map_err(rpc("eth_getTransactionReceipt"))?
        else {
            return Ok(None);
        };
        let block = receipt.block_number.unwrap_or_default();
        let success = receipt.status();
        let mut transfers = Vec::new();
        if success {
            let tx = self
                .provider
                .get_transaction_by_hash(hash)
                .await
                .map_err(rpc("eth_getTransactionByHash"))?;
            if let Some(tx) = tx {
                if let (Some(to), false) = (tx.to(), tx.value().is_zero()) {
                    if let Some((asset, _)) = self
                        .assets
                        .iter()
                        .find(|(_, kind)| *kind == ChainAsset::Native)
                    {
                        transfers.push(ObservedTransfer {
                            block,
                            tx_hash: canonical_hash(hash),
                            log_index: None,
                            from: canonical_address(tx.from()),
                            to: canonical_address(to),
                            asset: *asset,
                            amount: amount(tx.value(), "native transfer")?,
                        });
                    }
                }
            }
            for log in receipt.inner.logs() {
                let contract = canonical_address(log.inner.address);
                let asset = self.assets.iter().find_map(|(asset, kind)| match kind {
                    ChainAsset::Token { contract: known } if *known == contract => Some(*asset),
                    _ => None,
                });
                if let Some(asset) = asset {
                    if let Some(transfer) = token_transfer(asset, log)? {
                        transfers.push(transfer);
                    }
                }
            }
        }
        Ok(Some(ReceiptView {
            block,
            success,
            transfers,
        }))
    }

    /// The native coin `address` holds as of `block`: what pays gas, whichever asset a
    /// transaction moves.
    pub async fn gas_balance(
        &self,
        address: &ChainAddress,
        block: u64,
    ) -> Result<u128, CustodyError> {
        let value = self
            .provider
            .get_balance(parse_address(address)?)
            .number(block)
            .await
            .map_err(rpc("eth_getBalance"))?;
        Ok(amount(value, "eth_getBalance")?.0)
    }

    /// The balance of `asset` at `address` as of `block`.
    pub async fn balance(
        &self,
        asset: AssetId,
        address: &ChainAddress,
        block: u64,
    ) -> Result<Amount, CustodyError> {
        let owner = parse_address(address)?;
        let kind = self
            .assets
            .iter()
            .find(|(id, _)| *id == asset)
            .map(|(_, kind)| kind.clone())
            .ok_or_else(|| CustodyError::Unexpected {
                operation: "balance".into(),
                reason: format!("asset {asset} is not on the public chain"),
            })?;
        match kind {
            ChainAsset::Native => {
                let value = self
                    .provider
                    .get_balance(owner)
                    .number(block)
                    .await
                    .map_err(rpc("eth_getBalance"))?;
                amount(value, "eth_getBalance")
            }
            ChainAsset::Token { contract } => {
                // balanceOf(address)
                let mut data = vec![0x70, 0xa0, 0x82, 0x31];
                data.extend_from_slice(owner.into_word().as_slice());
                let request = TransactionRequest::default()
                    .with_to(parse_address(&contract)?)
                    .with_input(Bytes::from(data));
                let answer = self
                    .provider
                    .call(request)
                    .block(BlockId::number(block))
                    .await
                    .map_err(rpc("eth_call balanceOf"))?;
                if answer.len() != 32 {
                    return Err(CustodyError::Unexpected {
                        operation: "balanceOf".into(),
                        reason: format!("{} bytes returned", answer.len()),
                    });
                }
                amount(U256::from_be_slice(&answer), "balanceOf")
            }
        }
    }

    /// The next nonce of `address`: counting mined transactions only, or also those
    /// waiting in the node's pool.
    pub async fn nonce(&self, address: &ChainAddress, pending: bool) -> Result<u64, CustodyError> {
        let call = self.provider.get_transaction_count(parse_address(address)?);
        let call = if pending {
            call.pending()
        } else {
            call.latest()
        };
        call.await.map_err(rpc("eth_getTransactionCount"))
    }

    /// Signs a transfer of `asset` (tagged with `tag` in its call data) without sending
    /// it. Journal it, then [`EvmChain::broadcast`] it.
    pub async fn sign_transfer(
        &self,
        key: &WalletKey,
        asset: AssetId,
        to: &ChainAddress,
        value: Amount,
        nonce: u64,
        tag: &[u8],
    ) -> Result<SignedTransfer, CustodyError> {
        let recipient = parse_address(to)?;
        let kind = self
            .assets
            .iter()
            .find(|(id, _)| *id == asset)
            .map(|(_, kind)| kind.clone())
            .ok_or_else(|| CustodyError::Unexpected {
                operation: "sign_transfer".into(),
                reason: format!("asset {asset} is not on the public chain"),
            })?;
        let request = TransactionRequest::default().with_from(key.signer.address());
        let request = match kind {
            ChainAsset::Native => request
                .with_to(recipient)
                .with_value(U256::from(value.0))
                .with_input(Bytes::from(tag.to_vec())),
            ChainAsset::Token { contract } => {
                // transfer(address,uint256), then the tag (ignored by the token).
                let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
                data.extend_from_slice(recipient.into_word().as_slice());
                data.extend_from_slice(&U256::from(value.0).to_be_bytes::<32>());
                data.extend_from_slice(tag);
                request
                    .with_to(parse_address(&contract)?)
                    .with_input(Bytes::from(data))
            }
        };
        let fees = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(rpc("fee estimate"))?;
        let request = request
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(PAYOUT_GAS_LIMIT)
            .with_max_priority_fee_per_gas(PRIORITY_FEE_WEI)
            .with_max_fee_per_gas(fees.max_fee_per_gas.max(PRIORITY_FEE_WEI * 2));
        let wallet = EthereumWallet::from(key.signer.clone());
        let envelope = request
            .build(&wallet)
            .await
            .map_err(|error| CustodyError::Unexpected {
                operation: "sign transfer".into(),
                reason: error.to_string(),
            })?;
        Ok(SignedTransfer {
            nonce,
            raw: format!("0x{}", hex::encode(envelope.encoded_2718())),
            tx_hash: format!("{:#x}", envelope.tx_hash()),
        })
    }

    /// The most gas one payout may cost, in wei (kept in the hot wallet for fees).
    pub async fn max_payout_fee(&self) -> Result<u128, CustodyError> {
        let fees = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(rpc("fee estimate"))?;
        Ok(fees.max_fee_per_gas.max(PRIORITY_FEE_WEI * 2) * PAYOUT_GAS_LIMIT as u128)
    }

    /// Sends a journaled transaction. Sending the same bytes again is harmless: a node
    /// that already has it, or mined it, refuses it, which counts as success here.
    pub async fn broadcast(&self, transfer: &SignedTransfer) -> Result<(), CustodyError> {
        let raw = hex::decode(transfer.raw.trim_start_matches("0x")).map_err(|error| {
            CustodyError::Unexpected {
                operation: "broadcast".into(),
                reason: error.to_string(),
            }
        })?;
        match self.provider.send_raw_transaction(&raw).await {
            Ok(_) => Ok(()),
            Err(error) => {
                let text = error.to_string().to_lowercase();
                if text.contains("already")
                    || text.contains("nonce too low")
                    || text.contains("known")
                {
                    Ok(())
                } else {
                    Err(CustodyError::Rpc {
                        operation: "eth_sendRawTransaction".into(),
                        reason: error.to_string(),
                    })
                }
            }
        }
    }
}

/// Decodes an ERC-20 `Transfer(from, to, value)` log; `None` if it is another event.
fn token_transfer(
    asset: AssetId,
    log: &alloy_rpc_types_eth::Log,
) -> Result<Option<ObservedTransfer>, CustodyError> {
    let topics = log.topics();
    if topics.len() != 3 || topics[0] != TRANSFER_TOPIC || log.data().data.len() != 32 {
        return Ok(None);
    }
    let (Some(hash), Some(index), Some(block)) =
        (log.transaction_hash, log.log_index, log.block_number)
    else {
        return Ok(None);
    };
    Ok(Some(ObservedTransfer {
        block,
        tx_hash: canonical_hash(hash),
        log_index: Some(index),
        from: canonical_address(Address::from_word(topics[1])),
        to: canonical_address(Address::from_word(topics[2])),
        asset,
        amount: amount(U256::from_be_slice(&log.data().data), "Transfer log")?,
    }))
}
