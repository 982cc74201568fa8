use std::hash::{BuildHasher, Hash};

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
///
/// An open-addressing table of (id, fingerprint) slots with linear probing. A run of a
/// million records makes a table of tens of MiB that every record lands in at random, so
/// each lookup is a cache miss: [`Deduplicator::prefetch`] lets the caller ask for a
/// record's slot a few records ahead. The hash is seeded per process, so ids chosen to
/// collide cannot be prepared in advance.
pub struct Deduplicator {
    /// (id, fingerprint); a power of two long; an id of 0 marks a free slot. A tuple of
    /// integers, so that `vec!` asks the allocator for zeroed pages, which the system hands
    /// out untouched.
    slots: Vec<(i64, u64)>,
    len: usize,
    hasher: ahash::RandomState,
    /// The fingerprint of id 0, which cannot be stored in a slot.
    zero: Option<u64>,
}

impl Default for Deduplicator {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl Deduplicator {
    /// At most this share of the slots is taken before the table doubles (in tenths).
    const MOST_FULL_TENTHS: usize = 7;

    /// Room for `records` ids up front: growing a table of millions rehashes every id again
    /// and touches twice the memory. Free slots are zeros, so the pages of a table sized
    /// too large are never touched.
    pub fn with_capacity(records: usize) -> Self {
        let wanted = records.saturating_mul(10) / Self::MOST_FULL_TENTHS + 1;
        Deduplicator {
            slots: vec![(0, 0); wanted.next_power_of_two().max(16)],
            len: 0,
            hasher: ahash::RandomState::new(),
            zero: None,
        }
    }

    /// Writes every page of the table once. A look-up of a slot never written maps the
    /// system's shared zero page, and the first id stored there then copies it: a second
    /// fault and a TLB flush on every core, for each 4 KiB of the table. Written first, each
    /// page costs one fault, and a caller with a moment to wait (the collector, while the
    /// ownership book is built) pays it before the records arrive. Only an empty table is
    /// touched (the pages are written with zeros).
    pub fn touch_pages(&mut self) {
        if !self.is_empty() {
            return;
        }
        advise_huge_pages(&mut self.slots);
        const SLOTS_PER_PAGE: usize = 4096 / std::mem::size_of::<(i64, u64)>();
        for slot in self.slots.iter_mut().step_by(SLOTS_PER_PAGE) {
            // An opaque zero: the store cannot be dropped as writing what is already there.
            *slot = std::hint::black_box((0, 0));
        }
    }

    pub fn observe(&mut self, record: &UsageRecord) -> Seen {
        self.observe_fingerprint(record.id, fingerprint(record))
    }

    /// Asks the processor to fetch the slot `id` would be looked up in.
    #[inline]
    pub fn prefetch(&self, id: RecordId) {
        let slot: *const (i64, u64) = &self.slots[self.home(id.0)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch only hints the cache; `slot` points into `self.slots`.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(slot.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// As `observe`, with the record's [`fingerprint`] already computed.
    pub fn observe_fingerprint(&mut self, id: RecordId, fingerprint: u64) -> Seen {
        let id = id.0;
        if id == 0 {
            return match self.zero {
                Some(first) => Self::again(first, fingerprint),
                None => {
                    self.zero = Some(fingerprint);
                    Seen::First
                }
            };
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(id);
        loop {
            let slot = &mut self.slots[at];
            if slot.0 == id {
                return Self::again(slot.1, fingerprint);
            }
            if slot.0 == 0 {
                *slot = (id, fingerprint);
                self.len += 1;
                if self.len * 10 > self.slots.len() * Self::MOST_FULL_TENTHS {
                    self.grow();
                }
                return Seen::First;
            }
            at = (at + 1) & mask;
        }
    }

    /// An id seen before, first with `first`.
    fn again(first: u64, fingerprint: u64) -> Seen {
        if first == fingerprint {
            Seen::Duplicate
        } else {
            Seen::ConflictingDuplicate
        }
    }

    fn home(&self, id: i64) -> usize {
        (self.hasher.hash_one(id) as usize) & (self.slots.len() - 1)
    }

    fn grow(&mut self) {
        let doubled = vec![(0, 0); self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|s| s.0 != 0) {
            let mut at = self.home(slot.0);
            while self.slots[at].0 != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }

    pub fn len(&self) -> usize {
        self.len + usize::from(self.zero.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Asks Linux to back `slots` with 2 MiB pages (transparent huge pages, which the common
/// `madvise` setting grants only to regions that ask). Ids land anywhere in the table, so
/// with 4 KiB pages nearly every look-up also missed the TLB, and the collector's prefetch
/// stalled on the page walk.
fn advise_huge_pages(slots: &mut [(i64, u64)]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE_PAGE: usize = 2 << 20;
        let start = slots.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(slots);
        let (from, to) = (
            start.next_multiple_of(HUGE_PAGE),
            end / HUGE_PAGE * HUGE_PAGE,
        );
        if from < to {
            // SAFETY: advice about pages this table owns; MADV_HUGEPAGE never changes their
            // contents.
            unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = slots;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// The table says what a map of first fingerprints says, through growth and id 0.
        #[test]
        fn agrees_with_a_map(
            seen in proptest::collection::vec((-40i64..40, 0u64..3), 0..400),
            capacity in 0usize..50,
            touch_at in 0usize..400,
        ) {
            let mut table = Deduplicator::with_capacity(capacity);
            let mut first = HashMap::new();
            for (i, (id, fingerprint)) in seen.into_iter().enumerate() {
                if i == 0 || i == touch_at {
                    table.touch_pages();
                }
                table.prefetch(RecordId(id));
                let expected = match first.get(&id) {
                    None => Seen::First,
                    Some(f) if *f == fingerprint => Seen::Duplicate,
                    Some(_) => Seen::ConflictingDuplicate,
                };
                first.entry(id).or_insert(fingerprint);
                prop_assert_eq!(table.observe_fingerprint(RecordId(id), fingerprint), expected);
                prop_assert_eq!(table.len(), first.len());
            }
        }
    }

    #[test]
    fn a_table_written_ahead_on_huge_pages_answers_as_any_other() {
        // 2 Mi slots, 32 MiB: large enough for whole 2 MiB pages.
        let mut table = Deduplicator::with_capacity(1 << 20);
        table.touch_pages();
        for id in 1..=1000 {
            assert_eq!(table.observe_fingerprint(RecordId(id), 7), Seen::First);
        }
        table.touch_pages();
        assert_eq!(table.observe_fingerprint(RecordId(500), 7), Seen::Duplicate);
        assert_eq!(table.len(), 1000);
    }

    #[test]
    fn dense_and_sparse_ids_far_beyond_the_capacity() {
        let mut table = Deduplicator::with_capacity(10);
        let ids = (0..50_000i64)
            .chain((1..50_000).map(|i| i << 40))
            .chain([i64::MIN, i64::MAX]);
        for id in ids.clone() {
            assert_eq!(table.observe_fingerprint(RecordId(id), 1), Seen::First);
        }
        for id in ids {
            assert_eq!(table.observe_fingerprint(RecordId(id), 1), Seen::Duplicate);
            assert_eq!(
                table.observe_fingerprint(RecordId(id), 2),
                Seen::ConflictingDuplicate
            );
        }
        assert_eq!(table.len(), 50_000 + 49_999 + 2);
    }
}
