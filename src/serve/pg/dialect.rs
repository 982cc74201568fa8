//! The PostgreSQL a client expects, where DataFusion speaks otherwise: `version()`,
//! `session_user`, no-op session statements, and every query planned under PostgreSQL's
//! output names and the session's `TimeZone` (see [`names`](super::names)).

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::{DFSchema, ParamValues};
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire;
use datafusion_postgres::QueryHook;
use pgwire::api::portal::Format;
use pgwire::api::results::{Response, Tag};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::types::format::FormatOptions;

use super::names::{client_response, in_time_zone, name_outputs};
use super::settings::Settings;
use super::subqueries::adapt_catalog_queries;

/// What `version()` answers: PostgreSQL's form first, which clients parse for the server's
/// major version (SQLAlchemy refuses to connect to "Apache DataFusion ..."), then what
/// answers really.
pub const VERSION: &str = concat!(
    "PostgreSQL 16.6 (simtally ",
    env!("CARGO_PKG_VERSION"),
    "; Apache DataFusion 55; read-only)"
);

/// `version()` as PostgreSQL words it (see [`VERSION`]).
pub fn version_function() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    use datafusion::scalar::ScalarValue;
    create_udf(
        "version",
        vec![],
        arrow::datatypes::DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|_| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                VERSION.to_owned(),
            ))))
        }),
    )
}

/// Statements a read-only session has nothing to do for, answered as PostgreSQL would:
/// `SAVEPOINT` and `RELEASE` (SQLAlchemy, Django), `DISCARD ALL` (pgbouncer, Npgsql).
pub struct SessionNoOps;

impl SessionNoOps {
    fn tag(statement: &Statement) -> Option<&'static str> {
        match statement {
            Statement::Savepoint { .. } => Some("SAVEPOINT"),
            Statement::ReleaseSavepoint { .. } => Some("RELEASE"),
            Statement::Discard { .. } => Some("DISCARD ALL"),
            _ => None,
        }
    }
}

#[async_trait::async_trait]
impl QueryHook for SessionNoOps {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::tag(statement).map(|tag| Ok(Response::Execution(Tag::new(tag))))
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        Self::tag(statement).map(|_| {
            Ok(LogicalPlan::EmptyRelation(EmptyRelation {
                produce_one_row: false,
                schema: Arc::new(DFSchema::empty()),
            }))
        })
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::tag(statement).map(|tag| Ok(Response::Execution(Tag::new(tag))))
    }
}

/// `session_user` (and `current_user`, `user`, which datafusion-postgres rewrites to it):
/// the subject of the connection's token, where datafusion-postgres answers "postgres".
pub fn session_user_function(user: String) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    use datafusion::scalar::ScalarValue;
    create_udf(
        "session_user",
        vec![],
        arrow::datatypes::DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(user.clone()))))),
    )
}

/// Plans every query (`SELECT`, `WITH`, `VALUES`) under PostgreSQL's output names and with
/// `timestamptz` outputs in the session's `TimeZone`; the last hook, after the statements
/// the others answer.
pub struct Queries {
    /// The `pg_catalog` tables without rows (see [`adapt_catalog_queries`]).
    pub empty_catalog_tables: Arc<HashSet<String>>,
}

impl Queries {
    async fn plan(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        let Statement::Query(_) = statement else {
            return None;
        };
        let mut named = statement.clone();
        name_outputs(&mut named);
        adapt_catalog_queries(&mut named, &self.empty_catalog_tables);
        let planned = async {
            let plan = (ctx.state())
                .statement_to_plan(DfStatement::Statement(Box::new(named)))
                .await?;
            in_time_zone(plan, Settings::of(client.metadata()).time_zone())
        };
        Some(
            planned
                .await
                .map_err(|e| PgWireError::ApiError(Box::new(e))),
        )
    }
}

#[async_trait::async_trait]
impl QueryHook for Queries {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let plan = match self.plan(statement, session_context, client).await? {
            Ok(plan) => plan,
            Err(e) => return Some(Err(e)),
        };
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let answered = async {
            let frame = session_context
                .execute_logical_plan(plan)
                .await
                .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            let response = encode_dataframe(frame, &Format::UnifiedText, Some(options)).await?;
            Ok(client_response(Response::Query(response)))
        };
        Some(answered.await)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        self.plan(statement, session_context, client).await
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

/// The OIDs of the types `to_regtype` knows, by PostgreSQL's names and aliases.
const TYPE_OIDS: &[(&str, i32)] = &[
    ("bool", 16),
    ("boolean", 16),
    ("bytea", 17),
    ("int8", 20),
    ("bigint", 20),
    ("int2", 21),
    ("smallint", 21),
    ("int4", 23),
    ("integer", 23),
    ("int", 23),
    ("text", 25),
    ("oid", 26),
    ("json", 114),
    ("float4", 700),
    ("real", 700),
    ("float8", 701),
    ("double precision", 701),
    ("varchar", 1043),
    ("character varying", 1043),
    ("date", 1082),
    ("time", 1083),
    ("timestamp", 1114),
    ("timestamp without time zone", 1114),
    ("timestamptz", 1184),
    ("timestamp with time zone", 1184),
    ("interval", 1186),
    ("numeric", 1700),
    ("decimal", 1700),
    ("uuid", 2950),
    ("jsonb", 3802),
];

/// `to_regtype(name)`: the type's OID, or NULL for a type the server does not have
/// (psycopg and SQLAlchemy ask for `hstore` when they connect).
pub fn to_regtype_function() -> datafusion::logical_expr::ScalarUDF {
    use arrow::array::{Array, Int32Array};
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    create_udf(
        "to_regtype",
        vec![arrow::datatypes::DataType::Utf8],
        arrow::datatypes::DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let names = ColumnarValue::values_to_arrays(args)?;
            let names = arrow::array::cast::as_string_array(&names[0]);
            let oids: Int32Array = (0..names.len())
                .map(|i| {
                    let name = names.is_valid(i).then(|| names.value(i))?;
                    let name = name.trim().trim_start_matches("pg_catalog.").to_lowercase();
                    TYPE_OIDS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, oid)| *oid)
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(oids)))
        }),
    )
}

/// Functions that describe objects this server has none of, answering NULL as PostgreSQL
/// does for them: `pg_get_serial_sequence` (no sequences), `pg_get_indexdef` (no
/// indexes), `pg_get_viewdef` (view definitions are not shown, as in `information_schema`).
/// SQLAlchemy's `inspect()` and Superset call them for each view.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NullText {
    name: &'static str,
    signature: datafusion::logical_expr::Signature,
}

impl NullText {
    fn udfs() -> Vec<datafusion::logical_expr::ScalarUDF> {
        use datafusion::logical_expr::{Signature, Volatility};
        [
            "pg_get_serial_sequence",
            "pg_get_indexdef",
            "pg_get_viewdef",
        ]
        .into_iter()
        .map(|name| {
            datafusion::logical_expr::ScalarUDF::new_from_impl(NullText {
                name,
                signature: Signature::variadic_any(Volatility::Stable),
            })
        })
        .collect()
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for NullText {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(
        &self,
        _: &[arrow::datatypes::DataType],
    ) -> datafusion::error::Result<arrow::datatypes::DataType> {
        Ok(arrow::datatypes::DataType::Utf8)
    }
    fn invoke_with_args(
        &self,
        _: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        Ok(datafusion::logical_expr::ColumnarValue::Scalar(
            datafusion::scalar::ScalarValue::Utf8(None),
        ))
    }
}

/// `json_build_object(key, value, ...)` as JSON text (SQLAlchemy's `inspect()` plans it for
/// identity columns, of which there are none).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonBuildObject {
    signature: datafusion::logical_expr::Signature,
}

impl JsonBuildObject {
    pub fn udf() -> datafusion::logical_expr::ScalarUDF {
        use datafusion::logical_expr::{Signature, Volatility};
        datafusion::logical_expr::ScalarUDF::new_from_impl(JsonBuildObject {
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    }
}

fn json_value(value: &datafusion::scalar::ScalarValue) -> serde_json::Value {
    use datafusion::scalar::ScalarValue as S;
    match value {
        v if v.is_null() => serde_json::Value::Null,
        S::Boolean(Some(b)) => serde_json::Value::Bool(*b),
        S::Int8(_)
        | S::Int16(_)
        | S::Int32(_)
        | S::Int64(_)
        | S::UInt8(_)
        | S::UInt16(_)
        | S::UInt32(_)
        | S::UInt64(_)
        | S::Decimal128(..)
        | S::Float32(_)
        | S::Float64(_) => {
            serde_json::from_str(&value.to_string()).unwrap_or(serde_json::Value::Null)
        }
        other => serde_json::Value::String(other.to_string()),
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(
        &self,
        _: &[arrow::datatypes::DataType],
    ) -> datafusion::error::Result<arrow::datatypes::DataType> {
        Ok(arrow::datatypes::DataType::Utf8)
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::logical_expr::ColumnarValue;
        use datafusion::scalar::ScalarValue;
        if !args.args.len().is_multiple_of(2) {
            return datafusion::common::plan_err!(
                "json_build_object takes pairs of keys and values"
            );
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = arrow::array::StringBuilder::new();
        for row in 0..args.number_rows {
            let mut object = serde_json::Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?.to_string();
                let value = ScalarValue::try_from_array(&pair[1], row)?;
                object.insert(key, json_value(&value));
            }
            out.append_value(serde_json::Value::Object(object).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `pg_collation_is_visible`, `pg_type_is_visible`, `pg_function_is_visible`: true, as every
/// object in the catalog is on the search path.
pub fn visibility_functions() -> Vec<datafusion::logical_expr::ScalarUDF> {
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    use datafusion::scalar::ScalarValue;
    [
        "pg_collation_is_visible",
        "pg_type_is_visible",
        "pg_function_is_visible",
    ]
    .into_iter()
    .map(|name| {
        create_udf(
            name,
            vec![arrow::datatypes::DataType::Int32],
            arrow::datatypes::DataType::Boolean,
            Volatility::Stable,
            Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))),
        )
    })
    .collect()
}

/// The PostgreSQL functions of this module, registered with `ctx`.
pub fn register_functions(ctx: &SessionContext) {
    ctx.register_udf(version_function());
    ctx.register_udf(to_regtype_function());
    ctx.register_udf(JsonBuildObject::udf());
    for udf in NullText::udfs().into_iter().chain(visibility_functions()) {
        ctx.register_udf(udf);
    }
}

/// `sql` with each `'name'::regproc` literal as the bare function name, if it has any.
/// datafusion-postgres turns the cast into an OID lookup in `pg_proc`, but its `pg_type`
/// holds function names in `typinput` and `typoutput`, so DBeaver's `typinput =
/// 'pg_catalog.array_in'::regproc` fails to compare; the names compare as PostgreSQL's
/// OIDs would. (Upstream: make the two agree.)
pub fn regproc_as_names(sql: &str) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr, Value};
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    if !sql.to_ascii_lowercase().contains("regproc") {
        return None;
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let _ = visit_expressions_mut(&mut statements, |expr| {
        if let Expr::Cast {
            expr: inner,
            data_type,
            ..
        } = expr
        {
            let type_name = data_type.to_string().to_lowercase();
            let is_regproc = type_name.trim_start_matches("pg_catalog.") == "regproc";
            if let (true, Expr::Value(v)) = (is_regproc, inner.as_ref()) {
                if let Value::SingleQuotedString(name) = &v.value {
                    let bare = name.trim_start_matches("pg_catalog.").to_owned();
                    *expr = Expr::Value(Value::SingleQuotedString(bare).into());
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    let texts: Vec<String> = statements.iter().map(ToString::to_string).collect();
    Some(texts.join(";\n"))
}
