//! config: what a run needs, resolved from defaults, `SIMTALLY_*` environment variables and
//! flags (in that order of precedence, lowest first). Nothing here touches the outside.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::billing::{DueOptions, InvoiceOptions, Period};
use crate::generate::GenerateOptions;
use crate::kafka::ProduceOptions;
use crate::lake::LakeLocation;
use crate::pipeline::IngestOptions;
use crate::query::{OutputFormat, Scope};

/// The lake used when none is given: a directory beside you, no servers needed.
pub const DEFAULT_LAKE: &str = "simtally-lake";

/// One command, fully resolved and ready to run.
#[derive(Debug)]
pub enum Config {
    Ingest {
        lake: LakeLocation,
        options: IngestOptions,
    },
    Query {
        lake: LakeLocation,
        sql: String,
        format: OutputFormat,
        /// For the query's sorts, joins and aggregates (they spill beyond it).
        memory_bytes: usize,
    },
    Report {
        lake: LakeLocation,
        name: String,
        scope: Scope,
        format: OutputFormat,
        memory_bytes: usize,
    },
    ListReports,
    Generate(GenerateOptions),
    Demo {
        dir: PathBuf,
    },
    Produce(ProduceOptions),
    /// `simtally lake ...`.
    Lake {
        lake: LakeLocation,
        task: LakeTask,
    },
    Replay {
        lake: LakeLocation,
        options: IngestOptions,
    },
    /// `simtally invoice` and `simtally reconcile`.
    Billing {
        lake: LakeLocation,
        task: BillingTask,
    },
    Serve {
        lake: LakeLocation,
        options: crate::serve::ServeOptions,
    },
}

/// What `simtally lake` does to the lake's files.
#[derive(Debug)]
pub enum LakeTask {
    Compact,
    /// `simtally lake check`.
    Check,
    /// `simtally lake maintain`.
    Maintain {
        retain: std::time::Duration,
    },
    /// `simtally lake migrate`.
    Migrate,
    Vacuum {
        retain: std::time::Duration,
        dry_run: bool,
    },
}

/// What `simtally invoice` and `simtally reconcile` do.
#[derive(Debug)]
pub enum BillingTask {
    Invoice(InvoiceOptions),
    /// `invoice --due`.
    InvoiceDue(DueOptions),
    Reconcile {
        period: Period,
        prices: PathBuf,
    },
}

/// Parses `YYYY-MM-DD` for `--from`/`--to`/`--start`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("'{text}' is not a date like 2026-11-01"))
}
