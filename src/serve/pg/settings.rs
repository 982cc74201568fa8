//! A connection's settings as PostgreSQL reports them: `SHOW`, `current_setting()`,
//! `set_config()`, `SET TIME ZONE`, and the parameters a client sends when it connects.
//! What the client set lives in the connection's metadata (lower-case names, where
//! datafusion-postgres keeps `SET` values too); everything else answers PostgreSQL's
//! defaults for a read-only server.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName, SelectItem, Set, SetExpr,
    Statement, Value,
};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire;
use datafusion_postgres::QueryHook;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::{ClientInfo, Type};
use pgwire::error::PgWireResult;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::PgWireBackendMessage;

use super::limits::{sql_error, SqlState, SqlStateError};

/// The PostgreSQL release whose behaviour the endpoint follows.
pub const SERVER_VERSION: &str = "16.6";

/// Settings and their values when the client has not set them.
const DEFAULTS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("bytea_output", "hex"),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_read_only", "on"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "off"),
    ("lc_collate", "C.UTF-8"),
    ("lc_ctype", "C.UTF-8"),
    ("max_identifier_length", "63"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", SERVER_VERSION),
    ("server_version_num", "160006"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "on"),
];

/// Settings a client may change (the others describe the server).
const WRITABLE: &[&str] = &[
    "application_name",
    "bytea_output",
    "datestyle",
    "extra_float_digits",
    "intervalstyle",
    "search_path",
    "timezone",
];

/// The names PostgreSQL shows for settings with capitals.
fn display_name(name: &str) -> &str {
    match name {
        "timezone" => "TimeZone",
        "datestyle" => "DateStyle",
        "intervalstyle" => "IntervalStyle",
        other => other,
    }
}

/// Where datafusion-postgres keeps the session's `statement_timeout`, in milliseconds.
pub const STATEMENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

/// The settings of one connection at one moment.
#[derive(Clone, Debug)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    pub fn of(metadata: &HashMap<String, String>) -> Settings {
        let mut values: BTreeMap<String, String> = DEFAULTS
            .iter()
            .map(|(name, default)| {
                let value = metadata.get(*name).map_or(*default, String::as_str);
                ((*name).to_owned(), value.to_owned())
            })
            .collect();
        if let Some(ms) = metadata.get(STATEMENT_TIMEOUT_KEY) {
            values.insert("statement_timeout".to_owned(), format!("{ms}ms"));
        }
        Settings(values)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_lowercase()).map(String::as_str)
    }

    pub fn time_zone(&self) -> &str {
        self.get("timezone").unwrap_or("UTC")
    }
}

/// Copies the PostgreSQL settings among a client's startup parameters (`TimeZone`,
/// `DateStyle`, `application_name`, ...) to where `SET` keeps them.
pub fn adopt_startup_parameters(metadata: &mut HashMap<String, String>) {
    let given: Vec<(String, String)> = metadata
        .iter()
        .map(|(name, value)| (name.to_lowercase(), value.clone()))
        .filter(|(name, _)| WRITABLE.contains(&name.as_str()))
        .collect();
    for (name, value) in given {
        if name != "timezone" || Tz::from_str(&value).is_ok() {
            metadata.insert(name, value);
        }
    }
}

fn unknown_message(name: &str) -> String {
    format!("unrecognized configuration parameter \"{name}\"")
}

fn unknown(name: &str) -> pgwire::error::PgWireError {
    sql_error(SqlState::UNDEFINED_OBJECT, unknown_message(name))
}

/// `current_setting(name [, missing_ok])` over one statement's [`Settings`].
#[derive(Debug)]
pub struct CurrentSetting {
    settings: Arc<Settings>,
    signature: Signature,
}

impl PartialEq for CurrentSetting {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}
impl Eq for CurrentSetting {}
impl std::hash::Hash for CurrentSetting {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "current_setting".hash(state);
    }
}

impl CurrentSetting {
    pub fn udf(settings: Arc<Settings>) -> ScalarUDF {
        let signature = Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
            ],
            Volatility::Stable,
        );
        ScalarUDF::new_from_impl(CurrentSetting {
            settings,
            signature,
        })
    }
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let missing_ok = matches!(
            args.args.get(1),
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
        );
        let arrays = ColumnarValue::values_to_arrays(&args.args[..1])?;
        let names = arrow::array::cast::as_string_array(&arrays[0]);
        let mut values = arrow::array::StringBuilder::new();
        for name in names {
            match name.map(|n| (n, self.settings.get(n))) {
                None => values.append_null(),
                Some((_, Some(value))) => values.append_value(value),
                Some((_, None)) if missing_ok => values.append_null(),
                Some((name, None)) => {
                    return Err(datafusion::error::DataFusionError::External(Box::new(
                        SqlStateError {
                            code: SqlState::UNDEFINED_OBJECT,
                            message: unknown_message(name),
                        },
                    )))
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(values.finish())))
    }
}

/// `SHOW`, `SET TIME ZONE`, `SET timezone` and `set_config()` as PostgreSQL answers them
/// (datafusion-postgres shows "" for most settings and loses a time zone set with `SET
/// timezone = ...`).
pub struct SettingsHook;

impl SettingsHook {
    fn show(name: &str, value: &str) -> PgWireResult<Response> {
        let field = FieldInfo::new(
            display_name(name).to_owned(),
            None,
            None,
            Type::TEXT,
            FieldFormat::Text,
        );
        let fields = Arc::new(vec![field]);
        let mut row = DataRowEncoder::new(fields.clone());
        row.encode_field(&value)?;
        let rows = futures::stream::iter(vec![Ok(row.take_row())]);
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }

    fn respond_show(
        statement: &Statement,
        client: &dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let Statement::ShowVariable { variable } = statement else {
            return None;
        };
        let words: Vec<String> = variable.iter().map(|i| i.value.to_lowercase()).collect();
        let name = match words.join(" ").as_str() {
            "time zone" => "timezone".to_owned(),
            "transaction isolation level" => "transaction_isolation".to_owned(),
            other => other.to_owned(),
        };
        let settings = Settings::of(client.metadata());
        Some(match settings.get(&name) {
            Some(value) => Self::show(&name, value),
            None => Err(unknown(&name)),
        })
    }

    /// The zone of `SET TIME ZONE` or `SET timezone = / TO`, if that is the statement.
    fn time_zone_set(statement: &Statement) -> Option<String> {
        let value = match statement {
            Statement::Set(Set::SetTimeZone { value, .. }) => value,
            Statement::Set(Set::SingleAssignment {
                variable, values, ..
            }) if is_named(variable, "timezone") && values.len() == 1 => &values[0],
            _ => return None,
        };
        Some(match value {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            Expr::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
    }

    async fn set_time_zone(zone: String, client: &mut dyn HookClient) -> PgWireResult<Response> {
        let zone = match zone.to_lowercase().as_str() {
            "default" | "local" => "UTC".to_owned(),
            _ => zone,
        };
        if Tz::from_str(&zone).is_err() {
            return Err(sql_error(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("invalid value for parameter \"TimeZone\": \"{zone}\""),
            ));
        }
        client
            .metadata_mut()
            .insert("timezone".to_owned(), zone.clone());
        client
            .send_message(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                "TimeZone".to_owned(),
                zone,
            )))
            .await?;
        Ok(Response::Execution(Tag::new("SET")))
    }

    /// Keeps what `SELECT set_config('name', 'value', is_local)` sets; the query itself
    /// then answers the value (see [`set_config_function`]).
    fn keep_set_config(
        statement: &Statement,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let (name, value) = set_config_call(statement)?;
        let name = name.to_lowercase();
        if !WRITABLE.contains(&name.as_str()) {
            if Settings::of(client.metadata()).get(&name).is_some() {
                return Some(Err(sql_error(
                    SqlState::CANT_CHANGE_RUNTIME_PARAM,
                    format!("parameter \"{name}\" cannot be changed"),
                )));
            }
            return Some(Err(unknown(&name)));
        }
        if name == "timezone" && Tz::from_str(&value).is_err() {
            return Some(Err(sql_error(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("invalid value for parameter \"TimeZone\": \"{value}\""),
            )));
        }
        client.metadata_mut().insert(name, value);
        None
    }
}

fn is_named(name: &ObjectName, wanted: &str) -> bool {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .is_some_and(|i| i.value.eq_ignore_ascii_case(wanted))
}

/// `SELECT set_config('name', 'value', ...)` with literal arguments: its name and value.
fn set_config_call(statement: &Statement) -> Option<(String, String)> {
    let Statement::Query(query) = statement else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let [SelectItem::UnnamedExpr(Expr::Function(f))
    | SelectItem::ExprWithAlias {
        expr: Expr::Function(f),
        ..
    }] = select.projection.as_slice()
    else {
        return None;
    };
    if !is_named(&f.name, "set_config") {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let literal = |arg: &FunctionArg| match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    match list.args.as_slice() {
        [name, value, _] => Some((literal(name)?, literal(value)?)),
        _ => None,
    }
}

/// `set_config(name, value, is_local)`: answers the value; [`SettingsHook`] keeps it.
pub fn set_config_function() -> ScalarUDF {
    datafusion::logical_expr::create_udf(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(|args: &[ColumnarValue]| Ok(args[1].clone())),
    )
}

impl SettingsHook {
    /// The answer to `statement` if it is one of this hook's (over either protocol).
    async fn respond(
        statement: &Statement,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if let Some(zone) = Self::time_zone_set(statement) {
            return Some(Self::set_time_zone(zone, client).await);
        }
        if let Some(shown) = Self::respond_show(statement, client) {
            return Some(shown);
        }
        Self::keep_set_config(statement, client)
    }
}

#[async_trait::async_trait]
impl QueryHook for SettingsHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::respond(statement, client).await
    }

    async fn handle_extended_parse_query(
        &self,
        _statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        None
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::respond(statement, client).await
    }
}
