//! The public chain of the chaos run: a local anvil (started by `scripts/anvil.sh`,
//! with the WBTC token deployed) that the nodes watch for deposits and the clearing
//! house pays withdrawals on.
//!
//! The driver talks to anvil over JSON-RPC from the root namespace, where anvil
//! listens on the bridge address: it is never partitioned from the driver, only from a
//! partitioned node. The exchanges' deposits are `eth_sendTransaction`s from anvil's
//! unlocked dev accounts (the addresses genesis registers to them). After the run,
//! [`Chain::scan`] reads every block the run produced and turns each transaction sent
//! by a watched account into a [`ChainTransaction`] (what it moved and what gas it
//! cost), which the pure checks of [`crate::invariants`] compare with the ledger.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Anvil's well-known dev accounts 0-4 (the "test test ... junk" mnemonic).
pub const ACCOUNTS: [&str; 5] = [
    "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
    "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
    "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
    "0x90f79bf6eb2c4f870365e785982e1f101e93b906",
    "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65",
];
/// The clearing house's hot wallet (dev account 1) and its key.
pub const HOT_ADDRESS: &str = ACCOUNTS[1];
pub const HOT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// The clearing house's cold wallet (dev account 2).
pub const COLD_ADDRESS: &str = ACCOUNTS[2];
/// The public-chain addresses genesis registers to the exchanges that deposit and
/// withdraw crypto (dev accounts 3 and 4, which `deploy.js` gives 1000 WBTC each).
pub const REGISTERED: [(&str, &str); 2] =
    [("exchange-a", ACCOUNTS[3]), ("exchange-b", ACCOUNTS[4])];
/// Anvil's chain id (`scripts/anvil.sh` starts it with this one).
pub const CHAIN_ID: u64 = 31337;
/// The symbols of the crypto assets on the chain.
pub const NATIVE_SYMBOL: &str = "ETH";
pub const TOKEN_SYMBOL: &str = "WBTC";
/// The ERC-20 `transfer(address,uint256)` selector.
const TRANSFER_SELECTOR: &str = "a9059cbb";
/// How long one RPC call may take (anvil is local and never partitioned from here).
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// A JSON-RPC client of anvil, and the token contract's address.
#[derive(Clone, Debug)]
pub struct Chain {
    pub url: String,
    /// The WBTC contract (lowercase hex).
    pub token: String,
}

/// An anvil started by `scripts/anvil.sh start <dir>`; stopped on drop.
#[derive(Debug)]
pub struct Anvil {
    pub chain: Chain,
    dir: PathBuf,
}

impl Anvil {
    /// Starts anvil on `host:port` with its state and log in `dir` (installing it from
    /// npm first if `scripts/anvil.sh` finds it missing) and deploys the token.
    pub fn start(dir: &Path, host: &str, port: u16) -> anyhow::Result<Anvil> {
        std::fs::create_dir_all(dir)?;
        let script = repo_root().join("scripts/anvil.sh");
        let output = Command::new(&script)
            .arg("start")
            .arg(dir)
            .env("ANVIL_HOST", host)
            .env("ANVIL_PORT", port.to_string())
            .output()
            .with_context(|| format!("running {} start", script.display()))?;
        if !output.status.success() {
            bail!(
                "{} start failed: {}",
                script.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let anvil = |chain| Anvil {
            chain,
            dir: dir.to_path_buf(),
        };
        let deployed: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("chain.json"))?)
                .context("chain.json")?;
        let token = deployed["token"]
            .as_str()
            .context("chain.json names the token")?
            .to_lowercase();
        Ok(anvil(Chain {
            url: format!("http://{host}:{port}"),
            token,
        }))
    }

    /// anvil's pid, for `scripts/chaos.sh`'s exit trap.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("anvil.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/anvil.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// What one transaction moved: `amount` of `symbol` to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub symbol: &'static str,
    pub to: String,
    pub amount: u128,
}

/// One mined transaction sent by a watched account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTransaction {
    pub hash: String,
    pub block: u64,
    pub from: String,
    pub success: bool,
    /// `gasUsed * effectiveGasPrice`: the native coin the sender paid for it.
    pub gas_wei: u128,
    /// What it moved, if it is a native-coin payment or a token `transfer` (a reverted
    /// transaction moved nothing).
    pub movement: Option<Movement>,
}

/// Parses a `0x` hex quantity.
pub fn hex_quantity(value: &Value) -> Option<u128> {
    let text = value.as_str()?.strip_prefix("0x")?;
    if text.is_empty() {
        return Some(0);
    }
    u128::from_str_radix(text, 16).ok()
}

/// What a transaction moves: its value in the native coin, or a `transfer` call on the
/// token contract (recipient and amount from the call data; anything after them, such
/// as the clearing house's payout tag, is ignored, as the token ignores it).
pub fn movement(token: &str, to: Option<&str>, value: u128, input: &str) -> Option<Movement> {
    let to = to?.to_lowercase();
    if value > 0 {
        return Some(Movement {
            symbol: NATIVE_SYMBOL,
            to,
            amount: value,
        });
    }
    if to != token.to_lowercase() {
        return None;
    }
    let data = input.strip_prefix("0x")?;
    let arguments = data.strip_prefix(TRANSFER_SELECTOR)?;
    if arguments.len() < 128 {
        return None;
    }
    let (recipient, amount) = (&arguments[..64], &arguments[64..128]);
    if !recipient[..24].bytes().all(|byte| byte == b'0')
        || !amount[..32].bytes().all(|byte| byte == b'0')
    {
        return None;
    }
    Some(Movement {
        symbol: TOKEN_SYMBOL,
        to: format!("0x{}", recipient[24..].to_lowercase()),
        amount: u128::from_str_radix(&amount[32..], 16).ok()?,
    })
}

impl Chain {
    /// One JSON-RPC call; an RPC error is an error.
    pub fn rpc(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (code, body) = seisan_tests::post_raw_within(
            &self.url,
            "application/json",
            request.to_string().as_bytes(),
            RPC_TIMEOUT,
        )?;
        if code != 200 || body.get("error").is_some() {
            bail!("{method}: {code} {body}");
        }
        Ok(body["result"].clone())
    }

    pub fn block_number(&self) -> anyhow::Result<u64> {
        let value = self.rpc("eth_blockNumber", json!([]))?;
        hex_quantity(&value)
            .map(|number| number as u64)
            .with_context(|| format!("block number {value}"))
    }

    /// Sets an account's native balance (anvil's cheat code), in wei.
    pub fn set_balance(&self, address: &str, wei: u128) -> anyhow::Result<()> {
        self.rpc("anvil_setBalance", json!([address, format!("{wei:#x}")]))?;
        Ok(())
    }

    /// Sends `amount` of `symbol` from the unlocked account `from` to `to`; returns the
    /// transaction hash without waiting for it to be mined.
    pub fn send(&self, from: &str, to: &str, symbol: &str, amount: u128) -> anyhow::Result<String> {
        let transaction = match symbol {
            NATIVE_SYMBOL => json!({"from": from, "to": to, "value": format!("{amount:#x}")}),
            TOKEN_SYMBOL => json!({
                "from": from,
                "to": self.token,
                "data": format!("0x{TRANSFER_SELECTOR}{:0>64}{amount:064x}", to.trim_start_matches("0x")),
            }),
            other => bail!("{other} is not on the public chain"),
        };
        let hash = self.rpc("eth_sendTransaction", json!([transaction]))?;
        Ok(hash.as_str().context("a transaction hash")?.to_lowercase())
    }

    /// `address`'s balance of `symbol` at `block`.
    pub fn balance(&self, address: &str, symbol: &str, block: u64) -> anyhow::Result<u128> {
        let tag = format!("{block:#x}");
        let value = match symbol {
            NATIVE_SYMBOL => self.rpc("eth_getBalance", json!([address, tag]))?,
            TOKEN_SYMBOL => self.rpc(
                "eth_call",
                json!([{"to": self.token, "data": format!("0x70a08231{:0>64}", address.trim_start_matches("0x"))}, tag]),
            )?,
            other => bail!("{other} is not on the public chain"),
        };
        let text = value.as_str().context("a hex balance")?;
        let digits = text.trim_start_matches("0x").trim_start_matches('0');
        if digits.len() > 32 {
            bail!("{symbol} balance {text} of {address} does not fit a u128");
        }
        Ok(u128::from_str_radix(
            if digits.is_empty() { "0" } else { digits },
            16,
        )?)
    }

    /// Every transaction mined in blocks `from..=until` whose sender is one of
    /// `senders`, with its receipt's outcome and gas.
    pub fn scan(
        &self,
        from: u64,
        until: u64,
        senders: &[&str],
    ) -> anyhow::Result<Vec<ChainTransaction>> {
        let mut found = Vec::new();
        for number in from..=until {
            let block = self.rpc(
                "eth_getBlockByNumber",
                json!([format!("{number:#x}"), true]),
            )?;
            let transactions = block["transactions"]
                .as_array()
                .with_context(|| format!("block {number}: {block}"))?;
            for transaction in transactions {
                let from = transaction["from"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase();
                if !senders
                    .iter()
                    .any(|sender| sender.eq_ignore_ascii_case(&from))
                {
                    continue;
                }
                let hash = transaction["hash"]
                    .as_str()
                    .context("a hash")?
                    .to_lowercase();
                let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]))?;
                let gas = hex_quantity(&receipt["gasUsed"]).context("gasUsed")?;
                let price =
                    hex_quantity(&receipt["effectiveGasPrice"]).context("effectiveGasPrice")?;
                let success = receipt["status"] == "0x1";
                let value = hex_quantity(&transaction["value"]).unwrap_or(0);
                let input = transaction["input"].as_str().unwrap_or("0x");
                found.push(ChainTransaction {
                    hash,
                    block: number,
                    from,
                    success,
                    gas_wei: gas.checked_mul(price).context("gas cost overflows")?,
                    movement: if success {
                        movement(&self.token, transaction["to"].as_str(), value, input)
                    } else {
                        None
                    },
                });
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0x5fbdb2315678afecb367f032d93f642f64180aa3";

    #[test]
    fn native_payments_and_token_transfers_are_read_from_the_transaction() {
        assert_eq!(
            movement(TOKEN, Some("0xABCD"), 5, "0x5345"),
            Some(Movement {
                symbol: NATIVE_SYMBOL,
                to: "0xabcd".into(),
                amount: 5
            })
        );
        let to = HOT_ADDRESS.trim_start_matches("0x");
        let call = format!("0x{TRANSFER_SELECTOR}{to:0>64}{:064x}5345414e", 12_345u128);
        assert_eq!(
            movement(TOKEN, Some(TOKEN), 0, &call),
            Some(Movement {
                symbol: TOKEN_SYMBOL,
                to: HOT_ADDRESS.into(),
                amount: 12_345
            })
        );
        // Another contract, another selector, short data: nothing this run moves.
        assert_eq!(movement(TOKEN, Some(COLD_ADDRESS), 0, &call), None);
        assert_eq!(
            movement(
                TOKEN,
                Some(TOKEN),
                0,
                &call.replace(TRANSFER_SELECTOR, "095ea7b3")
            ),
            None
        );
        assert_eq!(movement(TOKEN, Some(TOKEN), 0, &call[..70]), None);
        assert_eq!(movement(TOKEN, None, 0, "0x"), None);
    }

    #[test]
    fn hex_quantities_parse() {
        assert_eq!(hex_quantity(&json!("0x5208")), Some(21_000));
        assert_eq!(hex_quantity(&json!("0x")), Some(0));
        assert_eq!(hex_quantity(&json!("5208")), None);
        assert_eq!(hex_quantity(&json!(5)), None);
    }
}
