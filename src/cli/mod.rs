//! cli: the command line, parsed with clap. Flags fall back to `SIMTALLY_*` environment
//! variables, then to defaults; the result is a [`Config`].

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::billing::{DueOptions, InvoiceOptions, Period};
use crate::config::{parse_date, BillingTask, Config, LakeTask, DEFAULT_LAKE};
use crate::decode::InputLimits;
use crate::directory::{LinkLimits, OrganizationLimit};
use crate::domain::{UtcMillis, WorkspaceId};
use crate::generate::GenerateOptions;
use crate::kafka::{ProduceOptions, ReadBudget, Topics};
use crate::lake::{LakeError, LakeLocation};
use crate::pipeline::{HoldPolicy, IngestOptions, KafkaIngest, DEFAULT_WINDOW_DAYS};
use crate::query::{OutputFormat, QueryLimits, Scope, StatementLimits};
use crate::serve::{
    AuthOptions, ConnectionLimits, EventsTopic, FairnessLimits, ServeOptions, ServedBilling,
    TlsFiles,
};
use crate::source::Input;

mod resolve;

/// simtally attributes SIM usage to the Workspace that owned each SIM at that instant,
/// splitting records at transfers, and keeps the result in a Delta Lake for reports,
/// ad-hoc SQL, invoices and dashboards.
///
/// Start with `simtally demo`. Then: `simtally ingest --usage usage.ndjson --events
/// events.ndjson`, `simtally report workspace-usage`, `simtally query "SELECT ..."`,
/// `simtally invoice --period 2026-11 --prices prices.toml`.
#[derive(Debug, Parser)]
#[command(name = "simtally", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Log filter, e.g. `info` or `simtally=debug` (logs go to stderr).
    // The default quiets what simtally reports itself: delta-rs's warnings of a commit that
    // found the table moved (a pass checks those commits, `lake::fence`), the kernel's error
    // for a table not created yet, and statistics of columns without any.
    #[arg(
        long,
        global = true,
        env = "SIMTALLY_LOG",
        default_value = "warn,deltalake_core::writer::stats=error,\
                         deltalake_core::kernel::transaction=error,\
                         buoyant_kernel::snapshot::builder=off"
    )]
    pub log: String,

    /// A TOML configuration file: each setting's key is its variable's name without
    /// `SIMTALLY_`, in lower case (`lake = "s3://bucket/lake"`); docs/configuration.md lists
    /// them. Precedence: flags, then SIMTALLY_* variables, then the file, then the defaults.
    #[arg(long, global = true, env = "SIMTALLY_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read usage records and SIM lifecycle events (NDJSON), attribute every record to the
    /// owning Workspace, and write the lake. Safe to repeat: nothing is written twice.
    ///
    /// Every input line ends up attributed, quarantined (no owner / unknown SIM), counted as
    /// a duplicate, or in `dead_letters` with a reason; the summary accounts for each.
    ///
    /// Memory: a Kafka ingest (`--brokers`) reruns itself on the system allocator, whose
    /// resident memory stays flat over long runs; a file ingest stays on the faster
    /// mimalloc. `SIMTALLY_ALLOCATOR=mimalloc` or `system` chooses for any command.
    Ingest(IngestArgs),
    /// Run ad-hoc SQL over the whole lake, as its operator. Tables: usage, quarantine,
    /// dead_letters, sim_events, ownership, workspaces, memberships, invoices,
    /// billed_slices, transfer_log. (`simtally serve` gives people their Workspaces only.)
    ///
    /// Example: simtally query "SELECT workspace_id, SUM(cost) FROM usage GROUP BY 1"
    Query(QueryArgs),
    /// Run a named report from sql/ (see --list), for some Workspaces and dates.
    ///
    /// Example: simtally report centralized --workspace 101 --workspace 102 --from 2026-11-01
    Report(ReportArgs),
    /// Write a deterministic synthetic data set (usage.ndjson, events.ndjson and the
    /// expected totals in expected.json).
    Generate(GenerateArgs),
    /// Generate a small data set, ingest it into a local lake, print the per-Workspace and
    /// centralized reports and write draft invoices. Needs no servers.
    Demo(DemoArgs),
    /// Load NDJSON usage records and lifecycle events into the Kafka topics, keyed by ICCID
    /// (creating the topics, co-partitioned, if they do not exist). For demos and load tests.
    ///
    /// Example: simtally produce --brokers localhost:9092 --usage usage.ndjson --events events.ndjson
    Produce(ProduceArgs),
    /// Maintain the lake: `compact` merges small files (sums and recorded positions are
    /// unchanged), `vacuum` deletes files no current commit references.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Work with the dead_letters table.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLettersCommand),
    /// Compute each Workspace's invoice for a month: usage by traffic type and network, SIM
    /// fees, data allowances, and adjustments to periods already issued. Writes
    /// <workspace>-<period>.json, .csv and .html into --out.
    ///
    /// Without --issue the invoices are drafts and nothing in the lake changes. With --issue
    /// each period is sealed: the invoice is stored in the lake and never changes; later
    /// usage or events for it appear as adjustments on the Workspace's next invoice.
    ///
    /// Example: simtally invoice --period 2026-11 --prices prices.toml --out invoices/
    Invoice(InvoiceArgs),
    /// Check a period's books: each Workspace's invoice usage equals the cost of its
    /// attributed slices; every record of the period is attributed or quarantined; every
    /// ingest run accounts for each input line; every issued invoice equals its lines.
    /// Prints what differs and exits non-zero on any mismatch.
    Reconcile(ReconcileArgs),
    /// Serve the lake to people and tools, each seeing only the Workspaces they can access:
    /// an HTTP API (reports, ad-hoc SQL as JSON, CSV or Arrow, SIM transfer requests;
    /// OpenAPI at /openapi.json), a dashboard at /, the Postgres wire protocol
    /// (--postgres-addr), /healthz and /metrics. Callers send `Authorization: Bearer <JWT>`
    /// from your identity provider (over Postgres: the token as password); `sub` is the user
    /// id the directory events name.
    ///
    /// Example: simtally serve --lake ./lake --jwt-secret-file secret.txt --addr 127.0.0.1:8080
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// The price list, for operators to issue invoices over HTTP (POST /v1/invoice-runs).
    #[arg(long, env = "SIMTALLY_PRICES", value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// With --prices: where issued invoices are also written as files.
    #[arg(
        long,
        env = "SIMTALLY_INVOICE_DIR",
        value_name = "DIR",
        default_value = "invoices"
    )]
    pub invoice_dir: PathBuf,
    /// Where to listen (HOST:PORT; port 0 picks a free one, printed at start).
    #[arg(long, env = "SIMTALLY_SERVE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Also serve the Postgres wire protocol here (HOST:PORT), for psql and BI tools: the
    /// user name is free, the password is the token.
    #[arg(long, env = "SIMTALLY_POSTGRES_ADDR", value_name = "HOST:PORT")]
    pub postgres_addr: Option<String>,
    /// File holding the HS256 secret (at least 32 bytes) that users' tokens are signed with.
    #[arg(long, env = "SIMTALLY_JWT_SECRET_FILE", value_name = "FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// File holding the identity provider's RS256 public key (PEM), instead of a secret.
    #[arg(long, env = "SIMTALLY_JWT_PUBLIC_KEY_FILE", value_name = "FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Refuse tokens whose `iss` is not this.
    #[arg(long, env = "SIMTALLY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Refuse tokens whose `aud` does not include this.
    #[arg(long, env = "SIMTALLY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// File holding a separate HS256 secret for operators' tokens: they see every Workspace
    /// and the quarantine and dead_letters tables.
    #[arg(long, env = "SIMTALLY_OPERATOR_SECRET_FILE", value_name = "FILE")]
    pub operator_secret_file: Option<PathBuf>,
    /// File (TOML) of the OpenID Connect issuers organizations sign their users in with:
    /// `[[issuer]]` with `issuer`, `audience`, `user_claim` (default sub), `organization`.
    /// Their keys come from each issuer's discovery document and JWKS.
    #[arg(
        long = "oidc-issuers",
        env = "SIMTALLY_OIDC_ISSUERS_FILE",
        value_name = "FILE"
    )]
    pub oidc_issuers_file: Option<PathBuf>,
    /// The most rows one answer may have.
    #[arg(long, env = "SIMTALLY_MAX_ROWS", default_value_t = 100_000)]
    pub max_rows: usize,
    /// The longest a query may run, in seconds.
    #[arg(long, env = "SIMTALLY_QUERY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub query_timeout: u64,
    #[command(flatten)]
    pub memory: QueryMemoryArg,
    /// Threads that run queries (default: one per core).
    #[arg(long, env = "SIMTALLY_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Queries one person may run at the same time (over HTTP and Postgres together).
    #[arg(long, env = "SIMTALLY_QUERIES_PER_CALLER", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub queries_per_caller: u64,
    /// Further queries one person may have waiting; more are refused (HTTP 429, SQLSTATE
    /// 53000).
    #[arg(long, env = "SIMTALLY_QUEUED_PER_CALLER", default_value_t = 8, value_parser = clap::value_parser!(u64).range(0..=65536))]
    pub queued_per_caller: u64,
    /// Connections each endpoint holds; more are refused (HTTP 503, SQLSTATE 53300).
    #[arg(long, env = "SIMTALLY_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Serve HTTPS, and TLS over Postgres (psql `sslmode=require`), with this certificate
    /// chain (PEM); needs --tls-key-file.
    #[arg(
        long,
        env = "SIMTALLY_TLS_CERT_FILE",
        value_name = "FILE",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert-file.
    #[arg(
        long,
        env = "SIMTALLY_TLS_KEY_FILE",
        value_name = "FILE",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,
    /// Seconds a connection may send nothing (between requests or statements) before it is
    /// closed.
    #[arg(long, env = "SIMTALLY_IDLE_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout: u64,
    /// Kafka brokers (HOST:PORT[,...]) that SIM transfer requests publish their events to;
    /// without them, transfer requests can only be dry runs.
    #[arg(long, env = "SIMTALLY_BROKERS")]
    pub brokers: Option<String>,
    /// The topic SIM transfer requests publish to (the one `ingest` reads events from).
    #[arg(long, env = "SIMTALLY_EVENTS_TOPIC", default_value = "sim-events")]
    pub events_topic: String,
    /// As `ingest --link-limit`: directory changes over the API are checked against the
    /// same limits before they are published (ingest checks them again).
    #[command(flatten)]
    pub link_limits: LinkLimitsArg,
}

#[derive(Debug, Args)]
pub struct InvoiceArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// The month to bill (YYYY-MM), in each Workspace's time zone.
    #[arg(long, value_parser = parse_period, required_unless_present = "due")]
    pub period: Option<Period>,
    /// Only this Workspace; repeat for several (default: every Workspace with something to
    /// bill).
    #[arg(long = "workspace", value_name = "ID")]
    pub workspaces: Vec<WorkspaceId>,
    /// What a nightly scheduler runs: issue each Workspace's last month once it has closed
    /// in the Workspace's time zone and --grace-hours have passed, and write drafts of the
    /// month in progress; invoices go to OUT/<period>/. Safe to run twice or at once.
    #[arg(long, conflicts_with_all = ["period", "workspaces", "issue"])]
    pub due: bool,
    /// With --due: hours after a month closes that its invoices wait for late records.
    #[arg(long, default_value_t = 6, requires = "due", value_parser = clap::value_parser!(u32).range(0..=720))]
    pub grace_hours: u32,
    #[command(flatten)]
    pub prices: PricesArg,
    /// Directory for the invoice files.
    #[arg(long, value_name = "DIR", default_value = "invoices")]
    pub out: PathBuf,
    /// Seal the period: store the invoices in the lake; they never change afterwards.
    #[arg(long)]
    pub issue: bool,
    /// Also print each invoice to PDF with this headless Chromium (e.g. /usr/bin/chromium);
    /// an issued invoice's PDF is printed once and kept.
    #[arg(long, env = "SIMTALLY_PDF_RENDERER", value_name = "CHROMIUM")]
    pub pdf_with: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PricesArg {
    /// The price list (TOML): tariffs by effective date, Workspace time zones. See docs/billing.md.
    #[arg(long = "prices", env = "SIMTALLY_PRICES", value_name = "FILE")]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// The month to check (YYYY-MM).
    #[arg(long, value_parser = parse_period)]
    pub period: Period,
    #[command(flatten)]
    pub prices: PricesArg,
}

/// Midnight UTC at the start of a `YYYY-MM-DD` date.
fn parse_utc_date(text: &str) -> Result<UtcMillis, String> {
    UtcMillis::parse_rfc3339(&format!("{text}T00:00:00Z"))
        .map_err(|_| format!("'{text}' is not a date (YYYY-MM-DD)"))
}

fn parse_period(text: &str) -> Result<Period, String> {
    text.parse()
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Offer every dead letter to the pipeline again, under its original source (after a
    /// fix to simtally or to the events): what is accepted now is attributed; what fails
    /// again, or was ingested since, is counted and not written twice.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Decode threads (default: one per core).
    #[arg(long, env = "SIMTALLY_THREADS", default_value_t = 0)]
    pub threads: usize,
}

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Merge each table's small files into files of up to 128 MiB (`usage` and `quarantine`
    /// sorted by Workspace, day and ICCID; at most 256 MiB of small files a run). Safe while
    /// ingests run: readers see the same rows before and after.
    Compact(LakeArg),
    /// What a scheduler runs (hourly, say): compact, checkpoint every table's log, then
    /// vacuum. Safe while ingests run.
    Maintain(MaintainArgs),
    /// Rewrite tables written by an older simtally in this simtally's layout (`usage` was
    /// partitioned by Workspace), in place, in one commit per table. Writers that run at
    /// the same time start their pass again on the new layout.
    Migrate(LakeArg),
    /// Delete data files that no commit has referenced for --retain-hours (compaction and
    /// interrupted runs leave them behind). Time travel to older versions stops working
    /// for what is deleted.
    Vacuum(VacuumArgs),
    /// Verify the lake's invariants (every record counted once across usage and
    /// quarantine, every reversal cancelling a stored slice, every event and dead letter
    /// stored once, every data file present); print each and exit 1 with the offending ids
    /// if any fails.
    Check(LakeArg),
}

#[derive(Debug, Args)]
pub struct MaintainArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Vacuum keeps files unreferenced for less than this many hours.
    #[arg(long, default_value_t = 168)]
    pub retain_hours: u64,
}

#[derive(Debug, Args)]
pub struct VacuumArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Keep files unreferenced for less than this many hours (readers of older versions
    /// may still need them).
    #[arg(long, default_value_t = 168)]
    pub retain_hours: u64,
    /// Only list what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT...].
    #[arg(long, env = "SIMTALLY_BROKERS")]
    pub brokers: String,
    /// Usage record files (NDJSON); `-` reads stdin. Repeatable.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub usage: Vec<String>,
    /// Lifecycle event files (NDJSON); `-` reads stdin. Repeatable.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub events: Vec<String>,
    #[command(flatten)]
    pub topics: TopicArgs,
    /// Partitions of each topic, if it has to be created.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub partitions: i32,
}

/// The two topics, both keyed by ICCID.
#[derive(Debug, Args)]
pub struct TopicArgs {
    /// The topic of usage records.
    #[arg(long, env = "SIMTALLY_USAGE_TOPIC", default_value = "sim-usage")]
    pub usage_topic: String,
    /// The topic of SIM lifecycle and directory events.
    #[arg(long, env = "SIMTALLY_EVENTS_TOPIC", default_value = "sim-events")]
    pub events_topic: String,
}

impl TopicArgs {
    fn topics(&self) -> Topics {
        Topics {
            usage: self.usage_topic.clone(),
            events: self.events_topic.clone(),
        }
    }
}

/// `--link-limit`, shared by `ingest` and `serve`.
#[derive(Debug, Args)]
pub struct LinkLimitsArg {
    /// Let organization ORG have N Workspaces (its own and those linked to it) instead of 3
    /// (the Pro package); `ORG=free` allows 1, `ORG=pro` 3. Repeat for more organizations.
    /// A `workspace_created` or `workspaces_linked` event over the limit becomes a dead
    /// letter.
    #[arg(
        long = "link-limit",
        value_name = "ORG=N|free|pro",
        env = "SIMTALLY_LINK_LIMITS",
        value_delimiter = ','
    )]
    pub link_limits: Vec<OrganizationLimit>,
}

impl LinkLimitsArg {
    fn limits(&self) -> LinkLimits {
        (self.link_limits.iter()).fold(LinkLimits::default(), |limits, l| limits.with(*l))
    }
}

#[derive(Debug, Args)]
pub struct LakeArg {
    /// Lake root: a directory, or a file://, s3:// (AWS_* variables, AWS_ENDPOINT_URL for
    /// MinIO) or memory:// URL.
    #[arg(long, env = "SIMTALLY_LAKE", default_value = DEFAULT_LAKE)]
    pub lake: String,
}

impl LakeArg {
    fn location(&self) -> Result<LakeLocation, LakeError> {
        LakeLocation::parse(&self.lake)
    }
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Usage record files (NDJSON, one record a line); `-` reads stdin. Repeatable.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub usage: Vec<String>,
    /// SIM lifecycle event files (NDJSON); `-` reads stdin. Repeatable. Events already in
    /// the lake are used too, so usage can be ingested later without them.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub events: Vec<String>,
    #[command(flatten)]
    pub lake: LakeArg,
    /// Decode threads (default: one per core).
    #[arg(long, env = "SIMTALLY_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Never draw the progress bar (it is only drawn when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Read the usage and events topics of these Kafka brokers (HOST:PORT[,HOST:PORT...])
    /// instead of files (when no --usage/--events is given), from the positions recorded in
    /// the lake. Without --exit-at-end it keeps consuming as a member of --group until
    /// stopped (Ctrl-C or SIGTERM); start more instances with the same group to share the
    /// partitions.
    #[arg(long, env = "SIMTALLY_BROKERS")]
    pub brokers: Option<String>,
    #[command(flatten)]
    pub topics: TopicArgs,
    /// Kafka consumer group.
    #[arg(long, env = "SIMTALLY_GROUP", default_value = "simtally")]
    pub group: String,
    /// With --brokers: read up to the end offsets seen at start, commit, and exit.
    #[arg(long, requires = "brokers")]
    pub exit_at_end: bool,
    /// With --brokers and without --exit-at-end: how often (seconds) to read the owned
    /// partitions to their end and commit (a pass starts every interval); what arrives is
    /// queryable within about one interval and a pass (two when held for the events).
    #[arg(long, env = "SIMTALLY_PASS_SECONDS", default_value_t = crate::pipeline::DEFAULT_PASS_INTERVAL.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub pass_seconds: u64,
    /// With --brokers: a pass commits after reading at most this many usage messages (or
    /// --pass-max-mib), and the next starts at once; this bounds a pass's memory and time
    /// when a backlog has built up (also with --exit-at-end, which runs passes until the
    /// end offsets seen at start).
    #[arg(long, env = "SIMTALLY_PASS_MAX_RECORDS", default_value_t = 250_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub pass_max_records: u64,
    /// With --brokers: a pass commits after reading at most this many MiB of usage messages
    /// (or --pass-max-records).
    #[arg(long, env = "SIMTALLY_PASS_MAX_MIB", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    pub pass_max_mib: u64,
    /// With --brokers and without --exit-at-end: hold a usage record until the lifecycle
    /// events of its partition have been read past its end, but no longer than until the
    /// usage read is this many minutes (of event time) past it; then it is written anyway,
    /// and a late transfer or registration is corrected. Holding only saves corrections:
    /// the sums come out the same. 0 holds nothing. (--exit-at-end reads the events to
    /// their end first and holds nothing.)
    #[arg(long, env = "SIMTALLY_HOLD_MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=10_080))]
    pub hold_minutes: u64,
    /// With --brokers and without --exit-at-end: an events partition that delivered nothing
    /// in the passes started this many seconds before the current one holds no usage
    /// (lifecycle events are rare; a quiet topic must not delay usage). Default: the pass
    /// interval, so held usage waits one pass more at most unless its events keep arriving.
    #[arg(long, env = "SIMTALLY_HOLD_IDLE_SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub hold_idle_seconds: Option<u64>,
    /// With --brokers and without --exit-at-end: serve /metrics (Prometheus) and /healthz
    /// at this HOST:PORT (port 0: any free port, logged at info level).
    #[arg(long, env = "SIMTALLY_METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// With --brokers: also send each new dead letter to this topic (its original key and
    /// bytes, with headers simtally-source, simtally-reason, simtally-detail), besides the
    /// `dead_letters` table. Sent before the pass commits, so at least once.
    #[arg(
        long,
        env = "SIMTALLY_DEAD_LETTER_TOPIC",
        value_name = "TOPIC",
        requires = "brokers"
    )]
    pub dead_letter_topic: Option<String>,
    /// Days of event time before the latest usage date in the lake whose record ids are read
    /// when a run starts, to recognize re-deliveries. A record of any other day is still
    /// recognized: its day's ids are read from the lake when the first one arrives. A larger
    /// window reads more up front (beside the events), a smaller one more as records
    /// arrive; the result is the same.
    #[arg(long, env = "SIMTALLY_DEDUP_WINDOW_DAYS", value_name = "DAYS", default_value_t = DEFAULT_WINDOW_DAYS)]
    pub dedup_window_days: u32,
    /// Records and events before this UTC date are dead letters `implausible_timestamp`.
    #[arg(long, env = "SIMTALLY_PLAUSIBLE_FROM", value_name = "YYYY-MM-DD", default_value = "2000-01-01", value_parser = parse_utc_date)]
    pub plausible_from: UtcMillis,
    /// Records and events from this UTC date on are dead letters `implausible_timestamp`.
    #[arg(long, env = "SIMTALLY_PLAUSIBLE_UNTIL", value_name = "YYYY-MM-DD", default_value = "2100-01-01", value_parser = parse_utc_date)]
    pub plausible_until: UtcMillis,
    /// Lines longer than this are read past, never held whole, and become dead letters
    /// `line_too_long` keeping their first 4 KiB.
    #[arg(long, env = "SIMTALLY_MAX_LINE_BYTES", value_name = "BYTES", default_value_t = crate::source::MAX_LINE_BYTES as u64, value_parser = clap::value_parser!(u64).range(4096..=1 << 30))]
    pub max_line_bytes: u64,
    #[command(flatten)]
    pub link_limits: LinkLimitsArg,
}

/// Memory for queries' sorts, joins and aggregates (`serve`: all its queries together).
#[derive(Debug, Args)]
pub struct QueryMemoryArg {
    /// Memory the queries' sorts, joins and aggregates may hold, in MiB; beyond it they
    /// spill to the temporary directory, or fail with a resources-exhausted error. Default:
    /// 1024 for serve (all its queries together); for query and report, 80 % of the memory
    /// the process may use (the machine's, or its cgroup's limit).
    #[arg(long, env = "SIMTALLY_QUERY_MEMORY_MB", value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    pub query_memory_mb: Option<u64>,
}

impl QueryMemoryArg {
    /// The bytes asked for, or `default` when none were.
    fn bytes_or(&self, default: usize) -> usize {
        match self.query_memory_mb {
            Some(mb) => usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            None => default,
        }
    }
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL to run (DataFusion dialect).
    pub sql: String,
    #[command(flatten)]
    pub lake: LakeArg,
    #[command(flatten)]
    pub memory: QueryMemoryArg,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Report name: workspace-usage, centralized, top-sims, networks.
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// List the reports and exit.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub lake: LakeArg,
    /// Limit to this Workspace; repeat for several (default: all).
    #[arg(long = "workspace", value_name = "ID")]
    pub workspaces: Vec<WorkspaceId>,
    /// First usage date, inclusive (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_date)]
    pub from: Option<NaiveDate>,
    /// Last usage date, inclusive (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_date)]
    pub to: Option<NaiveDate>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub memory: QueryMemoryArg,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of SIM cards.
    #[arg(long, default_value_t = 1000)]
    pub sims: u64,
    /// Number of usage records (before duplicates and damaged lines are mixed in).
    #[arg(long, default_value_t = 10_000)]
    pub records: u64,
    /// Days of usage, from --start.
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    /// First day (UTC).
    #[arg(long, value_parser = parse_date, default_value = "2026-11-01")]
    pub start: NaiveDate,
    /// Number of Workspaces owning the SIMs (ids 1001 and up); without it, the five
    /// Workspaces of the samples (101, 102, 103, 201, 202).
    #[arg(long)]
    pub workspaces: Option<u32>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Write usage as `OUT/usage/YYYY-MM-DD.ndjson`, a file per day of the records' start
    /// (for ingesting day by day), instead of one `OUT/usage.ndjson`.
    #[arg(long)]
    pub usage_by_day: bool,
    /// Write the usage files zstd-compressed (`.ndjson.zst`), as feeds are often delivered;
    /// `ingest` reads them as they are.
    #[arg(long)]
    pub zstd: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo writes its data and lake.
    #[arg(long, default_value = "simtally-demo")]
    pub dir: PathBuf,
}

impl Cli {
    /// Resolves the parsed arguments into a [`Config`], or says what is wrong.
    pub fn into_config(self) -> Result<Config, String> {
        match self.command {
            Command::Ingest(a) => a.resolve(),
            Command::Serve(a) => a.resolve(),
            Command::Produce(a) => a.resolve(),
            Command::DeadLetters(DeadLettersCommand::Replay(a)) => a.resolve(),
            Command::Lake(command) => command.resolve(),
            Command::Query(a) => a.resolve(),
            Command::Report(a) => a.resolve(),
            Command::Generate(a) => Ok(a.resolve()),
            Command::Demo(a) => Ok(Config::Demo { dir: a.dir }),
            Command::Invoice(a) => a.resolve(),
            Command::Reconcile(a) => a.resolve(),
        }
    }
}
