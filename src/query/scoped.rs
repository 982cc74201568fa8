//! Sessions for people who may see only some Workspaces. The lake's tables are registered
//! in a private session; the caller's session holds only views over them, filtered to the
//! Workspaces the caller can access, so there is no name, schema or function in it through
//! which SQL could reach anything else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use super::{QueryError, Scope};
use crate::directory::Directory;
use crate::domain::{Role, WorkspaceId};
use crate::lake::schema::OWNERSHIP_VIEW_SQL;
use crate::lake::{Lake, LakeTable};

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// A service operator: every Workspace, and quarantine and dead letters too.
    Operator,
    /// A person: the Workspaces they can access now, with their role in each.
    Member(BTreeMap<WorkspaceId, Role>),
}

impl Audience {
    pub fn can_access(&self, workspace: WorkspaceId) -> bool {
        match self {
            Audience::Operator => true,
            Audience::Member(access) => access.contains_key(&workspace),
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
    /// Memory for one query's operators (sorts, joins, aggregates).
    pub memory_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_rows: 100_000,
            timeout: std::time::Duration::from_secs(30),
            memory_bytes: 1 << 30,
        }
    }
}

/// A session for `audience`, narrowed further to `scope` (its Workspaces must all be
/// accessible; the caller checks, and an inaccessible one here would see nothing anyway).
pub async fn scoped_session(
    lake: &Lake,
    directory: &Directory,
    audience: &Audience,
    scope: &Scope,
    limits: &QueryLimits,
) -> Result<SessionContext, QueryError> {
    let runtime = Arc::new(
        datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_limit(limits.memory_bytes, 1.0)
            .build()?,
    );
    let private = SessionContext::new_with_config_rt(SessionConfig::new(), runtime.clone());
    let found = lake.register_tables(&private, "").await?;
    let visible: Option<BTreeSet<WorkspaceId>> = match audience {
        Audience::Operator if scope.workspaces.is_empty() => None,
        Audience::Operator => Some(scope.workspaces.iter().copied().collect()),
        Audience::Member(access) if scope.workspaces.is_empty() => {
            Some(access.keys().copied().collect())
        }
        Audience::Member(access) => Some(
            scope
                .workspaces
                .iter()
                .copied()
                .filter(|w| access.contains_key(w))
                .collect(),
        ),
    };
    let ctx = SessionContext::new_with_config_rt(member_config(), runtime);
    let filter = WorkspaceFilter(visible);
    let dates = scope.date_condition();
    let usage_sql = match audience {
        Audience::Operator => "SELECT * FROM usage".to_owned(),
        // Where a row came from (file names, topic offsets) is the operator's business.
        Audience::Member(_) => format!("SELECT {} FROM usage", usage_columns_without_source()),
    };
    let views = [
        (
            "usage",
            LakeTable::Usage,
            format!(
                "{usage_sql} WHERE {}{dates}",
                filter.condition("workspace_id")
            ),
        ),
        (
            "sim_events",
            LakeTable::SimEvents,
            sim_events_sql(&filter, audience),
        ),
        (
            "ownership",
            LakeTable::SimEvents,
            format!(
                "SELECT * FROM ({OWNERSHIP_VIEW_SQL}) WHERE {}",
                filter.condition("workspace_id")
            ),
        ),
    ];
    for (name, table, sql) in views {
        if found.contains(&table) {
            ctx.register_table(name, private.sql(&sql).await?.into_view())?;
        } else {
            let schema = private_schema(table, name);
            ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
        }
    }
    ctx.register_table(
        "workspaces",
        workspaces_table(directory, audience, &filter)?,
    )?;
    if *audience == Audience::Operator {
        for table in [LakeTable::Quarantine, LakeTable::DeadLetters] {
            if found.contains(&table) {
                let all = private
                    .sql(&format!("SELECT * FROM {}", table.name()))
                    .await?;
                ctx.register_table(table.name(), all.into_view())?;
            }
        }
    }
    Ok(ctx)
}

/// No `information_schema`, no URL tables: the session knows the views and nothing else.
fn member_config() -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(false)
        .with_default_catalog_and_schema("simtally", "public")
}

/// The schema a missing table's empty stand-in gets (the ownership view has its own).
fn private_schema(table: LakeTable, name: &str) -> SchemaRef {
    if name == "ownership" {
        let ts = crate::lake::schema::timestamp_type();
        return Arc::new(Schema::new(vec![
            Field::new("iccid", DataType::Utf8, false),
            Field::new("workspace_id", DataType::Int64, true),
            Field::new("valid_from", ts.clone(), false),
            Field::new("valid_to", ts, true),
        ]));
    }
    table.schema()
}

fn usage_columns_without_source() -> String {
    crate::lake::schema::USAGE
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|name| *name != "source")
        .collect::<Vec<_>>()
        .join(", ")
}

/// Events that touch a visible Workspace; the other side of a transfer, when it is not
/// visible, shows as NULL.
fn sim_events_sql(filter: &WorkspaceFilter, audience: &Audience) -> String {
    if *audience == Audience::Operator && filter.0.is_none() {
        return "SELECT * FROM sim_events".to_owned();
    }
    let masked = |column: &str| {
        format!(
            "CASE WHEN {} THEN {column} END AS {column}",
            filter.condition(column)
        )
    };
    format!(
        "SELECT event_id, event_type, event_time, iccid, {}, {}, {}, status, seq, ingested_at \
         FROM sim_events WHERE {} OR {} OR {}",
        masked("workspace_id"),
        masked("source_workspace_id"),
        masked("target_workspace_id"),
        filter.condition("workspace_id"),
        filter.condition("source_workspace_id"),
        filter.condition("target_workspace_id"),
    )
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

/// The Workspaces the audience sees, with the caller's role in each (NULL for operators).
fn workspaces_table(
    directory: &Directory,
    audience: &Audience,
    filter: &WorkspaceFilter,
) -> Result<Arc<MemTable>, QueryError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("workspace_id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("organization_id", DataType::Int64, false),
        Field::new("linked_organization_id", DataType::Int64, true),
        Field::new("role", DataType::Utf8, true),
    ]));
    let role_of = |workspace: WorkspaceId| match audience {
        Audience::Operator => None,
        Audience::Member(access) => access.get(&workspace).map(|r| r.as_str()),
    };
    let rows: Vec<_> = directory
        .workspaces()
        .filter(|(id, _)| filter.shows(*id) && audience.can_access(*id))
        .collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
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
            Arc::new(StringArray::from_iter(
                rows.iter().map(|(id, _)| role_of(*id)),
            )),
        ],
    )
    .map_err(datafusion::error::DataFusionError::from)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// A query's rows, with their schema (known even when there are none).
#[derive(Clone, Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Runs one read-only query within `limits`.
pub async fn run_limited(
    ctx: &SessionContext,
    sql: &str,
    limits: &QueryLimits,
) -> Result<QueryResult, QueryError> {
    check_read_only(sql)?;
    let sql_options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let run = async {
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
    };
    tokio::time::timeout(limits.timeout, run)
        .await
        .map_err(|_| QueryError::Timeout(limits.timeout))?
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
