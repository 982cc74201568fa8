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

/// Remembers each record id with a fingerprint of its content; the first delivery wins.
pub struct Deduplicator {
    fingerprints: AHashMap<RecordId, u64>,
    hasher: ahash::RandomState,
}

impl Default for Deduplicator {
    fn default() -> Self {
        Deduplicator {
            fingerprints: AHashMap::new(),
            // Fixed seeds: fingerprints only need to be stable within one process.
            hasher: ahash::RandomState::with_seeds(0x5117, 0x7a11, 0x1d, 0x5eed),
        }
    }
}

impl Deduplicator {
    pub fn observe(&mut self, record: &UsageRecord) -> Seen {
        let fingerprint = self.fingerprint(record);
        match self.fingerprints.entry(record.id) {
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

    fn fingerprint(&self, record: &UsageRecord) -> u64 {
        let mut h = self.hasher.build_hasher();
        record.hash(&mut h);
        std::hash::Hasher::finish(&h)
    }

    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }
}
