//! The payout journal: every outgoing transaction the clearing-house node signs is
//! written here (fsynced, then renamed into place) before it is broadcast.
//!
//! The entry's name is derived from what it pays (`withdrawal-<id>`, `sweep-<asset>-
//! <nonce>`), so after a crash the node finds the transaction it already signed and
//! re-broadcasts the same bytes: the same nonce can be mined only once, so a
//! withdrawal is paid at most once however often the node restarts.

use crate::CustodyError;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A signed public-chain transaction, as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransfer {
    /// The sender's nonce it uses.
    pub nonce: u64,
    /// `0x`-hex of the EIP-2718 encoding.
    pub raw: String,
    pub tx_hash: String,
}

/// A folder of journal entries.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn open(dir: &Path) -> Result<Journal, CustodyError> {
        std::fs::create_dir_all(dir).map_err(|error| CustodyError::Journal {
            path: dir.display().to_string(),
            reason: error.to_string(),
        })?;
        Ok(Journal {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "journal names are [A-Za-z0-9-]"
        );
        self.dir.join(format!("{name}.json"))
    }

    /// The entry under `name`, if one was recorded.
    pub fn get(&self, name: &str) -> Result<Option<SignedTransfer>, CustodyError> {
        let path = self.path(name);
        let fail = |reason: String| CustodyError::Journal {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|error| fail(error.to_string())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(fail(error.to_string())),
        }
    }

    /// Records `entry` under `name` durably. Refuses to replace an existing entry: a
    /// signed payout is never exchanged for another.
    pub fn record(&self, name: &str, entry: &SignedTransfer) -> Result<(), CustodyError> {
        let path = self.path(name);
        let fail = |reason: String| CustodyError::Journal {
            path: path.display().to_string(),
            reason,
        };
        if path.exists() {
            return Err(fail("already recorded".into()));
        }
        let temporary = self.dir.join(format!(".{name}.tmp"));
        let mut file = std::fs::File::create(&temporary).map_err(|e| fail(e.to_string()))?;
        file.write_all(serde_json::to_string(entry).expect("serializes").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|error| fail(error.to_string()))?;
        std::fs::rename(&temporary, &path).map_err(|error| fail(error.to_string()))?;
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|error| fail(error.to_string()))
    }

    /// Every entry, by name.
    pub fn entries(&self) -> Result<Vec<(String, SignedTransfer)>, CustodyError> {
        let fail = |reason: String| CustodyError::Journal {
            path: self.dir.display().to_string(),
            reason,
        };
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|error| fail(error.to_string()))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().to_string();
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        names.sort();
        let mut entries = Vec::new();
        for name in names {
            if let Some(entry) = self.get(&name)? {
                entries.push((name, entry));
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let entry = SignedTransfer {
            nonce: 3,
            raw: "0x02".into(),
            tx_hash: format!("0x{}", "1".repeat(64)),
        };
        assert_eq!(journal.get("withdrawal-1").unwrap(), None);
        journal.record("withdrawal-1", &entry).unwrap();
        assert!(journal.record("withdrawal-1", &entry).is_err());
        let reopened = Journal::open(dir.path()).unwrap();
        assert_eq!(reopened.get("withdrawal-1").unwrap(), Some(entry.clone()));
        assert_eq!(
            reopened.entries().unwrap(),
            vec![("withdrawal-1".to_string(), entry)]
        );
    }
}
