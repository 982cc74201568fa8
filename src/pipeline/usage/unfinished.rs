//! What a pass killed between its `quarantine` and `usage` commits left half-stored. Its
//! records may have their quarantined slices in the lake and their attributed slices not, so
//! for them alone "stored in either table" does not mean "already ingested".
//!
//! A Kafka pass records the positions it read up to with both commits; a partition whose
//! `quarantine` position is ahead of its `usage` position was read by such a pass, up to that
//! position. The run after it may read less per pass (the read budget is shared by the
//! partitions in whatever order the broker delivers), so the gap can outlive one pass: it
//! closes when a `usage` commit records a position at or past it. Files have no positions;
//! a file ingest re-reads everything, so the writer fence's pass numbers tell whether the
//! last one was stopped between the commits (`lake::fence`).

use std::collections::HashMap;

use crate::lake::{Fence, Lake, LakeError, LakeTable};

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) enum UnfinishedPass {
    #[default]
    None,
    /// Any record may be half-stored.
    Whole,
    /// Messages below these offsets, by source prefix (`topic/partition/`).
    Below(HashMap<String, Gap>),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Gap {
    app_id: String,
    end: u64,
}

impl UnfinishedPass {
    /// For a source whose inputs resume from positions recorded under these (source prefix,
    /// Delta `txn` application id) pairs; for one without them (files), from the fence.
    pub async fn find(
        lake: &Lake,
        fence: Fence,
        resumable: &[(String, String)],
    ) -> Result<Self, LakeError> {
        if resumable.is_empty() {
            return Ok(match fence.last_pass_unfinished() {
                true => UnfinishedPass::Whole,
                false => UnfinishedPass::None,
            });
        }
        let app_ids: Vec<String> = resumable.iter().map(|(_, id)| id.clone()).collect();
        let quarantine = lake.resume_points(LakeTable::Quarantine, &app_ids).await?;
        let usage = lake.resume_points(LakeTable::Usage, &app_ids).await?;
        Ok(Self::from_positions(resumable, &quarantine, &usage))
    }

    fn from_positions(
        resumable: &[(String, String)],
        quarantine: &HashMap<String, i64>,
        usage: &HashMap<String, i64>,
    ) -> Self {
        let gaps: HashMap<String, Gap> = resumable
            .iter()
            .filter_map(|(prefix, app_id)| {
                let ahead = *quarantine.get(app_id)?;
                let committed = usage.get(app_id).copied().unwrap_or(i64::MIN);
                let end = u64::try_from(ahead).ok().filter(|_| ahead > committed)?;
                let app_id = app_id.clone();
                Some((prefix.clone(), Gap { app_id, end }))
            })
            .collect();
        match gaps.is_empty() {
            true => UnfinishedPass::None,
            false => UnfinishedPass::Below(gaps),
        }
    }

    /// Whether the record at `position` of the input named `prefix` may be half-stored.
    pub fn covers(&self, prefix: &str, position: u64) -> bool {
        match self {
            UnfinishedPass::None => false,
            UnfinishedPass::Whole => true,
            UnfinishedPass::Below(gaps) => gaps.get(prefix).is_some_and(|gap| position < gap.end),
        }
    }

    /// The positions a `quarantine` commit of this pass records: where it read up to, but
    /// not below the end of a gap. A pass that reads less than the killed one must not
    /// close the gap by recording its own, lower position there.
    pub fn quarantine_positions(&self, read_up_to: &[(String, i64)]) -> Vec<(String, i64)> {
        let UnfinishedPass::Below(gaps) = self else {
            return read_up_to.to_vec();
        };
        read_up_to
            .iter()
            .map(|(app_id, position)| {
                let gap_end = gaps
                    .values()
                    .find(|gap| gap.app_id == *app_id)
                    .and_then(|gap| i64::try_from(gap.end).ok());
                (
                    app_id.clone(),
                    gap_end.map_or(*position, |end| end.max(*position)),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
        pairs.iter().map(|(id, p)| (id.to_string(), *p)).collect()
    }

    fn partitions() -> Vec<(String, String)> {
        (0..3)
            .map(|p| (format!("u/{p}/"), format!("app:{p}")))
            .collect()
    }

    #[test]
    fn a_partition_whose_quarantine_is_ahead_is_unfinished_below_that_position() {
        let quarantine = positions(&[("app:0", 120), ("app:1", 80), ("app:2", 50)]);
        let usage = positions(&[("app:0", 100), ("app:1", 80), ("app:2", 70)]);
        let unfinished = UnfinishedPass::from_positions(&partitions(), &quarantine, &usage);
        assert!(unfinished.covers("u/0/", 100));
        assert!(unfinished.covers("u/0/", 119));
        assert!(!unfinished.covers("u/0/", 120));
        assert!(!unfinished.covers("u/1/", 10), "positions equal: finished");
        assert!(!unfinished.covers("u/2/", 10), "usage ahead: finished");
    }

    #[test]
    fn a_partition_first_read_by_the_killed_pass_is_unfinished_from_its_start() {
        let quarantine = positions(&[("app:1", 30)]);
        let unfinished =
            UnfinishedPass::from_positions(&partitions(), &quarantine, &HashMap::new());
        assert!(unfinished.covers("u/1/", 0));
        assert!(!unfinished.covers("u/0/", 0));
    }

    #[test]
    fn a_smaller_pass_records_the_gap_end_in_quarantine_so_the_gap_stays_open() {
        let quarantine = positions(&[("app:0", 120), ("app:1", 80)]);
        let usage = positions(&[("app:0", 100), ("app:1", 80)]);
        let unfinished = UnfinishedPass::from_positions(&partitions(), &quarantine, &usage);
        let read = vec![("app:0".to_string(), 110), ("app:1".to_string(), 90)];
        assert_eq!(
            unfinished.quarantine_positions(&read),
            vec![("app:0".to_string(), 120), ("app:1".to_string(), 90)]
        );
        assert_eq!(UnfinishedPass::None.quarantine_positions(&read), read);
    }

    #[test]
    fn matching_positions_leave_nothing_unfinished() {
        let both = positions(&[("app:0", 5), ("app:1", 9)]);
        assert_eq!(
            UnfinishedPass::from_positions(&partitions(), &both, &both),
            UnfinishedPass::None
        );
    }
}
