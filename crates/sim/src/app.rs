//! The simulated application: deterministic, no transactions, with a seeded [`Plan`] of
//! validator-set changes standing in for the contracts' governance.
//!
//! A block's post-state root is a hash of its parent's root, its header fields and the
//! schedule its state holds (the epoch, the announced end, how many changes are
//! approved and the next validator set once announced), so re-execution (R4) catches
//! any block whose `state_root`, `epoch` or `epoch_end` was not derived from its parent,
//! and the simulator can recheck every finalized chain from genesis.
//!
//! A change is *approved* at a height `a`. From the state after block `a'` (`a` itself,
//! or the first block of the next epoch if a boundary is already announced when it is
//! approved) every state says `epoch_end = Some(a' + ACTIVATION_DELAY_BLOCKS)` and names
//! the next set; every change approved by `a'` applies at that boundary (E2). A change
//! approved while another boundary is announced waits for the next epoch, so the
//! announced end never moves and is always at least `ACTIVATION_DELAY_BLOCKS` above the
//! first block that names it (which rule E3 relies on).

use crate::rng::Rng;
use seisan_consensus::FinalizedBlock;
use seisan_crypto::Keypair;
use seisan_types::{
    codec, Block, BlockHeader, ChainId, Epoch, Hash, Height, MemberId, ValidatorSet, View,
    ACTIVATION_DELAY_BLOCKS,
};
use std::collections::{BTreeMap, BTreeSet};

/// Domain tag of the simulated state root.
pub const SEISAN_SIM_STATE_V1: &[u8] = b"SEISAN_SIM_STATE_V1";

/// The most changes one seed's plan approves.
pub const MAX_PLANNED_CHANGES: u64 = 4;
/// The first change is approved at a height in `1..=FIRST_APPROVAL_MAX_HEIGHT`.
pub const FIRST_APPROVAL_MAX_HEIGHT: u64 = 6;
/// Heights between two approvals: up to this many (0: approved in the same block; below
/// [`ACTIVATION_DELAY_BLOCKS`]: several changes in flight at once).
pub const MAX_APPROVAL_GAP: u64 = 8;
/// Draws of a change that fit the running set before the plan gives up on one.
const MAX_DRAW_ATTEMPTS: usize = 16;

/// The key of `member` after `generation` rotations (dev keys: the chain is `dev`).
pub fn member_keypair(member: MemberId, generation: u32) -> Keypair {
    if generation == 0 {
        Keypair::dev(&format!("validator-{}", member.0))
    } else {
        Keypair::dev(&format!("validator-{}-key-{generation}", member.0))
    }
}

/// One validator-set change, as governance would apply it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A member becomes a validator (with its current key); the quorum becomes `quorum`.
    Add { member: MemberId, quorum: u32 },
    /// A validator leaves the set; the quorum becomes `quorum`.
    Remove { member: MemberId, quorum: u32 },
    /// A validator's key is replaced by its `generation`-th key.
    Rotate { member: MemberId, generation: u32 },
    /// The quorum changes.
    Quorum { quorum: u32 },
}

/// A change and the height of the block whose approval completes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub height: Height,
    pub change: Change,
}

/// One epoch of the plan: its set, and where its end is announced and falls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochPlan {
    pub set: ValidatorSet,
    /// The first height whose state names `last` (`None` for the final epoch).
    pub announced: Option<Height>,
    /// The epoch's last height (`None` for the final epoch: it never ends).
    pub last: Option<Height>,
}

/// A seed's schedule of validator-set changes, a pure function of the height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub approvals: Vec<Approval>,
    pub epochs: Vec<EpochPlan>,
    /// Key rotations per member, at most (for finding a member's key in a set).
    pub max_generation: u32,
}

impl Plan {
    /// No change ever: genesis's set forever.
    pub fn none(genesis_set: ValidatorSet) -> Plan {
        Plan::from_approvals(genesis_set, Vec::new())
    }

    /// Draws 1..=[`MAX_PLANNED_CHANGES`] approvals (add, remove, rotate, quorum, several
    /// in flight) from `rng`. `pool` is every member that could validate; `byzantine`
    /// the byzantine ones. Every set the plan reaches passes [`ValidatorSet::check`],
    /// keeps safety against its byzantine members (`2q - n > f`) and has a live quorum
    /// when they are silent (`n - q >= f`), with at least two validators.
    pub fn draw(
        rng: &mut Rng,
        genesis_set: ValidatorSet,
        pool: &[MemberId],
        byzantine: &BTreeSet<MemberId>,
    ) -> Plan {
        let count = rng.range(1, MAX_PLANNED_CHANGES);
        let mut generations: BTreeMap<MemberId, u32> =
            pool.iter().map(|member| (*member, 0)).collect();
        let mut running = genesis_set.clone();
        let mut height = rng.range(1, FIRST_APPROVAL_MAX_HEIGHT);
        let mut approvals = Vec::new();
        for index in 0..count {
            if index > 0 {
                height += rng.range(0, MAX_APPROVAL_GAP);
            }
            let drawn = (0..MAX_DRAW_ATTEMPTS).find_map(|_| {
                let change = draw_change(rng, &running, pool, &generations, byzantine)?;
                let next = apply(&running, &change);
                fits(&next, byzantine).then_some((change, next))
            });
            let Some((change, next)) = drawn else {
                continue;
            };
            if let Change::Rotate { member, generation } = change {
                generations.insert(member, generation);
            }
            running = next;
            approvals.push(Approval {
                height: Height(height),
                change,
            });
        }
        Plan::from_approvals(genesis_set, approvals)
    }

    /// The epochs that `approvals` (ascending heights) make, starting from genesis's set.
    pub fn from_approvals(genesis_set: ValidatorSet, approvals: Vec<Approval>) -> Plan {
        assert!(
            approvals
                .windows(2)
                .all(|pair| pair[0].height <= pair[1].height),
            "approvals in height order"
        );
        let mut epochs = vec![EpochPlan {
            set: genesis_set,
            announced: None,
            last: None,
        }];
        let mut max_generation = 0;
        let mut base = 0u64;
        let mut next = 0usize;
        while next < approvals.len() {
            let effective = |approval: &Approval| approval.height.0.max(base + 1);
            let announced = effective(&approvals[next]);
            let last = announced + ACTIVATION_DELAY_BLOCKS;
            let mut set = epochs.last().expect("genesis epoch").set.clone();
            while next < approvals.len() && effective(&approvals[next]) <= announced {
                if let Change::Rotate { generation, .. } = approvals[next].change {
                    max_generation = max_generation.max(generation);
                }
                set = apply(&set, &approvals[next].change);
                next += 1;
            }
            let current = epochs.last_mut().expect("genesis epoch");
            current.announced = Some(Height(announced));
            current.last = Some(Height(last));
            set.epoch = Epoch(current.set.epoch.0 + 1);
            assert!(set.check().is_ok(), "a planned set is unsafe: {set:?}");
            epochs.push(EpochPlan {
                set,
                announced: None,
                last: None,
            });
            base = last;
        }
        Plan {
            approvals,
            epochs,
            max_generation,
        }
    }

    /// The set of `epoch`, if the plan reaches it.
    pub fn set(&self, epoch: Epoch) -> Option<&ValidatorSet> {
        let index = usize::try_from(epoch.0).ok()?;
        self.epochs.get(index).map(|plan| &plan.set)
    }

    /// The epoch whose set votes on the block at `height` (>= 1).
    pub fn epoch_of(&self, height: Height) -> Epoch {
        let index = self
            .epochs
            .iter()
            .position(|plan| plan.last.is_none_or(|last| height <= last))
            .expect("the final epoch never ends");
        Epoch(index as u64)
    }

    /// The `epoch_end` the state after the block at `height` names.
    pub fn epoch_end_after(&self, height: Height) -> Option<Height> {
        let plan = &self.epochs[self.epoch_of(height).0 as usize];
        plan.announced
            .filter(|announced| *announced <= height)
            .and(plan.last)
    }

    /// The `next_validators` the block at `height` names: on an epoch's last block, the
    /// hash of the set that votes on the next block; `None` elsewhere.
    pub fn next_validators_after(&self, height: Height) -> Option<Hash> {
        let epoch = self.epoch_of(height);
        (self.epochs[epoch.0 as usize].last == Some(height))
            .then(|| self.set(Epoch(epoch.0 + 1)).map(ValidatorSet::hash))
            .flatten()
    }

    /// The last height of the last epoch that ends (where the final set takes over).
    pub fn last_boundary(&self) -> Option<Height> {
        self.epochs.iter().filter_map(|plan| plan.last).max()
    }

    /// How many epoch changes the plan makes.
    pub fn reconfigurations(&self) -> u64 {
        self.epochs.len() as u64 - 1
    }

    /// Every member that validates in some epoch.
    pub fn all_validators(&self) -> BTreeSet<MemberId> {
        self.epochs
            .iter()
            .flat_map(|plan| plan.set.members())
            .collect()
    }

    /// The key `member` runs `set`'s engine with: its key in the set, or (observing)
    /// its key of the set's latest generation it had before.
    pub fn keypair_for(&self, member: MemberId, set: &ValidatorSet) -> Keypair {
        let Some(key) = set.key_of(member) else {
            return member_keypair(member, 0);
        };
        (0..=self.max_generation)
            .map(|generation| member_keypair(member, generation))
            .find(|keypair| keypair.public_key() == key)
            .expect("every planned key is a generation of the member's dev key")
    }

    /// What the state after the block at `height` holds of the schedule: its epoch, the
    /// announced end, the approvals so far and the next set once announced.
    fn schedule_digest(&self, height: Height) -> Vec<u8> {
        let epoch = self.epoch_of(height);
        let end = self.epoch_end_after(height);
        let approved = self
            .approvals
            .iter()
            .filter(|approval| approval.height <= height)
            .count() as u64;
        let next_set = end
            .and_then(|_| self.set(Epoch(epoch.0 + 1)))
            .map_or(Hash::ZERO, ValidatorSet::hash);
        codec::encode(&(epoch, end, approved, next_set))
    }
}

/// The set after `change`.
fn apply(set: &ValidatorSet, change: &Change) -> ValidatorSet {
    let mut next = set.clone();
    match change {
        Change::Add { member, quorum } => {
            next.validators
                .push((*member, member_keypair(*member, 0).public_key()));
            next.validators.sort_by_key(|(id, _)| *id);
            next.quorum = *quorum;
        }
        Change::Remove { member, quorum } => {
            next.validators.retain(|(id, _)| id != member);
            next.quorum = *quorum;
        }
        Change::Rotate { member, generation } => {
            let key = member_keypair(*member, *generation).public_key();
            for (id, held) in &mut next.validators {
                if id == member {
                    *held = key;
                }
            }
        }
        Change::Quorum { quorum } => next.quorum = *quorum,
    }
    next
}

/// The quorums that keep a set of `n` with `f` byzantine members safe (`2q - n > f`)
/// and live with them silent (`q <= n - f`).
fn safe_quorums(n: usize, f: usize) -> Option<(u32, u32)> {
    let low = (n + f) / 2 + 1;
    let high = n.checked_sub(f)?;
    (low <= high).then_some((low as u32, high as u32))
}

fn byzantine_in(set: &ValidatorSet, byzantine: &BTreeSet<MemberId>) -> usize {
    set.members()
        .iter()
        .filter(|member| byzantine.contains(member))
        .count()
}

/// Whether a set may be planned: checked, at least two validators, safe and live
/// against its byzantine members.
fn fits(set: &ValidatorSet, byzantine: &BTreeSet<MemberId>) -> bool {
    let f = byzantine_in(set, byzantine);
    set.check().is_ok()
        && set.len() >= 2
        && safe_quorums(set.len(), f).is_some_and(|(low, high)| (low..=high).contains(&set.quorum))
}

fn draw_change(
    rng: &mut Rng,
    set: &ValidatorSet,
    pool: &[MemberId],
    generations: &BTreeMap<MemberId, u32>,
    byzantine: &BTreeSet<MemberId>,
) -> Option<Change> {
    let pick = |rng: &mut Rng, from: &[MemberId]| -> Option<MemberId> {
        (!from.is_empty()).then(|| from[rng.below(from.len() as u64) as usize])
    };
    let quorum_for = |rng: &mut Rng, members: usize, f: usize| -> Option<u32> {
        let (low, high) = safe_quorums(members, f)?;
        Some(rng.range(u64::from(low), u64::from(high)) as u32)
    };
    let f = byzantine_in(set, byzantine);
    match rng.below(4) {
        0 => {
            let outside: Vec<MemberId> = pool
                .iter()
                .copied()
                .filter(|member| !set.contains(*member))
                .collect();
            let member = pick(rng, &outside)?;
            let f = f + usize::from(byzantine.contains(&member));
            let quorum = quorum_for(rng, set.len() + 1, f)?;
            Some(Change::Add { member, quorum })
        }
        1 => {
            let member = pick(rng, &set.members())?;
            let f = f - usize::from(byzantine.contains(&member));
            let quorum = quorum_for(rng, set.len().checked_sub(1)?, f)?;
            Some(Change::Remove { member, quorum })
        }
        2 => {
            let member = pick(rng, &set.members())?;
            let generation = generations.get(&member).copied().unwrap_or(0) + 1;
            Some(Change::Rotate { member, generation })
        }
        _ => {
            let quorum = quorum_for(rng, set.len(), f)?;
            (quorum != set.quorum).then_some(Change::Quorum { quorum })
        }
    }
}

/// The state root after `header`'s block, given its parent's root.
pub fn state_root(plan: &Plan, parent_root: &Hash, header: &BlockHeader) -> Hash {
    Hash::tagged(
        SEISAN_SIM_STATE_V1,
        &[
            &parent_root.0,
            &header.parent.0,
            &header.height.0.to_le_bytes(),
            &header.view.0.to_le_bytes(),
            &header.timestamp_ms.to_le_bytes(),
            &header.proposer.0.to_le_bytes(),
            &plan.schedule_digest(header.height),
        ],
    )
}

/// The state root the next block builds on: the last ancestor's, else the finalized
/// tip's, else genesis (zero).
pub fn parent_root(ancestors: &[Block], finalized: &[FinalizedBlock]) -> Hash {
    ancestors
        .last()
        .map(|block| block.header.state_root)
        .or_else(|| finalized.last().map(|tip| tip.block.header.state_root))
        .unwrap_or(Hash::ZERO)
}

/// The hash the next block's parent must be: the last ancestor, else the tip.
pub fn parent_hash(ancestors: &[Block], finalized: &[FinalizedBlock]) -> Hash {
    ancestors
        .last()
        .map(Block::hash)
        .or_else(|| finalized.last().map(|tip| tip.block.hash()))
        .unwrap_or(Hash::ZERO)
}

/// Builds a block (empty, so its transactions root is the empty root) in `slot`: the
/// epoch, view and height it is proposed at. Its `epoch_end` is what its state names.
pub fn build(
    plan: &Plan,
    chain_id: &ChainId,
    slot: (Epoch, View, Height),
    parent: Hash,
    parent_root: &Hash,
    proposer: MemberId,
    timestamp_ms: u64,
) -> Block {
    let (epoch, view, height) = slot;
    let mut header = BlockHeader {
        chain_id: chain_id.clone(),
        epoch,
        height,
        view,
        parent,
        timestamp_ms,
        proposer,
        txs_root: Block::compute_txs_root(&[]),
        state_root: Hash::ZERO,
        // The simulated application executes no transactions: no receipts, no events.
        receipts_root: seisan_types::receipt::receipts_root(&[], &[]),
        epoch_end: plan.epoch_end_after(height),
        next_validators: plan.next_validators_after(height),
    };
    header.state_root = state_root(plan, parent_root, &header);
    Block {
        header,
        txs: vec![],
    }
}

/// Re-executes `block` on its parent: the parent link, the body, the epoch whose set
/// votes on it, the end its state announces and the state root must all match.
pub fn verify(plan: &Plan, block: &Block, parent: &Hash, parent_root: &Hash) -> bool {
    let header = &block.header;
    header.parent == *parent
        && block.txs_root_matches()
        && header.height > Height(0)
        && header.epoch == plan.epoch_of(header.height)
        && header.epoch_end == plan.epoch_end_after(header.height)
        && header.next_validators == plan.next_validators_after(header.height)
        && header.state_root == state_root(plan, parent_root, header)
        && header.receipts_root == seisan_types::receipt::receipts_root(&[], &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis_set(n: u32, quorum: u32) -> ValidatorSet {
        ValidatorSet {
            epoch: Epoch(0),
            quorum,
            validators: (0..n)
                .map(|id| (MemberId(id), member_keypair(MemberId(id), 0).public_key()))
                .collect(),
        }
    }

    #[test]
    fn a_change_in_flight_waits_for_the_next_epoch_and_ends_never_move() {
        let approvals = vec![
            Approval {
                height: Height(5),
                change: Change::Add {
                    member: MemberId(3),
                    quorum: 3,
                },
            },
            Approval {
                height: Height(5),
                change: Change::Rotate {
                    member: MemberId(0),
                    generation: 1,
                },
            },
            Approval {
                height: Height(9),
                change: Change::Remove {
                    member: MemberId(1),
                    quorum: 2,
                },
            },
        ];
        let plan = Plan::from_approvals(genesis_set(3, 2), approvals);
        let d = ACTIVATION_DELAY_BLOCKS;
        assert_eq!(plan.reconfigurations(), 2);
        assert_eq!(plan.epoch_end_after(Height(4)), None);
        assert_eq!(plan.epoch_end_after(Height(5)), Some(Height(5 + d)));
        assert_eq!(plan.epoch_end_after(Height(5 + d)), Some(Height(5 + d)));
        assert_eq!(plan.epoch_of(Height(5 + d)), Epoch(0));
        // The removal approved at 9 (before the first end) is announced by the first
        // block of epoch 1, a full delay ahead.
        assert_eq!(plan.epoch_of(Height(6 + d)), Epoch(1));
        assert_eq!(plan.epoch_end_after(Height(6 + d)), Some(Height(6 + 2 * d)));
        let one = plan.set(Epoch(1)).expect("epoch 1");
        assert_eq!(
            one.members(),
            vec![MemberId(0), MemberId(1), MemberId(2), MemberId(3)]
        );
        assert_eq!(one.quorum, 3);
        assert_eq!(
            plan.keypair_for(MemberId(0), one).public_key(),
            member_keypair(MemberId(0), 1).public_key()
        );
        let two = plan.set(Epoch(2)).expect("epoch 2");
        assert_eq!(two.members(), vec![MemberId(0), MemberId(2), MemberId(3)]);
        assert_eq!(plan.epoch_of(Height(1_000)), Epoch(2));
        assert_eq!(plan.epoch_end_after(Height(1_000)), None);
    }

    #[test]
    fn drawn_plans_keep_every_set_safe_and_live_against_its_byzantine_members() {
        let pool: Vec<MemberId> = (0..6).map(MemberId).collect();
        let byzantine: BTreeSet<MemberId> = [MemberId(1)].into();
        let mut changes = 0;
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            let plan = Plan::draw(&mut rng, genesis_set(4, 3), &pool, &byzantine);
            changes += plan.approvals.len();
            for epoch in &plan.epochs {
                assert!(fits(&epoch.set, &byzantine), "seed {seed}: {:?}", epoch.set);
            }
        }
        assert!(changes > 200, "plans drew only {changes} changes");
    }

    #[test]
    fn re_execution_refuses_a_wrong_epoch_or_end() {
        let plan = Plan::from_approvals(
            genesis_set(3, 2),
            vec![Approval {
                height: Height(1),
                change: Change::Quorum { quorum: 3 },
            }],
        );
        let chain = ChainId("sim-dev".into());
        let block = build(
            &plan,
            &chain,
            (Epoch(0), View(1), Height(1)),
            Hash::ZERO,
            &Hash::ZERO,
            MemberId(1),
            7,
        );
        assert_eq!(
            block.header.epoch_end,
            Some(Height(1 + ACTIVATION_DELAY_BLOCKS))
        );
        assert!(verify(&plan, &block, &Hash::ZERO, &Hash::ZERO));
        let last = Height(1 + ACTIVATION_DELAY_BLOCKS);
        assert_eq!(plan.next_validators_after(Height(1)), None);
        assert_eq!(
            plan.next_validators_after(last),
            plan.set(Epoch(1)).map(ValidatorSet::hash)
        );
        let mut silent = block.clone();
        silent.header.epoch_end = None;
        assert!(!verify(&plan, &silent, &Hash::ZERO, &Hash::ZERO));
        let mut later = block;
        later.header.epoch = Epoch(1);
        assert!(!verify(&plan, &later, &Hash::ZERO, &Hash::ZERO));
    }
}
