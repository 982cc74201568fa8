use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

// An ingest allocates on the decode threads and frees on the writer thread, hundreds of MiB
// a second; mimalloc took a third off the CPU time of glibc malloc (README, Performance).
// Its own default for giving freed memory back to the OS (after 1 s) is kept: keeping all
// freed memory cost no less CPU and let a long Kafka ingest's RSS climb pass by pass.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    if let Err(message) = simtally::config_file::apply_config_file(&args) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let cli = simtally::cli::Cli::parse_from(args);
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
    let runtime = match tokio::runtime::Runtime::new() {
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
    let outcome = runtime.block_on(run_until_stopped(config, shutdown));
    // A reader blocked on stdin or a broker must not keep the process alive.
    runtime.shutdown_background();
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("error: {}", error_chain(&e));
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

/// The error and its causes on one line, without a backtrace.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
