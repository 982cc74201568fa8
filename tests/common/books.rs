//! Books for billing tests: a lake in a temporary directory fed NDJSON lines, with a price
//! list beside it, and what the tests read of the invoices.

use std::path::PathBuf;

use rust_decimal::Decimal;
use simtally::billing::{invoice, reconcile, Invoice, InvoiceOptions, InvoiceRun, Period};
use simtally::lake::Lake;

pub fn d(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

/// The tariff most billing tests price with (1.50 a SIM and month, 4.00 an allowance of
/// 500 MB), as the first lines of a price list: `concat!(crate::standard_tariff!(), "...")`.
#[macro_export]
macro_rules! standard_tariff {
    () => {
        r#"
[[tariff]]
name = "default"
effective_from = "2026-01-01"
currency = "EUR"
sim_fee = "1.50"
allowance_fee = "4.00"
allowance_volume_mb = "500"
"#
    };
}

/// A lake in a temporary directory, fed NDJSON lines, with a price list beside it.
pub struct Books {
    pub dir: tempfile::TempDir,
    pub lake: Lake,
    batches: usize,
}

impl Books {
    pub fn new(prices: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prices.toml"), prices).unwrap();
        let lake = super::local_lake(&dir);
        Books {
            dir,
            lake,
            batches: 0,
        }
    }

    pub async fn ingest(&mut self, usage: &[String], events: &[String]) {
        self.batches += 1;
        let write = |name: &str, lines: &[String]| {
            let path = self
                .dir
                .path()
                .join(format!("{name}-{}.ndjson", self.batches));
            std::fs::write(&path, lines.join("\n") + "\n").unwrap();
            path
        };
        let (u, e) = (write("usage", usage), write("events", events));
        let summary = super::ingest_files(&self.lake, &[u], &[e]).await;
        assert!(summary.usage.is_conserved());
    }

    pub fn options(&self, period: &str, issue: bool) -> InvoiceOptions {
        InvoiceOptions {
            period: period.parse().unwrap(),
            workspaces: Vec::new(),
            prices: self.dir.path().join("prices.toml"),
            out: self.out(period),
            issue,
            pdf: None,
        }
    }

    pub fn out(&self, period: &str) -> PathBuf {
        self.dir.path().join("invoices").join(period)
    }

    pub async fn draft(&self, period: &str) -> InvoiceRun {
        invoice(&self.lake, &self.options(period, false))
            .await
            .unwrap()
    }

    pub async fn issue(&self, period: &str) -> InvoiceRun {
        invoice(&self.lake, &self.options(period, true))
            .await
            .unwrap()
    }

    pub async fn balances(&self, period: &str) -> bool {
        let books = reconcile(
            &self.lake,
            period.parse::<Period>().unwrap(),
            &self.dir.path().join("prices.toml"),
        )
        .await
        .unwrap();
        if !books.balances() {
            eprintln!("{books}");
        }
        books.balances()
    }
}

pub fn of(run: &InvoiceRun, workspace: i64) -> Option<&Invoice> {
    run.invoices
        .iter()
        .map(|(i, _)| i)
        .find(|i| i.workspace_id == workspace)
}

pub fn usage_total(invoice: &Invoice) -> Decimal {
    invoice.usage.iter().map(|l| l.amount).sum()
}

pub fn fee_sims(invoice: &Invoice) -> Vec<&str> {
    invoice.sim_fees.iter().map(|l| l.iccid.as_str()).collect()
}
