//! What a Postgres client sees of the database: `pg_catalog` (from datafusion-postgres) and
//! `information_schema`, built once per kind of viewer (person or operator: their views
//! differ) and shared by every statement of every connection. Sharing is what keeps OIDs
//! stable: datafusion-postgres numbers tables as it first lists them, so a catalog built
//! per statement gave `usage` another OID each time and psql's `\d usage` showed another
//! table's columns. It also spares every statement loading the static catalog tables.
//!
//! Each statement's session is the template's engine (functions, type planner) with a
//! fresh catalog holding the caller's own views, and the shared catalog schemas beside
//! them. The catalogs list view names and columns, the same for every person; which rows a
//! view returns is decided when it is scanned (`query::scoped`).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::TableType;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion_postgres::arrow_pg::datatypes::into_pg_type;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::pgwire::api::Type;

use crate::domain::UserId;
use crate::query::LakeSnapshots;
use crate::query::{base_state, register_views, QueryError, Scope, Viewer};

/// The database name clients connect to and `current_database()` answers.
pub const DATABASE: &str = "simtally";
const PUBLIC: &str = "public";

/// The shared catalogs and session templates, one per kind of viewer.
pub struct Catalogs {
    member: Template,
    operator: Template,
    /// The `pg_catalog` tables without rows (they never change while the server runs).
    empty: Arc<HashSet<String>>,
}

struct Template {
    state: SessionState,
    pg_catalog: Arc<dyn SchemaProvider>,
    information_schema: Arc<dyn SchemaProvider>,
}

impl Catalogs {
    pub async fn new(lake: &Arc<LakeSnapshots>) -> Result<Catalogs, QueryError> {
        let someone = UserId::parse("template").map_err(QueryError::Scope)?;
        let member = Template::new(lake, &Viewer::Member(someone)).await?;
        let empty = Arc::new(empty_tables(&member).await);
        Ok(Catalogs {
            member,
            operator: Template::new(lake, &Viewer::Operator).await?,
            empty,
        })
    }

    /// The `pg_catalog` tables that have no rows.
    pub fn empty_tables(&self) -> Arc<HashSet<String>> {
        self.empty.clone()
    }

    /// A session for one statement of `viewer`: their views beside the shared catalogs.
    pub fn session(
        &self,
        lake: &Arc<LakeSnapshots>,
        viewer: &Viewer,
    ) -> Result<SessionContext, QueryError> {
        let template = match viewer {
            Viewer::Operator => &self.operator,
            Viewer::Member(_) => &self.member,
        };
        let catalog = MemoryCatalogProvider::new();
        catalog.register_schema(PUBLIC, Arc::new(MemorySchemaProvider::new()))?;
        catalog.register_schema("pg_catalog", template.pg_catalog.clone())?;
        catalog.register_schema("information_schema", template.information_schema.clone())?;
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(DATABASE.to_owned(), Arc::new(catalog));
        let state = SessionStateBuilder::new_from_existing(template.state.clone())
            .with_catalog_list(Arc::new(catalogs))
            .build();
        let ctx = SessionContext::new_with_state(state);
        register_views(&ctx, lake, viewer, &Scope::default())?;
        Ok(ctx)
    }
}

/// The `pg_catalog` tables of `template` that have no rows.
async fn empty_tables(template: &Template) -> HashSet<String> {
    let ctx = SessionContext::new_with_state(template.state.clone());
    let mut empty = HashSet::new();
    for name in template.pg_catalog.table_names() {
        let sql = format!("SELECT 1 FROM pg_catalog.{name} LIMIT 1");
        let rows = match ctx.sql(&sql).await {
            Ok(frame) => frame.count().await,
            Err(e) => Err(e),
        };
        if let Ok(0) = rows {
            empty.insert(name.to_lowercase());
        }
    }
    empty
}

impl Template {
    async fn new(lake: &Arc<LakeSnapshots>, viewer: &Viewer) -> Result<Template, QueryError> {
        let ctx = SessionContext::new_with_state(base_state(lake.runtime()));
        register_views(&ctx, lake, viewer, &Scope::default())?;
        setup_pg_catalog(&ctx, DATABASE, EmptyContextProvider).map_err(|e| *e)?;
        super::dialect::register_functions(&ctx);
        super::to_char::use_postgres_patterns(&ctx);
        let catalog = ctx
            .catalog(DATABASE)
            .ok_or_else(|| DataFusionError::Internal(format!("no catalog {DATABASE}")))?;
        let schema = |name: &str| {
            catalog
                .schema(name)
                .ok_or_else(|| DataFusionError::Internal(format!("no schema {name}")))
        };
        let public = schema(PUBLIC)?;
        let pg_catalog: Arc<dyn SchemaProvider> = Arc::new(NoKeys(schema("pg_catalog")?));
        catalog.register_schema("pg_catalog", pg_catalog.clone())?;
        let information_schema = Arc::new(information_schema(&public, &pg_catalog).await?);
        Ok(Template {
            state: ctx.state(),
            pg_catalog,
            information_schema,
        })
    }
}

/// Tables that describe keys and indexes. datafusion-postgres fills them with those of
/// PostgreSQL's own system catalogs; nothing here has any (the catalogs here are plain
/// tables, the views have no keys), so they are empty, and clients that look up a view's
/// primary key or indexes (SQLAlchemy, Superset) find none instead of failing on rows they
/// cannot decode.
const WITHOUT_ROWS: &[&str] = &["pg_constraint", "pg_index"];

/// `pg_catalog` with [`WITHOUT_ROWS`] empty.
#[derive(Debug)]
struct NoKeys(Arc<dyn SchemaProvider>);

#[async_trait::async_trait]
impl SchemaProvider for NoKeys {
    fn table_names(&self) -> Vec<String> {
        self.0.table_names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.0.table(name).await? else {
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        if name == "pg_class" {
            return Ok(Some(with_reloptions(table)?));
        }
        if !WITHOUT_ROWS.contains(&name.as_str()) {
            return Ok(Some(table));
        }
        Ok(Some(Arc::new(MemTable::try_new(
            table.schema(),
            vec![vec![]],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.0.table_exist(name)
    }
}

/// `pg_class` with the `reloptions` column datafusion-postgres lacks (NULL: no storage
/// options), which psql's `\d+` and SQLAlchemy's index listing select.
fn with_reloptions(pg_class: Arc<dyn TableProvider>) -> DfResult<Arc<dyn TableProvider>> {
    use datafusion::datasource::{provider_as_source, ViewTable};
    use datafusion::logical_expr::{col, lit, LogicalPlanBuilder};
    let options = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let mut columns: Vec<_> = (pg_class.schema().fields().iter())
        .map(|f| col(datafusion::common::Column::from_name(f.name())))
        .collect();
    columns
        .push(datafusion::logical_expr::cast(lit(ScalarValue::Null), options).alias("reloptions"));
    let plan = LogicalPlanBuilder::scan("pg_class", provider_as_source(pg_class), None)?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `information_schema.tables`, `columns`, `views` and `schemata` of the caller's views,
/// with PostgreSQL's type names (Grafana's and Metabase's table and column pickers read them).
async fn information_schema(
    public: &Arc<dyn SchemaProvider>,
    pg_catalog: &Arc<dyn SchemaProvider>,
) -> DfResult<MemorySchemaProvider> {
    let mut views: Vec<(String, Arc<dyn TableProvider>)> = Vec::new();
    let mut names = public.table_names();
    names.sort();
    for name in names {
        if let Some(table) = public.table(&name).await? {
            views.push((name, table));
        }
    }
    let mut system = pg_catalog.table_names();
    system.sort();
    let schema = MemorySchemaProvider::new();
    schema.register_table("tables".to_owned(), tables(&views, &system)?)?;
    schema.register_table("columns".to_owned(), columns(&views)?)?;
    schema.register_table("views".to_owned(), view_rows(&views)?)?;
    schema.register_table("schemata".to_owned(), schemata()?)?;
    Ok(schema)
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn mem_table(fields: Vec<Field>, columns: Vec<ArrayRef>) -> DfResult<Arc<dyn TableProvider>> {
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn strings<S: AsRef<str>>(values: impl IntoIterator<Item = Option<S>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn table_type(table: &dyn TableProvider) -> &'static str {
    match table.table_type() {
        TableType::View => "VIEW",
        TableType::Temporary => "LOCAL TEMPORARY",
        TableType::Base => "BASE TABLE",
    }
}

fn tables(
    views: &[(String, Arc<dyn TableProvider>)],
    system: &[String],
) -> DfResult<Arc<dyn TableProvider>> {
    let mut rows: Vec<(&str, &str, &str)> = views
        .iter()
        .map(|(name, table)| (PUBLIC, name.as_str(), table_type(table.as_ref())))
        .collect();
    rows.extend(
        system
            .iter()
            .map(|n| ("pg_catalog", n.as_str(), "BASE TABLE")),
    );
    for name in ["tables", "columns", "views", "schemata"] {
        rows.push(("information_schema", name, "VIEW"));
    }
    mem_table(
        vec![
            text("table_catalog"),
            text("table_schema"),
            text("table_name"),
            text("table_type"),
        ],
        vec![
            strings(rows.iter().map(|_| Some(DATABASE))),
            strings(rows.iter().map(|r| Some(r.0))),
            strings(rows.iter().map(|r| Some(r.1))),
            strings(rows.iter().map(|r| Some(r.2))),
        ],
    )
}

/// One column of a view as information_schema describes it.
struct ColumnRow {
    table: String,
    name: String,
    position: i32,
    nullable: bool,
    data_type: &'static str,
    udt_name: String,
    precision: Option<i32>,
    scale: Option<i32>,
}

fn columns(views: &[(String, Arc<dyn TableProvider>)]) -> DfResult<Arc<dyn TableProvider>> {
    let mut rows = Vec::new();
    for (table, provider) in views {
        for (i, field) in provider.schema().fields().iter().enumerate() {
            let pg = into_pg_type(field.data_type()).unwrap_or(Type::TEXT);
            let (precision, scale) = match field.data_type() {
                DataType::Decimal128(p, s) => (Some(i32::from(*p)), Some(i32::from(*s))),
                _ => (None, None),
            };
            rows.push(ColumnRow {
                table: table.clone(),
                name: field.name().clone(),
                position: i32::try_from(i + 1).unwrap_or(i32::MAX),
                nullable: field.is_nullable(),
                data_type: sql_type_name(&pg),
                udt_name: pg.name().to_owned(),
                precision,
                scale,
            });
        }
    }
    let int = |name: &str| Field::new(name, DataType::Int32, true);
    mem_table(
        vec![
            text("table_catalog"),
            text("table_schema"),
            text("table_name"),
            text("column_name"),
            int("ordinal_position"),
            text("column_default"),
            text("is_nullable"),
            text("data_type"),
            int("character_maximum_length"),
            int("numeric_precision"),
            int("numeric_scale"),
            text("udt_catalog"),
            text("udt_schema"),
            text("udt_name"),
        ],
        vec![
            strings(rows.iter().map(|_| Some(DATABASE))),
            strings(rows.iter().map(|_| Some(PUBLIC))),
            strings(rows.iter().map(|r| Some(&r.table))),
            strings(rows.iter().map(|r| Some(&r.name))),
            Arc::new(Int32Array::from_iter(rows.iter().map(|r| Some(r.position)))),
            strings(rows.iter().map(|_| None::<&str>)),
            strings(
                rows.iter()
                    .map(|r| Some(if r.nullable { "YES" } else { "NO" })),
            ),
            strings(rows.iter().map(|r| Some(r.data_type))),
            Arc::new(Int32Array::from_iter(rows.iter().map(|_| None))),
            Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.precision))),
            Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.scale))),
            strings(rows.iter().map(|_| Some(DATABASE))),
            strings(rows.iter().map(|_| Some("pg_catalog"))),
            strings(rows.iter().map(|r| Some(&r.udt_name))),
        ],
    )
}

/// The name information_schema gives a type (`data_type`), as PostgreSQL does.
fn sql_type_name(pg: &Type) -> &'static str {
    match *pg {
        Type::BOOL => "boolean",
        Type::INT2 => "smallint",
        Type::INT4 => "integer",
        Type::INT8 => "bigint",
        Type::FLOAT4 => "real",
        Type::FLOAT8 => "double precision",
        Type::NUMERIC => "numeric",
        Type::TEXT => "text",
        Type::VARCHAR => "character varying",
        Type::DATE => "date",
        Type::TIME => "time without time zone",
        Type::TIMESTAMP => "timestamp without time zone",
        Type::TIMESTAMPTZ => "timestamp with time zone",
        Type::INTERVAL => "interval",
        Type::BYTEA => "bytea",
        Type::JSON => "json",
        Type::JSONB => "jsonb",
        _ if pg.name().starts_with('_') => "ARRAY",
        _ => "USER-DEFINED",
    }
}

/// The views' definitions are not shown: as in PostgreSQL for a view one does not own.
fn view_rows(views: &[(String, Arc<dyn TableProvider>)]) -> DfResult<Arc<dyn TableProvider>> {
    let names: Vec<&str> = views
        .iter()
        .filter(|(_, t)| t.table_type() == TableType::View)
        .map(|(n, _)| n.as_str())
        .collect();
    let constant = |value: Option<&'static str>| strings(names.iter().map(|_| value));
    mem_table(
        vec![
            text("table_catalog"),
            text("table_schema"),
            text("table_name"),
            text("view_definition"),
            text("check_option"),
            text("is_updatable"),
            text("is_insertable_into"),
        ],
        vec![
            constant(Some(DATABASE)),
            constant(Some(PUBLIC)),
            strings(names.iter().map(|n| Some(*n))),
            constant(None),
            constant(Some("NONE")),
            constant(Some("NO")),
            constant(Some("NO")),
        ],
    )
}

fn schemata() -> DfResult<Arc<dyn TableProvider>> {
    let names = [PUBLIC, "pg_catalog", "information_schema"];
    mem_table(
        vec![
            text("catalog_name"),
            text("schema_name"),
            text("schema_owner"),
        ],
        vec![
            strings(names.iter().map(|_| Some(DATABASE))),
            strings(names.iter().map(|n| Some(*n))),
            strings(names.iter().map(|_| Some("simtally"))),
        ],
    )
}
