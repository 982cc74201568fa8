//! Sessions for people who may see only some Workspaces. A caller's session holds four
//! tables and nothing else: `usage`, `ownership`, `sim_events`, `workspaces` (operators
//! also get `quarantine` and `dead_letters`). Each is a [`ScopedView`]: every time a query
//! scans it, it takes who may see what from the directory *then* and the lake's current
//! version (both from [`LakeSnapshots`], which re-reads only what changed), reads it in a
//! private session, and hands back only those Workspaces' rows. So there is no
//! name, schema or function in the caller's session through which SQL could reach anything
//! else, and a revoked role or an unlink takes effect on the next scan, even for a
//! statement prepared before it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{cast, col, SessionConfig, SessionContext};
use futures::StreamExt;

use super::snapshots::LakeSnapshots;
use super::{admit, QueryError, Scope, StatementLimits};
use crate::directory::Directory;
use crate::domain::{Role, UserId, WorkspaceId};
use crate::lake::schema::{counted_slices_sql, OWNERSHIP_VIEW_SQL};
use crate::lake::LakeTable;

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// A service operator: every Workspace, and quarantine and dead letters too.
    Operator,
    /// A person: the Workspaces they can access at the moment of each scan.
    Member(UserId),
}

impl Viewer {
    /// Whose share of the server a query takes (see `serve::fairness`): the person, or the
    /// operators together.
    pub fn key(&self) -> String {
        match self {
            Viewer::Operator => "operator".to_owned(),
            Viewer::Member(user) => format!("user:{user}"),
        }
    }

    /// The Workspaces this viewer may see in `directory`, with their role (`None`: all, for
    /// an operator).
    pub fn access(
        &self,
        directory: &Directory,
    ) -> Option<std::collections::BTreeMap<WorkspaceId, Role>> {
        match self {
            Viewer::Operator => None,
            Viewer::Member(user) => Some(directory.access(user)),
        }
    }
}

/// The tables a person's session has: views only.
pub const MEMBER_VIEWS: [&str; 4] = ["usage", "ownership", "sim_events", "workspaces"];

/// How much one query may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_rows: usize,
    pub timeout: std::time::Duration,
    /// Memory for the operators (sorts, joins, aggregates) of all running queries.
    pub memory_bytes: usize,
    /// How big and deep one statement may be (checked before it is parsed).
    pub statement: StatementLimits,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_rows: 100_000,
            timeout: std::time::Duration::from_secs(30),
            memory_bytes: 1 << 30,
            statement: StatementLimits::default(),
        }
    }
}

impl QueryLimits {
    /// The runtime all scoped sessions share: one memory pool, and the object stores the
    /// lake registers, so a plan made in one session runs in another.
    pub fn runtime(&self) -> Result<Arc<RuntimeEnv>, QueryError> {
        Ok(Arc::new(
            datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                .with_memory_limit(self.memory_bytes, 1.0)
                .build()?,
        ))
    }
}

/// A session for `viewer`, narrowed to `scope` (Workspaces and dates). Does no I/O: the
/// views read the lake when they are scanned.
pub fn scoped_session(
    lake: &Arc<LakeSnapshots>,
    viewer: &Viewer,
    scope: &Scope,
) -> Result<SessionContext, QueryError> {
    let ctx = SessionContext::new_with_state(base_state(lake.runtime()));
    register_views(&ctx, lake, viewer, scope)?;
    Ok(ctx)
}

/// The engine of a caller's session without its views: bounded functions, cooperative
/// operators, no `information_schema`.
pub fn base_state(runtime: Arc<RuntimeEnv>) -> datafusion::execution::SessionState {
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(member_config())
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(super::yields::YieldEverywhere))
        .build();
    let ctx = SessionContext::new_with_state(state);
    super::bounded::bound_functions(&ctx);
    ctx.state()
}

/// Registers `viewer`'s views (see the module documentation) in `ctx`'s default schema.
pub fn register_views(
    ctx: &SessionContext,
    lake: &Arc<LakeSnapshots>,
    viewer: &Viewer,
    scope: &Scope,
) -> Result<(), QueryError> {
    let mut kinds = vec![
        ViewKind::Usage,
        ViewKind::SimEvents,
        ViewKind::Ownership,
        ViewKind::Workspaces,
    ];
    if *viewer == Viewer::Operator {
        kinds.extend([ViewKind::Quarantine, ViewKind::DeadLetters]);
    }
    for kind in kinds {
        let view = ScopedView {
            kind,
            viewer: viewer.clone(),
            scope: scope.clone(),
            lake: lake.clone(),
            schema: kind.schema(viewer),
        };
        ctx.register_table(kind.name(), Arc::new(view))?;
    }
    Ok(())
}

/// No `information_schema`, no URL tables: the session knows its views and nothing else.
fn member_config() -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(false)
        .with_default_catalog_and_schema("simtally", "public")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ViewKind {
    Usage,
    SimEvents,
    Ownership,
    Workspaces,
    Quarantine,
    DeadLetters,
}

impl ViewKind {
    fn name(self) -> &'static str {
        match self {
            ViewKind::Usage => "usage",
            ViewKind::SimEvents => "sim_events",
            ViewKind::Ownership => "ownership",
            ViewKind::Workspaces => "workspaces",
            ViewKind::Quarantine => "quarantine",
            ViewKind::DeadLetters => "dead_letters",
        }
    }

    /// The lake table the view reads (`None`: the directory).
    fn table(self) -> Option<LakeTable> {
        match self {
            ViewKind::Usage => Some(LakeTable::Usage),
            ViewKind::SimEvents | ViewKind::Ownership => Some(LakeTable::SimEvents),
            ViewKind::Workspaces => None,
            ViewKind::Quarantine => Some(LakeTable::Quarantine),
            ViewKind::DeadLetters => Some(LakeTable::DeadLetters),
        }
    }

    fn schema(self, viewer: &Viewer) -> SchemaRef {
        let Some(table) = self.table() else {
            return workspaces_schema();
        };
        if self == ViewKind::Ownership {
            let ts = crate::lake::schema::timestamp_type();
            return Arc::new(Schema::new(vec![
                Field::new("iccid", DataType::Utf8, true),
                Field::new("workspace_id", DataType::Int64, true),
                Field::new("valid_from", ts.clone(), true),
                Field::new("valid_to", ts, true),
            ]));
        }
        let schema = nullable(table.schema());
        match self {
            // Where a row came from (file names, topic offsets) is the operator's business.
            ViewKind::Usage | ViewKind::SimEvents if *viewer != Viewer::Operator => {
                Arc::new(Schema::new(
                    schema
                        .fields()
                        .iter()
                        .filter(|f| f.name() != "source")
                        .cloned()
                        .collect::<Vec<_>>(),
                ))
            }
            _ => schema,
        }
    }
}

fn nullable(schema: SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

fn workspaces_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("workspace_id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("organization_id", DataType::Int64, true),
        Field::new("linked_organization_id", DataType::Int64, true),
        Field::new("role", DataType::Utf8, true),
    ]))
}

/// One of a caller's tables; see the module documentation.
struct ScopedView {
    kind: ViewKind,
    viewer: Viewer,
    scope: Scope,
    lake: Arc<LakeSnapshots>,
    schema: SchemaRef,
}

impl fmt::Debug for ScopedView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopedView({}, {:?})", self.kind.name(), self.viewer)
    }
}

/// `None`: every Workspace.
struct WorkspaceFilter(Option<BTreeSet<WorkspaceId>>);

impl WorkspaceFilter {
    fn condition(&self, column: &str) -> String {
        match &self.0 {
            None => "TRUE".to_owned(),
            Some(set) if set.is_empty() => "FALSE".to_owned(),
            Some(set) => {
                let ids: Vec<String> = set.iter().map(|w| w.get().to_string()).collect();
                format!("{column} IN ({})", ids.join(", "))
            }
        }
    }

    fn shows(&self, workspace: WorkspaceId) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(&workspace))
    }
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl ScopedView {
    /// What the viewer may see now: their access intersected with the scope's Workspaces.
    fn visible(&self, directory: &Directory) -> WorkspaceFilter {
        let narrowed: Option<BTreeSet<WorkspaceId>> = (!self.scope.workspaces.is_empty())
            .then(|| self.scope.workspaces.iter().copied().collect());
        WorkspaceFilter(match (self.viewer.access(directory), narrowed) {
            (None, narrowed) => narrowed,
            (Some(access), None) => Some(access.into_keys().collect()),
            (Some(access), Some(narrowed)) => Some(
                narrowed
                    .into_iter()
                    .filter(|w| access.contains_key(w))
                    .collect(),
            ),
        })
    }

    /// The view's query over the private session's tables.
    fn view_sql(&self, filter: &WorkspaceFilter) -> String {
        let columns = |names: Vec<&str>| names.join(", ");
        let names = |schema: &SchemaRef| -> Vec<String> {
            schema.fields().iter().map(|f| f.name().clone()).collect()
        };
        match self.kind {
            ViewKind::Usage => format!(
                "SELECT {} FROM {} WHERE {}{}",
                names(&self.schema).join(", "),
                counted_slices_sql("usage"),
                filter.condition("workspace_id"),
                self.scope.date_condition()
            ),
            ViewKind::SimEvents => {
                let masked = |column: &str| {
                    format!(
                        "CASE WHEN {} THEN {column} END AS {column}",
                        filter.condition(column)
                    )
                };
                let picked: Vec<String> = names(&self.schema)
                    .into_iter()
                    .map(|name| match name.as_str() {
                        "workspace_id" | "source_workspace_id" | "target_workspace_id" => {
                            masked(&name)
                        }
                        _ => name,
                    })
                    .collect();
                format!(
                    "SELECT {} FROM sim_events WHERE {} OR {} OR {}",
                    picked.join(", "),
                    filter.condition("workspace_id"),
                    filter.condition("source_workspace_id"),
                    filter.condition("target_workspace_id"),
                )
            }
            ViewKind::Ownership => format!(
                "SELECT {} FROM ({OWNERSHIP_VIEW_SQL}) WHERE {}",
                columns(vec!["iccid", "workspace_id", "valid_from", "valid_to"]),
                filter.condition("workspace_id")
            ),
            ViewKind::Quarantine => {
                format!("SELECT counted.* FROM {}", counted_slices_sql("quarantine"))
            }
            ViewKind::DeadLetters | ViewKind::Workspaces => {
                format!("SELECT * FROM {}", self.kind.name())
            }
        }
    }

    fn workspaces_batch(
        &self,
        directory: &Directory,
        filter: &WorkspaceFilter,
    ) -> DfResult<RecordBatch> {
        let access = self.viewer.access(directory);
        let rows: Vec<_> = directory
            .workspaces()
            .filter(|(id, _)| filter.shows(*id))
            .filter(|(id, _)| access.as_ref().is_none_or(|a| a.contains_key(id)))
            .collect();
        let role = |id: &WorkspaceId| access.as_ref().and_then(|a| a.get(id)).map(|r| r.as_str());
        Ok(RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|(id, _)| id.get()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|(_, e)| e.name.as_str()),
                )),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|(_, e)| e.organization.get()),
                )),
                Arc::new(Int64Array::from_iter(
                    rows.iter().map(|(_, e)| e.linked_to.map(|o| o.get())),
                )),
                Arc::new(StringArray::from_iter(rows.iter().map(|(id, _)| role(id)))),
            ],
        )?)
    }

    /// A private session holding the lake's current version (or, for `workspaces`, the
    /// directory), never seen by the caller.
    async fn private_session(
        &self,
        directory: &Directory,
        filter: &WorkspaceFilter,
    ) -> DfResult<Option<SessionContext>> {
        let config = SessionConfig::new().set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        );
        let private = SessionContext::new_with_config_rt(config, self.lake.runtime());
        match self.kind.table() {
            Some(table) => {
                let Some(current) = self.lake.table(table).await.map_err(external)? else {
                    return Ok(None);
                };
                private.register_table(table.name(), current.provider)?;
                Ok(Some(private))
            }
            None => {
                let batch = self.workspaces_batch(directory, filter)?;
                private.register_table(
                    "workspaces",
                    Arc::new(MemTable::try_new(self.schema.clone(), vec![vec![batch]])?),
                )?;
                Ok(Some(private))
            }
        }
    }
}

#[async_trait::async_trait]
impl TableProvider for ScopedView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Applied here to prune partitions, and again above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projected = match projection {
            Some(indices) => Arc::new(self.schema.project(indices)?),
            None => self.schema.clone(),
        };
        let directory = match self.viewer {
            Viewer::Operator if self.kind != ViewKind::Workspaces => Arc::new(Directory::default()),
            _ => self.lake.directory().await.map_err(external)?,
        };
        let filter = self.visible(&directory);
        let Some(private) = self.private_session(&directory, &filter).await? else {
            return Ok(Arc::new(EmptyExec::new(projected)));
        };
        let mut frame = private.sql(&self.view_sql(&filter)).await?;
        for condition in filters {
            frame = frame.filter(condition.clone())?;
        }
        // The declared types, whatever the scan produced (Utf8View, dictionaries).
        let columns: Vec<Expr> = projected
            .fields()
            .iter()
            .map(|f| cast(col(format!("\"{}\"", f.name())), f.data_type().clone()).alias(f.name()))
            .collect();
        frame = frame.select(columns)?;
        if let Some(limit) = limit {
            frame = frame.limit(0, Some(limit))?;
        }
        frame.create_physical_plan().await
    }
}

/// A query's rows, with their schema (known even when there are none).
#[derive(Clone, Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Runs one read-only query within `limits`' statement size and row count. The deadline is
/// the caller's to keep, from where it can stop the work (`serve::executor`).
pub async fn run_limited(
    ctx: &SessionContext,
    sql: &str,
    limits: &QueryLimits,
) -> Result<QueryResult, QueryError> {
    admit(sql, &limits.statement)?;
    check_read_only(sql)?;
    let sql_options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = ctx.sql_with_options(sql, sql_options).await?;
    let mut stream = frame.execute_stream().await?;
    let schema = stream.schema();
    let mut batches = Vec::new();
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        if rows > limits.max_rows {
            return Err(QueryError::TooManyRows(limits.max_rows));
        }
        batches.push(batch);
    }
    Ok(QueryResult { schema, batches })
}

/// One SELECT, nothing else: no DDL, DML, COPY, SET, EXPLAIN or several statements.
pub fn check_read_only(sql: &str) -> Result<(), QueryError> {
    use datafusion::sql::parser::{DFParser, Statement};
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    let statements = DFParser::parse_sql(sql)?;
    let only = match statements.len() {
        1 => &statements[0],
        0 => return Err(QueryError::Forbidden("the query is empty".into())),
        n => {
            return Err(QueryError::Forbidden(format!(
                "one statement per query, got {n}"
            )))
        }
    };
    // Not even EXPLAIN: a physical plan names the lake's files.
    match only {
        Statement::Statement(statement) if matches!(statement.as_ref(), Sql::Query(_)) => Ok(()),
        _ => Err(QueryError::Forbidden(
            "only SELECT queries are allowed (no DDL, DML, COPY, SET or EXPLAIN)".into(),
        )),
    }
}
