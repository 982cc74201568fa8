//! What billing reads from the lake: one snapshot of `usage`, `sim_events`, `billed_slices`
//! and `invoices`, so every line of a run comes from the same table versions.

mod windows;

pub(super) use windows::{Group, Read};

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Decimal128Type, Int64Type, TimestampMicrosecondType};
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::prelude::SessionContext;
use rust_decimal::Decimal;

use super::document::{Invoice, LakeVersions};
use super::period::utc_days_covering;
use super::BillingError;
use crate::attribute::SequencedEvent;
use crate::lake::{utf8_column, Lake, LakeError, LakeTable};
use crate::tables::{self, sim_events};

/// A Workspace's slice of time: usage slices starting in [start, end) belong to it.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub workspace: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// The window an invoice covers, from its stored period bounds (RFC 3339).
    pub fn of_invoice(
        workspace: i64,
        period_start: &str,
        period_end: &str,
    ) -> Result<Self, super::BillingError> {
        Ok(Window {
            workspace,
            start: parse_instant(period_start)?,
            end: parse_instant(period_end)?,
        })
    }

    /// The SQL condition on `usage` for this window.
    pub fn usage_condition(&self) -> String {
        usage_condition(&[self.workspace], self.start, self.end)
    }
}

/// The SQL condition on `usage` for `workspaces` between `start` and `end`: the clustering
/// columns (Workspace, day) first, so file, row-group and page statistics skip the rest.
pub(super) fn usage_condition(
    workspaces: &[i64],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    let (first, last) = utc_days_covering(start, end);
    let workspace = match workspaces {
        [one] => format!("workspace_id = {one}"),
        many => {
            let ids: Vec<String> = many.iter().map(i64::to_string).collect();
            format!("workspace_id IN ({})", ids.join(", "))
        }
    };
    format!(
        "{workspace} AND usage_date BETWEEN DATE '{first}' AND DATE '{last}' \
         AND start_time >= {} AND start_time < {}",
        timestamp_literal(start),
        timestamp_literal(end),
    )
}

/// A stored invoice's period bound (RFC 3339).
pub(super) fn parse_instant(text: &str) -> Result<DateTime<Utc>, BillingError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            crate::lake::LakeError::Corrupt {
                table: "invoices",
                detail: format!("period bound '{text}': {e}"),
            }
            .into()
        })
}

fn timestamp_literal(t: DateTime<Utc>) -> String {
    format!(
        "arrow_cast('{}', 'Timestamp(µs, \"UTC\")')",
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    )
}

/// A usage slice no issued invoice has billed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnbilledSlice {
    pub record_id: i64,
    pub slice: i16,
    pub iccid: String,
    pub traffic_type: String,
    pub start_time: i64,
    pub currency: String,
    pub cost: Decimal,
}

/// An issued invoice as stored in `invoices`.
#[derive(Clone, Debug)]
pub struct IssuedInvoice {
    pub document: Invoice,
}

pub struct LakeSnapshot {
    ctx: SessionContext,
    pub versions: LakeVersions,
    has_usage: bool,
    has_billed: bool,
    has_invoices: bool,
    has_quarantine: bool,
    has_directory: bool,
    /// What `preload` read for many windows at once (see `windows`).
    pub(super) cache: std::sync::Mutex<windows::Cache>,
}

impl LakeSnapshot {
    pub async fn open(lake: &Lake) -> Result<Self, BillingError> {
        let ctx = SessionContext::new();
        let usage = lake.register_table(&ctx, LakeTable::Usage, "usage").await?;
        let sim_events = lake
            .register_table(&ctx, LakeTable::SimEvents, "sim_events")
            .await?;
        if usage.is_none() && sim_events.is_none() {
            return Err(LakeError::NotFound(lake.location().to_string()).into());
        }
        let has_billed = lake
            .register_table(&ctx, LakeTable::BilledSlices, "billed_slices")
            .await?
            .is_some();
        let has_invoices = lake
            .register_table(&ctx, LakeTable::Invoices, "invoices")
            .await?
            .is_some();
        let has_quarantine = lake
            .register_table(&ctx, LakeTable::Quarantine, "quarantine")
            .await?
            .is_some();
        let has_directory = lake
            .register_table(&ctx, LakeTable::Workspaces, "workspaces")
            .await?
            .is_some();
        Ok(LakeSnapshot {
            ctx,
            cache: Default::default(),
            has_directory,
            versions: LakeVersions { usage, sim_events },
            has_usage: usage.is_some(),
            has_billed,
            has_invoices,
            has_quarantine,
        })
    }

    /// Which tables exist in the snapshot (`billed_slices` counts only with `invoices`).
    pub fn has(&self, table: LakeTable) -> bool {
        match table {
            LakeTable::Usage => self.has_usage,
            LakeTable::Quarantine => self.has_quarantine,
            LakeTable::BilledSlices => self.has_billed && self.has_invoices,
            LakeTable::Invoices => self.has_invoices,
            LakeTable::SimEvents => self.versions.sim_events.is_some(),
            LakeTable::DeadLetters
            | LakeTable::Workspaces
            | LakeTable::Memberships
            | LakeTable::TransferLog
            | LakeTable::SimEventsSnapshot => false,
        }
    }

    /// `(currency, exact sum)` rows of a query that selects exactly those two columns.
    pub async fn sums_by_currency(
        &self,
        sql: &str,
    ) -> Result<BTreeMap<String, Decimal>, BillingError> {
        let mut out = BTreeMap::new();
        for batch in &self.rows(sql).await? {
            let currency = text(LakeTable::Usage, batch, 0)?;
            for row in 0..batch.num_rows() {
                let sum = decimal(LakeTable::Usage, batch, 1, row)?;
                *out.entry(currency.value(row).to_owned()).or_default() += sum;
            }
        }
        Ok(out)
    }

    /// Per Workspace, what `sql` sums per currency: rows of (workspace_id, currency, sum).
    pub async fn sums_by_workspace(
        &self,
        sql: &str,
    ) -> Result<BTreeMap<i64, BTreeMap<String, Decimal>>, BillingError> {
        let mut out: BTreeMap<i64, BTreeMap<String, Decimal>> = BTreeMap::new();
        for batch in &self.rows(sql).await? {
            let workspaces = int64(LakeTable::Usage, batch, 0)?;
            let currency = text(LakeTable::Usage, batch, 1)?;
            for row in 0..batch.num_rows() {
                let sum = decimal(LakeTable::Usage, batch, 2, row)?;
                let of = out.entry(workspaces.value(row)).or_default();
                *of.entry(currency.value(row).to_owned()).or_default() += sum;
            }
        }
        Ok(out)
    }

    /// The single BIGINT a query returns (`COUNT(*)` and the like).
    pub async fn count(&self, sql: &str) -> Result<i64, BillingError> {
        let rows = self.rows(sql).await?;
        let mut total = 0;
        for batch in &rows {
            total += int64(LakeTable::Usage, batch, 0)?
                .iter()
                .flatten()
                .sum::<i64>();
        }
        Ok(total)
    }

    pub(super) async fn rows(&self, sql: &str) -> Result<Vec<RecordBatch>, BillingError> {
        let frame = self.ctx.sql(sql).await.map_err(BillingError::query(sql))?;
        frame.collect().await.map_err(BillingError::query(sql))
    }

    pub async fn events(&self) -> Result<Vec<SequencedEvent>, BillingError> {
        if self.versions.sim_events.is_none() {
            return Ok(Vec::new());
        }
        let rows = self
            .rows(&format!("SELECT {} FROM sim_events", sim_events::COLUMNS))
            .await?;
        sim_events::read(&rows).map_err(|detail| corrupt(LakeTable::SimEvents, detail))
    }

    /// Workspaces with usage on the UTC days from `first` to `last`.
    pub async fn workspaces_with_usage(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<i64>, BillingError> {
        if !self.has_usage {
            return Ok(Vec::new());
        }
        let (first, last) = utc_days_covering(start, end);
        let rows = self
            .rows(&format!(
                "SELECT DISTINCT workspace_id FROM usage \
                 WHERE usage_date BETWEEN DATE '{first}' AND DATE '{last}'"
            ))
            .await?;
        let mut out = Vec::new();
        for batch in &rows {
            out.extend(int64(LakeTable::Usage, batch, 0)?.iter().flatten());
        }
        Ok(out)
    }

    /// Every Workspace the directory saw created, with the instant (microseconds).
    pub async fn workspaces_created(&self) -> Result<Vec<(i64, i64)>, BillingError> {
        if !self.has_directory {
            return Ok(Vec::new());
        }
        let rows = self
            .rows(
                "SELECT workspace_id, MIN(event_time) FROM workspaces \
                 WHERE event_type = 'workspace_created' GROUP BY workspace_id",
            )
            .await?;
        let t = LakeTable::Workspaces;
        let mut out = Vec::new();
        for batch in &rows {
            let ids = int64(t, batch, 0)?;
            let times = (batch
                .column(1)
                .as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| corrupt(t, "event_time is not a timestamp".into()))?;
            out.extend((0..batch.num_rows()).map(|row| (ids.value(row), times.value(row))));
        }
        Ok(out)
    }

    /// Each Workspace's name as the directory last gave it.
    pub async fn workspace_names(&self) -> Result<BTreeMap<i64, String>, BillingError> {
        if !self.has_directory {
            return Ok(BTreeMap::new());
        }
        let rows = self
            .rows(
                "SELECT workspace_id, name FROM workspaces \
                 WHERE event_type = 'workspace_created' AND name IS NOT NULL ORDER BY seq",
            )
            .await?;
        let t = LakeTable::Workspaces;
        let mut out = BTreeMap::new();
        for batch in &rows {
            let (ids, names) = (int64(t, batch, 0)?, text(t, batch, 1)?);
            for row in 0..batch.num_rows() {
                out.insert(ids.value(row), names.value(row).to_owned());
            }
        }
        Ok(out)
    }

    /// Every issued invoice, oldest issue first.
    pub async fn issued(&self) -> Result<Vec<IssuedInvoice>, BillingError> {
        if !self.has_invoices {
            return Ok(Vec::new());
        }
        let rows = self
            .rows("SELECT document FROM invoices ORDER BY issued_at, invoice_id")
            .await?;
        let t = LakeTable::Invoices;
        let mut out = Vec::new();
        for batch in &rows {
            let documents =
                tables::invoices::documents(batch).map_err(|detail| corrupt(t, detail))?;
            for row in 0..batch.num_rows() {
                let document = serde_json::from_str(documents.value(row))
                    .map_err(|e| corrupt(t, format!("an invoice document: {e}")))?;
                out.push(IssuedInvoice { document });
            }
        }
        Ok(out)
    }
}

pub(super) fn corrupt(table: LakeTable, detail: String) -> BillingError {
    LakeError::Corrupt {
        table: table.name(),
        detail,
    }
    .into()
}

/// A string column as plain Utf8 (scans may hand back Utf8View).
pub(super) fn text(
    table: LakeTable,
    batch: &RecordBatch,
    i: usize,
) -> Result<StringArray, BillingError> {
    utf8_column(batch, i).map_err(|detail| corrupt(table, detail))
}

pub(super) fn optional(col: &StringArray, row: usize) -> Option<String> {
    col.is_valid(row).then(|| col.value(row).to_owned())
}

pub(super) fn int64(
    table: LakeTable,
    batch: &RecordBatch,
    i: usize,
) -> Result<&arrow::array::Int64Array, BillingError> {
    batch
        .column(i)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| corrupt(table, format!("column {i} is not BIGINT")))
}

/// An exact decimal from a Decimal128 column; a null sum (no rows) is zero.
pub(super) fn decimal(
    table: LakeTable,
    batch: &RecordBatch,
    i: usize,
    row: usize,
) -> Result<Decimal, BillingError> {
    let col = batch.column(i);
    let DataType::Decimal128(_, scale) = col.data_type() else {
        return Err(corrupt(table, format!("column {i} is not a decimal")));
    };
    let values = col.as_primitive::<Decimal128Type>();
    if values.is_null(row) {
        return Ok(Decimal::ZERO);
    }
    Decimal::try_from_i128_with_scale(values.value(row), (*scale).max(0) as u32)
        .map_err(|e| corrupt(table, format!("column {i}: {e}")))
}
