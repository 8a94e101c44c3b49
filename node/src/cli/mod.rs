//! The client commands exchanges and the clearing house use: orders, quotes,
//! confirmations, allocations, balances (with locally verified proofs), and read
//! commands over the node's HTTP API.
//!
//! Transactions are built and signed on this machine with the member's key (the nonce
//! comes from the node), submitted, and followed until their receipt is final. Output
//! is aligned tables with decimal amounts, asset symbols and ISO 8601 UTC times, or JSON
//! with `--json`. Every failure is one line, `error: ...`, and a non-zero exit; a
//! refused input (unknown pair or member, an amount with too many decimals) is refused
//! here, before anything is signed or sent.

pub mod certificate;
pub mod commands;
pub mod compliance;
pub mod cycle_verify;
pub mod describe;
pub mod funds;
pub mod governance;
pub mod proof;
pub mod session;
pub mod sign;
pub mod text;

use clap::{Args, Subcommand};
pub use session::ClientOptions;
use std::path::PathBuf;

/// The client subcommands, flattened into `seisan`'s top-level commands.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Place or cancel a limit order (the patent's contract request, S230).
    Order(OrderCommand),
    /// Testnet: send coins from the member's registered address to the hot address on
    /// the local public chain (S211-S212) and wait for the attested credit.
    Deposit(funds::DepositArgs),
    /// Testnet: move fiat from the member's operating account to its trust account at
    /// the bank (S210) and wait for the attested credit.
    FiatDeposit(funds::FiatDepositArgs),
    /// Withdraw: coins to a registered public-chain address, fiat to the operating account.
    Withdraw(funds::WithdrawArgs),
    /// Proof of reserves: ledger liabilities beside on-chain hot and cold balances.
    Reserves {
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Reconciliation: per exchange, the ledger's fiat beside the bank's trust balance, and
    /// every settlement whose bank transfer is not yet confirmed on chain; exits non-zero
    /// unless every settled fiat movement is confirmed and every balance agrees.
    Reconcile {
        #[command(flatten)]
        options: ClientOptions,
    },
    /// List a member's open orders.
    Orders {
        /// Member name or id [default: the key's member].
        #[arg(long)]
        member: Option<String>,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Request, answer or accept a quote (S301-S303).
    Quote(QuoteCommand),
    /// List requests for quote and their quotes.
    Quotes {
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Send this member's side of a bilateral trade confirmation (S313/S314).
    Confirm(ConfirmArgs),
    /// Settlement-cycle actions of the clearing house.
    Cycle(CycleCommand),
    /// Move an amount between inventory and a customer sub-account, or a batch from a
    /// CSV or JSON file.
    Allocate(AllocateArgs),
    /// A member's balances per asset; `--proof` verifies them locally against genesis.
    Balance {
        /// Member name or id [default: the key's member].
        #[arg(long)]
        member: Option<String>,
        /// Fetch Merkle proofs and the quorum-signed header, and verify them here.
        #[arg(long)]
        proof: bool,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// List fills.
    Trades {
        #[command(flatten)]
        options: ClientOptions,
    },
    /// List top-up requests (the patent's additional trust requests).
    Topups {
        #[command(flatten)]
        options: ClientOptions,
    },
    /// List settlement cycles with their netting figures.
    Cycles {
        #[command(flatten)]
        options: ClientOptions,
    },
    /// The order book of a pair: asks, then bids, each best price first (and earliest
    /// first within a price), in the table and in `--json` alike.
    Book {
        /// The pair, `BASE/QUOTE` (e.g. ETH/JPY).
        pair: String,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// API credentials for tools that cannot sign each request (schemathesis, a
    /// scraper, a browser): prints an `Authorization` header value, a token signed with
    /// the member's key, valid at every node until it expires.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// The node's status: chain, height, state root, peers.
    Status {
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Follow finalized blocks and their receipts (one line each) until Ctrl-C.
    Events {
        /// Stop after this many blocks.
        #[arg(long)]
        count: Option<u64>,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Per-asset totals: credited, debited, held, locked.
    Supply {
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Governance: propose a change to the consortium (members, keys, quorum, assets,
    /// pairs, settlement or custody settings), approve one, or list and show proposals.
    Governance(governance::GovernanceCommand),
    /// Settlement certificates: `certificate trade <id> --out trade.json` writes a fill
    /// with its inclusion proof, header, quorum certificate and validator-set links.
    Certificate {
        #[command(subcommand)]
        what: CertificateWhat,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// Check a certificate file offline against the genesis file (`--genesis`), with no
    /// node, and print what it proves; exits non-zero with the reason otherwise.
    Verify {
        /// The certificate file (from `seisan certificate trade` or `seisan cycle verify
        /// --out`).
        file: PathBuf,
        #[command(flatten)]
        options: ClientOptions,
    },
    /// The daily compliance report (Payment Services Act art. 63-11): per crypto asset
    /// the cold share against the 95% rule and reserves coverage, per exchange its
    /// customer fiat against its trust balance, breaches named; and members' end-of-day
    /// statements verified against genesis.
    Compliance(compliance::ComplianceCommand),
    /// Sign an unsigned transaction (JSON: chain_id, member, nonce, body) with `--key`
    /// under the genesis's chain, offline; prints the signed transaction to submit
    /// from anywhere (POST /v1/transactions).
    Sign(sign::SignArgs),
    /// A transaction's status and receipt.
    Tx {
        /// The transaction id (hex).
        id: String,
        #[command(flatten)]
        options: ClientOptions,
    },
}

/// What `seisan certificate` certifies.
#[derive(Subcommand, Debug)]
pub enum CertificateWhat {
    /// One fill, by trade id.
    Trade {
        /// The trade id.
        id: u64,
        /// Where to write the certificate (JSON).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Options of commands that submit a transaction.
#[derive(Args, Debug, Clone, Default)]
pub struct SubmitOptions {
    /// Return after the node accepts the transaction, without waiting for its receipt.
    #[arg(long, global = true)]
    pub no_wait: bool,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Args, Debug)]
pub struct OrderCommand {
    #[command(subcommand)]
    pub action: OrderAction,
    #[command(flatten)]
    pub options: SubmitOptions,
}

#[derive(Subcommand, Debug)]
pub enum OrderAction {
    /// Buy QTY of the pair's base asset at PRICE or better.
    Buy(PlaceArgs),
    /// Sell QTY of the pair's base asset at PRICE or better.
    Sell(PlaceArgs),
    /// Cancel one of this member's open orders or quotes.
    Cancel {
        /// The order id.
        id: u64,
    },
}

#[derive(Args, Debug)]
pub struct PlaceArgs {
    /// The pair, `BASE/QUOTE` (e.g. ETH/JPY).
    pub pair: String,
    /// Quantity of the base asset, as a decimal (e.g. 1.5).
    pub qty: String,
    /// Limit price: quote asset per ONE whole base unit, as a decimal.
    #[arg(long)]
    pub price: String,
    /// Immediate or cancel: match what is possible now, cancel the rest.
    #[arg(long)]
    pub ioc: bool,
    /// When the order lapses: RFC 3339, milliseconds since the epoch, or +30s/+5m/+2h/+1d.
    #[arg(long, value_name = "TIME")]
    pub expires: Option<String>,
}

#[derive(Args, Debug)]
pub struct QuoteCommand {
    #[command(subcommand)]
    pub action: QuoteAction,
    #[command(flatten)]
    pub options: SubmitOptions,
}

#[derive(Subcommand, Debug)]
pub enum QuoteAction {
    /// Ask named members for a price (S301).
    Request {
        /// The pair, `BASE/QUOTE`.
        pair: String,
        /// This member's side: buy or sell.
        side: String,
        /// Quantity of the base asset, as a decimal.
        qty: String,
        /// The members asked, comma-separated names or ids.
        #[arg(
            long,
            value_delimiter = ',',
            required = true,
            value_name = "MEMBER[,MEMBER]"
        )]
        to: Vec<String>,
        /// Answers are accepted until: RFC 3339, ms since the epoch, or +30s/+5m/+2h/+1d.
        #[arg(long, default_value = "+60s", value_name = "TIME")]
        answer_by: String,
    },
    /// Give a firm quote on a request naming this member (S302); locks like an order.
    Answer {
        /// The request-for-quote id.
        rfq: u64,
        /// Price: quote asset per ONE whole base unit, as a decimal.
        #[arg(long)]
        price: String,
        /// The quote can be taken until: RFC 3339, ms since the epoch, or +30s/+5m/+2h/+1d.
        #[arg(long, value_name = "TIME")]
        valid_until: String,
    },
    /// Take a quote given on this member's request (S303); it settles as a fill.
    Accept {
        /// The quote's order id.
        quote: u64,
    },
}

#[derive(Args, Debug)]
pub struct ConfirmArgs {
    /// The trade reference both sides use.
    #[arg(long = "ref", value_name = "REF")]
    pub trade_ref: String,
    /// The buying member (name or id).
    #[arg(long)]
    pub buyer: String,
    /// The selling member (name or id).
    #[arg(long)]
    pub seller: String,
    /// The pair, `BASE/QUOTE`.
    #[arg(long)]
    pub pair: String,
    /// Quantity of the base asset, as a decimal.
    #[arg(long)]
    pub qty: String,
    /// Price: quote asset per ONE whole base unit, as a decimal.
    #[arg(long)]
    pub price: String,
    /// When the trade was agreed, as both sides state it: RFC 3339
    /// (2026-01-01T09:00:00Z) or ms since the epoch. Both confirmations must carry the
    /// same time; an offset such as +0s is refused (it would be read from each side's
    /// clock).
    #[arg(long, value_name = "TIME")]
    pub time: String,
    #[command(flatten)]
    pub options: SubmitOptions,
}

#[derive(Args, Debug)]
pub struct CycleCommand {
    #[command(subcommand)]
    pub action: CycleAction,
    #[command(flatten)]
    pub options: SubmitOptions,
}

#[derive(Subcommand, Debug)]
pub enum CycleAction {
    /// Cut off the current settlement cycle now (clearing house only).
    Close,
    /// Check a settled cycle against the genesis file (`--genesis`) without trusting
    /// the node: every confirmation's signatures and inclusion in a finalized block,
    /// then the multilateral netting recomputed here and compared with what the chain
    /// settled; any difference is printed and the exit code is non-zero.
    Verify {
        /// The cycle number (its certificate is fetched from the node).
        #[arg(required_unless_present = "file")]
        n: Option<u64>,
        /// Verify a saved certificate (from `--out`) instead, with no node.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["n", "out"])]
        file: Option<PathBuf>,
        /// Also write the fetched certificate here (JSON).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct AllocateArgs {
    /// The asset symbol (e.g. ETH).
    #[arg(required_unless_present = "batch")]
    pub asset: Option<String>,
    /// The amount, as a decimal.
    #[arg(required_unless_present = "batch")]
    pub amount: Option<String>,
    /// The exchange's own id of the customer.
    #[arg(long, required_unless_present = "batch")]
    pub customer: Option<String>,
    /// Move from the customer back to inventory (default: inventory to the customer).
    #[arg(long)]
    pub back: bool,
    /// A CSV (`asset,customer,amount[,to_customer|to_inventory]` per line) or JSON
    /// (`[{"asset","customer","amount","direction"}]`) file; all apply or none.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["asset", "amount", "customer", "back"])]
    pub batch: Option<PathBuf>,
    #[command(flatten)]
    pub options: SubmitOptions,
}

/// Parses the command line. Help and version print as clap prints them; a usage error
/// (unknown flag, missing argument) becomes one line, `error: ...; see --help`, with
/// exit code 2, like every other failure of the binary.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    use clap::error::ErrorKind;
    match T::try_parse() {
        Ok(parsed) => parsed,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            error.exit()
        }
        Err(error) => {
            eprintln!("{}", one_line(&error.render().to_string()));
            std::process::exit(2);
        }
    }
}

/// Folds clap's multi-line usage error into one line.
fn one_line(text: &str) -> String {
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty()
                && !line.starts_with("Usage:")
                && !line.starts_with("For more information")
        })
        .collect();
    let mut joined = String::new();
    for part in parts {
        if !joined.is_empty() {
            joined.push_str(if joined.ends_with(':') { " " } else { "; " });
        }
        joined.push_str(part);
    }
    let joined = if joined.starts_with("error:") {
        joined
    } else {
        format!("error: {joined}")
    };
    format!("{joined}; see --help")
}

/// Runs one client command.
pub fn run(command: ClientCommand) -> anyhow::Result<()> {
    commands::run(command)
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_errors_fold_into_one_line() {
        let text = "error: the following required arguments were not provided:\n  --price <PRICE>\n\nUsage: seisan order buy --price <PRICE> <PAIR> <QTY>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::one_line(text),
            "error: the following required arguments were not provided: --price <PRICE>; see --help"
        );
    }
}

/// `seisan auth ...`.
#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Print `Seisan-Token KEY.EXPIRES.SIGNATURE` (send it as the Authorization header).
    Token {
        /// How long the token is valid, in minutes (at most 24 hours).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=1440))]
        ttl_minutes: u64,
        #[command(flatten)]
        options: ClientOptions,
    },
}
