//! `simtally invoice --due`: the one command a nightly scheduler runs. It issues each
//! Workspace's last month once that month has closed in the Workspace's time zone (and a
//! grace period for late records has passed), and writes drafts for the month in progress.
//!
//! Safe to run twice or at the same time: issuing an issued month reproduces it, and two
//! runs issuing at once are fenced like any issue (the later one reads what the first
//! sealed and reproduces it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::read::LakeSnapshot;
use super::{compose, invoice, BillingError, InvoiceOptions, InvoiceRun, Period, PriceList};
use crate::lake::Lake;

#[derive(Clone, Debug)]
pub struct DueOptions {
    pub prices: PathBuf,
    /// Invoices go to `out/<period>/`.
    pub out: PathBuf,
    pub now: DateTime<Utc>,
    /// How long after a month closes its invoices wait for late records.
    pub grace: chrono::Duration,
    /// Print each invoice to PDF with this renderer (see `InvoiceOptions::pdf`).
    pub pdf: Option<PathBuf>,
}

/// What a run did: the months it issued (for which Workspaces), and the drafts.
#[derive(Debug)]
pub struct DueRun {
    pub issued: Vec<(Period, InvoiceRun)>,
    pub drafts: (Period, InvoiceRun),
}

pub async fn due(lake: &Lake, options: &DueOptions) -> Result<DueRun, BillingError> {
    let prices = PriceList::load(&options.prices).map_err(BillingError::Prices)?;
    // By name: each zone once, in a stable order.
    let mut zones: BTreeMap<&str, Tz> = (prices.zoned_workspaces())
        .map(|(_, zone)| (zone.name(), zone))
        .collect();
    zones.insert(Tz::UTC.name(), Tz::UTC);
    let closed_by = options.now - options.grace;
    let mut issued = Vec::new();
    for zone in zones.into_values() {
        let period = Period::at(closed_by, zone).previous();
        let snapshot = LakeSnapshot::open(lake).await?;
        let workspaces: Vec<i64> = (compose::candidates(&snapshot, &prices, period).await?)
            .into_iter()
            .filter(|w| prices.settings(*w).time_zone == zone)
            .collect();
        if workspaces.is_empty() {
            continue;
        }
        let run = invoice(lake, &options_for(options, period, workspaces, true)).await?;
        issued.push((period, run));
    }
    let current = Period::at(options.now, Tz::UTC);
    let drafts = invoice(lake, &options_for(options, current, Vec::new(), false)).await?;
    Ok(DueRun {
        issued,
        drafts: (current, drafts),
    })
}

fn options_for(
    options: &DueOptions,
    period: Period,
    workspaces: Vec<i64>,
    issue: bool,
) -> InvoiceOptions {
    InvoiceOptions {
        period,
        workspaces,
        prices: options.prices.clone(),
        out: options.out.join(period.to_string()),
        issue,
        pdf: options.pdf.clone(),
    }
}
