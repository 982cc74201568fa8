//! What billing reads per Workspace window (usage lines, data slices, unbilled slices, slice
//! keys), read for many Workspaces at once: one query per distinct window bounds and kind,
//! `workspace_id IN (...)`, split by Workspace into a cache the per-window readers take from.
//! A run over 3,000 Workspaces reads the month a few times, not a few times per Workspace.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int16Type, TimestampMicrosecondType};
use chrono::{DateTime, Utc};

use super::{corrupt, decimal, int64, optional, text, LakeSnapshot, UnbilledSlice, Window};
use crate::billing::cover::DataSlice;
use crate::billing::document::UsageLine;
use crate::billing::BillingError;
use crate::lake::schema::counted_slices_sql;
use crate::lake::LakeTable;

/// What a preload reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    UsageLines,
    DataSlices,
    Unbilled,
    SliceKeys,
}

type Key = (i64, i64, i64);

fn key(window: &Window) -> Key {
    (
        window.workspace,
        window.start.timestamp_micros(),
        window.end.timestamp_micros(),
    )
}

/// Preloaded results, taken (removed) by the reader that needs them.
#[derive(Default)]
pub struct Cache {
    usage: HashMap<Key, Vec<UsageLine>>,
    data: HashMap<Key, Vec<DataSlice>>,
    unbilled: HashMap<Key, Vec<UnbilledSlice>>,
    keys: HashMap<Key, Vec<RecordBatch>>,
}

/// Windows with the same bounds, for one query.
pub struct Group {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    workspaces: Vec<i64>,
}

impl Group {
    /// `window`'s bounds for `workspaces`.
    pub fn of(window: &Window, workspaces: Vec<i64>) -> Self {
        Group {
            start: window.start,
            end: window.end,
            workspaces,
        }
    }

    /// The SQL condition on `usage` for the group.
    pub fn condition(&self) -> String {
        super::usage_condition(&self.workspaces, self.start, self.end)
    }

    fn key(&self, workspace: i64) -> Key {
        (
            workspace,
            self.start.timestamp_micros(),
            self.end.timestamp_micros(),
        )
    }
}

fn groups(windows: &[Window]) -> Vec<Group> {
    let mut by_bounds: BTreeMap<(DateTime<Utc>, DateTime<Utc>), Vec<i64>> = BTreeMap::new();
    for w in windows {
        by_bounds
            .entry((w.start, w.end))
            .or_default()
            .push(w.workspace);
    }
    (by_bounds.into_iter())
        .map(|((start, end), mut workspaces)| {
            workspaces.sort_unstable();
            workspaces.dedup();
            Group {
                start,
                end,
                workspaces,
            }
        })
        .collect()
}

impl LakeSnapshot {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding it left only a cache behind: its contents stay usable.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops what was preloaded and not taken.
    pub fn clear_cache(&self) {
        *self.cache() = Cache::default();
    }

    /// Reads `reads` for every window at once (see the module's note).
    pub async fn preload(&self, windows: &[Window], reads: &[Read]) -> Result<(), BillingError> {
        for group in groups(windows) {
            for read in reads {
                match read {
                    Read::UsageLines => {
                        let found = self.usage_lines_of(&group).await?;
                        fill(&mut self.cache().usage, &group, found);
                    }
                    Read::DataSlices => {
                        let found = self.data_slices_of(&group).await?;
                        fill(&mut self.cache().data, &group, found);
                    }
                    Read::Unbilled => {
                        let found = self.unbilled_of(&group).await?;
                        fill(&mut self.cache().unbilled, &group, found);
                    }
                    Read::SliceKeys => {
                        let found = self.slice_keys_of(&group).await?;
                        fill(&mut self.cache().keys, &group, found);
                    }
                }
            }
        }
        Ok(())
    }

    /// Usage in the window by traffic type, network and currency.
    pub async fn usage_lines(&self, window: &Window) -> Result<Vec<UsageLine>, BillingError> {
        if let Some(found) = self.cache().usage.remove(&key(window)) {
            return Ok(found);
        }
        self.preload(&[*window], &[Read::UsageLines]).await?;
        Ok(self.cache().usage.remove(&key(window)).unwrap_or_default())
    }

    /// The data slices of the window that count (not reversed by a correction), for the
    /// allowances to cover.
    pub async fn data_slices(&self, window: &Window) -> Result<Vec<DataSlice>, BillingError> {
        if let Some(found) = self.cache().data.remove(&key(window)) {
            return Ok(found);
        }
        self.preload(&[*window], &[Read::DataSlices]).await?;
        Ok(self.cache().data.remove(&key(window)).unwrap_or_default())
    }

    /// The slices of the window that no issued invoice has billed, by record and slice.
    pub async fn unbilled_slices(
        &self,
        window: &Window,
    ) -> Result<Vec<UnbilledSlice>, BillingError> {
        if let Some(found) = self.cache().unbilled.remove(&key(window)) {
            return Ok(found);
        }
        self.preload(&[*window], &[Read::Unbilled]).await?;
        Ok(self
            .cache()
            .unbilled
            .remove(&key(window))
            .unwrap_or_default())
    }

    /// `(record_id, slice)` of every slice in the window, to record as billed.
    pub async fn slice_keys(&self, window: &Window) -> Result<Vec<RecordBatch>, BillingError> {
        if let Some(found) = self.cache().keys.remove(&key(window)) {
            return Ok(found);
        }
        self.preload(&[*window], &[Read::SliceKeys]).await?;
        Ok(self.cache().keys.remove(&key(window)).unwrap_or_default())
    }

    async fn usage_lines_of(
        &self,
        group: &Group,
    ) -> Result<BTreeMap<i64, Vec<UsageLine>>, BillingError> {
        let mut out: BTreeMap<i64, Vec<UsageLine>> = BTreeMap::new();
        if !self.has(LakeTable::Usage) {
            return Ok(out);
        }
        let sql = format!(
            "SELECT workspace_id, traffic_type, operator_name, mcc, mnc, currency, \
                    COUNT(DISTINCT record_id), COUNT(*), SUM(volume_total), SUM(cost) \
             FROM {} WHERE {} \
             GROUP BY workspace_id, traffic_type, operator_name, mcc, mnc, currency \
             ORDER BY workspace_id, traffic_type, operator_name, mcc, mnc, currency",
            counted_slices_sql("usage"),
            group.condition()
        );
        let t = LakeTable::Usage;
        for batch in &self.rows(&sql).await? {
            let workspaces = int64(t, batch, 0)?;
            let (kind, op, mcc, mnc, cur) = (
                text(t, batch, 1)?,
                text(t, batch, 2)?,
                text(t, batch, 3)?,
                text(t, batch, 4)?,
                text(t, batch, 5)?,
            );
            let (records, slices) = (int64(t, batch, 6)?, int64(t, batch, 7)?);
            for row in 0..batch.num_rows() {
                out.entry(workspaces.value(row))
                    .or_default()
                    .push(UsageLine {
                        traffic_type: kind.value(row).to_owned(),
                        operator: optional(&op, row),
                        mcc: optional(&mcc, row),
                        mnc: optional(&mnc, row),
                        currency: cur.value(row).to_owned(),
                        records: records.value(row).max(0) as u64,
                        slices: slices.value(row).max(0) as u64,
                        volume: decimal(t, batch, 8, row)?,
                        amount: decimal(t, batch, 9, row)?,
                    });
            }
        }
        Ok(out)
    }

    async fn data_slices_of(
        &self,
        group: &Group,
    ) -> Result<BTreeMap<i64, Vec<DataSlice>>, BillingError> {
        let mut out: BTreeMap<i64, Vec<DataSlice>> = BTreeMap::new();
        if !self.has(LakeTable::Usage) {
            return Ok(out);
        }
        let sql = format!(
            "SELECT workspace_id, iccid, start_time, record_id, slice, volume_total, currency, cost \
             FROM {} WHERE {} AND traffic_type = 'data'",
            counted_slices_sql("usage"),
            group.condition()
        );
        let t = LakeTable::Usage;
        for batch in &self.rows(&sql).await? {
            let workspaces = int64(t, batch, 0)?;
            let (iccids, currencies, ids) =
                (text(t, batch, 1)?, text(t, batch, 6)?, int64(t, batch, 3)?);
            let starts = timestamps(t, batch, 2, "start_time")?;
            let slices = smallints(t, batch, 4)?;
            for row in 0..batch.num_rows() {
                out.entry(workspaces.value(row))
                    .or_default()
                    .push(DataSlice {
                        iccid: iccids.value(row).to_owned(),
                        start: starts.value(row),
                        record_id: ids.value(row),
                        slice: slices.value(row),
                        volume_mb: decimal(t, batch, 5, row)?,
                        currency: currencies.value(row).to_owned(),
                        cost: decimal(t, batch, 7, row)?,
                    });
            }
        }
        Ok(out)
    }

    async fn unbilled_of(
        &self,
        group: &Group,
    ) -> Result<BTreeMap<i64, Vec<UnbilledSlice>>, BillingError> {
        let mut out: BTreeMap<i64, Vec<UnbilledSlice>> = BTreeMap::new();
        if !self.has(LakeTable::Usage) {
            return Ok(out);
        }
        let ids: Vec<String> = group.workspaces.iter().map(i64::to_string).collect();
        // A billed row counts only once its invoice is issued: `billed_slices` is committed
        // first, so an issue interrupted between the two commits leaves rows that bill nothing.
        let billed = match self.has(LakeTable::BilledSlices) {
            true => format!(
                "LEFT ANTI JOIN (SELECT workspace_id, record_id, slice FROM billed_slices \
                 WHERE workspace_id IN ({}) AND invoice_id IN (SELECT invoice_id FROM invoices)) b \
                 ON u.workspace_id = b.workspace_id AND u.record_id = b.record_id \
                 AND u.slice = b.slice",
                ids.join(", ")
            ),
            false => String::new(),
        };
        let sql = format!(
            "SELECT u.workspace_id, u.record_id, u.slice, u.iccid, u.traffic_type, u.start_time, \
                    u.currency, u.cost \
             FROM (SELECT * FROM usage WHERE {}) u {billed} \
             ORDER BY u.workspace_id, u.record_id, u.slice",
            group.condition()
        );
        let t = LakeTable::Usage;
        for batch in &self.rows(&sql).await? {
            let (workspaces, ids) = (int64(t, batch, 0)?, int64(t, batch, 1)?);
            let (iccids, kinds, currencies) =
                (text(t, batch, 3)?, text(t, batch, 4)?, text(t, batch, 6)?);
            let slices = smallints(t, batch, 2)?;
            let starts = timestamps(t, batch, 5, "start_time")?;
            for row in 0..batch.num_rows() {
                out.entry(workspaces.value(row))
                    .or_default()
                    .push(UnbilledSlice {
                        record_id: ids.value(row),
                        slice: slices.value(row),
                        iccid: iccids.value(row).to_owned(),
                        traffic_type: kinds.value(row).to_owned(),
                        start_time: starts.value(row),
                        currency: currencies.value(row).to_owned(),
                        cost: decimal(t, batch, 7, row)?,
                    });
            }
        }
        Ok(out)
    }

    async fn slice_keys_of(
        &self,
        group: &Group,
    ) -> Result<BTreeMap<i64, Vec<RecordBatch>>, BillingError> {
        let mut out: BTreeMap<i64, Vec<RecordBatch>> = BTreeMap::new();
        if !self.has(LakeTable::Usage) {
            return Ok(out);
        }
        let sql = format!(
            "SELECT workspace_id, record_id, slice FROM usage WHERE {} ORDER BY workspace_id",
            group.condition()
        );
        let t = LakeTable::Usage;
        for batch in self.rows(&sql).await? {
            let workspaces = int64(t, &batch, 0)?.clone();
            let keys = batch
                .project(&[1, 2])
                .map_err(|e| corrupt(t, e.to_string()))?;
            // Rows come ordered by Workspace: each run of one is a zero-copy slice.
            let mut from = 0;
            while from < keys.num_rows() {
                let workspace = workspaces.value(from);
                let to = (from..keys.num_rows())
                    .find(|row| workspaces.value(*row) != workspace)
                    .unwrap_or_else(|| keys.num_rows());
                out.entry(workspace)
                    .or_default()
                    .push(keys.slice(from, to - from));
                from = to;
            }
        }
        Ok(out)
    }
}

/// Puts each group Workspace's results in the cache, an empty list where it had none.
fn fill<T>(cache: &mut HashMap<Key, Vec<T>>, group: &Group, mut found: BTreeMap<i64, Vec<T>>) {
    for workspace in &group.workspaces {
        let rows = found.remove(workspace).unwrap_or_default();
        cache.insert(group.key(*workspace), rows);
    }
}

fn timestamps<'a>(
    t: LakeTable,
    batch: &'a RecordBatch,
    i: usize,
    name: &str,
) -> Result<&'a arrow::array::TimestampMicrosecondArray, BillingError> {
    (batch
        .column(i)
        .as_primitive_opt::<TimestampMicrosecondType>())
    .ok_or_else(|| corrupt(t, format!("{name} is not a timestamp")))
}

fn smallints(
    t: LakeTable,
    batch: &RecordBatch,
    i: usize,
) -> Result<&arrow::array::Int16Array, BillingError> {
    (batch.column(i).as_primitive_opt::<Int16Type>())
        .ok_or_else(|| corrupt(t, "slice is not SMALLINT".into()))
}
