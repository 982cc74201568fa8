//! query/serve: DataFusion over the lake. Ad-hoc SQL, the named reports in `sql/`, and the
//! output formats people paste into spreadsheets and scripts.

mod admission;
mod bounded;
mod check;
mod format;
mod reports;
mod scoped;
mod session;
mod snapshots;
mod yields;

pub use admission::{admit, Refusal, StatementLimits, QUERY_STACK_BYTES};
pub use check::{check_lake, Check, LakeCheck};
pub use format::{write_batches, OutputFormat};
pub use reports::{Report, REPORTS};
pub use scoped::{
    base_state, check_read_only, register_views, run_limited, scoped_session, QueryLimits,
    QueryResult, Viewer, MEMBER_VIEWS,
};
pub use session::{open_session, run_report, run_sql, session_memory_bytes, Scope};
pub use snapshots::{LakeSnapshots, TableVersion};

/// Errors of the query layer: `Sql` and `Scope` are the user's to fix, `Lake` an outside
/// system's, `Output` the terminal's or pipe's.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    #[error("the query failed: {0}")]
    Sql(Box<datafusion::error::DataFusionError>),
    #[error("unknown report '{0}'; `simtally report --list` shows the reports")]
    UnknownReport(String),
    #[error("{0}")]
    Scope(String),
    #[error("cannot write the result: {0}")]
    Output(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the result has more than {0} rows; add a LIMIT or narrow the query")]
    TooManyRows(usize),
    #[error("the query ran longer than {}s; narrow it (fewer Workspaces or days)", .0.as_secs())]
    Timeout(std::time::Duration),
    #[error("statement refused before planning: {0}")]
    Refused(Refusal),
}

impl From<Refusal> for QueryError {
    fn from(refusal: Refusal) -> Self {
        QueryError::Refused(refusal)
    }
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        QueryError::Sql(Box::new(e))
    }
}
