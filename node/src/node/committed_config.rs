//! The consortium configuration of the committed state, decoded once per committed
//! height. Admission reads it for every batch and authentication for every request;
//! decoding it each time (every member with its keys, every pair and asset) cost 4-6% of
//! a node's CPU under load (`perf` of a node at 2,000 orders/s, issue 18).

use seisan_contracts::consortium::Consortium;
use seisan_state::{Backend, StateDb};
use seisan_types::genesis::Genesis;
use seisan_types::ids::Height;
use std::sync::{Arc, Mutex};

/// The configuration last decoded, with the committed height it was read at.
type Memo = Option<(Option<Height>, Arc<Consortium>)>;

/// A handle on the memo; clones share it, and the members' decompressed keys.
#[derive(Clone, Debug)]
pub struct CommittedConfig {
    genesis: Arc<Genesis>,
    memo: Arc<Mutex<Memo>>,
    keys: Arc<seisan_crypto::KeyCache>,
}

impl CommittedConfig {
    pub fn new(genesis: Arc<Genesis>) -> CommittedConfig {
        CommittedConfig {
            genesis,
            memo: Arc::default(),
            keys: Arc::default(),
        }
    }

    /// Members' keys, each decompressed once for every signature admission checks.
    /// Which key is a member's is read from [`CommittedConfig::get`]'s membership; this
    /// only memoizes the decompression.
    pub fn keys(&self) -> &seisan_crypto::KeyCache {
        &self.keys
    }

    /// The configuration at `db`'s committed height (the genesis one before any state).
    ///
    /// A commit between reading the height and the state can file a newer configuration
    /// under the older height; no caller asks for that height again (heights only rise),
    /// so the next call decodes afresh.
    pub fn get<B: Backend + Clone>(&self, db: &StateDb<B>) -> Arc<Consortium> {
        let height = db.committed_height();
        if let Some((at, config)) = &*self.memo.lock().expect("config memo lock") {
            if *at == height {
                return config.clone();
            }
        }
        let config = Arc::new(seisan_contracts::governance::consortium_or_genesis(
            &db.committed_view(),
            &self.genesis,
        ));
        *self.memo.lock().expect("config memo lock") = Some((height, config.clone()));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_state::{MemoryBackend, StageParent};

    #[test]
    fn a_commit_that_changes_the_configuration_is_seen_at_once() {
        let genesis = crate::node::test_support::genesis(7301);
        let db = StateDb::open(MemoryBackend::new()).unwrap();
        let memo = CommittedConfig::new(genesis.clone());
        let before = memo.get(&db);
        assert_eq!(*before, Consortium::from_genesis(&genesis));
        assert!(
            Arc::ptr_eq(&before, &memo.get(&db)),
            "decoded once per height"
        );

        let mut changed = Consortium::from_genesis(&genesis);
        changed.pairs.clear();
        let mut writes = seisan_contracts::genesis_writes(&genesis);
        writes.put(
            seisan_contracts::keys::consortium(),
            seisan_types::codec::encode(&changed),
        );
        let staged = db.stage(StageParent::Committed, writes).unwrap();
        db.commit(&staged, Vec::new()).unwrap();
        assert_eq!(*memo.get(&db), changed);
    }
}
