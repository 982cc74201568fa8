//! Bounds on what an input may hold beyond its syntax, set by configuration: how long a
//! line may be, and which instants a usage record or event may carry.

use std::ops::Range;

use super::{IncomingEvent, Reason, Rejection};
use crate::domain::{UsageRecord, UtcMillis};
use crate::source::Chunk;

/// What `ingest` accepts besides well-formed records and events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputLimits {
    /// The instants a record or event may carry (`--plausible-from`, `--plausible-until`).
    /// A year 0000 or 9999 is a producer's bug: it would put a day into every report and
    /// stretch the de-duplication window to it.
    pub plausible: Range<UtcMillis>,
    /// The longest line read whole (`--max-line-bytes`). A usage record or event is under a
    /// KiB; a longer line is read past, never held whole, and kept as its first
    /// [`crate::source::KEPT_BYTES`] for a `line_too_long` dead letter.
    pub max_line_bytes: usize,
}

impl Default for InputLimits {
    /// From 2000-01-01 to the end of 2099; lines of up to 4 MiB.
    fn default() -> Self {
        InputLimits {
            plausible: UtcMillis::from_millis(946_684_800_000)
                ..UtcMillis::from_millis(4_102_444_800_000),
            max_line_bytes: crate::source::MAX_LINE_BYTES,
        }
    }
}

impl InputLimits {
    /// A decoded usage record, refused if its times are outside [`InputLimits::plausible`].
    pub fn usage(&self, record: UsageRecord) -> Result<UsageRecord, Rejection> {
        self.instant(record.start, "start_timestamp")?;
        self.instant(record.end, "end_timestamp")?;
        Ok(record)
    }

    /// A decoded event, refused if its time is outside [`InputLimits::plausible`].
    pub fn event(&self, event: IncomingEvent) -> Result<IncomingEvent, Rejection> {
        let at = match &event {
            IncomingEvent::Sim(event) => event.at,
            IncomingEvent::Directory(event) => event.at,
        };
        self.instant(at, "timestamp")?;
        Ok(event)
    }

    /// The length of line `line` of `chunk` if it is over [`InputLimits::max_line_bytes`]:
    /// cut by the reader (longer than a chunk), or whole in the chunk and still too long.
    pub fn too_long(&self, chunk: &Chunk, line: u64, bytes: &[u8]) -> Option<u64> {
        (chunk.cut_length(line))
            .or_else(|| (bytes.len() > self.max_line_bytes).then_some(bytes.len() as u64))
    }

    fn instant(&self, at: UtcMillis, field: &str) -> Result<(), Rejection> {
        if self.plausible.contains(&at) {
            return Ok(());
        }
        Err(Rejection::new(
            Reason::ImplausibleTimestamp,
            format!(
                "{field} {at} is outside the plausible range {} to {} (--plausible-from, \
                 --plausible-until)",
                self.plausible.start, self.plausible.end
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_century_is_plausible_by_default() {
        let limits = InputLimits::default();
        let at = |text| UtcMillis::parse_rfc3339(text).unwrap();
        assert!(limits.instant(at("2000-01-01T00:00:00Z"), "t").is_ok());
        assert!(limits.instant(at("2099-12-31T23:59:59.999Z"), "t").is_ok());
        for implausible in [
            "0000-01-01T00:00:00Z",
            "1999-12-31T23:59:59.999Z",
            "2100-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let refused = limits
                .instant(at(implausible), "start_timestamp")
                .unwrap_err();
            assert_eq!(
                refused.reason,
                Reason::ImplausibleTimestamp,
                "{implausible}"
            );
        }
        // A year of five digits is not RFC 3339 at all.
        assert!(UtcMillis::parse_rfc3339("+10000-01-01T00:00:00Z").is_err());
    }
}
