// No function over 80 lines (clippy.toml); `.ci/run` denies warnings.
#![warn(clippy::too_many_lines)]

use std::process::ExitCode;

use clap::Parser;
use simtally::allocator::{self, Allocator, ProcessAllocator, ALLOCATOR_ENV};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

// mimalloc, or glibc's malloc for a Kafka ingest: see `simtally::allocator` for why.
#[global_allocator]
static ALLOCATOR: ProcessAllocator = ProcessAllocator;

fn main() -> ExitCode {
    let allocator_setting = std::env::var_os(ALLOCATOR_ENV);
    if let Err(message) = Allocator::named(allocator_setting.as_ref().map(|v| v.as_encoded_bytes()))
    {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    if Allocator::in_use() == Allocator::System {
        allocator::limit_system_arenas();
    }
    let args: Vec<_> = std::env::args_os().collect();
    if let Err(message) = simtally::config_file::apply_config_file(&args) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let cli = simtally::cli::Cli::parse_from(args.clone());
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in a log file or collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    choose_allocator_for(&config, allocator_setting.is_some(), &args);
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    runtime.spawn(async move {
        if let Some(signal) = stop_signal().await {
            eprintln!("{signal}: stopping");
            on_signal.cancel();
        }
    });
    // On a thread of its own rather than the main thread: its stack is as deep as the
    // query threads' (`simtally query` plans on it).
    let handle = runtime.handle().clone();
    let driver = std::thread::Builder::new()
        .name("simtally-main".into())
        .stack_size(simtally::query::QUERY_STACK_BYTES)
        .spawn(move || handle.block_on(run_until_stopped(config, shutdown)));
    let outcome = match driver.map(|thread| thread.join()) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_panicked)) => {
            runtime.shutdown_background();
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A reader blocked on stdin or a broker must not keep the process alive.
    runtime.shutdown_background();
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        None => {
            eprintln!(
                "error: stopped before the run finished; a rerun completes it (the lake never \
                 loses or doubles a record, whatever was committed)"
            );
            ExitCode::FAILURE
        }
    }
}

/// How long a run may take to wind down after a stop signal. Runs stop at their next
/// chunk; one blocked reading stdin or a quiet broker would never get there.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the command; `None` if it did not end within [`STOP_GRACE`] of a stop signal.
async fn run_until_stopped(
    config: simtally::config::Config,
    shutdown: CancellationToken,
) -> Option<Result<(), simtally::RunError>> {
    let stopped = shutdown.clone();
    tokio::select! {
        result = simtally::run(config, shutdown) => Some(result),
        () = async move {
            stopped.cancelled().await;
            tokio::time::sleep(STOP_GRACE).await;
        } => None,
    }
}

/// A file ingest keeps mimalloc and the memory it frees; a Kafka ingest runs on the system
/// allocator (this process is replaced by the same command on it, unless the allocator
/// was set explicitly), see `simtally::allocator`.
fn choose_allocator_for(
    config: &simtally::config::Config,
    allocator_set: bool,
    args: &[std::ffi::OsString],
) {
    let simtally::config::Config::Ingest { options, .. } = config else {
        return;
    };
    if Allocator::in_use() != Allocator::Mimalloc {
        return;
    }
    if options.kafka.is_none() {
        allocator::keep_freed_memory();
        return;
    }
    if !allocator_set {
        let error = rerun_on_the_system_allocator(args);
        tracing::warn!("could not rerun on the system allocator, staying on mimalloc: {error}");
    }
    allocator::return_freed_memory_at_once();
}

/// The Postgres endpoint parses and plans statements on the runtime's threads: their
/// stacks are as deep as the query threads' (see `simtally::query::QUERY_STACK_BYTES`).
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(simtally::query::QUERY_STACK_BYTES)
        .build()
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM (what service managers and Kubernetes send), and
/// names it; `None` if no handler could be installed.
async fn stop_signal() -> Option<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok()?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.ok().map(|()| "interrupted"),
            _ = term.recv() => Some("terminated"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok().map(|()| "interrupted")
    }
}

/// Replaces this process with the same command on the system allocator (same pid, same
/// arguments, same standard streams); returns only if that could not be done.
#[cfg(unix)]
fn rerun_on_the_system_allocator(args: &[std::ffi::OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    let mut command = std::process::Command::new(exe);
    if let Some((first, rest)) = args.split_first() {
        command.arg0(first).args(rest);
    }
    command.env(ALLOCATOR_ENV, "system").exec()
}

#[cfg(not(unix))]
fn rerun_on_the_system_allocator(_args: &[std::ffi::OsString]) -> std::io::Error {
    std::io::Error::other("this platform cannot replace a running process")
}
