//! The record ids already in the lake, for idempotent ingest, held for a window of event
//! time instead of for all history: the ids of records that start within `window_days` of
//! the latest `usage_date` in the lake are loaded when a pass starts; a record older than
//! that (a late delivery, or a replay) has its day's ids loaded when it is first seen. A
//! record's first slice always starts at the record's start, so its id is among the ids of
//! that day in `usage` or `quarantine` if it is in the lake at all. Memory then follows the
//! window (and the days late records touch), not the age of the lake, and nothing old is
//! ever written twice.
//!
//! The ids are held as compressed bitmaps (roaring, already in the tree through the Delta
//! kernel's deletion vectors): at most about 2 bytes an id, and 8 KiB for each range of
//! 65,536 ids once the range is dense (record ids are mostly dense runs), where a hash set
//! takes about 18 bytes an id and, while it grows, holds its old table and the new one.

use std::collections::HashSet;

use arrow::array::AsArray;
use arrow::datatypes::Date32Type;
use roaring::RoaringTreemap;

use crate::lake::{Lake, LakeError, LakeTable};

/// The default window: the latest day in the lake and the one before, what the records of
/// a daily file or a follower's pass (around midnight too) start on. Any other day's ids
/// are read when its first record arrives, so a run reads the ids of the days it touches:
/// with a week loaded up front, a daily ingest read seven days of ids it never needed, and
/// its cost grew with the lake's first week.
pub const DEFAULT_WINDOW_DAYS: u32 = 1;

/// A set of record ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RecordIds(RoaringTreemap);

impl RecordIds {
    pub fn contains(&self, id: i64) -> bool {
        self.0.contains(Self::key(id))
    }

    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    #[cfg(test)]
    pub fn is_subset(&self, other: &Self) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The bitmap is over u64; any bijection keeps membership, and this one also keeps
    /// the order of non-negative ids, which are the ones the wire format carries.
    fn key(id: i64) -> u64 {
        id as u64
    }
}

/// Builds [`RecordIds`] from ids in any order, a bounded run at a time: each run is sorted
/// and appended to a bitmap of its own, which is then merged in. Inserted one at a time,
/// each id would shift the sorted array of a sparse container; sorted all at once, the ids
/// of a large window would be held at 8 bytes each first.
#[derive(Default)]
pub(crate) struct RecordIdsBuilder {
    ids: RecordIds,
    run: Vec<u64>,
}

impl RecordIdsBuilder {
    /// Ids sorted at a time (8 MiB).
    const RUN: usize = 1 << 20;

    pub fn finish(mut self) -> RecordIds {
        self.flush();
        self.ids
    }

    fn flush(&mut self) {
        self.run.sort_unstable();
        self.run.dedup();
        let run = RoaringTreemap::from_sorted_iter(self.run.iter().copied())
            .unwrap_or_else(|_| self.run.iter().copied().collect());
        self.run.clear();
        self.ids.0 |= run;
    }
}

impl Extend<i64> for RecordIdsBuilder {
    fn extend<T: IntoIterator<Item = i64>>(&mut self, ids: T) {
        for id in ids {
            if self.run.len() == Self::RUN {
                self.flush();
            }
            self.run.push(RecordIds::key(id));
        }
    }
}

impl Extend<RecordIds> for RecordIds {
    fn extend<T: IntoIterator<Item = RecordIds>>(&mut self, sets: T) {
        for set in sets {
            self.0 |= set.0;
        }
    }
}

pub(crate) struct KnownRecords {
    pub usage: RecordIds,
    pub quarantine: RecordIds,
    /// Of `quarantine`: records first stored as slices of a cut record (numbered from 1),
    /// whose other slices belong in `usage`. One that is not in `usage` is the half a pass
    /// left when it was stopped or refused between its `quarantine` and `usage` commits.
    pub cut_in_quarantine: RecordIds,
    /// Days before this one are loaded on demand (`None`: everything is loaded).
    loaded_from: Option<i32>,
    loaded_days: HashSet<i32>,
    lake: Lake,
    runtime: tokio::runtime::Handle,
}

impl KnownRecords {
    /// The ids of the last `window_days` days of event time in the lake.
    pub async fn load(lake: &Lake, window_days: u32) -> Result<Self, LakeError> {
        let latest = latest_day(lake).await?;
        let loaded_from = latest.map(|day| day - window_days as i32);
        let condition = loaded_from.map_or(String::new(), |day| {
            format!(" WHERE usage_date >= {}", date_literal(day))
        });
        let (usage, quarantine, cut_in_quarantine) = ids(lake, &condition).await?;
        Ok(KnownRecords {
            usage,
            quarantine,
            cut_in_quarantine,
            loaded_from,
            loaded_days: HashSet::new(),
            lake: lake.clone(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Makes sure the ids of records starting on `day` (days since 1970-01-01) are known.
    /// Blocks on the lake when they must be loaded: call it off the async runtime.
    pub fn cover(&mut self, day: i32) -> Result<(), LakeError> {
        match self.loaded_from {
            Some(from) if day < from && self.loaded_days.insert(day) => {
                let condition = format!(" WHERE usage_date = {}", date_literal(day));
                let (usage, quarantine, cut) =
                    self.runtime.block_on(ids(&self.lake, &condition))?;
                self.usage.extend([usage]);
                self.quarantine.extend([quarantine]);
                self.cut_in_quarantine.extend([cut]);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The latest `usage_date` in `usage` or `quarantine`, if either has rows: from the
/// statistics the Delta log keeps for every file (reading the column of every file would
/// grow with the lake), or from the rows where a file has none.
async fn latest_day(lake: &Lake) -> Result<Option<i32>, LakeError> {
    let mut latest = None;
    for table in [LakeTable::Usage, LakeTable::Quarantine] {
        if let Some(logged) = lake.logged_max_day(table, "usage_date").await? {
            latest = latest.max(logged);
            continue;
        }
        for batch in lake.select(table, "SELECT MAX(usage_date) FROM t").await? {
            let days = batch
                .column(0)
                .as_primitive_opt::<Date32Type>()
                .ok_or_else(|| LakeError::Corrupt {
                    table: table.name(),
                    detail: "usage_date is not a DATE".into(),
                })?;
            latest = latest.max(days.iter().flatten().max());
        }
    }
    Ok(latest)
}

async fn ids(lake: &Lake, condition: &str) -> Result<(RecordIds, RecordIds, RecordIds), LakeError> {
    let cut = match condition {
        "" => " WHERE slice >= 1 AND correction IS NULL".to_owned(),
        _ => format!("{condition} AND slice >= 1 AND correction IS NULL"),
    };
    let ids = |table, filter| async move {
        let ids: RecordIdsBuilder = lake.int64_keys(table, "record_id", filter).await?;
        Ok::<_, LakeError>(ids.finish())
    };
    Ok((
        ids(LakeTable::Usage, condition).await?,
        ids(LakeTable::Quarantine, condition).await?,
        ids(LakeTable::Quarantine, &cut).await?,
    ))
}

fn date_literal(day: i32) -> String {
    let date = chrono::DateTime::UNIX_EPOCH
        .date_naive()
        .checked_add_signed(chrono::Duration::days(i64::from(day)))
        .unwrap_or_default();
    format!("DATE '{date}'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::LakeLocation;
    use crate::pipeline::{ingest, IngestOptions};
    use crate::source::Input;
    use tokio_util::sync::CancellationToken;

    proptest::proptest! {
        /// Membership in the compressed set is membership in a plain set, for any ids in
        /// any order (negative ones and repeats included), in one set or merged sets.
        #[test]
        fn record_ids_hold_exactly_what_was_put_in(
            first in proptest::collection::vec(proptest::prelude::any::<i64>(), 0..200),
            second in proptest::collection::vec(-1000i64..1000, 0..200),
            probes in proptest::collection::vec(-1000i64..1000, 0..200),
        ) {
            let mut ids = of(&first);
            ids.extend([of(&second)]);
            let plain: HashSet<i64> = first.iter().chain(&second).copied().collect();
            for id in probes.iter().chain(&first).chain(&second) {
                proptest::prop_assert_eq!(ids.contains(*id), plain.contains(id), "id {}", id);
            }
            proptest::prop_assert_eq!(ids.len(), plain.len() as u64);
        }
    }

    fn of(ids: &[i64]) -> RecordIds {
        let mut builder = RecordIdsBuilder::default();
        builder.extend(ids.iter().copied());
        builder.finish()
    }

    /// More ids than one sorted run, in descending order and each twice: the runs merge
    /// into one set.
    #[test]
    fn ids_of_many_runs_make_one_set() {
        let most = 2 * RecordIdsBuilder::RUN as i64 + 3;
        let ids: Vec<i64> = (0..most).rev().flat_map(|id| [id * 3, id * 3]).collect();
        let set = of(&ids);
        assert_eq!(set.len(), most as u64);
        assert!((0..most).all(|id| set.contains(id * 3)));
        assert!(!set.contains(1) && !set.contains(most * 3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holds_the_window_and_loads_older_days_when_asked() {
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/sample-1");
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(LakeLocation::parse(&dir.path().display().to_string()).unwrap());
        let options = IngestOptions {
            usage: vec![Input::File(fixture.join("usage.ndjson"))],
            events: vec![Input::File(fixture.join("events.ndjson"))],
            threads: 2,
            ..IngestOptions::default()
        };
        ingest(&lake, options, CancellationToken::new())
            .await
            .unwrap();
        let all = KnownRecords::load(&lake, 10_000).await.unwrap();
        let latest_only = KnownRecords::load(&lake, 0).await.unwrap();
        let held = |k: &KnownRecords| k.usage.len() + k.quarantine.len();
        assert!(
            held(&latest_only) < held(&all),
            "the window holds fewer ids"
        );

        let days: Vec<i32> = all
            .lake
            .select(
                LakeTable::Usage,
                "SELECT DISTINCT CAST(usage_date AS INT) FROM t",
            )
            .await
            .unwrap()
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<arrow::datatypes::Int32Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        let mut lazy = latest_only;
        tokio::task::spawn_blocking(move || {
            for day in days {
                lazy.cover(day).unwrap();
            }
            assert_eq!(lazy.usage, all.usage);
            assert!(lazy.quarantine.is_subset(&all.quarantine));
        })
        .await
        .unwrap();
    }
}
