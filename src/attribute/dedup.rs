use std::hash::{BuildHasher, Hash};

use ahash::AHashMap;

use crate::domain::{RecordId, UsageRecord};

/// What the de-duplicator says about a record id it is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    First,
    /// The same id with the same content: a re-delivery, written nowhere.
    Duplicate,
    /// The same id with different content: counted as a duplicate and dead-lettered.
    ConflictingDuplicate,
}

/// A hash of a record's whole content. Computed where the record is decoded (in parallel),
/// so the de-duplicator, which must see records one at a time, only compares numbers.
pub fn fingerprint(record: &UsageRecord) -> u64 {
    // Fixed seeds: fingerprints only need to be stable within one process.
    let mut h = ahash::RandomState::with_seeds(0x5117, 0x7a11, 0x1d, 0x5eed).build_hasher();
    record.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

/// Remembers each record id with a fingerprint of its content; the first delivery wins.
#[derive(Default)]
pub struct Deduplicator {
    fingerprints: AHashMap<RecordId, u64>,
}

impl Deduplicator {
    /// Room for `records` ids up front: growing a table of millions rehashes every id again
    /// and touches twice the memory.
    pub fn with_capacity(records: usize) -> Self {
        Deduplicator {
            fingerprints: AHashMap::with_capacity(records),
        }
    }

    pub fn observe(&mut self, record: &UsageRecord) -> Seen {
        self.observe_fingerprint(record.id, fingerprint(record))
    }

    /// As `observe`, with the record's [`fingerprint`] already computed.
    pub fn observe_fingerprint(&mut self, id: RecordId, fingerprint: u64) -> Seen {
        match self.fingerprints.entry(id) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(fingerprint);
                Seen::First
            }
            std::collections::hash_map::Entry::Occupied(first) if *first.get() == fingerprint => {
                Seen::Duplicate
            }
            std::collections::hash_map::Entry::Occupied(_) => Seen::ConflictingDuplicate,
        }
    }

    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }
}
