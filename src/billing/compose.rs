//! Composes each Workspace's invoice for a period: usage, SIM fees, allowances, and the
//! adjustments that sealed earlier periods have gathered since they were issued.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::RecordBatch;
use chrono::{DateTime, SecondsFormat, Utc};

use super::activity::{Activity, ChargeableSim, SimEvent};
use super::document::{
    AdjustmentKind, AdjustmentLine, AllowanceLine, Invoice, InvoiceStatus, SimFeeLine,
    TariffApplied,
};
use super::legal;
use super::prices::{PriceList, Tariff};
use super::read::{IssuedInvoice, LakeSnapshot, Window};
use super::{BillingError, InvoiceOptions, InvoiceRun, Period, Provenance};

/// What issuing an invoice marks as billed: the slices of its own period, and the late
/// slices of sealed periods it bills as adjustments.
#[derive(Debug)]
pub struct Seal {
    pub invoice_id: String,
    pub workspace: i64,
    pub own: (String, Vec<RecordBatch>),
    pub late: Vec<LateSlice>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateSlice {
    pub period: String,
    pub record_id: i64,
    pub slice: i16,
}

pub(super) async fn compose(
    snapshot: &LakeSnapshot,
    prices: &PriceList,
    options: &InvoiceOptions,
) -> Result<(InvoiceRun, Vec<Seal>), BillingError> {
    let biller = Biller::new(snapshot, prices).await?;
    let period = options.period;
    let everyone = options.workspaces.is_empty();
    let workspaces = if everyone {
        biller.candidates(period).await?
    } else {
        options.workspaces.iter().copied().collect()
    };
    let issued_at = Utc::now();
    // Numbers continue the seller's sequence as this snapshot of the ledger leaves it; the
    // ledger's fence lets only a run that read every earlier issue store its invoices.
    let seller = prices.seller();
    let issued = biller.issued.iter().map(|i| &i.document);
    let mut next = seller.map_or(1, |s| legal::last_sequence(&s.party, issued) + 1);
    let mut invoices = Vec::new();
    let mut seals = Vec::new();
    let workspaces: Vec<i64> = workspaces.into_iter().collect();
    for chunk in workspaces.chunks(PRELOAD_WORKSPACES) {
        biller.preload(chunk, period, options.issue).await?;
        let composed = compose_chunk(&biller, chunk, options, issued_at, &mut next).await?;
        invoices.extend(composed.0);
        seals.extend(composed.1);
        snapshot.clear_cache();
    }
    let run = InvoiceRun {
        invoices,
        versions: snapshot.versions,
        issued_at,
    };
    Ok((run, seals))
}

/// How many Workspaces' windows are read at once: few queries for thousands of Workspaces,
/// and a bounded share of the month in memory.
const PRELOAD_WORKSPACES: usize = 500;

type Composed = (Vec<(Invoice, Provenance)>, Vec<Seal>);

async fn compose_chunk(
    biller: &Biller<'_>,
    workspaces: &[i64],
    options: &InvoiceOptions,
    issued_at: DateTime<Utc>,
    next: &mut u64,
) -> Result<Composed, BillingError> {
    let (period, everyone) = (options.period, options.workspaces.is_empty());
    let seller = biller.prices.seller();
    let mut invoices = Vec::new();
    let mut seals = Vec::new();
    for &workspace in workspaces {
        if let Some(stored) = biller.issued_for(workspace, period) {
            invoices.push((stored.document.clone(), Provenance::IssuedBefore));
            continue;
        }
        let (mut invoice, late) = biller.draft(workspace, period).await?;
        // A draft with nothing to bill is left out; issuing seals the period for every
        // Workspace known, so even an empty one is issued (and later data for it becomes
        // an adjustment rather than a first invoice for a closed month).
        if everyone && !options.issue && is_empty(&invoice) {
            continue;
        }
        if !options.issue {
            invoices.push((invoice, Provenance::Draft));
            continue;
        }
        invoice.status = InvoiceStatus::Issued;
        invoice.issued_at = Some(timestamp(issued_at));
        if let (Some(billing), Some(seller)) = (&mut invoice.billing, seller) {
            let zone = biller.prices.settings(workspace).time_zone;
            legal::assign_numbers(billing, &seller.number_prefix, next, issued_at, zone);
        }
        let window = biller.window(workspace, period);
        seals.push(Seal {
            invoice_id: invoice.invoice_id.clone(),
            workspace,
            own: (
                period.to_string(),
                biller.snapshot.slice_keys(&window).await?,
            ),
            late,
        });
        invoices.push((invoice, Provenance::IssuedNow));
    }
    Ok((invoices, seals))
}

/// The Workspaces a run for `period` over every Workspace looks at (see
/// `Biller::candidates`).
pub(super) async fn candidates(
    snapshot: &LakeSnapshot,
    prices: &PriceList,
    period: Period,
) -> Result<BTreeSet<i64>, BillingError> {
    Biller::new(snapshot, prices)
        .await?
        .candidates(period)
        .await
}

fn is_empty(invoice: &Invoice) -> bool {
    invoice.usage.is_empty()
        && invoice.sim_fees.is_empty()
        && invoice.allowances.is_empty()
        && invoice.adjustments.is_empty()
}

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A tariff version as an invoice states it.
fn applied(tariff: &Tariff) -> TariffApplied {
    TariffApplied {
        name: tariff.name.clone(),
        effective_from: tariff.effective_from.to_string(),
        currency: tariff.currency.clone(),
        sim_fee: tariff.sim_fee,
        allowance_fee: tariff.allowance_fee,
        allowance_volume_mb: tariff.allowance_volume_mb,
        allowance_pooled: tariff.allowance_pooled,
        allowance_prorated: tariff.allowance_prorated,
    }
}

fn micros_to_text(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros).map_or_else(|| micros.to_string(), timestamp)
}

pub(super) struct Biller<'a> {
    pub(super) snapshot: &'a LakeSnapshot,
    pub(super) prices: &'a PriceList,
    pub(super) activity: Activity,
    pub(super) issued: Vec<IssuedInvoice>,
    /// Per Workspace, its issued invoices (indexes into `issued`, in issue order).
    issued_index: BTreeMap<i64, Vec<usize>>,
    /// Workspace names from the directory, for the customer on the document.
    names: BTreeMap<i64, String>,
}

impl<'a> Biller<'a> {
    async fn new(snapshot: &'a LakeSnapshot, prices: &'a PriceList) -> Result<Self, BillingError> {
        let events: Vec<SimEvent> = (snapshot.events().await?)
            .iter()
            .filter_map(SimEvent::from_stored)
            .collect();
        let issued = snapshot.issued().await?;
        let mut issued_index: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (n, invoice) in issued.iter().enumerate() {
            issued_index
                .entry(invoice.document.workspace_id)
                .or_default()
                .push(n);
        }
        Ok(Biller {
            prices,
            activity: Activity::from_events(events),
            issued,
            issued_index,
            names: snapshot.workspace_names().await?,
            snapshot,
        })
    }

    pub(super) fn window(&self, workspace: i64, period: Period) -> Window {
        let (start, end) = period.bounds(self.prices.settings(workspace).time_zone);
        Window {
            workspace,
            start,
            end,
        }
    }

    /// The Workspaces a period's run looks at: every Workspace known by the period's end
    /// (created in the directory, or owning a SIM, which any with an activated SIM did), with
    /// usage near the period, or with an issued invoice (whose period may have gathered
    /// adjustments). Issuing seals each of them, with a zero invoice where nothing is due,
    /// so that what arrives later for the period is always an adjustment.
    async fn candidates(&self, period: Period) -> Result<BTreeSet<i64>, BillingError> {
        // Time zones reach at most 14 hours either side of UTC.
        let (start, end) = period.bounds(chrono_tz::Tz::UTC);
        let margin = chrono::Duration::hours(14);
        let mut found: BTreeSet<i64> = self
            .snapshot
            .workspaces_with_usage(start - margin, end + margin)
            .await?
            .into_iter()
            .collect();
        // Known by the end of the period in the Workspace's own time zone.
        let known = |(workspace, since): (i64, i64)| {
            let end = self.window(workspace, period).end.timestamp_micros();
            (since < end).then_some(workspace)
        };
        found.extend(self.activity.first_owned().filter_map(known));
        let created = self.snapshot.workspaces_created().await?;
        found.extend(created.into_iter().filter_map(known));
        found.extend(self.issued.iter().map(|i| i.document.workspace_id));
        Ok(found)
    }

    /// Reads what drafting `workspaces` for `period` needs, for all of them at once: their
    /// usage and data slices of the period (and, to issue, its slice keys), and the unbilled
    /// slices of their sealed periods.
    async fn preload(
        &self,
        workspaces: &[i64],
        period: Period,
        issue: bool,
    ) -> Result<(), BillingError> {
        use super::read::Read;
        let open: Vec<Window> = (workspaces.iter())
            .filter(|w| self.issued_for(**w, period).is_none())
            .map(|w| self.window(*w, period))
            .collect();
        let mut reads = vec![Read::UsageLines, Read::DataSlices];
        if issue {
            reads.push(Read::SliceKeys);
        }
        self.snapshot.preload(&open, &reads).await?;
        let current = period.to_string();
        let mut sealed = Vec::new();
        for window in &open {
            for original in self
                .issued_of(window.workspace)
                .filter(|d| d.period < current)
            {
                sealed.push(Window::of_invoice(
                    window.workspace,
                    &original.period_start,
                    &original.period_end,
                )?);
            }
        }
        self.snapshot.preload(&sealed, &[Read::Unbilled]).await
    }

    fn issued_for(&self, workspace: i64, period: Period) -> Option<&IssuedInvoice> {
        let period = period.to_string();
        let of = self.issued_index.get(&workspace).into_iter().flatten();
        of.map(|n| &self.issued[*n])
            .find(|i| i.document.period == period)
    }

    /// The Workspace's issued invoices, in issue order.
    pub(super) fn issued_of(&self, workspace: i64) -> impl Iterator<Item = &Invoice> + '_ {
        let of = self.issued_index.get(&workspace).into_iter().flatten();
        of.map(|n| &self.issued[*n].document)
    }

    async fn draft(
        &self,
        workspace: i64,
        period: Period,
    ) -> Result<(Invoice, Vec<LateSlice>), BillingError> {
        let settings = self.prices.settings(workspace);
        let tariff = self
            .prices
            .tariff_on(workspace, period.first_day())
            .map_err(|detail| BillingError::Tariff {
                workspace,
                period,
                detail,
            })?;
        let window = self.window(workspace, period);
        let tariff = applied(tariff);
        let chargeable = self.chargeable(&window);
        let (sim_fees, allowances) = self.fees(&window, &tariff, &chargeable);
        let with_allowance = allowances.iter().map(|l| &l.iccid);
        let activated = Self::activations(&window, &chargeable, with_allowance);
        let sims = (allowances.iter())
            .map(|l| (l.iccid.clone(), (activated[&l.iccid], l.included_volume_mb)))
            .collect();
        let allowance_cover = self.allowance_cover(&window, &tariff, &sims).await?;
        let (adjustments, late) = self.adjustments(workspace, period).await?;
        let mut invoice = Invoice {
            invoice_id: format!("{workspace}-{period}"),
            workspace_id: workspace,
            period: period.to_string(),
            time_zone: settings.time_zone.name().to_owned(),
            period_start: timestamp(window.start),
            period_end: timestamp(window.end),
            status: InvoiceStatus::Draft,
            issued_at: None,
            computed_from: self.snapshot.versions,
            usage: self.snapshot.usage_lines(&window).await?,
            tariff,
            sim_fees,
            allowances,
            allowance_cover,
            adjustments,
            totals: Vec::new(),
            billing: None,
        };
        invoice.totals = invoice.totals_of_lines();
        invoice.billing = self.billing(&invoice);
        Ok((invoice, late))
    }

    /// The document's seller, customer and tax documents, when the billing file names a
    /// seller.
    fn billing(&self, invoice: &Invoice) -> Option<legal::Billing> {
        let seller = self.prices.seller()?;
        let settings = self.prices.settings(invoice.workspace_id);
        let issued = self.issued_of(invoice.workspace_id).collect();
        let parties = legal::Parties {
            seller,
            profile: &settings.profile,
            directory_name: self.names.get(&invoice.workspace_id).map(String::as_str),
            issued,
        };
        legal::build(invoice, &parties)
    }

    /// The SIMs ACTIVATED in the window's Workspace at any instant of it.
    fn chargeable(&self, window: &Window) -> Vec<ChargeableSim> {
        self.activity.chargeable(
            window.workspace,
            window.start.timestamp_micros(),
            window.end.timestamp_micros(),
        )
    }

    /// The tariff version that prices a SIM ACTIVATED at `activated_at`: the one in effect
    /// on the local day of its activation, or of the period's first day for a SIM activated
    /// before the period (`period_tariff`, when that is the same version).
    pub(super) fn price_at(
        &self,
        window: &Window,
        period_tariff: &TariffApplied,
        activated_at: i64,
    ) -> TariffApplied {
        let zone = self.prices.settings(window.workspace).time_zone;
        let from = activated_at.max(window.start.timestamp_micros());
        let day =
            DateTime::from_timestamp_micros(from).map(|t| t.with_timezone(&zone).date_naive());
        match day.and_then(|day| self.prices.tariff_on(window.workspace, day).ok()) {
            Some(t) if t.effective_from.to_string() != period_tariff.effective_from => applied(t),
            _ => period_tariff.clone(),
        }
    }

    /// The SIM fee and allowance lines of the SIMs ACTIVATED in the window, each priced by
    /// the tariff version at its activation (see `price_at`); a price of zero bills nothing
    /// and lists nothing.
    fn fees(
        &self,
        window: &Window,
        tariff: &TariffApplied,
        chargeable: &[ChargeableSim],
    ) -> (Vec<SimFeeLine>, Vec<AllowanceLine>) {
        let priced: Vec<(&ChargeableSim, TariffApplied)> = (chargeable.iter())
            .map(|sim| (sim, self.price_at(window, tariff, sim.activated_at)))
            .collect();
        let version = |price: &TariffApplied| {
            (price.effective_from != tariff.effective_from).then(|| price.effective_from.clone())
        };
        let fees = (priced.iter())
            .filter(|(_, price)| !price.sim_fee.is_zero())
            .map(|(sim, price)| SimFeeLine {
                iccid: sim.iccid.clone(),
                activated_at: micros_to_text(sim.activated_at),
                activation_event: sim.activation_event.clone(),
                currency: price.currency.clone(),
                amount: price.sim_fee,
                tariff_version: version(price),
            })
            .collect();
        let allowances = (priced.iter())
            .filter(|(_, price)| !price.allowance_fee.is_zero())
            .map(|(sim, price)| AllowanceLine {
                iccid: sim.iccid.clone(),
                activated_at: micros_to_text(sim.activated_at),
                included_volume_mb: price.allowance_volume_mb,
                currency: price.currency.clone(),
                amount: price.allowance_fee,
                tariff_version: version(price),
            })
            .collect();
        (fees, allowances)
    }

    /// For every sealed period of the Workspace before `period`: its usage slices no issued
    /// invoice billed yet, and the SIM fees and allowances that late events added or took
    /// away, measured against what issued invoices billed for it.
    async fn adjustments(
        &self,
        workspace: i64,
        period: Period,
    ) -> Result<(Vec<AdjustmentLine>, Vec<LateSlice>), BillingError> {
        let mut lines = Vec::new();
        let mut late = Vec::new();
        let period = period.to_string();
        let sealed = self.issued_of(workspace).filter(|d| d.period < period);
        for original in sealed {
            let window =
                Window::of_invoice(workspace, &original.period_start, &original.period_end)?;
            let unbilled = self.snapshot.unbilled_slices(&window).await?;
            let usage_changed = !unbilled.is_empty();
            for slice in unbilled {
                lines.push(AdjustmentLine {
                    period: original.period.clone(),
                    kind: AdjustmentKind::Usage,
                    reference: format!("{}/{}", slice.record_id, slice.slice),
                    description: format!(
                        "{} usage of SIM {} from {}, recorded after the period was issued",
                        slice.traffic_type,
                        slice.iccid,
                        micros_to_text(slice.start_time)
                    ),
                    currency: slice.currency,
                    amount: slice.cost,
                });
                late.push(LateSlice {
                    period: original.period.clone(),
                    record_id: slice.record_id,
                    slice: slice.slice,
                });
            }
            let chargeable = self.chargeable(&window);
            let fees = self.fee_adjustments(original, &window, &chargeable);
            let allowances_changed = fees.iter().any(|l| l.kind == AdjustmentKind::Allowance);
            // What the allowances cover changes only with the usage or the allowances.
            if usage_changed || allowances_changed {
                let cover = (self.cover_adjustments(original, &window, &chargeable, &fees)).await?;
                lines.extend(fees);
                lines.extend(cover);
            } else {
                lines.extend(fees);
            }
        }
        Ok((lines, late))
    }

    fn fee_adjustments(
        &self,
        original: &Invoice,
        window: &Window,
        sims: &[ChargeableSim],
    ) -> Vec<AdjustmentLine> {
        let tariff = &original.tariff;
        let sim_fees: Vec<(&String, rust_decimal::Decimal)> = (original.sim_fees.iter())
            .map(|l| (&l.iccid, l.amount))
            .collect();
        let allowances: Vec<(&String, rust_decimal::Decimal)> = (original.allowances.iter())
            .map(|l| (&l.iccid, l.amount))
            .collect();
        let sim_fee: fn(&TariffApplied) -> rust_decimal::Decimal = |t| t.sim_fee;
        let allowance_fee: fn(&TariffApplied) -> rust_decimal::Decimal = |t| t.allowance_fee;
        let kinds = [
            (AdjustmentKind::SimFee, "SIM fee", sim_fee, sim_fees),
            (
                AdjustmentKind::Allowance,
                "Data allowance",
                allowance_fee,
                allowances,
            ),
        ];
        let mut lines = Vec::new();
        for (kind, label, price_of, on_original) in kinds {
            // As in `fees`: each SIM at the version of its activation; zero bills nothing.
            let now: Vec<(&ChargeableSim, rust_decimal::Decimal)> = (sims.iter())
                .map(|sim| {
                    (
                        sim,
                        price_of(&self.price_at(window, tariff, sim.activated_at)),
                    )
                })
                .filter(|(_, price)| !price.is_zero())
                .collect();
            let iccids: Vec<&String> = on_original.iter().map(|(i, _)| *i).collect();
            let billed = self.billed_sims(original, kind, &iccids);
            let line = |iccid: &str, description: String, amount| AdjustmentLine {
                period: original.period.clone(),
                kind,
                reference: iccid.to_owned(),
                description,
                currency: tariff.currency.clone(),
                amount,
            };
            for (sim, price) in now.iter().filter(|(s, _)| !billed.contains(&s.iccid)) {
                let activated_at = micros_to_text(sim.activated_at);
                lines.push(line(
                    &sim.iccid,
                    format!("{label}: SIM ACTIVATED from {activated_at}, known after the period was issued"),
                    *price,
                ));
            }
            for iccid in billed
                .iter()
                .filter(|i| !now.iter().any(|(s, _)| &s.iccid == *i))
            {
                // What was billed for it: on the original, or by a later adjustment.
                let later = (self.issued_of(original.workspace_id))
                    .filter(|d| d.period > original.period)
                    .flat_map(|d| &d.adjustments)
                    .filter(|a| {
                        a.period == original.period && a.kind == kind && &a.reference == iccid
                    })
                    .map(|a| a.amount)
                    .find(|a| a.is_sign_positive());
                let billed_price = (on_original.iter().find(|(i, _)| *i == iccid))
                    .map(|(_, amount)| *amount)
                    .or(later)
                    .unwrap_or_else(|| price_of(tariff));
                lines.push(line(
                    iccid,
                    format!("{label} withdrawn: later events show the SIM was not ACTIVATED here"),
                    -billed_price,
                ));
            }
        }
        lines
    }

    /// The SIMs billed a `kind` charge for the original's period: on the original, plus
    /// and minus the adjustments later issued invoices made to it.
    pub(super) fn billed_sims(
        &self,
        original: &Invoice,
        kind: AdjustmentKind,
        on_original: &[&String],
    ) -> BTreeSet<String> {
        let mut billed: BTreeSet<String> = on_original.iter().map(|i| (*i).clone()).collect();
        let later = (self.issued_of(original.workspace_id))
            .filter(|d| d.period > original.period)
            .flat_map(|d| &d.adjustments)
            .filter(|a| a.period == original.period && a.kind == kind);
        for adjustment in later {
            if adjustment.amount.is_sign_negative() {
                billed.remove(&adjustment.reference);
            } else {
                billed.insert(adjustment.reference.clone());
            }
        }
        billed
    }
}
