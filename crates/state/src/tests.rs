use super::*;
use crate::backend::Batch;
use crate::db::CHECKPOINT_INTERVAL;
use proptest::prelude::*;
use seisan_types::hash::Hash;
use seisan_types::ids::Height;
use seisan_types::state::{MapView, StateView, WriteSet};
use std::ops::Bound;
use std::sync::Arc;

/// Deterministic writes for a height: sets a few keys and deletes one older key (none at
/// every sixth height, an empty block).
fn writes_for(height: u64) -> WriteSet {
    let mut writes = WriteSet::new();
    if height % 6 == 5 {
        // An empty block: a new root of the same tree.
        return writes;
    }
    for index in 0..4u64 {
        let key = format!("k/{:03}", (height * 7 + index * 13) % 50);
        writes.put(key.into_bytes(), format!("v{height}-{index}").into_bytes());
    }
    if height > 2 {
        writes.delete(format!("k/{:03}", (height * 11) % 50).into_bytes());
    }
    writes
}

/// The ids of a height's transactions: 0 to 22 of them.
fn ids_for(height: u64) -> Vec<Hash> {
    (0..height % 23)
        .map(|n| Hash::tagged(b"test-tx", &[&height.to_be_bytes(), &n.to_be_bytes()]))
        .collect()
}

/// Every transaction of heights `1..=through` is where its block put it, and none of
/// the `beyond` heights after is indexed.
fn assert_indexed<B: Backend + Clone>(db: &StateDb<B>, through: u64, beyond: u64) {
    for height in 1..=through + beyond {
        for (index, id) in ids_for(height).iter().enumerate() {
            let expected = (height <= through).then_some(IndexedTx {
                height: Height(height),
                index: index as u32,
            });
            assert_eq!(
                db.locate(id),
                expected,
                "transaction {index} of height {height}"
            );
        }
    }
}

fn commit_heights<B: Backend + Clone>(
    db: &StateDb<B>,
    heights: std::ops::RangeInclusive<u64>,
) -> Vec<Hash> {
    heights
        .map(|height| {
            let staged = db
                .stage_block(StageParent::Committed, writes_for(height), ids_for(height))
                .unwrap();
            assert_eq!(staged.height, Height(height));
            db.commit(
                &staged,
                vec![(format!("block/{height}").into_bytes(), Some(vec![1]))],
            )
            .unwrap();
            staged.root
        })
        .collect()
}

/// Replays the blocks committed after the store's checkpoint (their writes are
/// `writes_for`, as a node's blocks are in its records), as a node does after an open.
fn replay_recorded<B: Backend + Clone>(db: &StateDb<B>) {
    let Some(recorded) = db.recorded_height() else {
        return;
    };
    let start = db.committed_height().map_or(0, |height| height.0 + 1);
    for height in start..=recorded.0 {
        let staged = db
            .stage_block(StageParent::Committed, writes_for(height), ids_for(height))
            .unwrap();
        db.replay(&staged).unwrap();
    }
}

/// Opens a store (checkpointing every `interval` blocks) and replays what follows its
/// checkpoint.
fn open_and_replay<B: Backend + Clone>(backend: B, interval: u64) -> StateDb<B> {
    let db = StateDb::open(backend)
        .unwrap()
        .with_checkpoint_interval(interval);
    replay_recorded(&db);
    db
}

#[test]
fn commits_advance_height_and_root() {
    let db = StateDb::open(MemoryBackend::new()).unwrap();
    assert_eq!(db.committed_height(), None);
    let roots = commit_heights(&db, 0..=5);
    assert_eq!(db.committed_height(), Some(Height(5)));
    assert_eq!(db.committed_root(), Some(roots[5]));
    for (height, root) in roots.iter().enumerate() {
        assert_eq!(db.root_at(Height(height as u64)), Some(*root));
    }
    assert_eq!(db.record(b"block/3"), Some(vec![1]));
    assert_eq!(db.records(b"block/", None, 10).len(), 6);
}

#[test]
fn same_writes_give_same_root_on_both_backends() {
    let memory = StateDb::open(MemoryBackend::new()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sled = StateDb::open(SledBackend::open(dir.path()).unwrap()).unwrap();
    assert_eq!(commit_heights(&memory, 0..=8), commit_heights(&sled, 0..=8));
}

#[test]
fn staging_writes_nothing_and_chains_on_staged_parents() {
    let db = StateDb::open(MemoryBackend::new()).unwrap();
    commit_heights(&db, 0..=1);
    let first = db.stage(StageParent::Committed, writes_for(2)).unwrap();
    let second = db
        .stage(StageParent::Staged(first.clone()), writes_for(3))
        .unwrap();
    assert_eq!(second.height, Height(3));
    assert_eq!(db.committed_height(), Some(Height(1)));
    let view = db.view(&StageParent::Staged(second.clone())).unwrap();
    let mut model = MapView::default();
    for height in 0..=3 {
        model.apply(&writes_for(height));
    }
    assert_eq!(view.scan(b"", None, 1000), model.scan(b"", None, 1000));

    // Committing in order gives the staged roots; the second cannot go first.
    assert!(matches!(
        db.commit(&second, vec![]),
        Err(StateError::NotNext { .. })
    ));
    db.commit(&first, vec![]).unwrap();
    db.commit(&second, vec![]).unwrap();
    assert_eq!(db.committed_root(), Some(second.root));

    // Direct re-execution from the committed state agrees.
    let other = StateDb::open(MemoryBackend::new()).unwrap();
    let roots = commit_heights(&other, 0..=3);
    assert_eq!(roots[3], second.root);
}

#[test]
fn a_competing_staged_branch_becomes_stale_after_commit() {
    let db = StateDb::open(MemoryBackend::new()).unwrap();
    commit_heights(&db, 0..=1);
    let winner = db.stage(StageParent::Committed, writes_for(2)).unwrap();
    let loser = db.stage(StageParent::Committed, writes_for(9)).unwrap();
    assert_ne!(winner.root, loser.root);
    db.commit(&winner, vec![]).unwrap();
    assert!(matches!(
        db.commit(&loser, vec![]),
        Err(StateError::NotNext { .. })
    ));
    assert!(matches!(
        db.stage(StageParent::Staged(loser), writes_for(3)),
        Err(StateError::StaleParent { .. })
    ));
}

#[test]
fn crash_between_write_and_flush_leaves_the_previous_height() {
    let backend = MemoryBackend::new();
    let db = StateDb::open(backend.clone()).unwrap();
    let roots = commit_heights(&db, 0..=2);
    backend.hold_flushes(true);
    commit_heights(&db, 3..=3);
    assert_eq!(db.committed_height(), Some(Height(3)));
    let reopened = open_and_replay(backend.crash(), CHECKPOINT_INTERVAL);
    assert_eq!(reopened.committed_height(), Some(Height(2)));
    assert_eq!(reopened.committed_root(), Some(roots[2]));
    assert_eq!(reopened.record(b"block/3"), None);
    // The lost block can be re-executed and gives the same root.
    let again = commit_heights(&reopened, 3..=3);
    let full = commit_heights(&StateDb::open(MemoryBackend::new()).unwrap(), 0..=3);
    assert_eq!(again[0], full[3]);
}

#[test]
fn proofs_verify_and_tampering_fails() {
    let db = StateDb::open(MemoryBackend::new()).unwrap();
    let roots = commit_heights(&db, 0..=6);
    let view = db.committed_view();
    let (key, value) = view.scan(b"k/", None, 1).remove(0);
    let (proved, proof) = db.prove(&key, Height(6)).unwrap();
    assert_eq!(proved.as_deref(), Some(value.as_slice()));
    verify_proof(roots[6], &key, Some(&value), &proof).unwrap();

    // A different value, a different root or a corrupted proof fail.
    assert!(verify_proof(roots[6], &key, Some(b"forged"), &proof).is_err());
    assert!(verify_proof(roots[5], &key, Some(&value), &proof).is_err());
    let mut corrupted = proof.clone();
    let last = corrupted.bytes.len() - 1;
    corrupted.bytes[last] ^= 1;
    assert!(verify_proof(roots[6], &key, Some(&value), &corrupted).is_err());
    let mut truncated = proof.clone();
    truncated.bytes.truncate(5);
    assert!(matches!(
        verify_proof(roots[6], &key, Some(&value), &truncated),
        Err(ProofError::Malformed { .. })
    ));

    // Absence is provable, and an absent key cannot be proven present.
    let (missing, proof) = db.prove(b"no-such-key", Height(6)).unwrap();
    assert_eq!(missing, None);
    verify_proof(roots[6], b"no-such-key", None, &proof).unwrap();
    assert!(verify_proof(roots[6], b"no-such-key", Some(b"x"), &proof).is_err());

    // Only the committed height is proven: no value history is kept.
    assert!(matches!(
        db.prove(b"k/000", Height(0)),
        Err(StateError::NotLatest {
            height: Height(0),
            committed: Height(6)
        })
    ));
    assert!(matches!(
        db.prove(b"k/000", Height(7)),
        Err(StateError::NotCommitted { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Reads through staged layers equal a plain map with the same writes applied.
    #[test]
    fn staged_view_matches_model(
        blocks in proptest::collection::vec(
            proptest::collection::vec((0u8..24, proptest::option::of(0u8..4)), 0..12), 1..5),
        committed_blocks in 0usize..4,
        prefix in 0u8..3,
        after in proptest::option::of(0u8..24),
        limit in 1usize..10,
    ) {
        let db = StateDb::open(MemoryBackend::new()).unwrap();
        let mut model = MapView::default();
        let mut parent = StageParent::Committed;
        let mut staged: Vec<Arc<StagedBlock>> = Vec::new();
        for (index, block) in blocks.iter().enumerate() {
            let mut writes = WriteSet::new();
            for (key, value) in block {
                let key = format!("{}{:02}", key % 3, key).into_bytes();
                match value {
                    Some(value) => writes.put(key, vec![*value]),
                    None => writes.delete(key),
                }
            }
            model.apply(&writes);
            let next = db.stage(parent.clone(), writes).unwrap();
            if index < committed_blocks {
                db.commit(&next, vec![]).unwrap();
                parent = StageParent::Committed;
            } else {
                parent = StageParent::Staged(next.clone());
            }
            staged.push(next);
        }
        let view = db.view(&parent).unwrap();
        let prefix = format!("{prefix}").into_bytes();
        let after = after.map(|key| format!("{}{:02}", key % 3, key).into_bytes());
        prop_assert_eq!(
            view.scan(&prefix, after.as_deref(), limit),
            model.scan(&prefix, after.as_deref(), limit)
        );
        for key in 0u8..24 {
            let key = format!("{}{:02}", key % 3, key).into_bytes();
            prop_assert_eq!(view.get(&key), model.get(&key));
        }
    }
}

/// Child side of [`kill_9_at_any_point_leaves_a_committed_height`]: commits heights
/// forever, printing each one once it is durable.
#[test]
#[ignore = "run only as the child of the kill -9 test"]
fn crash_child() {
    let Ok(path) = std::env::var("SEISAN_CRASH_DIR") else {
        return;
    };
    let db = open_and_replay(
        SledBackend::open(std::path::Path::new(&path)).unwrap(),
        CRASH_CHECKPOINT_INTERVAL,
    )
    .with_background_checkpoints();
    let start = db.committed_height().map_or(0, |height| height.0 + 1);
    for height in start.. {
        let staged = db
            .stage_block(StageParent::Committed, writes_for(height), ids_for(height))
            .unwrap();
        db.commit(&staged, vec![]).unwrap();
        println!("committed {height}");
    }
}

/// The crash child checkpoints often, so kills land in and between checkpoints.
const CRASH_CHECKPOINT_INTERVAL: u64 = 8;

#[test]
fn kill_9_at_any_point_leaves_a_committed_height() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let reference = StateDb::open(MemoryBackend::new()).unwrap();
    let reference_roots = commit_heights(&reference, 0..=3000);
    let mut acknowledged: Option<u64> = None;
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("SEISAN_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        // Kill after a different number of commits each round.
        let target = acknowledged.map_or(0, |h| h + 1) + 20 + round * 17;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(height) = line.strip_prefix("committed ") {
                let height: u64 = height.parse().unwrap();
                acknowledged = Some(height);
                if height >= target {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let reopened = StateDb::open(SledBackend::open(dir.path()).unwrap())
            .unwrap()
            .with_checkpoint_interval(CRASH_CHECKPOINT_INTERVAL);
        let checkpoint = reopened
            .committed_height()
            .expect("genesis was checkpointed");
        assert!(checkpoint.0.is_multiple_of(CRASH_CHECKPOINT_INTERVAL));
        replay_recorded(&reopened);
        let height = reopened
            .committed_height()
            .expect("something was committed");
        assert!(
            height.0 >= acknowledged.unwrap(),
            "an acknowledged commit was lost"
        );
        assert_eq!(
            reopened.committed_root(),
            Some(reference_roots[height.0 as usize])
        );
        // The transaction index: runs written with checkpoints and merged on their own
        // thread, killed wherever the kill landed.
        assert_indexed(&reopened, height.0, 30);
    }
}

/// A store reopened right after it was dropped opens (sled may still hold its file
/// lock a moment), while one held open elsewhere is refused after the wait.
#[test]
fn a_just_closed_store_reopens_and_a_held_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        let backend = crate::SledBackend::open(dir.path()).expect("opens");
        drop(backend);
    }
    let held = crate::SledBackend::open(dir.path()).expect("opens");
    let started = std::time::Instant::now();
    let error = match crate::SledBackend::open(dir.path()) {
        Ok(_) => panic!("a store held open was opened twice"),
        Err(error) => error,
    };
    assert!(
        error.to_string().contains("could not acquire lock"),
        "{error}"
    );
    assert!(started.elapsed() >= crate::SLED_LOCK_PATIENCE);
    drop(held);
}

/// Every key's value proven against the committed root, and absence of a never-written key.
fn assert_every_key_proves<B: Backend + Clone>(db: &StateDb<B>) {
    let height = db.committed_height().unwrap();
    let root = db.committed_root().unwrap();
    let entries = db.committed_view().scan(b"k/", None, 1000);
    assert!(!entries.is_empty());
    for (key, value) in entries {
        let (proved, proof) = db.prove(&key, height).unwrap();
        assert_eq!(proved.as_deref(), Some(value.as_slice()));
        verify_proof(root, &key, Some(&value), &proof).unwrap();
    }
    let (missing, proof) = db.prove(b"never", height).unwrap();
    assert_eq!(missing, None);
    verify_proof(root, b"never", None, &proof).unwrap();
}

/// How many keys the store holds outside the value segments, records and metadata
/// and the transaction index (format 1's tree segments and nodes among them).
fn stored_tree_keys(backend: &MemoryBackend) -> usize {
    backend
        .range(Bound::Unbounded, Bound::Unbounded, usize::MAX)
        .iter()
        .filter(|(key, _)| !matches!(key[0], b'w' | b'x' | b'm' | b'i'))
        .count()
}

#[test]
fn reopening_between_checkpoints_rebuilds_the_tree_the_peers_certified() {
    // The same blocks on a store never reopened.
    let reference = StateDb::open(MemoryBackend::new()).unwrap();
    let roots = commit_heights(&reference, 0..=60);
    for stop in [0, 1, 7, 8, 9, 15, 16, 17, 40] {
        let backend = MemoryBackend::new();
        let db = StateDb::open(backend.clone())
            .unwrap()
            .with_checkpoint_interval(8);
        commit_heights(&db, 0..=stop);
        assert_eq!(db.checkpoint_height(), Some(Height(stop - stop % 8)));
        // A crash after the last flush: the state in memory is lost; the checkpoint and
        // the blocks' records are not.
        let reopened = StateDb::open(backend.crash())
            .unwrap()
            .with_checkpoint_interval(8);
        assert_eq!(reopened.committed_height(), Some(Height(stop - stop % 8)));
        assert_eq!(reopened.recorded_height(), Some(Height(stop)));
        assert_eq!(
            reopened.committed_root(),
            Some(roots[(stop - stop % 8) as usize])
        );
        replay_recorded(&reopened);
        assert_eq!(reopened.committed_height(), Some(Height(stop)));
        assert_eq!(reopened.committed_root(), Some(roots[stop as usize]));
        assert_every_key_proves(&reopened);
        // It goes on exactly as the store that never stopped.
        let next = commit_heights(&reopened, stop + 1..=60);
        assert_eq!(
            next,
            roots[stop as usize + 1..].to_vec(),
            "after a stop at {stop}"
        );
        assert_every_key_proves(&reopened);
    }
}

#[test]
fn the_trie_is_never_written_and_reopens_from_the_values() {
    let backend = MemoryBackend::new();
    let db = StateDb::open(backend.clone())
        .unwrap()
        .with_checkpoint_interval(16);
    let roots = commit_heights(&db, 0..=1024);
    assert!(db.trie_nodes() > 1, "more than one bucket");
    assert_eq!(stored_tree_keys(&backend), 0, "no trie node is stored");
    let reopened = StateDb::open(backend.crash()).unwrap();
    assert_eq!(reopened.committed_height(), Some(Height(1024)));
    assert_eq!(reopened.committed_root(), Some(roots[1024]));
    assert_eq!(reopened.trie_nodes(), db.trie_nodes());
    assert_every_key_proves(&reopened);
}

#[test]
fn a_store_whose_values_disagree_with_its_root_is_refused() {
    type Tampering = fn(Vec<u8>) -> Batch;
    let tamperings: [(&str, Tampering); 3] = [
        ("a changed value", |key| {
            vec![(key, Some(b"forged".to_vec()))]
        }),
        ("an extra value", |_| {
            vec![(b"k/999".to_vec(), Some(b"x".to_vec()))]
        }),
        ("a lost value", |key| vec![(key, None)]),
    ];
    for (what, tampering) in tamperings {
        let backend = MemoryBackend::new();
        let db = StateDb::open(backend.clone())
            .unwrap()
            .with_checkpoint_interval(4);
        // Height 8 is a checkpoint: the values in the store are the committed ones.
        commit_heights(&db, 0..=8);
        let (key, _) = db.committed_view().scan(b"k/", None, 1).remove(0);
        // The tampering is a value segment after every stored one: read last, it wins.
        let entries: Vec<(Vec<u8>, Option<Vec<u8>>)> = tampering(key);
        let mut segment = b"w".to_vec();
        segment.extend_from_slice(&1_000u64.to_be_bytes());
        segment.extend_from_slice(&0u32.to_be_bytes());
        backend.apply(vec![(segment, Some(borsh::to_vec(&entries).unwrap()))]);
        backend.flush();
        match StateDb::open(backend.crash()) {
            Err(StateError::Corrupt { reason }) => {
                assert!(reason.contains("give root"), "{what}: {reason}")
            }
            other => panic!("{what}: opened as {other:?}"),
        }
    }
}

#[test]
fn a_store_of_state_format_1_is_refused_with_what_it_is() {
    // Format 1 stored Jellyfish tree segments (`t`), tree nodes one per key (`n`) or
    // values one per key (`v`); its recorded roots are Jellyfish roots.
    for space in [b't', b'n', b'v'] {
        let backend = MemoryBackend::new();
        let db = StateDb::open(backend.clone()).unwrap();
        commit_heights(&db, 0..=3);
        let mut key = vec![space];
        key.extend_from_slice(&3u64.to_be_bytes());
        backend.apply(vec![(key, Some(b"format 1".to_vec()))]);
        backend.flush();
        match StateDb::open(backend.crash()) {
            Err(StateError::OldFormat { space: found }) => {
                assert_eq!(found, char::from(space));
                let message = StateError::OldFormat { space: found }.to_string();
                assert!(message.contains("state format 1"), "{message}");
                assert!(message.contains("sync it from its peers"), "{message}");
            }
            other => panic!(
                "a store with `{}` keys opened as {other:?}",
                char::from(space)
            ),
        }
    }
}

#[test]
fn unflushed_commits_are_lost_together_in_a_crash_and_kept_after_a_flush() {
    let backend = MemoryBackend::new();
    let db = StateDb::open(backend.clone()).unwrap();
    let roots = commit_heights(&db, 0..=3);
    let commit_unflushed = |height: u64| {
        let staged = db
            .stage(StageParent::Committed, writes_for(height))
            .unwrap();
        db.commit_unflushed(&staged, Vec::new()).unwrap();
        staged.root
    };
    let grouped: Vec<Hash> = (4..=6).map(commit_unflushed).collect();
    assert_eq!(
        db.committed_height(),
        Some(Height(6)),
        "committed, readable"
    );
    let crashed = open_and_replay(backend.crash(), CHECKPOINT_INTERVAL);
    assert_eq!(crashed.committed_height(), Some(Height(3)));
    assert_eq!(crashed.committed_root(), Some(roots[3]));

    db.flush();
    let reopened = open_and_replay(backend.crash(), CHECKPOINT_INTERVAL);
    assert_eq!(reopened.committed_height(), Some(Height(6)));
    assert_eq!(reopened.committed_root(), Some(grouped[2]));
    assert_every_key_proves(&reopened);
}

/// The value entries the store's value segments hold (every segment, live or not).
fn stored_value_entries(backend: &MemoryBackend) -> usize {
    backend
        .range(
            Bound::Included(vec![b'w']),
            Bound::Excluded(vec![b'x']),
            usize::MAX,
        )
        .iter()
        .map(|(_, bytes)| {
            borsh::from_slice::<Vec<(Vec<u8>, Option<Vec<u8>>)>>(bytes)
                .unwrap()
                .len()
        })
        .sum()
}

#[test]
fn commits_write_no_values_and_checkpoints_write_them_once() {
    let backend = MemoryBackend::new();
    let db = StateDb::open(backend.clone())
        .unwrap()
        .with_checkpoint_interval(8);
    commit_heights(&db, 0..=8);
    let at_checkpoint = stored_value_entries(&backend);
    assert!(at_checkpoint > 0);
    commit_heights(&db, 9..=15);
    assert_eq!(
        stored_value_entries(&backend),
        at_checkpoint,
        "no value is written between checkpoints"
    );
    // The next checkpoint writes each key changed since, once (a delta), or every
    // value (a new base, which replaces what was stored).
    let changed: std::collections::BTreeSet<Vec<u8>> = (9..=16)
        .flat_map(|height| writes_for(height).changes.into_keys())
        .collect();
    commit_heights(&db, 16..=16);
    let live = db.committed_view().scan(b"", None, 1000).len();
    let stored = stored_value_entries(&backend);
    assert!(
        stored == at_checkpoint + changed.len() || stored == live,
        "stored {stored}: neither {at_checkpoint} + {} nor {live}",
        changed.len()
    );
}

#[test]
fn stored_values_stay_within_about_twice_the_live_ones_and_reopen_the_same() {
    let backend = MemoryBackend::new();
    let db = StateDb::open(backend.clone())
        .unwrap()
        .with_checkpoint_interval(4);
    let mut rebased = 0;
    let mut previous = 0;
    for height in (0..=1_024u64).step_by(4) {
        let from = if height == 0 { 0 } else { height - 3 };
        commit_heights(&db, from..=height);
        let stored = stored_value_entries(&backend);
        let live = db.committed_view().scan(b"", None, 10_000).len();
        // A delta holds at most the keys of 4 blocks (5 changes each).
        assert!(
            stored <= 2 * live + 20,
            "height {height}: {stored} stored, {live} live"
        );
        if stored < previous {
            rebased += 1;
        }
        previous = stored;
    }
    assert!(rebased > 3, "the values were rebased {rebased} times");
    let reopened = open_and_replay(backend, 4);
    assert_eq!(
        reopened.committed_view().scan(b"", None, 10_000),
        db.committed_view().scan(b"", None, 10_000)
    );
    assert_eq!(reopened.committed_root(), db.committed_root());
}

#[test]
fn a_replay_must_give_the_recorded_root_and_a_commit_waits_for_the_replay() {
    let backend = MemoryBackend::new();
    let db = StateDb::open(backend.clone())
        .unwrap()
        .with_checkpoint_interval(8);
    commit_heights(&db, 0..=11);
    let reopened = StateDb::open(backend.crash())
        .unwrap()
        .with_checkpoint_interval(8);
    assert_eq!(reopened.committed_height(), Some(Height(8)));
    // Nothing new commits before the recorded blocks are replayed.
    let next = reopened
        .stage(StageParent::Committed, writes_for(9))
        .unwrap();
    assert!(matches!(
        reopened.commit(&next, Vec::new()),
        Err(StateError::ReplayPending {
            recorded: Height(11),
            ..
        })
    ));
    // A replayed block that does not give the recorded root is refused.
    let forged = reopened
        .stage(StageParent::Committed, writes_for(10))
        .unwrap();
    match reopened.replay(&forged) {
        Err(StateError::Replay { height, reason }) => {
            assert_eq!(height, Height(9));
            assert!(reason.contains("was recorded"), "{reason}");
        }
        other => panic!("a forged replay gave {other:?}"),
    }
    assert_eq!(reopened.committed_height(), Some(Height(8)));
    replay_recorded(&reopened);
    assert_eq!(reopened.committed_height(), Some(Height(11)));
    // No replay beyond what was recorded.
    let beyond = reopened
        .stage(StageParent::Committed, writes_for(12))
        .unwrap();
    assert!(matches!(
        reopened.replay(&beyond),
        Err(StateError::Replay { .. })
    ));
    reopened.commit(&beyond, Vec::new()).unwrap();
}

#[test]
fn background_checkpoints_are_written_in_order_and_a_crash_before_one_replays_more() {
    let reference = StateDb::open(MemoryBackend::new()).unwrap();
    let roots = commit_heights(&reference, 0..=40);
    let backend = MemoryBackend::new();
    let db = StateDb::open(backend.clone())
        .unwrap()
        .with_checkpoint_interval(8)
        .with_background_checkpoints();
    commit_heights(&db, 0..=33);
    db.wait_for_checkpoints();
    assert_eq!(db.checkpoint_height(), Some(Height(32)));
    // Flushes held: the commits of 34..=40 and the checkpoint at 40 are lost together.
    backend.hold_flushes(true);
    commit_heights(&db, 34..=40);
    db.wait_for_checkpoints();
    let reopened = StateDb::open(backend.crash())
        .unwrap()
        .with_checkpoint_interval(8);
    assert_eq!(reopened.committed_height(), Some(Height(32)));
    assert_eq!(reopened.recorded_height(), Some(Height(33)));
    replay_recorded(&reopened);
    assert_eq!(reopened.committed_root(), Some(roots[33]));
    assert_every_key_proves(&reopened);
    assert_indexed(&reopened, 33, 7);
    let next = commit_heights(&reopened, 34..=40);
    assert_eq!(next, roots[34..].to_vec());
    assert_indexed(&reopened, 40, 0);
}

#[test]
fn transactions_are_found_by_id_across_checkpoints_merges_and_reopening() {
    let backend = MemoryBackend::new();
    let db = StateDb::open(backend.clone())
        .unwrap()
        .with_checkpoint_interval(4)
        .with_background_checkpoints();
    commit_heights(&db, 0..=400);
    assert_indexed(&db, 400, 0);
    db.wait_for_checkpoints();
    // The merge thread catches up with the last checkpoints' runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while db.index_counts().1 >= 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let quiet = db.pause_merges();
    let (in_memory, runs) = db.index_counts();
    assert!(runs < 20, "{runs} runs: the index's runs are merged");
    assert!(
        in_memory < 100,
        "{in_memory} in memory: older ones are in runs"
    );
    // No key per transaction: the index's keys are pages of many.
    let index_keys = backend
        .range(
            Bound::Included(vec![b'i']),
            Bound::Excluded(vec![b'j']),
            usize::MAX,
        )
        .len();
    let transactions: usize = (1..=400).map(|height| ids_for(height).len()).sum();
    assert!(
        index_keys * 16 < transactions,
        "{index_keys} keys for {transactions} transactions"
    );
    drop(quiet);
    let reopened = open_and_replay(backend.crash(), 4);
    assert_indexed(&reopened, 400, 10);
}

/// Every key and value a backend holds.
fn everything(backend: &MemoryBackend) -> Vec<(Vec<u8>, Vec<u8>)> {
    backend.range(Bound::Unbounded, Bound::Unbounded, usize::MAX)
}

#[test]
fn a_snapshot_installed_over_genesis_is_the_peers_state_and_goes_on_from_there() {
    // The peer: genesis, then 100 blocks (keys set, overwritten, deleted).
    let peer = StateDb::open(MemoryBackend::new())
        .unwrap()
        .with_checkpoint_interval(16);
    commit_heights(&peer, 0..=100);
    let snapshot = peer.snapshot().unwrap();
    assert_eq!(snapshot.height, Height(100));
    assert_eq!(Some(snapshot.root), peer.committed_root());
    // The new node holds genesis only, with a key the peer's chain deleted since.
    let backend = MemoryBackend::new();
    let node = StateDb::open(backend.clone())
        .unwrap()
        .with_checkpoint_interval(16)
        .with_background_checkpoints();
    let mut genesis = writes_for(0);
    genesis.put(b"k/gone".to_vec(), b"only at genesis".to_vec());
    let staged = node.stage(StageParent::Committed, genesis).unwrap();
    node.commit(&staged, vec![]).unwrap();
    node.install(snapshot.clone(), vec![(b"tip".to_vec(), Some(vec![100]))])
        .unwrap();
    assert_eq!(node.committed_height(), Some(Height(100)));
    assert_eq!(node.recorded_height(), Some(Height(100)));
    assert_eq!(node.committed_root(), Some(snapshot.root));
    assert_eq!(node.record(b"tip"), Some(vec![100]));
    assert_eq!(node.committed_view().get(b"k/gone"), None);
    assert_eq!(node.snapshot().unwrap(), snapshot);
    assert_every_key_proves(&node);
    // Both go on with the same blocks to the same roots, and the store reopens there.
    let peer_roots = commit_heights(&peer, 101..=120);
    assert_eq!(commit_heights(&node, 101..=120), peer_roots);
    node.wait_for_checkpoints();
    drop(node);
    let reopened = open_and_replay(backend, 16);
    assert_eq!(reopened.committed_height(), Some(Height(120)));
    assert_eq!(reopened.committed_root(), Some(peer_roots[19]));
    assert_eq!(reopened.committed_view().get(b"k/gone"), None);
    assert_every_key_proves(&reopened);
}

#[test]
fn a_snapshot_whose_values_give_another_root_is_refused_and_nothing_is_written() {
    let peer = StateDb::open(MemoryBackend::new()).unwrap();
    commit_heights(&peer, 0..=20);
    let honest = peer.snapshot().unwrap();
    let backend = MemoryBackend::new();
    let node = StateDb::open(backend.clone()).unwrap();
    commit_heights(&node, 0..=0);
    let before = everything(&backend);
    let genesis_root = node.committed_root();
    let mut lies = Vec::new();
    let mut changed = honest.clone();
    changed.values[3].1 = b"a lie".to_vec();
    lies.push(changed);
    let mut dropped = honest.clone();
    dropped.values.remove(0);
    lies.push(dropped);
    let mut added = honest.clone();
    added.values.push((b"k/zzz".to_vec(), b"extra".to_vec()));
    lies.push(added);
    let mut wrong_root = honest.clone();
    wrong_root.root = Hash([7; 32]);
    lies.push(wrong_root);
    for lie in lies {
        let error = node.install(lie, vec![(b"tip".to_vec(), Some(vec![20]))]);
        assert!(
            matches!(&error, Err(StateError::Snapshot { height: Height(20), reason }) if reason.contains("not the certified")),
            "{error:?}"
        );
        assert_eq!(everything(&backend), before, "nothing is written");
        assert_eq!(node.committed_height(), Some(Height(0)));
        assert_eq!(node.committed_root(), genesis_root);
    }
    // A store with blocks after genesis is never replaced.
    node.install(honest.clone(), vec![]).unwrap();
    let error = node.install(honest, vec![]).unwrap_err();
    assert!(
        error.to_string().contains("already holds blocks"),
        "{error}"
    );
}
