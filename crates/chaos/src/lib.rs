//! Seisan's chaos run (Jepsen-style bank workload under faults).
//!
//! Three real `seisan node` processes, each in its own network namespace, run a fresh
//! testnet genesis whose opening balances fund many exchange members. Client threads
//! submit those members' signed orders, cancels and allocations to different nodes,
//! while the driver injects a seeded random fault about every ten seconds: kill -9 and
//! restart, SIGSTOP/SIGCONT, a partition (the node's veth link goes down) and a wiped
//! data directory (resync from genesis). A checker reads every node throughout and all
//! of them at the end, and the run fails on:
//! - any asset whose `held != credited - debited`, any balance that is not a `u128`,
//!   or member holdings that do not add up to the supply at one height;
//! - any transaction the API reported finalized that a node at or past its height no
//!   longer has, or has at another height or with another receipt;
//! - any two nodes with a different block hash or state root at one height;
//! - progress that does not resume within a bound after a fault heals.
//!
//! The pure parts ([`invariants`], [`faults`]) are unit-tested with inputs that break
//! the invariants; [`cluster`] and [`run`] are the shell that owns processes, links
//! and clocks.

pub mod cluster;
pub mod faults;
pub mod http;
pub mod invariants;
pub mod run;
pub mod workload;
