//! Correction rows for usage already in the lake whose SIM's ownership this pass changed:
//! a transfer or registration that arrived after the usage it affects (events late by
//! hours on Kafka, or an events file ingested after the usage). See `attribute::correct`.
//!
//! Every SIM named by an ownership event read in this pass is checked, including events
//! read before: a run that stopped after committing its events but before its corrections
//! reads those events again (their position was not recorded), and the check finds the
//! corrections still missing. A check that finds nothing to change writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Int16Type, Int64Type, TimestampMicrosecondType};

use super::IngestError;
use crate::attribute::{
    correct, Correction, Destination, OwnershipBook, QuarantineReason, StoredRecord, StoredSlice,
};
use crate::domain::{
    Currency, Iccid, Money, Operator, RecordId, Text, TrafficType, UsageRecord, UtcMillis, Volume,
    Volumes, WorkspaceId,
};
use crate::lake::schema::{timestamp_type, MONEY_TYPE, VOLUME_TYPE};
use crate::lake::{Lake, LakeError, LakeTable};
use crate::pipeline::partitioned::WorkspaceDay;
use crate::tables;
use crate::tables::quarantine::QuarantineRows;
use crate::tables::usage::UsageRows;
use crate::tables::CorrectionMark;

/// SIMs whose stored usage may need correcting, with the ids of the events that name them.
pub(super) type TouchedSims = BTreeMap<Iccid, BTreeSet<String>>;

/// The columns read from both tables, in the order [`stored_records`] expects.
const COLUMNS: &str = "record_id, slice, iccid, traffic_type, start_time, end_time, \
     volume_rx, volume_tx, cost, currency, operator_name, mcc, mnc, country_name, imsi, \
     source, reverses_slice";

/// What correcting one pass's SIMs wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorrectionCounts {
    /// Records whose stored slices changed owner (or left or entered quarantine).
    pub records: u64,
    /// Rows written: reversals plus new slices.
    pub rows: u64,
}

/// Rows to append: `usage` per Workspace day, and `quarantine`.
#[derive(Default)]
pub(super) struct CorrectionRows {
    pub usage: Vec<(WorkspaceDay, RecordBatch)>,
    pub quarantine: Option<RecordBatch>,
    pub counts: CorrectionCounts,
}

/// The correction rows that make the stored usage of `touched` SIMs agree with `book`.
pub(super) async fn correction_rows(
    lake: &Lake,
    book: Arc<OwnershipBook>,
    touched: &TouchedSims,
    now: UtcMillis,
) -> Result<CorrectionRows, IngestError> {
    if touched.is_empty() {
        return Ok(CorrectionRows::default());
    }
    let iccids = touched_iccids(touched)?;
    let mut batches = Vec::new();
    for table in [LakeTable::Usage, LakeTable::Quarantine] {
        let destination = match table {
            LakeTable::Usage => "workspace_id, CAST(NULL AS VARCHAR) AS reason",
            _ => "CAST(NULL AS BIGINT) AS workspace_id, reason",
        };
        let sql = format!(
            "SELECT {COLUMNS}, {destination}, correction IS NULL AS original FROM t \
             WHERE iccid IN (SELECT iccid FROM keys)"
        );
        batches.extend(
            lake.select_with_keys(table, iccids.clone(), &sql)
                .await?
                .into_iter()
                .map(|b| (table, b)),
        );
    }
    if batches.is_empty() {
        return Ok(CorrectionRows::default());
    }
    let causes: BTreeMap<Iccid, String> = touched
        .iter()
        .map(|(iccid, ids)| (*iccid, provenance(ids)))
        .collect();
    tokio::task::spawn_blocking(move || build_rows(&batches, &book, &causes, now))
        .await
        .map_err(|e| IngestError::Internal(format!("computing corrections: {e}")))?
}

/// How many event ids a correction row names; a SIM moved thousands of times in one pass
/// must not make every row carry them all.
const NAMED_CAUSES: usize = 8;

/// The `correction` column: the ids of the events that caused it, the first
/// [`NAMED_CAUSES`] of them and how many more.
fn provenance(ids: &BTreeSet<String>) -> String {
    let named: Vec<&str> = ids.iter().take(NAMED_CAUSES).map(String::as_str).collect();
    match ids.len().saturating_sub(NAMED_CAUSES) {
        0 => named.join(","),
        more => format!("{},+{more} more", named.join(",")),
    }
}

/// The touched SIMs as a one-column table (`iccid`) to join the stored rows with.
fn touched_iccids(touched: &TouchedSims) -> Result<RecordBatch, IngestError> {
    let iccids: arrow::array::StringArray = touched.keys().map(|i| Some(i.as_str())).collect();
    RecordBatch::try_from_iter([("iccid", Arc::new(iccids) as arrow::array::ArrayRef)])
        .map_err(|e| IngestError::Internal(format!("touched SIMs as a table: {e}")))
}

fn build_rows(
    batches: &[(LakeTable, RecordBatch)],
    book: &OwnershipBook,
    causes: &BTreeMap<Iccid, String>,
    now: UtcMillis,
) -> Result<CorrectionRows, IngestError> {
    let mut records = BTreeMap::new();
    for (table, batch) in batches {
        stored_records(batch, &mut records).map_err(|detail| LakeError::Corrupt {
            table: table.name(),
            detail,
        })?;
    }
    let mut usage: BTreeMap<WorkspaceDay, UsageRows> = BTreeMap::new();
    let mut quarantine = QuarantineRows::with_capacity(now, 0);
    let mut counts = CorrectionCounts::default();
    for stored in records.values() {
        let correction = correct(stored, book).map_err(|e| LakeError::Corrupt {
            table: LakeTable::Usage.name(),
            detail: e.to_string(),
        })?;
        let Some(correction) = correction else {
            continue;
        };
        let cause = causes
            .get(&stored.record.iccid)
            .cloned()
            .unwrap_or_default();
        counts.records += 1;
        counts.rows += correction.rows() as u64;
        append(
            &correction,
            &stored.source,
            &cause,
            now,
            &mut usage,
            &mut quarantine,
        );
    }
    Ok(CorrectionRows {
        usage: usage
            .into_iter()
            .map(|(partition, mut rows)| (partition, rows.finish()))
            .collect(),
        quarantine: (!quarantine.is_empty()).then(|| quarantine.finish()),
        counts,
    })
}

fn append(
    correction: &Correction,
    source: &str,
    cause: &str,
    now: UtcMillis,
    usage: &mut BTreeMap<WorkspaceDay, UsageRows>,
    quarantine: &mut QuarantineRows,
) {
    let reversals = correction
        .reversals
        .iter()
        .map(|(slice, cancels)| (slice, Some(*cancels)));
    let slices = correction.slices.iter().map(|slice| (slice, None));
    let mut mark = CorrectionMark {
        cause: cause.to_owned(),
        reverses_slice: None,
    };
    for (slice, reverses_slice) in reversals.chain(slices) {
        mark.reverses_slice = reverses_slice;
        match slice.destination {
            Destination::Workspace(workspace) => {
                let day = WorkspaceDay {
                    workspace,
                    usage_date: slice.start.utc_days(),
                };
                usage
                    .entry(day)
                    .or_insert_with(|| UsageRows::with_capacity(now, 0))
                    .append_correction(workspace, &correction.record, slice, source, &mark);
            }
            Destination::Quarantine(reason) => {
                quarantine.append_correction(reason, &correction.record, slice, source, &mark)
            }
        }
    }
}

/// The stored slices' columns of one batch, by name: [`COLUMNS`], `workspace_id`, `reason`
/// and `original`.
struct StoredColumns {
    ids: ArrayRef,
    slices: ArrayRef,
    reverses: ArrayRef,
    workspaces: ArrayRef,
    starts: ArrayRef,
    ends: ArrayRef,
    rx: ArrayRef,
    tx: ArrayRef,
    cost: ArrayRef,
    text: BTreeMap<&'static str, StringArray>,
    originals: arrow::array::BooleanArray,
}

const TEXT_COLUMNS: [&str; 10] = [
    "iccid",
    "traffic_type",
    "currency",
    "operator_name",
    "mcc",
    "mnc",
    "country_name",
    "imsi",
    "source",
    "reason",
];

impl StoredColumns {
    fn of(batch: &RecordBatch) -> Result<Self, String> {
        let typed = |name: &str, to: &DataType| {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column {name}"))?;
            cast(column, to).map_err(|e| format!("{name}: {e}"))
        };
        let mut text = BTreeMap::new();
        for name in TEXT_COLUMNS {
            text.insert(name, tables::text(batch, name)?);
        }
        let timestamp = timestamp_type();
        Ok(StoredColumns {
            ids: typed("record_id", &DataType::Int64)?,
            slices: typed("slice", &DataType::Int16)?,
            reverses: typed("reverses_slice", &DataType::Int16)?,
            workspaces: typed("workspace_id", &DataType::Int64)?,
            starts: typed("start_time", &timestamp)?,
            ends: typed("end_time", &timestamp)?,
            rx: typed("volume_rx", &VOLUME_TYPE)?,
            tx: typed("volume_tx", &VOLUME_TYPE)?,
            cost: typed("cost", &MONEY_TYPE)?,
            text,
            originals: typed("original", &DataType::Boolean)?.as_boolean().clone(),
        })
    }

    fn text(&self, name: &str, row: usize) -> Option<&str> {
        let column = &self.text[name];
        column.is_valid(row).then(|| column.value(row))
    }

    fn id(&self, row: usize) -> i64 {
        self.ids.as_primitive::<Int64Type>().value(row)
    }

    /// Row `row` as a stored slice of record [`Self::id`].
    fn slice(&self, row: usize) -> Result<StoredSlice, String> {
        let id = self.id(row);
        let workspaces = self.workspaces.as_primitive::<Int64Type>();
        let destination = if workspaces.is_valid(row) {
            Destination::Workspace(
                WorkspaceId::new(workspaces.value(row))
                    .ok_or_else(|| format!("record {id}: bad Workspace"))?,
            )
        } else {
            Destination::Quarantine(
                QuarantineReason::from_name(self.text("reason", row).unwrap_or_default())
                    .ok_or_else(|| format!("record {id}: unknown quarantine reason"))?,
            )
        };
        let at = |column: &ArrayRef| {
            let micros = column.as_primitive::<TimestampMicrosecondType>().value(row);
            UtcMillis::from_millis(micros.div_euclid(1000))
        };
        let units = |column: &ArrayRef| column.as_primitive::<Decimal128Type>().value(row);
        let reverses = self.reverses.as_primitive::<Int16Type>();
        Ok(StoredSlice {
            slice: self.slices.as_primitive::<Int16Type>().value(row),
            destination,
            start: at(&self.starts),
            end: at(&self.ends),
            rx: Volume::from_units(units(&self.rx)),
            tx: Volume::from_units(units(&self.tx)),
            cost: Money::from_units(units(&self.cost)),
            reverses: reverses.is_valid(row).then(|| reverses.value(row)),
            original: self.originals.value(row),
        })
    }

    /// Row `row` as the record its slice belongs to (volume and cost are recomputed from
    /// the live slices by `correct`).
    fn record(&self, row: usize, slice: &StoredSlice) -> Result<UsageRecord, String> {
        let id = self.id(row);
        let optional = |name: &str| self.text(name, row).map(Text::new);
        let operator = Operator {
            name: optional("operator_name"),
            mnc: optional("mnc"),
            mcc: optional("mcc"),
            country_name: optional("country_name"),
        };
        let required = |name: &str| self.text(name, row).unwrap_or_default();
        Ok(UsageRecord {
            id: RecordId(id),
            traffic_type: TrafficType::from_name(required("traffic_type"))
                .ok_or_else(|| format!("record {id}: unknown traffic type"))?,
            start: slice.start,
            end: slice.end,
            iccid: Iccid::parse(required("iccid")).map_err(|e| format!("record {id}: {e}"))?,
            imsi: optional("imsi"),
            operator: (operator != Operator::default()).then_some(operator),
            volume: Volumes::ZERO,
            cost: Money::ZERO,
            currency: Currency::parse(required("currency"))
                .ok_or_else(|| format!("record {id}: bad currency"))?,
        })
    }
}

/// Adds the rows of `batch` ([`StoredColumns`]) to their records.
fn stored_records(
    batch: &RecordBatch,
    records: &mut BTreeMap<i64, StoredRecord>,
) -> Result<(), String> {
    let columns = StoredColumns::of(batch)?;
    for row in 0..batch.num_rows() {
        let id = columns.id(row);
        let slice = columns.slice(row)?;
        if let Some(record) = records.get_mut(&id) {
            record.slices.push(slice);
            continue;
        }
        let record = columns.record(row, &slice)?;
        let source = columns.text("source", row).unwrap_or_default().to_owned();
        records.insert(
            id,
            StoredRecord {
                record,
                source,
                slices: vec![slice],
            },
        );
    }
    Ok(())
}
