//! Throughput of the pipeline's core, in records per second per core, on a generated data
//! set: decoding and decoding + attribution (one thread), and a whole ingest into a fresh
//! local lake with one decode thread and with one per core (the Parquet encoders and the
//! collector run beside the decode threads in both). Peak memory (VmHWM) is printed at the
//! end.
//!
//! scripts/bench-pipeline.sh (or cargo bench --bench pipeline) on 200,000 records; as a
//! test (`cargo test --benches`, each bench run once) on 20,000.

use std::path::PathBuf;

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use simtally::attribute::{attribute, OwnershipBook, SequencedEvent};
use simtally::decode::{decode_event, decode_usage, UsageDecoder};
use simtally::generate::{generate, GenerateOptions};
use simtally::lake::{Lake, LakeLocation};
use simtally::pipeline::{ingest, IngestOptions};
use simtally::source::Input;
use tokio_util::sync::CancellationToken;

/// Records in the data set: enough for an ingest to be more than its setup when measured,
/// few when the bench only runs once as a test.
fn records() -> u64 {
    match std::env::args().any(|a| a == "--bench") {
        true => 200_000,
        false => 20_000,
    }
}

fn data_set(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let generated = generate(&GenerateOptions {
        seed: 42,
        sims: 1_000,
        records: records(),
        days: 7,
        start: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        workspaces: None,
        out: dir.to_path_buf(),
        usage_by_day: false,
        zstd: false,
    })
    .unwrap();
    (generated.usage, generated.events)
}

fn book(events: &PathBuf) -> OwnershipBook {
    let text = std::fs::read_to_string(events).unwrap();
    let events: Vec<SequencedEvent> = text
        .lines()
        .filter_map(|l| decode_event(l.as_bytes()).ok())
        .enumerate()
        .map(|(seq, event)| SequencedEvent {
            seq: seq as i64,
            event,
        })
        .collect();
    OwnershipBook::build(&events).0
}

fn stages(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (usage, events) = data_set(dir.path());
    let lines: Vec<String> = std::fs::read_to_string(&usage)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let book = book(&events);

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut decoder = UsageDecoder::default();
            lines
                .iter()
                .filter(|l| decoder.decode(l.as_bytes()).is_ok())
                .count()
        })
    });
    group.bench_function("decode_each_line_alone", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|l| decode_usage(l.as_bytes()).is_ok())
                .count()
        })
    });
    group.bench_function("decode_and_attribute", |b| {
        b.iter(|| {
            let mut decoder = UsageDecoder::default();
            lines
                .iter()
                .filter_map(|l| decoder.decode(l.as_bytes()).ok())
                .map(|r| attribute(&r, &book).len())
                .sum::<usize>()
        })
    });
    group.sample_size(10);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (name, threads) in [("ingest_one_decode_thread", 1), ("ingest_all_cores", 0)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let lake_dir = tempfile::tempdir().unwrap();
                let location = LakeLocation::parse(lake_dir.path().to_str().unwrap()).unwrap();
                let options = IngestOptions {
                    usage: vec![Input::File(usage.clone())],
                    events: vec![Input::File(events.clone())],
                    progress: false,
                    threads,
                    ..IngestOptions::default()
                };
                runtime
                    .block_on(ingest(
                        &Lake::new(location),
                        options,
                        CancellationToken::new(),
                    ))
                    .unwrap()
            })
        });
    }
    group.finish();
    if let Some(peak) = peak_memory() {
        println!("peak memory (VmHWM): {peak}");
    }
}

fn peak_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
}

criterion_group!(benches, stages);
criterion_main!(benches);
