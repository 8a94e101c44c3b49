//! When an idle leader proposes: a block with transactions always; an empty block only
//! when it has a purpose.
//!
//! An empty block has a purpose when executing it did something ([`Purpose`]): the
//! block's time-driven work changed the state or produced events (an order or quote
//! lapsed, a top-up was cured or expired, a cycle closed or was cut off, a governance
//! change applied; an empty block without such work writes nothing), a
//! scheduled governance change is waiting for heights to pass (activation is counted in
//! blocks, rule G4), the block ends an epoch, or the chain has been quiet for the idle
//! block interval (a heartbeat: a certified block, and so a certified time, at least
//! that often). Otherwise the leader proposes nothing; its view times out and is
//! nullified, which stores one overwritten vote record and no block.
//!
//! The leader learns all of this by building the empty block it would propose (the same
//! execution every validator repeats to vote) and looking at the outcome, so no list of
//! deadlines is kept here that could fall behind the contracts.

use seisan_types::Block;

/// The idle chain's default heartbeat: one empty block at least this often (8,640 a
/// day instead of 172,800 at two a second).
pub const IDLE_BLOCK_INTERVAL_MS: u64 = 10_000;

/// The least time between two looks at a held view's empty block (with
/// `--empty-block-delay-ms 0` the leader would otherwise rebuild it in a busy loop).
pub const MIN_RECHECK_MS: u64 = 100;

/// Why a block is worth proposing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// It carries transactions.
    Transactions,
    /// Its time-driven work changed the state or produced events.
    TimeDrivenWork,
    /// A scheduled governance change needs heights to pass, or the block ends an epoch.
    Governance,
    /// The chain was quiet for the idle block interval.
    Heartbeat,
}

impl Purpose {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::Transactions => "transactions",
            Purpose::TimeDrivenWork => "time_driven_work",
            Purpose::Governance => "governance",
            Purpose::Heartbeat => "heartbeat",
        }
    }
}

/// What executing a built block said, beyond the block itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Executed {
    /// Whether executing the block wrote any key or produced any event.
    pub changed_state: bool,
    /// Whether the post-state holds a scheduled governance change.
    pub activation_scheduled: bool,
    /// The parent's timestamp.
    pub parent_time_ms: u64,
}

/// Why `block` should be proposed, or `None` if it is an empty block without purpose.
pub fn purpose(block: &Block, executed: Executed, idle_block_interval_ms: u64) -> Option<Purpose> {
    let header = &block.header;
    if !block.txs.is_empty() {
        return Some(Purpose::Transactions);
    }
    if executed.changed_state {
        return Some(Purpose::TimeDrivenWork);
    }
    if executed.activation_scheduled
        || header.epoch_end.is_some()
        || header.next_validators.is_some()
    {
        return Some(Purpose::Governance);
    }
    let quiet_ms = header.timestamp_ms.saturating_sub(executed.parent_time_ms);
    (quiet_ms >= idle_block_interval_ms).then_some(Purpose::Heartbeat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_types::{BlockHeader, Hash, Height};

    fn empty_block(timestamp_ms: u64) -> Block {
        Block {
            header: BlockHeader {
                chain_id: seisan_types::ids::ChainId("seisan-idle-test".into()),
                epoch: seisan_types::Epoch(0),
                height: Height(5),
                view: seisan_types::View(9),
                parent: Hash([1; 32]),
                timestamp_ms,
                proposer: seisan_types::MemberId(0),
                txs_root: Block::compute_txs_root(&[]),
                state_root: Hash([2; 32]),
                receipts_root: Hash([3; 32]),
                epoch_end: None,
                next_validators: None,
            },
            txs: vec![],
        }
    }

    fn quiet(parent_time_ms: u64) -> Executed {
        Executed {
            changed_state: false,
            activation_scheduled: false,
            parent_time_ms,
        }
    }

    #[test]
    fn a_quiet_empty_block_is_held_until_the_heartbeat() {
        assert_eq!(purpose(&empty_block(10_999), quiet(1_000), 10_000), None);
        assert_eq!(
            purpose(&empty_block(11_000), quiet(1_000), 10_000),
            Some(Purpose::Heartbeat)
        );
        // An interval of 0 proposes every empty block, as before this policy.
        assert_eq!(
            purpose(&empty_block(1_000), quiet(1_000), 0),
            Some(Purpose::Heartbeat)
        );
        // A clock behind the parent's (the header takes the parent's time) is quiet.
        assert_eq!(purpose(&empty_block(500), quiet(1_000), 10_000), None);
    }

    #[test]
    fn time_driven_work_governance_and_epoch_ends_are_purposes() {
        let events = Executed {
            changed_state: true,
            ..quiet(1_000)
        };
        assert_eq!(
            purpose(&empty_block(1_001), events, 10_000),
            Some(Purpose::TimeDrivenWork)
        );
        let scheduled = Executed {
            activation_scheduled: true,
            ..quiet(1_000)
        };
        assert_eq!(
            purpose(&empty_block(1_001), scheduled, 10_000),
            Some(Purpose::Governance)
        );
        let mut ending = empty_block(1_001);
        ending.header.epoch_end = Some(Height(7));
        assert_eq!(
            purpose(&ending, quiet(1_000), 10_000),
            Some(Purpose::Governance)
        );
        let mut last = empty_block(1_001);
        last.header.next_validators = Some(Hash([4; 32]));
        assert_eq!(
            purpose(&last, quiet(1_000), 10_000),
            Some(Purpose::Governance)
        );
    }
}
