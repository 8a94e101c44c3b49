//! Seisan's chaos run (Jepsen-style bank workload under faults).
//!
//! Four real `seisan node` validators with quorum 3 (clearing-house, exchange-a,
//! exchange-b, exchange-c), each in its own network namespace, and the embedded bank
//! (`seisan bank run`, the accounting system with the exchanges' trust accounts, read
//! by every validator through its own auditor token) run a fresh testnet genesis that
//! funds many exchange members with ETH; one validator (exchange-c unless `--liar` or
//! `--no-liar` says otherwise) runs with `--fault lie-attestations`, attesting other
//! amounts than it sees and facts that never happened;
//! yen enter only through trust-account deposits at the bank. Client threads submit
//! those members' signed orders, cancels and allocations to different nodes, and two
//! exchanges also deposit fiat at the bank and withdraw it (`WithdrawFiat`), while the
//! driver injects a seeded random fault about every ten seconds: kill -9 and restart a
//! node, SIGSTOP/SIGCONT, a partition (the node's veth link goes down), a wiped data
//! directory (resync from genesis), kill -9 of the bank, restarted on its own
//! store, and quorum losses: two of the four validators stopped together (kill -9 or
//! SIGSTOP), so the chain stops, and brought back one at a time (the first stopped
//! first, or the last) or both together; one at least every fifth fault. A local anvil is the public chain: the same two exchanges deposit ETH and
//! WBTC from their registered addresses to the clearing house's hot wallet and withdraw
//! them (`Withdraw`, paid by the clearing-house node from the hot wallet). A checker
//! reads every node throughout and all of them at the end, and the run fails on:
//! - any asset whose `held != credited - debited`, any balance that is not a `u128`,
//!   member holdings that do not add up to the supply at one height, or more yen
//!   credited than was ever deposited at the bank (or debited than was ever asked to
//!   be withdrawn), or more of a crypto asset credited than its openings plus what the
//!   registered addresses sent to the hot wallet (or debited than was asked to be
//!   withdrawn), or credited deposit records adding up to more than was sent;
//! - any transaction the API reported finalized that a node at or past its height no
//!   longer has, or has at another height or with another receipt;
//! - any two nodes with a different block hash or state root at one height;
//! - progress that does not resume within a bound after a fault heals, or, after a
//!   quorum loss, a chain that does not finalize a new block within
//!   [`run::QUORUM_BACK_BOUND`] of a quorum being back (`stalls_after_quorum`), or a
//!   run with fewer quorum losses than one per two minutes;
//! - after the run, a bank and ledger that do not settle (a deposit never credited, a
//!   withdrawal never completed, settlement never mirrored) or whose books differ: yen
//!   credited must equal the deposits the bank booked (each once, and each deposit the
//!   bank confirmed to the workload among them), yen debited the withdrawals it paid,
//!   and yen held the trust accounts' balances;
//! - after the run, custody that does not settle (a deposit never credited, a
//!   withdrawal never completed) or does not match the chain, read block by block: a
//!   deposit not credited exactly once to its sender, a withdrawal not paid by exactly
//!   the payout it names or a hot-wallet payment no withdrawal asked for, hot + cold
//!   wallets (plus the hot wallet's gas, minus the clearing house's gas buffer) not
//!   equal to the ledger's liabilities exactly, or a registered address whose balance
//!   did not move by exactly its payouts minus its deposits and gas;
//! - after the run, evidence on an honest node that names anyone but the liar (or is
//!   not verified), honest nodes serving different evidence, or a liar with no
//!   contradicting attestation on record. (That the liar forges nothing is the bank and
//!   custody checks above: every credit equals what the bank or anvil shows, once.)
//!
//! The pure parts ([`invariants`], [`faults`], the transaction decoding of [`chain`])
//! are unit-tested with inputs that break the invariants; [`cluster`], [`chain`] and
//! [`run`] are the shell that owns processes, links, RPC and clocks.

pub mod chain;
pub mod cluster;
pub mod faults;
pub mod http;
pub mod invariants;
pub mod run;
pub mod workload;
