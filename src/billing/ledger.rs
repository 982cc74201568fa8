//! Sealing: an issued invoice is stored in `invoices` and the usage slices it billed in
//! `billed_slices`. The slices are committed first; a row there counts only once its invoice
//! is in `invoices`, so an issue interrupted between the two commits bills nothing and can
//! simply be run again.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int16Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};

use super::compose::Seal;
use super::render::to_json;
use super::{BillingError, InvoiceRun, Provenance};
use deltalake::kernel::Transaction;

use crate::lake::crash::{CommitPoint, WritePath, ISSUE_COMMIT_ORDER};
use crate::lake::{Lake, LakeError, LakeTable, TableAppender};

/// The Delta `txn` application id every commit of an issue records: of two runs that read
/// the ledger before either committed, the second to commit conflicts and starts again.
const ISSUE_FENCE_APP_ID: &str = "simtally:issue";

fn passed(step: usize) {
    CommitPoint::new(WritePath::Issue, ISSUE_COMMIT_ORDER[step]).passed();
}

fn fence(at: chrono::DateTime<chrono::Utc>) -> Vec<Transaction> {
    vec![Transaction::new(ISSUE_FENCE_APP_ID, at.timestamp_millis())]
}

/// The two tables an issue writes, opened before the run reads the lake.
pub(super) struct Ledger {
    billed: TableAppender,
    invoices: TableAppender,
}

impl Ledger {
    /// Opens both tables and claims the ledger: an empty `invoices` commit with the fence,
    /// after which this run reads the lake. Of runs that claim before either stores its
    /// invoices, only the last to claim can store them: every earlier one's `invoices`
    /// commit, made on the version it claimed, conflicts with the later claim. So a run
    /// that stores its invoices read the lake after every other run that did.
    pub async fn open(lake: &Lake) -> Result<Self, BillingError> {
        let billed = lake.appender(LakeTable::BilledSlices).await?;
        let claim = lake.appender(LakeTable::Invoices).await?;
        let claimed = claim.commit(fence(chrono::Utc::now())).await?;
        passed(0);
        let invoices = lake.appender(LakeTable::Invoices).await?;
        if invoices.read_version() != claimed {
            return Err(LakeError::Fenced {
                table: LakeTable::Invoices.name(),
            }
            .into());
        }
        Ok(Ledger { billed, invoices })
    }

    /// Stores what `run` issued now: the billed slices, then the invoices.
    pub async fn record_issued(
        self,
        run: &InvoiceRun,
        seals: Vec<Seal>,
    ) -> Result<(), BillingError> {
        record_issued(self, run, seals).await
    }
}

async fn record_issued(
    Ledger {
        mut billed,
        mut invoices,
    }: Ledger,
    run: &InvoiceRun,
    seals: Vec<Seal>,
) -> Result<(), BillingError> {
    let issued: Vec<_> = run
        .invoices
        .iter()
        .filter(|(_, how)| *how == Provenance::IssuedNow)
        .map(|(invoice, _)| invoice)
        .collect();
    if issued.is_empty() {
        return Ok(());
    }
    for seal in &seals {
        let (period, keys) = &seal.own;
        for batch in keys {
            billed.write(billed_batch(seal, period, batch)?).await?;
        }
        for late in &seal.late {
            let keys = key_batch(vec![late.record_id], vec![late.slice])?;
            billed
                .write(billed_batch(seal, &late.period, &keys)?)
                .await?;
        }
    }
    billed.commit(fence(run.issued_at)).await?;
    passed(1);

    let n = issued.len();
    let at = run.issued_at.timestamp_micros();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            issued.iter().map(|i| i.workspace_id),
        )),
        Arc::new(StringArray::from_iter_values(
            issued.iter().map(|i| &i.period),
        )),
        Arc::new(StringArray::from_iter_values(
            issued.iter().map(|i| &i.invoice_id),
        )),
        Arc::new(TimestampMicrosecondArray::from(vec![at; n]).with_timezone("UTC")),
        Arc::new(StringArray::from_iter_values(
            issued.iter().map(|i| to_json(i)),
        )),
    ];
    let batch = RecordBatch::try_new(LakeTable::Invoices.schema(), columns)
        .map_err(|e| bug(LakeTable::Invoices, e))?;
    invoices.write(batch).await?;
    invoices.commit(fence(run.issued_at)).await?;
    passed(2);
    Ok(())
}

fn key_batch(records: Vec<i64>, slices: Vec<i16>) -> Result<RecordBatch, BillingError> {
    RecordBatch::try_from_iter([
        ("record_id", Arc::new(Int64Array::from(records)) as ArrayRef),
        ("slice", Arc::new(Int16Array::from(slices)) as ArrayRef),
    ])
    .map_err(|e| bug(LakeTable::BilledSlices, e))
}

/// `keys` (record_id, slice) with the seal's Workspace, period and invoice.
fn billed_batch(
    seal: &Seal,
    period: &str,
    keys: &RecordBatch,
) -> Result<RecordBatch, BillingError> {
    let n = keys.num_rows();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![seal.workspace; n])),
        Arc::new(StringArray::from(vec![period; n])),
        keys.column(0).clone(),
        keys.column(1).clone(),
        Arc::new(StringArray::from(vec![seal.invoice_id.as_str(); n])),
    ];
    RecordBatch::try_new(LakeTable::BilledSlices.schema(), columns)
        .map_err(|e| bug(LakeTable::BilledSlices, e))
}

fn bug(table: LakeTable, e: arrow::error::ArrowError) -> BillingError {
    LakeError::Corrupt {
        table: table.name(),
        detail: format!("building rows to append (a bug in simtally): {e}"),
    }
    .into()
}
