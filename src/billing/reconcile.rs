//! `simtally reconcile`: the books of one period, checked against the lake.
//!
//! - every ingest run accounted for each of its input lines, and the lake holds exactly the
//!   records and usage rows the runs wrote;
//! - each Workspace's usage charges (invoiced, adjusted later, or still pending) equal the
//!   cost of the slices attributed to it, and their sum over all Workspaces equals the cost
//!   of all attributed slices of the period, counted by a query of its own;
//! - each invoice equals its lines, each issued invoice's usage equals the slices it billed,
//!   and no slice was billed twice.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rust_decimal::Decimal;

use super::compose::compose;
use super::document::{AdjustmentKind, Invoice};
use super::read::Read;
use super::read::{LakeSnapshot, Window};
use super::{BillingError, InvoiceOptions, InvoiceRun, Period, PriceList, Provenance};
use crate::lake::{Lake, LakeTable};
use crate::pipeline::{RunLedger, RunRecord};

type Amounts = BTreeMap<String, Decimal>;

/// One comparison: what should hold, and what was found.
#[derive(Clone, Debug)]
pub struct Check {
    pub what: String,
    pub expected: String,
    pub found: String,
}

impl Check {
    pub fn holds(&self) -> bool {
        self.expected == self.found
    }
}

#[derive(Debug)]
pub struct Reconciliation {
    pub period: Period,
    /// The input accounting over every ingest run, for the reader.
    pub accounting: Vec<(String, String)>,
    pub checks: Vec<Check>,
}

impl Reconciliation {
    pub fn balances(&self) -> bool {
        self.checks.iter().all(Check::holds)
    }

    fn check(&mut self, what: impl Into<String>, expected: impl ToString, found: impl ToString) {
        self.checks.push(Check {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        });
    }
}

impl fmt::Display for Reconciliation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== input accounting (all ingest runs)")?;
        for (label, value) in &self.accounting {
            writeln!(f, "{label:<44} {value:>24}")?;
        }
        writeln!(f, "\n== checks for {}", self.period)?;
        for check in &self.checks {
            if check.holds() {
                writeln!(f, "ok        {}: {}", check.what, check.found)?;
            } else {
                writeln!(
                    f,
                    "MISMATCH  {}\n          expected {}\n          found    {}",
                    check.what, check.expected, check.found
                )?;
            }
        }
        let failed = self.checks.iter().filter(|c| !c.holds()).count();
        match failed {
            0 => write!(f, "\nbalanced: {} checks hold", self.checks.len()),
            n => write!(
                f,
                "\nNOT BALANCED: {n} of {} checks fail",
                self.checks.len()
            ),
        }
    }
}

pub async fn reconcile(
    lake: &Lake,
    period: Period,
    prices: &Path,
) -> Result<Reconciliation, BillingError> {
    let prices = PriceList::load(prices).map_err(BillingError::Prices)?;
    let snapshot = LakeSnapshot::open(lake).await?;
    let mut books = Reconciliation {
        period,
        accounting: Vec::new(),
        checks: Vec::new(),
    };
    check_runs(lake, &snapshot, &mut books).await?;
    let options = InvoiceOptions {
        period,
        workspaces: Vec::new(),
        prices: Default::default(),
        out: Default::default(),
        issue: false,
        pdf: None,
    };
    let (run, _) = compose(&snapshot, &prices, &options).await?;
    let later: Vec<Invoice> = snapshot
        .issued()
        .await?
        .into_iter()
        .map(|i| i.document)
        .filter(|d| d.period > period.to_string())
        .collect();
    let mut charged = Amounts::new();
    let billed = billed_by_own_invoice(&snapshot, period).await?;
    for chunk in run.invoices.chunks(CHUNK) {
        preload(&snapshot, chunk).await?;
        for (invoice, provenance) in chunk {
            let checked = Checked {
                invoice,
                provenance: *provenance,
                billed: billed.get(&invoice.workspace_id),
            };
            check_invoice(&snapshot, checked, &later, &mut charged, &mut books).await?;
        }
        snapshot.clear_cache();
    }
    check_drafts_beside_issued(&run, period, &mut books);
    let attributed = attributed_cost(&snapshot, &prices, period).await?;
    books.check(
        format!("usage charges of all Workspaces = cost of all attributed slices of {period}"),
        show(&attributed),
        show(&charged),
    );
    check_nothing_billed_twice(&snapshot, &mut books).await?;
    Ok(books)
}

/// Issuing seals every Workspace of the period (`invoice --due`: of the period in one time
/// zone, once it closed there): what reaches it later is an adjustment on the next
/// invoice. A draft beside issued invoices of its zone would never be billed by a
/// scheduler that issues each month once.
fn check_drafts_beside_issued(run: &InvoiceRun, period: Period, books: &mut Reconciliation) {
    let of = |p: Provenance| run.invoices.iter().filter(move |(_, v)| *v == p);
    let issued_zones: Vec<&str> = of(Provenance::IssuedBefore)
        .map(|(i, _)| i.time_zone.as_str())
        .collect();
    if !issued_zones.is_empty() {
        let drafts: Vec<&str> = of(Provenance::Draft)
            .filter(|(i, _)| issued_zones.contains(&i.time_zone.as_str()))
            .map(|(i, _)| i.invoice_id.as_str())
            .collect();
        books.check(
            format!("drafts in the issued period {period}"),
            "none",
            if drafts.is_empty() {
                "none".to_owned()
            } else {
                drafts.join(", ")
            },
        );
    }
}

/// No slice on two issued invoices, no Workspace period issued twice.
async fn check_nothing_billed_twice(
    snapshot: &LakeSnapshot,
    books: &mut Reconciliation,
) -> Result<(), BillingError> {
    if snapshot.has(LakeTable::BilledSlices) {
        let twice = snapshot
            .count(
                "SELECT COUNT(*) FROM (SELECT workspace_id, record_id, slice FROM billed_slices \
                 WHERE invoice_id IN (SELECT invoice_id FROM invoices) \
                 GROUP BY workspace_id, record_id, slice HAVING COUNT(DISTINCT invoice_id) > 1)",
            )
            .await?;
        books.check("usage slices billed by two issued invoices", 0, twice);
    }
    if snapshot.has(LakeTable::Invoices) {
        // Two issuing jobs racing for the same month would both append; this finds it.
        let doubled = snapshot
            .count(
                "SELECT COUNT(*) FROM (SELECT workspace_id, period FROM invoices \
                 GROUP BY workspace_id, period HAVING COUNT(*) > 1)",
            )
            .await?;
        books.check("Workspace periods issued more than once", 0, doubled);
    }
    Ok(())
}

/// Distinct records with at least one attributed slice, and distinct records only in
/// quarantine.
async fn records_in_lake(snapshot: &LakeSnapshot) -> Result<(i64, i64), BillingError> {
    let ids = |table: &str| format!("SELECT record_id FROM {table}");
    let attributed = match snapshot.has(LakeTable::Usage) {
        true => {
            snapshot
                .count(&format!(
                    "SELECT COUNT(DISTINCT record_id) FROM ({})",
                    ids("usage")
                ))
                .await?
        }
        false => 0,
    };
    let quarantined_only = match (
        snapshot.has(LakeTable::Usage),
        snapshot.has(LakeTable::Quarantine),
    ) {
        (true, true) => {
            snapshot
                .count(&format!(
                    "SELECT COUNT(DISTINCT record_id) FROM ({}) WHERE record_id NOT IN ({})",
                    ids("quarantine"),
                    ids("usage")
                ))
                .await?
        }
        (false, true) => {
            snapshot
                .count(&format!(
                    "SELECT COUNT(DISTINCT record_id) FROM ({})",
                    ids("quarantine")
                ))
                .await?
        }
        _ => 0,
    };
    Ok((attributed, quarantined_only))
}

/// The run records of every ingest, against what the lake holds.
async fn check_runs(
    lake: &Lake,
    snapshot: &LakeSnapshot,
    books: &mut Reconciliation,
) -> Result<(), BillingError> {
    let ledger = RunLedger::read(lake).await?;
    let sum = |pick: fn(&RunRecord) -> u64| ledger.sum(pick);
    books.check(
        "ingest runs whose input lines are not all accounted for",
        0,
        ledger.unconserved(),
    );
    let usage_rows = match snapshot.has(LakeTable::Usage) {
        true => snapshot.count("SELECT COUNT(*) FROM usage").await?,
        false => 0,
    };
    books.check(
        "usage rows = rows the ingest runs wrote",
        sum(|r| r.written_usage),
        usage_rows,
    );
    let (attributed, quarantined_only) = records_in_lake(snapshot).await?;
    books.check(
        "records in the lake (attributed or quarantined) = records the runs wrote",
        ledger.records_in_lake(),
        attributed + quarantined_only,
    );
    let lines = sum(|r| r.usage_lines);
    books.accounting = vec![
        ("ingest runs".into(), ledger.runs.len().to_string()),
        ("usage input lines".into(), lines.to_string()),
        ("  blank".into(), sum(|r| r.usage_blank).to_string()),
        (
            "  records attributed (at least one slice)".into(),
            attributed.to_string(),
        ),
        (
            "  records wholly quarantined".into(),
            quarantined_only.to_string(),
        ),
        ("  duplicates".into(), sum(|r| r.duplicates).to_string()),
        (
            "  dead letters".into(),
            sum(|r| r.usage_dead_letters).to_string(),
        ),
        (
            "event input lines".into(),
            sum(|r| r.event_lines).to_string(),
        ),
        ("  accepted".into(), sum(|r| r.events_accepted).to_string()),
        (
            "  duplicates".into(),
            sum(|r| r.event_duplicates).to_string(),
        ),
        (
            "  dead letters".into(),
            sum(|r| r.event_dead_letters).to_string(),
        ),
    ];
    Ok(())
}

/// How many invoices' windows are read at once.
const CHUNK: usize = 500;

/// Per Workspace, the cost of the period's slices its own invoice of the period billed, by
/// currency: one query for every Workspace.
async fn billed_by_own_invoice(
    snapshot: &LakeSnapshot,
    period: Period,
) -> Result<BTreeMap<i64, Amounts>, BillingError> {
    if !(snapshot.has(LakeTable::BilledSlices) && snapshot.has(LakeTable::Usage)) {
        return Ok(BTreeMap::new());
    }
    // Only a parsed period reaches the SQL.
    snapshot
        .sums_by_workspace(&format!(
            "SELECT u.workspace_id, u.currency, SUM(u.cost) FROM usage u JOIN \
             (SELECT DISTINCT workspace_id AS w, record_id AS r, slice AS s FROM billed_slices \
              WHERE period = '{period}' \
                AND invoice_id = CAST(workspace_id AS VARCHAR) || '-{period}') b \
             ON u.workspace_id = b.w AND u.record_id = b.r AND u.slice = b.s \
             GROUP BY u.workspace_id, u.currency"
        ))
        .await
}

/// Reads what checking `invoices` needs at once: the unbilled slices of the issued ones'
/// periods and the data slices of those computed now that allowances cover.
async fn preload(
    snapshot: &LakeSnapshot,
    invoices: &[(Invoice, Provenance)],
) -> Result<(), BillingError> {
    let (mut issued, mut covered) = (Vec::new(), Vec::new());
    for (invoice, provenance) in invoices {
        let window = window_of(invoice)?;
        match provenance {
            Provenance::IssuedBefore => issued.push(window),
            _ if !invoice.allowance_cover.is_empty() => covered.push(window),
            _ => {}
        }
    }
    snapshot.preload(&issued, &[Read::Unbilled]).await?;
    snapshot.preload(&covered, &[Read::DataSlices]).await
}

fn window_of(invoice: &Invoice) -> Result<Window, BillingError> {
    Window::of_invoice(
        invoice.workspace_id,
        &invoice.period_start,
        &invoice.period_end,
    )
}

/// An invoice to check, with what its own issue billed of its period.
struct Checked<'a> {
    invoice: &'a Invoice,
    provenance: Provenance,
    billed: Option<&'a Amounts>,
}

/// One invoice: its totals are its lines; its usage is the cost of the Workspace's slices
/// (for an issued one: of the slices it billed, plus later adjustments and what is pending).
async fn check_invoice(
    snapshot: &LakeSnapshot,
    Checked {
        invoice,
        provenance,
        billed,
    }: Checked<'_>,
    later: &[Invoice],
    charged: &mut Amounts,
    books: &mut Reconciliation,
) -> Result<(), BillingError> {
    let id = &invoice.invoice_id;
    books.check(
        format!("invoice {id}: totals = sum of its lines"),
        show_totals(&invoice.totals_of_lines()),
        show_totals(&invoice.totals),
    );
    let mut usage = Amounts::new();
    for line in &invoice.usage {
        *usage.entry(line.currency.clone()).or_default() += line.amount;
    }
    if provenance == Provenance::IssuedBefore && snapshot.has(LakeTable::BilledSlices) {
        books.check(
            format!("invoice {id}: usage lines = cost of the slices it billed"),
            show(billed.unwrap_or(&Amounts::new())),
            show(&usage),
        );
        for adjustment in later
            .iter()
            .filter(|d| d.workspace_id == invoice.workspace_id)
            .flat_map(|d| &d.adjustments)
            .filter(|a| a.period == invoice.period && a.kind == AdjustmentKind::Usage)
        {
            *usage.entry(adjustment.currency.clone()).or_default() += adjustment.amount;
        }
        for slice in snapshot.unbilled_slices(&window_of(invoice)?).await? {
            *usage.entry(slice.currency).or_default() += slice.cost;
        }
    }
    for (currency, amount) in usage {
        *charged.entry(currency).or_default() += amount;
    }
    if !invoice.allowance_cover.is_empty() {
        check_cover(snapshot, invoice, provenance, books).await?;
    }
    Ok(())
}

/// The allowances of an invoice cover no more than they include, and (computed now, from
/// the same lake) no more data, MB and cost per currency, than the Workspace used in the
/// period, each MB once. (What an issued invoice covered is measured against what was used
/// at its issue; later changes are the adjustments' to make.)
async fn check_cover(
    snapshot: &LakeSnapshot,
    invoice: &Invoice,
    provenance: Provenance,
    books: &mut Reconciliation,
) -> Result<(), BillingError> {
    let id = &invoice.invoice_id;
    let mut per_allowance: BTreeMap<&str, (Decimal, Decimal)> = BTreeMap::new();
    let mut covered = Amounts::new();
    let mut covered_mb = Amounts::new();
    for line in &invoice.allowance_cover {
        let entry = per_allowance.entry(&line.reference).or_default();
        entry.0 = line.included_volume_mb;
        entry.1 += line.covered_volume_mb;
        *covered.entry(line.currency.clone()).or_default() -= line.amount;
        *covered_mb.entry(line.currency.clone()).or_default() += line.covered_volume_mb;
    }
    let over: Vec<&str> = (per_allowance.iter())
        .filter(|(_, (included, used))| used > included || used.is_sign_negative())
        .map(|(reference, _)| *reference)
        .collect();
    books.check(
        format!("invoice {id}: allowances cover at most what they include"),
        "none over",
        if over.is_empty() {
            "none over".to_owned()
        } else {
            over.join(", ")
        },
    );
    if provenance == Provenance::IssuedBefore {
        return Ok(());
    }
    let (mut data_cost, mut data_mb) = (Amounts::new(), Amounts::new());
    for slice in snapshot.data_slices(&window_of(invoice)?).await? {
        *data_cost.entry(slice.currency.clone()).or_default() += slice.cost;
        *data_mb.entry(slice.currency).or_default() += slice.volume_mb;
    }
    let within = |part: &Amounts, whole: &Amounts| {
        (part.iter())
            .all(|(c, v)| !v.is_sign_negative() && *v <= whole.get(c).copied().unwrap_or_default())
    };
    books.check(
        format!("invoice {id}: covered data within the data used (MB and cost)"),
        true,
        within(&covered, &data_cost) && within(&covered_mb, &data_mb),
    );
    Ok(())
}

/// The cost of every attributed slice of the period (in each Workspace's time zone), by a
/// query per zone over all Workspaces rather than per invoice, so a Workspace the invoices
/// missed shows up as a difference.
async fn attributed_cost(
    snapshot: &LakeSnapshot,
    prices: &PriceList,
    period: Period,
) -> Result<Amounts, BillingError> {
    if !snapshot.has(LakeTable::Usage) {
        return Ok(Amounts::new());
    }
    let mut zoned: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (workspace, zone) in prices.zoned_workspaces() {
        zoned
            .entry(zone.name().to_owned())
            .or_default()
            .push(workspace);
    }
    let between = |zone: chrono_tz::Tz| {
        let (start, end) = period.bounds(zone);
        Window {
            workspace: 0,
            start,
            end,
        }
        .usage_condition()
        .replacen("workspace_id = 0 AND ", "", 1)
    };
    let list = |ids: &[i64]| {
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all_zoned: Vec<i64> = zoned.values().flatten().copied().collect();
    let mut conditions = vec![match all_zoned.is_empty() {
        true => between(chrono_tz::Tz::UTC),
        false => format!(
            "workspace_id NOT IN ({}) AND {}",
            list(&all_zoned),
            between(chrono_tz::Tz::UTC)
        ),
    }];
    for (zone, ids) in &zoned {
        let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::Tz::UTC);
        conditions.push(format!(
            "workspace_id IN ({}) AND {}",
            list(ids),
            between(zone)
        ));
    }
    let mut total = Amounts::new();
    for condition in conditions {
        let sums = snapshot
            .sums_by_currency(&format!(
                "SELECT currency, SUM(cost) FROM usage WHERE {condition} GROUP BY currency"
            ))
            .await?;
        for (currency, amount) in sums {
            *total.entry(currency).or_default() += amount;
        }
    }
    Ok(total)
}

fn show_totals(totals: &[super::CurrencyTotal]) -> String {
    let shown: Vec<String> = totals
        .iter()
        .map(|t| {
            format!(
                "{} {} (exact {}, rounding {})",
                t.currency, t.total, t.exact_total, t.rounding_difference
            )
        })
        .collect();
    shown.join(", ")
}

fn show(amounts: &Amounts) -> String {
    if amounts.is_empty() {
        return "nothing".into();
    }
    amounts
        .iter()
        .map(|(currency, amount)| format!("{currency} {amount}"))
        .collect::<Vec<_>>()
        .join(", ")
}
