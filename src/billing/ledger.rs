//! Sealing: an issued invoice is stored in `invoices` and the usage slices it billed in
//! `billed_slices`. The slices are committed first; a row there counts only once its invoice
//! is in `invoices`, so an issue interrupted between the two commits bills nothing and can
//! simply be run again.

use arrow::array::RecordBatch;

use super::compose::Seal;
use super::render::to_json;
use super::{BillingError, InvoiceRun, Provenance};
use deltalake::kernel::Transaction;

use crate::lake::crash::{CommitPoint, WritePath, ISSUE_COMMIT_ORDER};
use crate::lake::{Lake, LakeError, LakeTable, TableAppender};
use crate::tables::{self, billed_slices, invoices::InvoiceRow};

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
            billed.write(billed_rows(seal, period, batch)?).await?;
        }
        for late in &seal.late {
            let keys = billed_slices::keys(vec![late.record_id], vec![late.slice])
                .map_err(|e| bug(LakeTable::BilledSlices, e))?;
            billed
                .write(billed_rows(seal, &late.period, &keys)?)
                .await?;
        }
    }
    billed.commit(fence(run.issued_at)).await?;
    passed(1);

    let rows: Vec<InvoiceRow<'_>> = issued
        .iter()
        .map(|i| InvoiceRow {
            workspace_id: i.workspace_id,
            period: &i.period,
            invoice_id: &i.invoice_id,
            document: to_json(i),
        })
        .collect();
    let batch =
        tables::invoices::rows(&rows, run.issued_at).map_err(|e| bug(LakeTable::Invoices, e))?;
    invoices.write(batch).await?;
    invoices.commit(fence(run.issued_at)).await?;
    passed(2);
    Ok(())
}

/// `keys` (record_id, slice) as billed by the seal's invoice for `period`.
fn billed_rows(seal: &Seal, period: &str, keys: &RecordBatch) -> Result<RecordBatch, BillingError> {
    billed_slices::rows(seal.workspace, period, &seal.invoice_id, keys)
        .map_err(|e| bug(LakeTable::BilledSlices, e))
}

fn bug(table: LakeTable, e: arrow::error::ArrowError) -> BillingError {
    LakeError::Corrupt {
        table: table.name(),
        detail: format!("building rows to append (a bug in simtally): {e}"),
    }
    .into()
}
