use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

// An ingest allocates on the decode threads and frees on the writer thread, hundreds of MiB
// a second; mimalloc took a third off the CPU time of glibc malloc (README, Performance).
// Its own default for giving freed memory back to the OS (after 1 s) is kept for files:
// keeping all freed memory cost no less CPU and let a long Kafka ingest's RSS climb pass by
// pass. A Kafka ingest returns it at once (see `return_freed_memory_at_once`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v3, the version libmimalloc-sys 0.1.49 builds by
/// default; its Rust bindings leave this option out). Checked by the test below.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set_default(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// A Kafka ingest runs pass after pass, each on new decode threads: with the default
/// purge delay the freed pages of ended passes stay resident and the peak grows with the
/// backlog (+25 % for 3x the records); purged at once it is nearly flat (+7 %), for about
/// 18 % more CPU and the same wall time, as the broker is the limit (README, Performance,
/// Kafka). `MIMALLOC_PURGE_DELAY` in the environment still decides, if set.
fn return_freed_memory_at_once() {
    // SAFETY: sets an integer option of the allocator this binary links; mimalloc reads
    // its options on every purge, so a change at run time takes effect.
    unsafe { mi_option_set_default(MI_OPTION_PURGE_DELAY, 0) }
}

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
    if matches!(&config, simtally::config::Config::Ingest { options, .. } if options.kafka.is_some())
    {
        return_freed_memory_at_once();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads and sets integer options of the linked allocator.
        unsafe {
            // mimalloc v3's default purge delay: 1,000 ms.
            assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            return_freed_memory_at_once();
            assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), 0);
        }
    }
}
