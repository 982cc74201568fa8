//! A new lifecycle or directory event as read, before it is accepted or rejected.

use crate::domain::Rejection;
use crate::tables::dead_letters::{DeadLetter, LetterInput};

/// A new event with where it came from, until it is accepted or rejected.
#[derive(Clone)]
pub(super) struct Arrival {
    pub source: String,
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
}

impl Arrival {
    /// The arrival as a dead letter of the events input.
    pub(super) fn into_dead_letter(self, rejection: Rejection) -> DeadLetter {
        DeadLetter {
            source: self.source,
            rejection,
            payload: self.payload,
            key: self.key,
            input: LetterInput::Events,
        }
    }
}
