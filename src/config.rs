//! config: what a run needs, resolved from defaults, `SIMTALLY_*` environment variables and
//! flags (in that order of precedence, lowest first). Nothing here touches the outside.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::billing::{DueOptions, InvoiceOptions, Period};
use crate::generate::GenerateOptions;
use crate::lake::LakeLocation;
use crate::pipeline::IngestOptions;
use crate::query::{OutputFormat, Scope};
use crate::source::kafka::ProduceOptions;

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
    },
    Report {
        lake: LakeLocation,
        name: String,
        scope: Scope,
        format: OutputFormat,
    },
    ListReports,
    Generate(GenerateOptions),
    Demo {
        dir: PathBuf,
    },
    Produce(ProduceOptions),
    Compact {
        lake: LakeLocation,
    },
    /// `simtally lake check`.
    Check {
        lake: LakeLocation,
    },
    Replay {
        lake: LakeLocation,
        options: IngestOptions,
    },
    Invoice {
        lake: LakeLocation,
        options: InvoiceOptions,
    },
    /// `invoice --due`.
    InvoiceDue {
        lake: LakeLocation,
        options: DueOptions,
    },
    Reconcile {
        lake: LakeLocation,
        period: Period,
        prices: PathBuf,
    },
    Vacuum {
        lake: LakeLocation,
        retain: std::time::Duration,
        dry_run: bool,
    },
    /// `simtally lake maintain`.
    Maintain {
        lake: LakeLocation,
        retain: std::time::Duration,
    },
    /// `simtally lake migrate`.
    Migrate {
        lake: LakeLocation,
    },
    Serve {
        lake: LakeLocation,
        options: crate::serve::ServeOptions,
    },
}

/// Parses `YYYY-MM-DD` for `--from`/`--to`/`--start`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("'{text}' is not a date like 2026-11-01"))
}
