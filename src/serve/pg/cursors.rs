//! Cursors in the extended protocol. datafusion-postgres runs `DECLARE ... CURSOR` and
//! `FETCH`, but describes a `FETCH` as returning no rows, so a client that prepares it
//! (psycopg 3's server-side cursors) receives rows it was told would not come and crashes.
//! Here each declared cursor's columns are kept with the connection, and a `FETCH` is
//! described with them, in text (the format its rows were encoded in when declared).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use datafusion::common::{DFSchema, ParamValues};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire;
use datafusion_postgres::QueryHook;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};

/// The columns of each cursor a connection declared, by name.
#[derive(Default)]
struct Shapes(Mutex<HashMap<String, SchemaRef>>);

fn shapes(client: &(impl ClientInfo + ?Sized)) -> Arc<Shapes> {
    client
        .session_extensions()
        .get_or_insert_with(Shapes::default)
}

/// Records what `DECLARE` will return and plans `FETCH` with it; before datafusion-postgres'
/// cursor hook, which runs them.
pub struct CursorShapes;

impl CursorShapes {
    async fn record(
        statement: &Statement,
        ctx: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> PgWireResult<()> {
        let Statement::Declare { stmts } = statement else {
            return Ok(());
        };
        for declare in stmts {
            let (Some(name), Some(query)) = (declare.names.first(), &declare.for_query) else {
                continue;
            };
            let plan = (ctx.state())
                .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(
                    query.clone(),
                ))))
                .await
                .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            let schema = Arc::new(plan.schema().as_arrow().clone());
            let shapes = shapes(client);
            let mut known = shapes.0.lock().unwrap_or_else(|p| p.into_inner());
            known.insert(name.value.clone(), schema);
        }
        Ok(())
    }

    fn fetch_plan(
        statement: &Statement,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        let Statement::Fetch { name, .. } = statement else {
            return None;
        };
        let shapes = shapes(client);
        let known = shapes.0.lock().unwrap_or_else(|p| p.into_inner());
        let schema = known.get(&name.value)?.clone();
        Some(
            DFSchema::try_from(schema)
                .map(|schema| {
                    LogicalPlan::EmptyRelation(EmptyRelation {
                        produce_one_row: false,
                        schema: Arc::new(schema),
                    })
                })
                .map_err(|e| PgWireError::ApiError(Box::new(e))),
        )
    }
}

/// The columns of the cursor `name`, as its rows come (text), if it was declared here.
pub fn cursor_fields(
    client: &(impl ClientInfo + ?Sized),
    name: &str,
) -> Option<PgWireResult<Vec<FieldInfo>>> {
    let shapes = shapes(client);
    let known = shapes.0.lock().unwrap_or_else(|p| p.into_inner());
    let schema = known.get(name)?;
    Some(arrow_schema_to_pg_fields(
        schema,
        &Format::UnifiedText,
        None,
    ))
}

/// The columns a prepared `FETCH` returns: its cursor's, in text.
pub fn fetch_fields(
    statement: &Statement,
    plan: &LogicalPlan,
) -> Option<PgWireResult<Vec<FieldInfo>>> {
    let Statement::Fetch { .. } = statement else {
        return None;
    };
    Some(arrow_schema_to_pg_fields(
        plan.schema().as_arrow(),
        &Format::UnifiedText,
        None,
    ))
}

#[async_trait::async_trait]
impl QueryHook for CursorShapes {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::record(statement, session_context, &*client)
            .await
            .err()
            .map(Err)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        if let Err(e) = Self::record(statement, session_context, client).await {
            return Some(Err(e));
        }
        Self::fetch_plan(statement, client)
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        None
    }
}
