//! billing: invoices per Workspace and period from the lake, sealed once issued, and the
//! reconciliation that proves every amount is accounted for.
//!
//! Reads `usage` and `sim_events`; writes `invoices` (issued documents) and `billed_slices`
//! (which invoice billed each usage slice), so that what reaches a sealed period later is
//! billed once, as an adjustment on the Workspace's next invoice.

mod activity;
mod allowances;
mod annex;
pub mod cii;
mod compose;
mod cover;
mod document;
mod due;
mod html;
mod issued;
mod ledger;
pub mod legal;
mod pdf;
mod period;
mod prices;
mod profile;
mod read;
mod reconcile;
pub mod render;
mod render_legal;
mod tax_document;

use std::path::{Path, PathBuf};

pub use activity::{ActiveSpell, Activity, Change, ChargeableSim, SimEvent};
pub use document::{
    minor_unit_digits, round_to_minor_unit, AdjustmentKind, AdjustmentLine, AllowanceCoverLine,
    CurrencyTotal, Invoice, InvoiceStatus, LakeVersions, UsageLine,
};
pub use due::{due, DueOptions, DueRun};
pub use issued::{issued_invoices, parse_invoice_id, IssuedFilter};
pub use period::Period;
pub use prices::{PriceList, Tariff, WorkspaceSettings};
pub use profile::{BillingProfile, Party, Seller, TaxTreatment};
pub use reconcile::{reconcile, Reconciliation};

use crate::lake::{retry_while_refused, Lake, LakeError, FENCED_RETRIES};

/// Errors of the billing layer. `Prices` and `Tariff` are the user's to fix (the price list
/// or the command); `Lake`, `Query` and `Output` come from storage, the query engine or the
/// file system.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("{0}")]
    Prices(String),
    #[error("Workspace {workspace}, period {period}: {detail}")]
    Tariff {
        workspace: i64,
        period: Period,
        detail: String,
    },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("query failed ({sql}): {cause}")]
    Query {
        sql: String,
        cause: Box<datafusion::error::DataFusionError>,
    },
    #[error("cannot write {path}: {cause}")]
    Output {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The PDF renderer (an outside program) failed.
    #[error("cannot print {path}: {detail}")]
    Pdf { path: PathBuf, detail: String },
}

impl BillingError {
    fn query(sql: &str) -> impl FnOnce(datafusion::error::DataFusionError) -> BillingError + '_ {
        move |e| BillingError::Query {
            sql: sql.split_whitespace().collect::<Vec<_>>().join(" "),
            cause: Box::new(e),
        }
    }
}

#[derive(Clone, Debug)]
pub struct InvoiceOptions {
    pub period: Period,
    /// Only these Workspaces; all with something to bill when empty.
    pub workspaces: Vec<i64>,
    pub prices: PathBuf,
    pub out: PathBuf,
    pub issue: bool,
    /// A headless Chromium that prints each invoice's HTML to PDF (see `pdf`).
    pub pdf: Option<PathBuf>,
}

/// What an invoice run produced, one entry per Workspace.
#[derive(Debug)]
pub struct InvoiceRun {
    pub invoices: Vec<(Invoice, Provenance)>,
    pub versions: LakeVersions,
    pub issued_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// Computed now, not issued.
    Draft,
    /// Computed now and issued by this run.
    IssuedNow,
    /// Issued earlier; reproduced from the stored document.
    IssuedBefore,
}

/// Computes (and with `issue`, seals) the period's invoices and writes each as JSON, CSV and
/// HTML into `options.out`.
pub async fn invoice(lake: &Lake, options: &InvoiceOptions) -> Result<InvoiceRun, BillingError> {
    let prices = PriceList::load(&options.prices).map_err(BillingError::Prices)?;
    // Another issue sealed first: read the lake again and reproduce what it sealed.
    let refused = |e: &BillingError| matches!(e, BillingError::Lake(e) if e.is_concurrent_commit());
    let attempt = || invoice_once(lake, options, &prices);
    let (run, _) = retry_while_refused(FENCED_RETRIES, refused, attempt).await;
    let run = run?;
    // The annexes of up to ANNEX_CHUNK invoices at a time: one read for many Workspaces,
    // and only that many in memory.
    let snapshot = read::LakeSnapshot::open(lake).await?;
    for chunk in run.invoices.chunks(ANNEX_CHUNK) {
        let invoices: Vec<&Invoice> = chunk.iter().map(|(i, _)| i).collect();
        let mut annexes = annex::sim_usage(&snapshot, &invoices).await?;
        for invoice in invoices {
            let usage = annexes.remove(&invoice.invoice_id).unwrap_or_default();
            write_files(&options.out, invoice, annex::to_annex_csv(invoice, &usage))?;
            if let Some(renderer) = &options.pdf {
                print_pdf(renderer, &options.out, invoice).await?;
            }
        }
    }
    Ok(run)
}

/// Prints `invoice`'s HTML to PDF: a draft's every time, an issued one's once.
async fn print_pdf(renderer: &Path, out: &Path, invoice: &Invoice) -> Result<(), BillingError> {
    let stem = out.join(&invoice.invoice_id);
    let pdf = stem.with_extension("pdf");
    if invoice.status == InvoiceStatus::Draft || !pdf.exists() {
        pdf::print(renderer, &stem.with_extension("html"), &pdf).await?;
    }
    Ok(())
}

/// How many invoices' annexes are read at once.
const ANNEX_CHUNK: usize = 500;

/// The per-SIM annex of `invoice` as CSV (see `annex`).
pub async fn annex(lake: &Lake, invoice: &Invoice) -> Result<String, BillingError> {
    let snapshot = read::LakeSnapshot::open(lake).await?;
    let mut usage = annex::sim_usage(&snapshot, &[invoice]).await?;
    let rows = usage.remove(&invoice.invoice_id).unwrap_or_default();
    Ok(annex::to_annex_csv(invoice, &rows))
}

/// One attempt: with `issue`, the ledger's tables are opened (their versions fixed) before
/// anything is read, so a run that issued since makes this one's commits conflict
/// (`ledger`), and it starts again from what that run sealed.
async fn invoice_once(
    lake: &Lake,
    options: &InvoiceOptions,
    prices: &PriceList,
) -> Result<InvoiceRun, BillingError> {
    let ledger = match options.issue {
        true => Some(ledger::Ledger::open(lake).await?),
        false => None,
    };
    let snapshot = read::LakeSnapshot::open(lake).await?;
    let (run, seals) = compose::compose(&snapshot, prices, options).await?;
    if let Some(ledger) = ledger {
        ledger.record_issued(&run, seals).await?;
    }
    Ok(run)
}

fn write_files(dir: &Path, invoice: &Invoice, annex: String) -> Result<(), BillingError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |cause: std::io::Error| BillingError::Output { path, cause }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    let id = &invoice.invoice_id;
    let mut files = vec![
        (format!("{id}.json"), render::to_json(invoice)),
        (format!("{id}.csv"), render::to_csv(invoice)),
        (format!("{id}.html"), render::to_html(invoice)),
        (format!("{id}.sims.csv"), annex),
    ];
    files.extend(e_invoices(invoice));
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(failed(&path))?;
    }
    Ok(())
}

/// Each tax document of `invoice` as CII XML, named `{invoice_id}.xml` or, when the invoice
/// bills several currencies, `{invoice_id}-{currency}.xml`.
pub fn e_invoices(invoice: &Invoice) -> Vec<(String, String)> {
    let Some(billing) = &invoice.billing else {
        return Vec::new();
    };
    let one = billing.documents.len() == 1;
    (billing.documents.iter())
        .map(|document| {
            let name = match one {
                true => format!("{}.xml", invoice.invoice_id),
                false => format!("{}-{}.xml", invoice.invoice_id, document.currency),
            };
            (name, cii::to_cii(invoice, billing, document))
        })
        .collect()
}
