//! Counters of a following ingest, and the endpoint that serves them: `/metrics`
//! (Prometheus text format) and `/healthz`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use super::RunSummary;

#[derive(Debug, Default)]
pub struct Metrics {
    usage_messages: AtomicU64,
    event_messages: AtomicU64,
    records: AtomicU64,
    slices: AtomicU64,
    quarantined_slices: AtomicU64,
    dead_letters: AtomicU64,
    duplicates: AtomicU64,
    corrected_records: AtomicU64,
    correction_rows: AtomicU64,
    unsent_dead_letters: AtomicU64,
    passes: AtomicU64,
    passes_dropped: AtomicU64,
    ownership_loads: AtomicU64,
    last_pass_millis: AtomicU64,
    held: AtomicU64,
    last_commit_unix_millis: AtomicI64,
    /// Per (topic, partition): messages not yet in the lake when the last pass started.
    lag: Mutex<BTreeMap<(String, i32), i64>>,
}

impl Metrics {
    pub fn record_pass(&self, summary: &RunSummary) {
        let add = |counter: &AtomicU64, n: u64| counter.fetch_add(n, Ordering::Relaxed);
        add(&self.usage_messages, summary.usage.lines);
        add(&self.event_messages, summary.events.lines);
        add(&self.records, summary.usage.records);
        add(&self.slices, summary.usage.slices_attributed);
        add(
            &self.quarantined_slices,
            summary.quarantine.values().map(|q| q.slices).sum(),
        );
        add(
            &self.dead_letters,
            summary.usage.dead_letters + summary.events.dead_letters,
        );
        add(&self.duplicates, summary.usage.duplicates);
        add(&self.corrected_records, summary.corrections.records);
        add(&self.correction_rows, summary.corrections.rows);
        add(&self.unsent_dead_letters, summary.unsent_dead_letters);
        add(&self.passes, 1);
        self.last_pass_millis
            .store(summary.elapsed.as_millis() as u64, Ordering::Relaxed);
        self.held.store(summary.usage.held, Ordering::Relaxed);
        if !summary.lake_versions.is_empty() {
            self.last_commit_unix_millis
                .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
    }

    pub fn record_dropped_pass(&self) {
        self.passes_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_ownership_load(&self) {
        self.ownership_loads.fetch_add(1, Ordering::Relaxed);
    }

    /// The backlog of each owned partition as a pass starts; partitions no longer owned
    /// are forgotten.
    pub fn record_lag(&self, lags: impl IntoIterator<Item = (String, i32, i64)>) {
        if let Ok(mut lag) = self.lag.lock() {
            lag.clear();
            lag.extend(lags.into_iter().map(|(t, p, n)| ((t, p), n)));
        }
    }

    /// Every counter: name, help and value.
    fn counters(&self) -> [(&'static str, &'static str, u64); 13] {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        [
            (
                "usage_messages_total",
                "Usage messages read (every line, valid or not).",
                get(&self.usage_messages),
            ),
            (
                "event_messages_total",
                "Lifecycle event messages read.",
                get(&self.event_messages),
            ),
            (
                "records_total",
                "Usage records written for the first time.",
                get(&self.records),
            ),
            (
                "slices_total",
                "Usage slices attributed to a Workspace.",
                get(&self.slices),
            ),
            (
                "quarantined_slices_total",
                "Usage slices quarantined (no owner, unknown SIM).",
                get(&self.quarantined_slices),
            ),
            (
                "dead_letters_total",
                "Messages that went to dead_letters.",
                get(&self.dead_letters),
            ),
            (
                "duplicates_total",
                "Usage messages whose record id was already seen.",
                get(&self.duplicates),
            ),
            (
                "corrected_records_total",
                "Stored records re-attributed after a late transfer or registration.",
                get(&self.corrected_records),
            ),
            (
                "correction_rows_total",
                "Correction rows written (reversals and re-attributed slices).",
                get(&self.correction_rows),
            ),
            (
                "dead_letter_topic_failures_total",
                "Dead letters that could not be sent to the dead-letter topic (they are in the table).",
                get(&self.unsent_dead_letters),
            ),
            ("passes_total", "Passes committed.", get(&self.passes)),
            (
                "passes_dropped_total",
                "Passes dropped because another group member committed first.",
                get(&self.passes_dropped),
            ),
            (
                "ownership_loads_total",
                "Times the SIM events were loaded from the lake (on assignment; passes in between keep them).",
                get(&self.ownership_loads),
            ),
        ]
    }

    /// The Prometheus text exposition of every counter and gauge.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = self.counters();
        for (name, help, value) in counters {
            metric(
                &mut out,
                name,
                help,
                "counter",
                &[(String::new(), value as f64)],
            );
        }
        self.render_gauges(&mut out);
        out
    }

    fn render_gauges(&self, out: &mut String) {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let seconds = Duration::from_millis(get(&self.last_pass_millis)).as_secs_f64();
        metric(
            out,
            "last_pass_seconds",
            "How long the last pass took (read, attribute, write, commit).",
            "gauge",
            &[(String::new(), seconds)],
        );
        metric(
            out,
            "held_messages",
            "Usage messages the last pass held for the lifecycle events that cover them.",
            "gauge",
            &[(String::new(), get(&self.held) as f64)],
        );
        let commit = self.last_commit_unix_millis.load(Ordering::Relaxed) as f64 / 1000.0;
        metric(
            out,
            "last_commit_timestamp_seconds",
            "When the last pass committed (Unix time; 0: none yet).",
            "gauge",
            &[(String::new(), commit)],
        );
        let lag: Vec<(String, f64)> = self
            .lag
            .lock()
            .map(|lag| {
                lag.iter()
                    .map(|((topic, partition), n)| {
                        (
                            format!("{{topic=\"{topic}\",partition=\"{partition}\"}}"),
                            *n as f64,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        metric(
            out,
            "consumer_lag_messages",
            "Messages of an owned partition not yet in the lake when the last pass started.",
            "gauge",
            &lag,
        );
    }
}

fn metric(out: &mut String, name: &str, help: &str, kind: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP simtally_{name} {help}");
    let _ = writeln!(out, "# TYPE simtally_{name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "simtally_{name}{labels} {value}");
    }
}

/// Binds `address` and serves `/metrics` and `/healthz` until `shutdown`. Returns the bound
/// address (useful with port 0).
pub async fn serve_operations(
    address: &str,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let router = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(metrics);
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!("the metrics endpoint stopped: {e}");
        }
    });
    Ok(bound)
}

async fn render_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labelled_lag() {
        let metrics = Metrics::default();
        let mut summary = RunSummary::default();
        summary.usage.lines = 10;
        summary.usage.records = 7;
        summary.usage.duplicates = 2;
        summary.usage.dead_letters = 1;
        summary.corrections.records = 3;
        summary.corrections.rows = 9;
        metrics.record_pass(&summary);
        summary.usage.held = 4;
        metrics.record_pass(&summary);
        metrics.record_lag([("sim-usage".to_owned(), 3, 42)]);
        let text = metrics.render();
        assert!(text.contains("simtally_records_total 14\n"), "{text}");
        assert!(text.contains("simtally_usage_messages_total 20\n"));
        assert!(text.contains("simtally_corrected_records_total 6\n"));
        assert!(text.contains("simtally_correction_rows_total 18\n"));
        assert!(text.contains("# TYPE simtally_passes_total counter\nsimtally_passes_total 2\n"));
        assert!(text.contains("# TYPE simtally_held_messages gauge\nsimtally_held_messages 4\n"));
        assert!(text
            .contains("simtally_consumer_lag_messages{topic=\"sim-usage\",partition=\"3\"} 42\n"));
    }
}
