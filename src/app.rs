//! The library entry point: `run(config, shutdown)`. `main.rs` only parses arguments.

use std::io::Write;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use crate::billing::{due, invoice, reconcile, BillingError, InvoiceOptions, Period, Provenance};
use crate::config::{BillingTask, Config, LakeTask};
use crate::generate::{generate, GenerateError, GenerateOptions};
use crate::kafka::{produce, KafkaError};
use crate::lake::{Lake, LakeLocation};
use crate::pipeline::{
    follow, ingest, replay_dead_letters, IngestError, IngestOptions, RunSummary,
};
use crate::query::{
    check_lake, open_session, run_report, run_sql, session_memory_bytes, write_batches,
    OutputFormat, QueryError, Report, Scope, REPORTS,
};
use crate::source::Input;

/// Why a command failed; `main` prints it as one message and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    #[error("the server stopped: {0}")]
    Served(std::io::Error),
    #[error("the lake breaks its invariants (see the failed checks above)")]
    LakeCheckFailed,
    #[error("the books of {0} do not balance (see the mismatches above)")]
    NotBalanced(Period),
    #[error("the run summary does not account for every input line (a bug in simtally):\n{0}")]
    NotConserved(Box<RunSummary>),
}

pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), RunError> {
    match config {
        Config::Ingest { lake, options } => match options.kafka.clone() {
            Some(kafka) if kafka.follow.is_some() => {
                let lake = Lake::new(lake);
                let summary = follow(&lake, &options, &kafka, shutdown).await?;
                println!("{summary}");
            }
            _ => {
                let summary = ingest_and_check(&Lake::new(lake), options, shutdown).await?;
                println!("{summary}");
            }
        },
        Config::Query {
            lake,
            sql,
            format,
            memory_bytes,
        } => {
            let ctx = open_session(&Lake::new(lake), &Scope::default(), memory_bytes).await?;
            let batches = run_sql(&ctx, &sql).await?;
            print(&batches, format)?;
        }
        Config::Report {
            lake,
            name,
            scope,
            format,
            memory_bytes,
        } => {
            let report = Report::find(&name).ok_or(QueryError::UnknownReport(name))?;
            let batches = run_report(&Lake::new(lake), report, &scope, memory_bytes).await?;
            print(&batches, format)?;
        }
        Config::ListReports => {
            for report in REPORTS {
                println!("{:<18} {}", report.name, report.description());
            }
        }
        Config::Generate(options) => {
            let generated = generate(&options)?;
            println!(
                "wrote {} and {} ({} lines, {} valid records, {} duplicates, {} damaged) and expected.json",
                generated.usage.display(),
                generated.events.display(),
                generated.expected.input_lines,
                generated.expected.valid_records,
                generated.expected.duplicates,
                generated.expected.dead_letters,
            );
        }
        Config::Demo { dir } => demo(&dir, shutdown).await?,
        Config::Replay { lake, options } => {
            let summary = replay_dead_letters(&Lake::new(lake), &options, shutdown).await?;
            println!("{summary}");
        }
        Config::Lake { lake, task } => lake_command(Lake::new(lake), task).await?,
        Config::Billing { lake, task } => billing_command(Lake::new(lake), task).await?,
        Config::Serve { lake, options } => serve(lake, options, shutdown).await?,
        Config::Produce(options) => {
            let (usage, events) = (options.topics.usage.clone(), options.topics.events.clone());
            let sent = produce(options).await?;
            println!(
                "produced {} usage records to {usage} and {} events to {events}",
                sent.usage_messages, sent.event_messages
            );
        }
    }
    Ok(())
}

/// `simtally lake ...`: maintenance of the lake's files and its check.
async fn lake_command(lake: Lake, task: LakeTask) -> Result<(), RunError> {
    match task {
        LakeTask::Compact => {
            for table in lake.compact().await.map_err(QueryError::from)? {
                println!(
                    "{:<13} {} files merged into {}",
                    table.table, table.files_removed, table.files_added
                );
            }
        }
        LakeTask::Check => {
            let checked = check_lake(&lake).await?;
            print!("{checked}");
            if !checked.passes() {
                return Err(RunError::LakeCheckFailed);
            }
        }
        LakeTask::Maintain { retain } => {
            let done = lake.maintain(retain).await.map_err(QueryError::from)?;
            for table in &done.compacted {
                println!(
                    "{:<13} {} files merged into {}",
                    table.table, table.files_removed, table.files_added
                );
            }
            println!("checkpointed: {}", done.checkpointed.join(", "));
            for table in &done.vacuumed {
                println!("{:<13} deleted {} files", table.table, table.files_removed);
            }
        }
        LakeTask::Migrate => {
            let done = lake.migrate().await.map_err(QueryError::from)?;
            if done.is_empty() {
                println!("every table already has this simtally's layout");
            }
            for table in done {
                println!(
                    "{:<13} rewritten: {} files into {}",
                    table.table, table.files_removed, table.files_added
                );
            }
        }
        LakeTask::Vacuum { retain, dry_run } => {
            let done = lake.vacuum(retain, dry_run).await;
            for table in done.map_err(QueryError::from)? {
                let verb = if dry_run { "would delete" } else { "deleted" };
                println!("{:<13} {verb} {} files", table.table, table.files_removed);
            }
        }
    }
    Ok(())
}

/// `simtally invoice` and `simtally reconcile`.
async fn billing_command(lake: Lake, task: BillingTask) -> Result<(), RunError> {
    match task {
        BillingTask::Invoice(options) => {
            let run = invoice(&lake, &options).await?;
            print_invoices(&run, &options.out);
        }
        BillingTask::InvoiceDue(options) => {
            let run = due(&lake, &options).await?;
            for (period, issued) in &run.issued {
                print_invoices(issued, &options.out.join(period.to_string()));
            }
            let (period, drafts) = &run.drafts;
            print_invoices(drafts, &options.out.join(period.to_string()));
        }
        BillingTask::Reconcile { period, prices } => {
            let books = reconcile(&lake, period, &prices).await?;
            println!("{books}");
            if !books.balances() {
                return Err(RunError::NotBalanced(period));
            }
        }
    }
    Ok(())
}

async fn serve(
    lake: crate::lake::LakeLocation,
    options: crate::serve::ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let server = crate::serve::start(Lake::new(lake), &options, shutdown).await?;
    // On stdout, so scripts that start the server on port 0 can find it.
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("simtally serve: listening on {scheme}://{}", server.address);
    if let Some(postgres) = server.postgres_address {
        println!("simtally serve: Postgres protocol on {postgres}");
    }
    server
        .task
        .await
        .map_err(|e| RunError::Served(std::io::Error::other(e)))?
        .map_err(RunError::Served)?;
    Ok(())
}

fn print_invoices(run: &crate::billing::InvoiceRun, out: &std::path::Path) {
    let versions = run.versions;
    let version = |v: Option<i64>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
    println!(
        "lake versions: usage {}, sim_events {}",
        version(versions.usage),
        version(versions.sim_events)
    );
    for (invoice, provenance) in &run.invoices {
        let how = match provenance {
            Provenance::Draft => "draft",
            Provenance::IssuedNow => "issued now",
            Provenance::IssuedBefore => "issued before (unchanged)",
        };
        let totals: Vec<String> = invoice
            .totals
            .iter()
            .map(|t| format!("{} {}", t.currency, t.total))
            .collect();
        println!(
            "{:<18} {:<26} {:>5} usage lines {:>5} SIM fees {:>5} adjustments  {}",
            invoice.invoice_id,
            how,
            invoice.usage.len(),
            invoice.sim_fees.len(),
            invoice.adjustments.len(),
            totals.join(", ")
        );
    }
    println!(
        "{} invoices written to {} (.json, .csv, .html, .sims.csv; .xml with a seller)",
        run.invoices.len(),
        out.display()
    );
}

async fn ingest_and_check(
    lake: &Lake,
    options: IngestOptions,
    shutdown: CancellationToken,
) -> Result<RunSummary, RunError> {
    let summary = ingest(lake, options, shutdown).await?;
    if !summary.usage.is_conserved() || !summary.events.is_conserved() {
        return Err(RunError::NotConserved(Box::new(summary)));
    }
    Ok(summary)
}

fn print(batches: &[arrow::array::RecordBatch], format: OutputFormat) -> Result<(), QueryError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_batches(batches, format, &mut out)?;
    out.flush().map_err(|e| QueryError::Output(e.to_string()))
}

/// The demo's price list: the example in `testdata/`.
const DEMO_PRICES: &str = include_str!("../testdata/prices.toml");

async fn demo(dir: &std::path::Path, shutdown: CancellationToken) -> Result<(), RunError> {
    let options = GenerateOptions {
        seed: 7,
        sims: 300,
        records: 20_000,
        days: 3,
        start: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default(),
        workspaces: None,
        out: dir.join("data"),
        usage_by_day: false,
        zstd: false,
    };
    println!(
        "== generating {} usage records for {} SIMs in {}",
        options.records,
        options.sims,
        options.out.display()
    );
    let generated = generate(&options)?;
    let lake_dir = dir.join("lake");
    let location = LakeLocation::parse(&lake_dir.display().to_string())
        .map_err(|e| RunError::Ingest(IngestError::Lake(e)))?;
    let lake = Lake::new(location);
    println!("== ingesting into the lake at {}", lake_dir.display());
    let summary = ingest_and_check(
        &lake,
        IngestOptions {
            usage: vec![Input::File(generated.usage)],
            events: vec![Input::File(generated.events)],
            progress: true,
            threads: 0,
            kafka: None,
            link_limits: Default::default(),
            dedup_window_days: None,
            limits: Default::default(),
        },
        shutdown,
    )
    .await?;
    println!("{summary}\n");
    for name in ["workspace-usage", "centralized"] {
        let report = Report::find(name).ok_or_else(|| QueryError::UnknownReport(name.into()))?;
        println!("== report {name}: {}", report.description());
        let batches = run_report(&lake, report, &Scope::default(), session_memory_bytes()).await?;
        print(&batches, OutputFormat::Table)?;
    }
    let prices = dir.join("prices.toml");
    std::fs::write(&prices, DEMO_PRICES).map_err(|cause| BillingError::Output {
        path: prices.clone(),
        cause,
    })?;
    let options = InvoiceOptions {
        period: Period::containing(options.start),
        workspaces: Vec::new(),
        prices,
        out: dir.join("invoices"),
        issue: false,
        pdf: None,
    };
    println!(
        "== draft invoices for {} (prices: {})",
        options.period,
        options.prices.display()
    );
    print_invoices(&invoice(&lake, &options).await?, &options.out);
    println!(
        "Next: {} query --lake {} \"SELECT * FROM ownership LIMIT 10\"",
        std::env::current_exe().map_or_else(|_| "simtally".into(), |p| p.display().to_string()),
        lake_dir.display()
    );
    Ok(())
}
