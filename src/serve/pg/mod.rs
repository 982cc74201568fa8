//! The Postgres wire protocol endpoint, for psql and BI tools (Grafana, Metabase, Superset).
//! The password is the caller's token; every statement runs in a fresh session of the
//! caller's scoped views beside the shared catalogs ([`catalog`]), through
//! datafusion-postgres, under the limits of [`limits`] and the dialect of [`dialect`],
//! [`names`] and [`settings`].

mod cancel;
mod catalog;
mod cursors;
mod dialect;
mod limits;
mod names;
mod settings;
mod subqueries;
mod to_char;

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire;
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DescribePortalResponse, FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio_util::sync::CancellationToken;

use self::catalog::Catalogs;
use self::limits::{
    limited, limited_one, sql_error, statement_limit, too_complex, with_sqlstate, Bounds, SqlState,
};
use self::names::{client_fields, client_response};
use self::settings::{adopt_startup_parameters, Settings};
use super::auth::{Authenticator, Caller};
use super::connections::{ConnectionLimits, PostgresConnections};
use super::fairness::Fairness;
use super::ServeError;
use crate::query::LakeSnapshots;
use crate::query::{admit, QueryLimits, Viewer};

/// Who a connection authenticated as; kept where `SET` cannot reach (unlike the
/// connection's metadata, which `SET name = value` writes).
struct AuthenticatedViewer {
    viewer: Viewer,
    /// The token's subject: what `session_user` answers.
    subject: String,
}

fn permission_denied(message: String) -> PgWireError {
    sql_error(SqlState::INSUFFICIENT_PRIVILEGE, message)
}

/// The parameters reported at startup: PostgreSQL's for a read-only server, and the
/// client's own time zone and date style if it sent them.
fn server_parameters<C: ClientInfo>(client: &C) -> DefaultServerParameterProvider {
    let settings = Settings::of(client.metadata());
    let mut parameters = DefaultServerParameterProvider::default();
    parameters.server_version = settings::SERVER_VERSION.to_owned();
    parameters.is_superuser = false;
    parameters.default_transaction_read_only = true;
    parameters.search_path = settings.get("search_path").unwrap_or_default().to_owned();
    parameters.time_zone = settings.time_zone().to_owned();
    parameters.date_style = settings.get("datestyle").unwrap_or_default().to_owned();
    parameters
}

/// Asks for a password and takes it as a token.
struct TokenStartup {
    auth: Arc<Authenticator>,
    /// The directory says which issuer each person signs in through.
    lake: Arc<LakeSnapshots>,
    statement_timeout: std::time::Duration,
    cancels: Arc<cancel::Cancels>,
}

#[async_trait]
impl StartupHandler for TokenStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                adopt_startup_parameters(client.metadata_mut());
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let token = password.into_password()?.password;
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let directory = match self.lake.directory().await {
                    Ok(directory) => directory,
                    Err(e) => {
                        tracing::warn!(%user, "Postgres login: the directory cannot be read: {e}");
                        return Err(PgWireError::InvalidPassword(user));
                    }
                };
                let viewer = match self.auth.caller_of_token(&token, &directory).await {
                    Ok(Caller::Member(id)) => AuthenticatedViewer {
                        subject: id.to_string(),
                        viewer: Viewer::Member(id),
                    },
                    Ok(Caller::Operator(subject)) => AuthenticatedViewer {
                        subject,
                        viewer: Viewer::Operator,
                    },
                    Err(e) => {
                        tracing::info!(%user, "Postgres login refused: {e}");
                        return Err(PgWireError::InvalidPassword(user));
                    }
                };
                client.session_extensions().insert(viewer);
                // The server's limit, unless the client sets a shorter one.
                client.metadata_mut().insert(
                    "statement_timeout_ms".to_owned(),
                    self.statement_timeout.as_millis().to_string(),
                );
                self.cancels.register(client);
                finish_authentication(client, &server_parameters(client)).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Refuses every statement but queries and the session chatter clients send (SET, SHOW,
/// transactions, cursors).
struct ReadOnly;

impl ReadOnly {
    fn refusal(statement: &Statement) -> Option<PgWireError> {
        use Statement as S;
        match statement {
            S::Query(_)
            | S::Set(_)
            | S::ShowVariable { .. }
            | S::StartTransaction { .. }
            | S::Commit { .. }
            | S::Rollback { .. }
            | S::Declare { .. }
            | S::Fetch { .. }
            | S::Close { .. }
            | S::Savepoint { .. }
            | S::ReleaseSavepoint { .. }
            | S::Discard { .. } => None,
            _ => Some(permission_denied(
                "only queries are allowed (no DDL, DML, COPY or EXPLAIN)".to_owned(),
            )),
        }
    }
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::refusal(statement).map(Err)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        Self::refusal(statement).map(Err)
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::refusal(statement).map(Err)
    }
}

/// What bounds the endpoint's work.
pub struct Limits {
    pub query: QueryLimits,
    /// Shared with the HTTP endpoint: one share per caller.
    pub fairness: Arc<Fairness>,
    pub connections: ConnectionLimits,
    /// Answers SSLRequest with a handshake, if given.
    pub tls: Option<pgwire::tokio::TlsAcceptor>,
}

/// Runs each statement in a session of the connection's viewer.
struct ScopedService {
    lake: Arc<LakeSnapshots>,
    limits: QueryLimits,
    fairness: Arc<Fairness>,
    connections: Arc<PostgresConnections>,
    catalogs: Catalogs,
    /// For the parser calls that need no session (result and parameter types).
    plain: Arc<DfSessionService>,
}

fn viewer_of<C: ClientInfo + ?Sized>(client: &C) -> PgWireResult<Arc<AuthenticatedViewer>> {
    client
        .session_extensions()
        .get::<AuthenticatedViewer>()
        .ok_or_else(|| permission_denied("not authenticated".to_owned()))
}

/// What a statement holds while it runs and streams: the caller's query slot, and the
/// connection marked busy (not idle).
type Held = (super::fairness::Pass, Option<super::connections::Busy>);

impl ScopedService {
    /// Waits for one of the caller's query slots, at most until the statement's deadline
    /// (`limit` from now); returns when the statement must stop.
    async fn slot<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        limit: std::time::Duration,
    ) -> PgWireResult<(Held, Bounds)> {
        let started = tokio::time::Instant::now();
        let cancel = cancel::statement_token(client);
        let busy = self.connections.busy(client.socket_addr());
        let who = viewer_of(client)?.viewer.key();
        let pass = (self.fairness.enter(&who, limit).await)
            .map_err(|e| sql_error(SqlState::INSUFFICIENT_RESOURCES, e.to_string()))?;
        let bounds = Bounds {
            limit,
            deadline: started + limit,
            cancel,
        };
        Ok(((pass, busy), bounds))
    }

    fn service_for<C: ClientInfo + ?Sized>(&self, client: &C) -> PgWireResult<DfSessionService> {
        let viewer = viewer_of(client)?;
        let ctx = (self.catalogs)
            .session(&self.lake, &viewer.viewer)
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        let settings = Arc::new(Settings::of(client.metadata()));
        ctx.register_udf(settings::CurrentSetting::udf(settings));
        ctx.register_udf(settings::set_config_function());
        ctx.register_udf(dialect::session_user_function(viewer.subject.clone()));
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(ReadOnly),
            Arc::new(settings::SettingsHook),
            Arc::new(cursors::CursorShapes),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
            Arc::new(dialect::SessionNoOps),
            Arc::new(dialect::Queries {
                empty_catalog_tables: self.catalogs.empty_tables(),
            }),
        ];
        Ok(DfSessionService::new_with_hooks(Arc::new(ctx), hooks))
    }
}

#[async_trait]
impl SimpleQueryHandler for ScopedService {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        admit(query, &self.limits.statement).map_err(too_complex)?;
        let adapted = dialect::regproc_as_names(query);
        let query = adapted.as_deref().unwrap_or(query);
        let service = self.service_for(client)?;
        let limit = statement_limit(client, self.limits.timeout);
        let (held, left) = self.slot(client, limit).await?;
        limited(
            left,
            SimpleQueryHandler::do_query(&service, client, query),
            held,
        )
        .await
    }
}

type DfStatement = (String, Option<(Statement, LogicalPlan)>);

/// Plans each statement in a session of the connection's viewer.
struct ScopedParser {
    service: Arc<ScopedService>,
}

#[async_trait]
impl QueryParser for ScopedParser {
    type Statement = DfStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        admit(sql, &self.service.limits.statement).map_err(too_complex)?;
        let adapted = dialect::regproc_as_names(sql);
        let sql = adapted.as_deref().unwrap_or(sql);
        let service = self.service.service_for(client)?;
        (service.query_parser().parse_sql(client, sql, types).await).map_err(with_sqlstate)
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.service.plain.query_parser().get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        if let (_, Some((statement, plan))) = stmt {
            if let Some(fields) = cursors::fetch_fields(statement, plan) {
                return fields;
            }
        }
        let fields = (self.service.plain.query_parser()).get_result_schema(stmt, column_format)?;
        Ok(client_fields(fields))
    }
}

struct ScopedExtended {
    service: Arc<ScopedService>,
    parser: Arc<ScopedParser>,
}

#[async_trait]
impl ExtendedQueryHandler for ScopedExtended {
    type Statement = DfStatement;
    type QueryParser = ScopedParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let service = self.service.service_for(client)?;
        let limit = statement_limit(client, self.service.limits.timeout);
        let (held, left) = self.service.slot(client, limit).await?;
        let work = ExtendedQueryHandler::do_query(&service, client, portal, max_rows);
        limited_one(left, work, held).await.map(client_response)
    }

    /// A cursor's portal is described with its columns (see [`cursors`]).
    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        target: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if target.statement.statement.1.is_none() {
            if let Some(fields) = cursors::cursor_fields(client, &target.name) {
                return Ok(DescribePortalResponse::new(fields?));
            }
        }
        let fields = (self.parser).get_result_schema(
            &target.statement.statement,
            Some(&target.result_column_format),
        )?;
        Ok(DescribePortalResponse::new(fields))
    }
}

struct Handlers {
    startup: Arc<TokenStartup>,
    simple: Arc<ScopedService>,
    extended: Arc<ScopedExtended>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.simple.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.extended.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(cancel::CancelStatements(self.startup.cancels.clone()))
    }
}

/// Binds `address` and serves the Postgres protocol until `shutdown`.
pub async fn start_postgres(
    address: &str,
    lake: Arc<LakeSnapshots>,
    auth: Arc<Authenticator>,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<SocketAddr, ServeError> {
    let bind_error = |cause| ServeError::Bind {
        address: address.to_owned(),
        cause,
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let catalogs = Catalogs::new(&lake)
        .await
        .map_err(|e| ServeError::Catalog(e.to_string()))?;
    let connections = Arc::new(PostgresConnections::new(limits.connections));
    let tls = limits.tls.clone();
    let simple = Arc::new(ScopedService {
        lake,
        limits: limits.query,
        fairness: limits.fairness,
        connections: connections.clone(),
        catalogs,
        plain: Arc::new(DfSessionService::new(Arc::new(SessionContext::new()))),
    });
    let handlers = Arc::new(Handlers {
        startup: Arc::new(TokenStartup {
            auth,
            lake: simple.lake.clone(),
            statement_timeout: limits.query.timeout,
            cancels: Arc::new(cancel::Cancels::default()),
        }),
        simple: simple.clone(),
        extended: Arc::new(ScopedExtended {
            service: simple.clone(),
            parser: Arc::new(ScopedParser { service: simple }),
        }),
    });
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((socket, peer)) => {
                    let (handlers, tls) = (handlers.clone(), tls.clone());
                    let serve = move |socket| pgwire::tokio::process_socket(socket, tls, handlers);
                    tokio::spawn(connections.clone().serve(socket, peer, serve));
                }
                Err(e) => tracing::warn!("Postgres endpoint: accepting a connection: {e}"),
            }
        }
    });
    Ok(bound)
}
