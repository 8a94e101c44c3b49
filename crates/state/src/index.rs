//! The transaction index: where each committed transaction is (its block's height and
//! its place in the block), found by its id, without a store key per transaction.
//!
//! A commit adds its block's ids to a map in memory. Each checkpoint of the values
//! takes that map as a **run**: its entries sorted by id, in pages of
//! [`PAGE_ENTRIES`], written in the checkpoint's own batch (so the index and the values
//! in the store are always of the same height, and the blocks a node replays after a
//! crash put their ids back in memory as they did the first time). Runs are merged
//! [`FANOUT`] at a time once that many are of one size class, on a thread of their own,
//! so a lookup reads at most a few pages per size class, and a transaction's entry is
//! rewritten about once per size class, as pages, never as a key of its own.
//!
//! Key space `i` of the backend: `i` `r` + run (u64, big-endian) -> the run's entry
//! count (u64, big-endian), written last: a run without it is not (yet, or any more)
//! part of the index and its pages are deleted at open; `i` `p` + run + the page's last
//! id -> the page: entries of [`ENTRY_BYTES`] (id, height big-endian, place big-endian),
//! ascending by id.

use crate::backend::{Backend, Batch};
use seisan_types::hash::Hash;
use seisan_types::ids::Height;
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

pub(crate) const INDEX_PREFIX: u8 = b'i';
const RUN_TAG: u8 = b'r';
const PAGE_TAG: u8 = b'p';
/// Entries in a full page (2,816 bytes: sled keeps pages of leaves well under its blob
/// threshold, see the value segments' chunks).
pub const PAGE_ENTRIES: usize = 64;
/// Bytes of one entry in a page: the id, the height, the place in the block.
pub const ENTRY_BYTES: usize = 32 + 8 + 4;
/// Runs of one size class merged into one.
pub const FANOUT: usize = 4;
/// Pages read from a run at a time while merging, and written per batch.
const PAGES_PER_READ: usize = 16;
const PAGES_PER_WRITE: usize = 256;

/// Where a committed transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexedTx {
    pub height: Height,
    /// Its place among the block's transactions.
    pub index: u32,
}

/// Entries by id.
type Entries = HashMap<Hash, IndexedTx, foldhash::fast::RandomState>;

/// A run in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub id: u64,
    pub entries: u64,
}

impl Run {
    /// Its size class: runs of about `PAGE_ENTRIES * FANOUT^class` entries.
    fn class(&self) -> u32 {
        let mut pages = (self.entries as usize).div_ceil(PAGE_ENTRIES).max(1);
        let mut class = 0;
        while pages >= FANOUT {
            pages /= FANOUT;
            class += 1;
        }
        class
    }
}

/// A checkpoint's run, taken from memory and not yet written.
#[derive(Debug)]
pub(crate) struct PendingRun {
    pub id: u64,
    entries: Arc<Entries>,
}

impl PendingRun {
    /// Appends its pages and, last, its entry count to `batch`.
    pub fn push_to(&self, batch: &mut Batch) -> Run {
        let mut sorted: Vec<(&Hash, &IndexedTx)> = self.entries.iter().collect();
        sorted.sort_unstable_by_key(|(id, _)| **id);
        let mut pages = PageWriter::new(self.id);
        for (id, at) in sorted {
            pages.push(&encode_entry(id, at), batch);
        }
        pages.finish(batch)
    }
}

/// The index as a node holds it: entries in memory since the last checkpoint, runs
/// taken but not yet written, and the runs in the store.
#[derive(Debug, Default)]
pub(crate) struct Index {
    recent: Entries,
    /// Taken by checkpoints, readable here until the writer has stored them.
    writing: Vec<(u64, Arc<Entries>)>,
    runs: Vec<Run>,
    next_run: u64,
    /// Counts the merges: a lookup that read the runs before one and found nothing
    /// looks again (the merged runs' pages may have gone under it).
    generation: u64,
}

impl Index {
    /// Adds a committed block's transactions.
    pub fn add(&mut self, height: Height, ids: &[Hash]) {
        self.recent.reserve(ids.len());
        for (index, id) in ids.iter().enumerate() {
            self.recent.insert(
                *id,
                IndexedTx {
                    height,
                    index: index as u32,
                },
            );
        }
    }

    /// Takes the entries since the last checkpoint as a run to write (`None`: none).
    pub fn take_run(&mut self) -> Option<PendingRun> {
        if self.recent.is_empty() {
            return None;
        }
        let id = self.next_run;
        self.next_run += 1;
        let entries = Arc::new(std::mem::take(&mut self.recent));
        self.writing.push((id, entries.clone()));
        Some(PendingRun { id, entries })
    }

    /// A run the checkpoint writer has stored.
    pub fn written(&mut self, run: Run) {
        self.writing.retain(|(id, _)| *id != run.id);
        self.runs.push(run);
    }

    /// What a lookup finds in memory, or the runs it must read and the generation it
    /// read them at.
    pub fn find_in_memory(&self, id: &Hash) -> Result<IndexedTx, (Vec<Run>, u64)> {
        if let Some(at) = self.recent.get(id) {
            return Ok(*at);
        }
        for (_, entries) in self.writing.iter().rev() {
            if let Some(at) = entries.get(id) {
                return Ok(*at);
            }
        }
        Err((self.runs.clone(), self.generation))
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The oldest [`FANOUT`] runs of the smallest size class that has that many.
    pub fn due_merge(&self) -> Option<Vec<Run>> {
        let mut classes: std::collections::BTreeMap<u32, Vec<Run>> = Default::default();
        for run in &self.runs {
            classes.entry(run.class()).or_default().push(*run);
        }
        classes
            .into_values()
            .find(|runs| runs.len() >= FANOUT)
            .map(|mut runs| {
                runs.sort_by_key(|run| run.id);
                runs.truncate(FANOUT);
                runs
            })
    }

    pub fn allocate_run(&mut self) -> u64 {
        let id = self.next_run;
        self.next_run += 1;
        id
    }

    /// `merged` is stored in place of `from`.
    pub fn merged(&mut self, from: &[Run], merged: Run) {
        self.runs.retain(|run| !from.contains(run));
        self.runs.push(merged);
        self.generation += 1;
    }

    /// Entries in memory and runs in the store, for tests and metrics.
    pub fn counts(&self) -> (usize, usize) {
        let memory = self.recent.len() + self.writing.iter().map(|(_, e)| e.len()).sum::<usize>();
        (memory, self.runs.len())
    }
}

fn run_key(run: u64) -> Vec<u8> {
    let mut key = vec![INDEX_PREFIX, RUN_TAG];
    key.extend_from_slice(&run.to_be_bytes());
    key
}

fn page_key(run: u64, last: &[u8]) -> Vec<u8> {
    let mut key = vec![INDEX_PREFIX, PAGE_TAG];
    key.extend_from_slice(&run.to_be_bytes());
    key.extend_from_slice(last);
    key
}

/// The bounds of every page of `run`.
fn run_pages(run: u64) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (
        Bound::Included(page_key(run, &[])),
        match run.checked_add(1) {
            Some(next) => Bound::Excluded(page_key(next, &[])),
            None => Bound::Excluded(vec![INDEX_PREFIX, PAGE_TAG + 1]),
        },
    )
}

fn encode_entry(id: &Hash, at: &IndexedTx) -> [u8; ENTRY_BYTES] {
    let mut entry = [0; ENTRY_BYTES];
    entry[..32].copy_from_slice(&id.0);
    entry[32..40].copy_from_slice(&at.height.0.to_be_bytes());
    entry[40..].copy_from_slice(&at.index.to_be_bytes());
    entry
}

fn decode_place(entry: &[u8]) -> IndexedTx {
    IndexedTx {
        height: Height(u64::from_be_bytes(
            entry[32..40].try_into().expect("8 bytes"),
        )),
        index: u32::from_be_bytes(entry[40..44].try_into().expect("4 bytes")),
    }
}

/// Writes one run's pages, in id order.
struct PageWriter {
    run: u64,
    page: Vec<u8>,
    entries: u64,
}

impl PageWriter {
    fn new(run: u64) -> PageWriter {
        PageWriter {
            run,
            page: Vec::with_capacity(PAGE_ENTRIES * ENTRY_BYTES),
            entries: 0,
        }
    }

    fn push(&mut self, entry: &[u8; ENTRY_BYTES], batch: &mut Batch) {
        self.page.extend_from_slice(entry);
        self.entries += 1;
        if self.page.len() == PAGE_ENTRIES * ENTRY_BYTES {
            self.close_page(batch);
        }
    }

    fn close_page(&mut self, batch: &mut Batch) {
        let last = &self.page[self.page.len() - ENTRY_BYTES..][..32];
        let key = page_key(self.run, last);
        let page = std::mem::replace(
            &mut self.page,
            Vec::with_capacity(PAGE_ENTRIES * ENTRY_BYTES),
        );
        batch.push((key, Some(page)));
    }

    /// Closes the last page and appends the run's entry count: the run is whole.
    fn finish(mut self, batch: &mut Batch) -> Run {
        if !self.page.is_empty() {
            self.close_page(batch);
        }
        batch.push((run_key(self.run), Some(self.entries.to_be_bytes().to_vec())));
        Run {
            id: self.run,
            entries: self.entries,
        }
    }
}

/// Where `id` is according to stored run `run` (one page read).
pub(crate) fn find_in_run<B: Backend>(backend: &B, run: u64, id: &Hash) -> Option<IndexedTx> {
    let (_, upper) = run_pages(run);
    let page = backend
        .range(Bound::Included(page_key(run, &id.0)), upper, 1)
        .into_iter()
        .next()?
        .1;
    let entries: Vec<&[u8]> = page.chunks_exact(ENTRY_BYTES).collect();
    entries
        .binary_search_by(|entry| entry[..32].cmp(&id.0[..]))
        .ok()
        .map(|at| decode_place(entries[at]))
}

/// Reads a stored run's entries in id order, a few pages at a time.
struct RunReader<'a, B: Backend> {
    backend: &'a B,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    pages: std::collections::VecDeque<Vec<u8>>,
    offset: usize,
    done: bool,
}

impl<'a, B: Backend> RunReader<'a, B> {
    fn new(backend: &'a B, run: u64) -> RunReader<'a, B> {
        let (lower, upper) = run_pages(run);
        RunReader {
            backend,
            lower,
            upper,
            pages: Default::default(),
            offset: 0,
            done: false,
        }
    }

    /// The next entry, without taking it.
    fn peek(&mut self) -> Option<&[u8]> {
        loop {
            if let Some(page) = self.pages.front() {
                if self.offset < page.len() {
                    break;
                }
                self.pages.pop_front();
                self.offset = 0;
                continue;
            }
            if self.done {
                return None;
            }
            let chunk = self
                .backend
                .range(self.lower.clone(), self.upper.clone(), PAGES_PER_READ);
            self.done = chunk.len() < PAGES_PER_READ;
            match chunk.last() {
                Some((last, _)) => self.lower = Bound::Excluded(last.clone()),
                None => return None,
            }
            self.pages.extend(chunk.into_iter().map(|(_, page)| page));
        }
        let page = self.pages.front().expect("a page with entries left");
        Some(&page[self.offset..self.offset + ENTRY_BYTES])
    }

    fn advance(&mut self) {
        self.offset += ENTRY_BYTES;
    }
}

/// Writes the merge of `from` as run `into`: its pages in batches of
/// [`PAGES_PER_WRITE`], then, in one last batch, its entry count and the removal of
/// `from`'s entry counts; flushed. `from`'s pages stay until [`delete_runs`].
pub(crate) fn merge<B: Backend>(backend: &B, from: &[Run], into: u64) -> Run {
    let mut readers: Vec<RunReader<'_, B>> = from
        .iter()
        .map(|run| RunReader::new(backend, run.id))
        .collect();
    let mut pages = PageWriter::new(into);
    let mut batch = Batch::new();
    loop {
        let mut least: Option<(usize, [u8; ENTRY_BYTES])> = None;
        for (at, reader) in readers.iter_mut().enumerate() {
            if let Some(entry) = reader.peek() {
                if least.is_none_or(|(_, best)| entry[..32] < best[..32]) {
                    least = Some((at, entry.try_into().expect("an entry")));
                }
            }
        }
        let Some((at, entry)) = least else { break };
        readers[at].advance();
        pages.push(&entry, &mut batch);
        if batch.len() >= PAGES_PER_WRITE {
            backend.apply(std::mem::take(&mut batch));
        }
    }
    let run = pages.finish(&mut batch);
    for old in from {
        batch.push((run_key(old.id), None));
    }
    backend.apply(batch);
    backend.flush();
    run
}

/// Deletes the pages (and entry counts) of `runs`, a few hundred keys per batch.
pub(crate) fn delete_runs<B: Backend>(backend: &B, runs: &[u64]) {
    for run in runs {
        let (lower, upper) = run_pages(*run);
        loop {
            let keys = backend.range(lower.clone(), upper.clone(), PAGES_PER_WRITE);
            let full = keys.len() == PAGES_PER_WRITE;
            let batch: Batch = keys.into_iter().map(|(key, _)| (key, None)).collect();
            backend.apply(batch);
            if !full {
                break;
            }
        }
        backend.apply(vec![(run_key(*run), None)]);
    }
    backend.flush();
}

/// The index a store holds: its runs, after deleting the pages of any run that is not
/// whole (a merge or a checkpoint cut short) or was merged away.
pub(crate) fn load<B: Backend>(backend: &B) -> Result<Index, String> {
    let mut runs = Vec::new();
    let counts = backend.range(
        Bound::Included(vec![INDEX_PREFIX, RUN_TAG]),
        Bound::Excluded(vec![INDEX_PREFIX, RUN_TAG + 1]),
        usize::MAX,
    );
    for (key, value) in counts {
        let id = key[2..]
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| "a transaction index run's key is not 8 bytes after its tag")?;
        let entries = value
            .as_slice()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| format!("transaction index run {id}'s entry count is not 8 bytes"))?;
        runs.push(Run { id, entries });
    }
    // Every run that has pages, found by skipping from run to run.
    let mut orphans = Vec::new();
    let mut highest = runs.iter().map(|run| run.id).max();
    let mut lower = page_key(0, &[]);
    loop {
        let first = backend.range(
            Bound::Included(lower),
            Bound::Excluded(vec![INDEX_PREFIX, PAGE_TAG + 1]),
            1,
        );
        let Some((key, _)) = first.into_iter().next() else {
            break;
        };
        let run = u64::from_be_bytes(key[2..10].try_into().expect("a page key has its run"));
        highest = highest.max(Some(run));
        if !runs.iter().any(|known| known.id == run) {
            orphans.push(run);
        }
        match run.checked_add(1) {
            Some(next) => lower = page_key(next, &[]),
            None => break,
        }
    }
    if !orphans.is_empty() {
        delete_runs(backend, &orphans);
    }
    Ok(Index {
        runs,
        next_run: highest.map_or(0, |highest| highest + 1),
        ..Index::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;

    fn id(n: u64) -> Hash {
        Hash::tagged(b"test-tx", &[&n.to_be_bytes()])
    }

    fn write_run(backend: &MemoryBackend, index: &mut Index) -> Run {
        let pending = index.take_run().expect("entries to write");
        let mut batch = Batch::new();
        let run = pending.push_to(&mut batch);
        backend.apply(batch);
        backend.flush();
        index.written(run);
        run
    }

    fn find<B: Backend>(backend: &B, index: &Index, id: &Hash) -> Option<IndexedTx> {
        match index.find_in_memory(id) {
            Ok(at) => Some(at),
            Err((runs, _)) => runs
                .iter()
                .rev()
                .find_map(|run| find_in_run(backend, run.id, id)),
        }
    }

    fn merge_due(backend: &MemoryBackend, index: &mut Index) {
        while let Some(from) = index.due_merge() {
            let into = index.allocate_run();
            let merged = merge(backend, &from, into);
            assert_eq!(
                merged.entries,
                from.iter().map(|run| run.entries).sum::<u64>()
            );
            index.merged(&from, merged);
            delete_runs(backend, &from.iter().map(|run| run.id).collect::<Vec<_>>());
        }
    }

    #[test]
    fn every_id_is_found_in_memory_in_runs_and_after_merges_and_no_other() {
        let backend = MemoryBackend::new();
        let mut index = Index::default();
        let mut added = Vec::new();
        let mut height = 0;
        // Blocks of 0 to 299 transactions; a run after most rounds.
        for round in 0..40u64 {
            for block in 0..3u64 {
                height += 1;
                let count = (round * 37 + block * 101) % 300;
                let ids: Vec<Hash> = (0..count).map(|n| id(height * 1_000 + n)).collect();
                index.add(Height(height), &ids);
                added.extend((0..count).map(|n| (height, n)));
            }
            if round % 7 != 3 && round != 39 {
                write_run(&backend, &mut index);
                merge_due(&backend, &mut index);
            }
        }
        assert!(index.generation >= 2, "the test merged runs");
        assert!(
            index.runs.iter().any(|run| run.class() > 1),
            "merged runs were merged again"
        );
        let classes: std::collections::BTreeSet<u32> = index.runs.iter().map(Run::class).collect();
        assert!(
            index.runs.len() <= (FANOUT - 1) * classes.len(),
            "at most {} runs of a size class",
            FANOUT - 1
        );
        assert!(index.counts().0 > 0, "and kept some in memory");
        for (height, n) in &added {
            assert_eq!(
                find(&backend, &index, &id(height * 1_000 + n)),
                Some(IndexedTx {
                    height: Height(*height),
                    index: *n as u32
                })
            );
        }
        let stored: u64 = index.runs.iter().map(|run| run.entries).sum();
        assert_eq!(stored as usize + index.counts().0, added.len());
        for absent in [id(0), id(1_000 + 299), id(u64::MAX)] {
            assert_eq!(find(&backend, &index, &absent), None);
        }
        // Only pages of live runs are in the store.
        let reopened = load(&backend).unwrap();
        let mut live = index.runs.clone();
        live.sort_by_key(|run| run.id);
        assert_eq!(reopened.runs, live);
        let pages = backend.range(
            Bound::Included(vec![INDEX_PREFIX, PAGE_TAG]),
            Bound::Excluded(vec![INDEX_PREFIX, PAGE_TAG + 1]),
            usize::MAX,
        );
        let expected: usize = live
            .iter()
            .map(|run| (run.entries as usize).div_ceil(PAGE_ENTRIES))
            .sum();
        assert_eq!(pages.len(), expected);
    }

    #[test]
    fn a_merge_cut_short_anywhere_leaves_the_index_whole_at_open() {
        let prepare = || {
            let backend = MemoryBackend::new();
            let mut index = Index::default();
            for run in 0..FANOUT as u64 {
                let ids: Vec<Hash> = (0..200).map(|n| id(run * 1_000 + n)).collect();
                index.add(Height(run + 1), &ids);
                write_run(&backend, &mut index);
            }
            (backend, index)
        };
        let all_found = |backend: &MemoryBackend, index: &Index| {
            for run in 0..FANOUT as u64 {
                for n in 0..200 {
                    let at = index
                        .runs
                        .iter()
                        .find_map(|stored| find_in_run(backend, stored.id, &id(run * 1_000 + n)));
                    assert_eq!(
                        at,
                        Some(IndexedTx {
                            height: Height(run + 1),
                            index: n as u32
                        })
                    );
                }
            }
        };
        let page_runs = |backend: &MemoryBackend| -> std::collections::BTreeSet<u64> {
            backend
                .range(
                    Bound::Included(vec![INDEX_PREFIX, PAGE_TAG]),
                    Bound::Excluded(vec![INDEX_PREFIX, PAGE_TAG + 1]),
                    usize::MAX,
                )
                .into_iter()
                .map(|(key, _)| u64::from_be_bytes(key[2..10].try_into().unwrap()))
                .collect()
        };

        // Cut short before its last batch: some of the new run's pages are stored,
        // its entry count is not.
        let (backend, mut index) = prepare();
        let from = index.due_merge().expect("four runs of one class");
        let into = index.allocate_run();
        let mut batch = Batch::new();
        let mut pages = PageWriter::new(into);
        for n in 0..150 {
            pages.push(
                &encode_entry(
                    &id(n),
                    &IndexedTx {
                        height: Height(1),
                        index: 0,
                    },
                ),
                &mut batch,
            );
        }
        backend.apply(batch);
        backend.flush();
        let reopened = load(&backend.crash()).unwrap();
        assert_eq!(
            reopened.runs, index.runs,
            "the runs to merge are still the index"
        );
        assert!(
            reopened.next_run > into,
            "the cut-short run's id is not reused"
        );
        let crashed = backend.crash();
        load(&crashed).unwrap();
        assert_eq!(page_runs(&crashed), from.iter().map(|run| run.id).collect());
        all_found(&crashed, &reopened);

        // Cut short after its last batch, before the merged runs' pages are deleted.
        let (backend, mut index) = prepare();
        let from = index.due_merge().expect("four runs of one class");
        let into = index.allocate_run();
        let merged = merge(&backend, &from, into);
        let crashed = backend.crash();
        let reopened = load(&crashed).unwrap();
        assert_eq!(reopened.runs, vec![merged]);
        assert_eq!(page_runs(&crashed), [into].into_iter().collect());
        all_found(&crashed, &reopened);
        index.merged(&from, merged);
        assert_eq!(index.runs, reopened.runs);
    }
}
