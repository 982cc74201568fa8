//! Holding usage back until the lifecycle events cover it (a following ingest only).
//!
//! A usage record is attributed with the events read so far; if the transfer or the
//! registration that decides it arrives later, a correction re-attributes it. Holding keeps
//! those corrections rare when the events topic lags behind the usage topic: per partition,
//! a record is written only when it ends before the partition's *release horizon*, and the
//! first record that does not holds everything after it in that partition (so a partition's
//! resume point is simply its first held offset, and nothing past it is ever written twice).
//!
//! The horizon of a partition is the later of
//! - the latest event time read from the events partition (the events have been read past
//!   the record), and
//! - the latest usage end time read from the usage partition, less the bound (default one
//!   hour of event time: no record waits for events longer than that).
//!
//! An events partition holds usage only while its producer is seen producing: messages
//! arrived in a pass after the one that first read the partition (that first read is its
//! backlog, which says nothing of now), in a pass that started less than the idle time
//! before this one (by default the pass interval: a partition that delivered nothing in the
//! last pass holds nothing, so held usage waits one pass more at most, unless its events
//! keep arriving and have not yet caught up with it). Times are the passes' starts, which
//! are at least one interval apart. Lifecycle events are rare, and a quiet partition, or a
//! follower catching up on a backlog, must not delay usage. Holding only ever changes how
//! many corrections are written, never what the lake adds up to.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::domain::UtcMillis;

/// How long usage may wait for the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldPolicy {
    /// At most this much usage event time past a record before it is written anyway.
    pub bound: Duration,
    /// An events partition that delivered nothing in the passes started this long (wall
    /// clock) before the current one holds nothing (zero: nothing is ever held).
    pub idle: Duration,
}

impl Default for HoldPolicy {
    /// An hour of event time at most, and an idle time of one default pass interval (what
    /// `simtally ingest` uses unless told otherwise).
    fn default() -> Self {
        HoldPolicy {
            bound: Duration::from_secs(3600),
            idle: super::DEFAULT_PASS_INTERVAL,
        }
    }
}

/// What a following ingest knows of each partition's progress, kept from pass to pass.
#[derive(Debug)]
pub struct Hold {
    policy: HoldPolicy,
    partitions: BTreeMap<i32, PartitionClock>,
}

#[derive(Debug, Default)]
struct PartitionClock {
    /// The latest lifecycle event time read from the events partition.
    events_time: Option<UtcMillis>,
    /// A pass of this process has read the events partition.
    events_read: bool,
    /// When the pass that last read anything from the events partition, after its first
    /// read, started.
    events_arrived: Option<Instant>,
    /// The latest usage end time read from the usage partition (held records included).
    usage_time: Option<UtcMillis>,
}

impl Hold {
    pub fn new(policy: HoldPolicy) -> Self {
        Hold {
            policy,
            partitions: BTreeMap::new(),
        }
    }

    /// The events partitions that delivered messages in the pass started `at`, with the
    /// latest SIM event time among them (`None` if none was a valid SIM event).
    pub fn saw_events(&mut self, arrivals: &BTreeMap<i32, Option<UtcMillis>>, at: Instant) {
        for (partition, latest) in arrivals {
            let clock = self.partitions.entry(*partition).or_default();
            if clock.events_read {
                clock.events_arrived = Some(at);
            }
            clock.events_read = true;
            clock.events_time = clock.events_time.max(*latest);
        }
    }

    /// The latest usage end time a pass read from `partition`.
    pub fn saw_usage(&mut self, partition: i32, latest_end: UtcMillis) {
        let clock = self.partitions.entry(partition).or_default();
        clock.usage_time = clock.usage_time.max(Some(latest_end));
    }

    /// The release horizon of each of `partitions` (a usage source's inputs, in order) for
    /// the pass started `now`.
    pub fn horizons(&self, partitions: &[i32], now: Instant) -> Horizons {
        Horizons(partitions.iter().map(|p| self.horizon(*p, now)).collect())
    }

    fn horizon(&self, partition: i32, now: Instant) -> Option<UtcMillis> {
        let clock = self.partitions.get(&partition)?;
        let active = clock
            .events_arrived
            .is_some_and(|at| now.duration_since(at) < self.policy.idle);
        if !active {
            return None;
        }
        let bound = i64::try_from(self.policy.bound.as_millis()).unwrap_or(i64::MAX);
        let by_usage = clock
            .usage_time
            .map(|t| UtcMillis::from_millis(t.millis().saturating_sub(bound)));
        Some(
            clock
                .events_time
                .max(by_usage)
                .unwrap_or(UtcMillis::from_millis(i64::MIN)),
        )
    }
}

/// Per input of a usage source: records ending before the horizon are written; `None`
/// writes everything.
#[derive(Clone, Debug, Default)]
pub struct Horizons(Vec<Option<UtcMillis>>);

impl Horizons {
    /// Whether a record of `input` that ends at `end` is written now.
    pub fn releases(&self, input: usize, end: UtcMillis) -> bool {
        match self.0.get(input).copied().flatten() {
            None => true,
            Some(horizon) => end < horizon,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn at(ms: i64) -> UtcMillis {
        UtcMillis::from_millis(ms)
    }

    fn hold() -> Hold {
        Hold::new(HoldPolicy {
            bound: Duration::from_secs(3600),
            idle: Duration::from_secs(60),
        })
    }

    /// Partition 0's backlog read, then events arriving while following.
    fn following(hold: &mut Hold, events_time: Option<UtcMillis>, when: Instant) {
        hold.saw_events(&BTreeMap::from([(0, None)]), when);
        hold.saw_events(&BTreeMap::from([(0, events_time)]), when);
    }

    #[test]
    fn a_partitions_first_read_is_its_backlog_and_holds_nothing() {
        let mut hold = hold();
        let now = Instant::now();
        hold.saw_events(&BTreeMap::from([(0, Some(at(HOUR)))]), now);
        assert!(hold.horizons(&[0], now).releases(0, at(10 * HOUR)));
        hold.saw_events(&BTreeMap::from([(0, Some(at(2 * HOUR)))]), now);
        assert!(!hold.horizons(&[0], now).releases(0, at(10 * HOUR)));
    }

    #[test]
    fn a_partition_whose_events_never_arrived_holds_nothing() {
        let mut hold = hold();
        hold.saw_usage(0, at(5 * HOUR));
        let horizons = hold.horizons(&[0, 1], Instant::now());
        assert!(horizons.releases(0, at(5 * HOUR)));
        assert!(horizons.releases(1, at(i64::MAX)));
    }

    #[test]
    fn usage_is_released_once_the_events_are_read_past_its_end() {
        let mut hold = hold();
        let now = Instant::now();
        following(&mut hold, Some(at(2 * HOUR)), now);
        let horizons = hold.horizons(&[0], now);
        assert!(horizons.releases(0, at(2 * HOUR - 1)));
        // An event at exactly the end may still be followed by another at that instant.
        assert!(!horizons.releases(0, at(2 * HOUR)));
    }

    #[test]
    fn usage_more_than_the_bound_behind_the_usage_read_is_released_anyway() {
        let mut hold = hold();
        let now = Instant::now();
        following(&mut hold, Some(at(HOUR)), now);
        hold.saw_usage(0, at(4 * HOUR));
        let horizons = hold.horizons(&[0], now);
        assert!(horizons.releases(0, at(3 * HOUR - 1)));
        assert!(!horizons.releases(0, at(3 * HOUR)));
    }

    #[test]
    fn events_without_a_valid_time_still_make_the_partition_active() {
        let mut hold = hold();
        let now = Instant::now();
        following(&mut hold, None, now);
        assert!(!hold.horizons(&[0], now).releases(0, at(0)));
    }

    #[test]
    fn an_events_partition_silent_for_the_idle_time_holds_nothing() {
        let mut hold = hold();
        let then = Instant::now();
        following(&mut hold, Some(at(HOUR)), then);
        let later = then + Duration::from_secs(60);
        assert!(hold.horizons(&[0], later).releases(0, at(10 * HOUR)));
    }

    #[test]
    fn with_the_idle_time_of_one_interval_held_usage_waits_one_pass_at_most() {
        let interval = Duration::from_secs(5);
        let mut hold = Hold::new(HoldPolicy {
            bound: Duration::from_secs(3600),
            idle: interval,
        });
        let first = Instant::now();
        following(&mut hold, Some(at(HOUR)), first);
        assert!(!hold.horizons(&[0], first).releases(0, at(2 * HOUR)));
        // The next pass, one interval later, read nothing from the events partition.
        assert!(hold
            .horizons(&[0], first + interval)
            .releases(0, at(2 * HOUR)));
        // Had it read events, but not yet past the record, the record would wait on.
        hold.saw_events(&BTreeMap::from([(0, Some(at(HOUR + 1)))]), first + interval);
        assert!(!hold
            .horizons(&[0], first + interval)
            .releases(0, at(2 * HOUR)));
    }

    #[test]
    fn clocks_only_move_forward() {
        let mut hold = hold();
        let now = Instant::now();
        following(&mut hold, Some(at(3 * HOUR)), now);
        hold.saw_events(&BTreeMap::from([(0, Some(at(HOUR)))]), now);
        hold.saw_usage(0, at(2 * HOUR));
        assert!(hold.horizons(&[0], now).releases(0, at(3 * HOUR - 1)));
    }
}
