//! attribute: decides, for every usage record, which Workspace owned the SIM during each
//! part of the record, and cuts the record's amounts exactly at ownership boundaries.

mod correct;
mod dedup;
mod ownership;
mod slice;
mod split;
#[cfg(test)]
pub(crate) mod testing;

pub use correct::{correct, Correction, CorruptRecord, StoredRecord, StoredSlice};
pub use dedup::{fingerprint, Deduplicator, Seen};
pub use ownership::{OwnershipBook, SequencedEvent, Tenure, Timeline};
pub use slice::{
    attribute, plan, slices_planned, Destination, Plan, QuarantineReason, Slice, Slices,
};
pub use split::split_pro_rata;
