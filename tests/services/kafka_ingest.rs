//! `ingest --brokers --exit-at-end` against a real Kafka-protocol broker (scripts/test.sh
//! starts tansu and sets SIMTALLY_TEST_BROKERS; any Kafka or Redpanda address works).

use crate::common;

use std::path::PathBuf;

use common::kafka::{brokers, create_topic, read_all, unique};
use common::{ingest_files, local_lake, rows, shared_fixture, split_sample_events};
use simtally::kafka::{produce, ProduceOptions, ReadBudget, Topics};
use simtally::lake::Lake;
use simtally::pipeline::{ingest, IngestOptions, KafkaIngest, RunSummary};
use simtally::source::Input;
use tokio_util::sync::CancellationToken;

fn unique_topics() -> Topics {
    Topics {
        usage: unique("usage"),
        events: unique("events"),
    }
}

fn sample(name: &str) -> PathBuf {
    shared_fixture(&format!("sample-1/{name}.ndjson"))
}

async fn produce_files(topics: &Topics, usage: &[PathBuf], events: &[PathBuf]) {
    produce(ProduceOptions {
        brokers: brokers(),
        topics: topics.clone(),
        usage: usage.iter().cloned().map(Input::File).collect(),
        events: events.iter().cloned().map(Input::File).collect(),
        partitions: 3,
    })
    .await
    .expect("produce succeeds");
}

async fn ingest_topics(lake: &Lake, topics: &Topics) -> RunSummary {
    ingest_topics_with(lake, topics, None, None).await
}

async fn ingest_topics_with(
    lake: &Lake,
    topics: &Topics,
    dead_letter_topic: Option<String>,
    pass_budget: Option<ReadBudget>,
) -> RunSummary {
    ingest(
        lake,
        IngestOptions {
            usage: Vec::new(),
            events: Vec::new(),
            progress: false,
            threads: 2,
            kafka: Some(KafkaIngest {
                brokers: brokers(),
                topics: topics.clone(),
                group: "simtally-test".into(),
                follow: None,
                metrics_address: None,
                dead_letter_topic,
                pass_budget,
                hold: Default::default(),
            }),
            ..IngestOptions::default()
        },
        CancellationToken::new(),
    )
    .await
    .expect("ingest from Kafka succeeds")
}

/// What finance and the acceptance fixture look at: sums per Workspace and day, quarantine
/// by reason, dead letters by reason.
async fn totals(lake: &Lake) -> Vec<Vec<Vec<String>>> {
    let queries = [
        "SELECT workspace_id, usage_date, COUNT(*), SUM(volume_rx), SUM(volume_tx), \
         SUM(volume_total), SUM(cost) FROM usage GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT reason, COUNT(*), SUM(volume_total), SUM(cost) FROM quarantine \
         GROUP BY 1 ORDER BY 1",
        "SELECT reason, COUNT(*) FROM dead_letters GROUP BY 1 ORDER BY 1",
    ];
    let mut out = Vec::new();
    for sql in queries {
        out.push(rows(lake, sql).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_before_its_events_gives_the_file_result_exactly_once() {
    let topics = unique_topics();
    // Usage first, events after: the order that needs the events read before attribution.
    produce_files(&topics, &[sample("usage")], &[]).await;
    produce_files(&topics, &[], &[sample("events")]).await;

    let kafka_dir = tempfile::tempdir().unwrap();
    let kafka_lake = local_lake(&kafka_dir);
    let first = ingest_topics(&kafka_lake, &topics).await;
    assert!(first.usage.is_conserved() && first.events.is_conserved());

    let file_dir = tempfile::tempdir().unwrap();
    let file_lake = local_lake(&file_dir);
    ingest_files(&file_lake, &[sample("usage")], &[sample("events")]).await;
    let expected = totals(&file_lake).await;
    assert!(!expected[0].is_empty());
    assert_eq!(totals(&kafka_lake).await, expected);

    // Nothing new on the topics: nothing is read again and nothing is committed.
    let second = ingest_topics(&kafka_lake, &topics).await;
    assert_eq!(second.usage.lines, 0);
    assert_eq!(second.events.lines, 0);
    assert!(
        second.lake_versions.is_empty(),
        "{:?}",
        second.lake_versions
    );

    // A producer delivers every usage record a second time: all are duplicates, and no sum
    // moves. A malformed message has no record id to recognize it by, so each delivery is a
    // dead letter of its own, with its own offset.
    produce_files(&topics, &[sample("usage")], &[]).await;
    let third = ingest_topics(&kafka_lake, &topics).await;
    assert_eq!(third.usage.lines, first.usage.lines);
    assert_eq!(third.usage.records, 0);
    assert_eq!(third.usage.already_in_lake, first.usage.records);
    assert_eq!(third.usage.dead_letters, first.usage.dead_letters);
    let after = totals(&kafka_lake).await;
    assert_eq!(after[..2], expected[..2]);
    let doubled: Vec<Vec<String>> = expected[2]
        .iter()
        .map(|r| vec![r[0].clone(), (r[1].parse::<u64>().unwrap() * 2).to_string()])
        .collect();
    assert_eq!(after[2], doubled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_in_bounded_passes_accounts_for_every_message_like_one_pass() {
    let topics = unique_topics();
    produce_files(&topics, &[sample("usage")], &[sample("events")]).await;

    let whole_dir = tempfile::tempdir().unwrap();
    let whole_lake = local_lake(&whole_dir);
    let whole = ingest_topics(&whole_lake, &topics).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    // Passes of 1,500 messages (of about 6,000): most stop inside a producer's batch, and
    // the next resumes there.
    let budget = ReadBudget {
        messages: 1500,
        bytes: u64::MAX,
    };
    let passes = ingest_topics_with(&lake, &topics, None, Some(budget)).await;

    assert!(whole.usage.lines > 3 * budget.messages, "{:?}", whole.usage);
    assert!(passes.usage.is_conserved());
    assert_eq!(passes.usage.lines, whole.usage.lines);
    assert_eq!(passes.usage.records, whole.usage.records);
    assert_eq!(passes.usage.duplicates, whole.usage.duplicates);
    assert_eq!(passes.usage.dead_letters, whole.usage.dead_letters);
    assert_eq!(passes.workspaces, whole.workspaces);
    assert_eq!(passes.events, whole.events);
    assert_eq!(totals(&lake).await, totals(&whole_lake).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_first_or_late_by_hours_give_the_file_result() {
    let dir = tempfile::tempdir().unwrap();
    let file_lake = local_lake(&dir);
    ingest_files(&file_lake, &[sample("usage")], &[sample("events")]).await;
    let expected = totals(&file_lake).await;
    let (before_transfers, from_transfers) = split_sample_events(dir.path());

    // Every event on the topic before any usage.
    let topics = unique_topics();
    produce_files(&topics, &[], &[sample("events")]).await;
    produce_files(&topics, &[sample("usage")], &[]).await;
    let events_first_dir = tempfile::tempdir().unwrap();
    let events_first = local_lake(&events_first_dir);
    ingest_topics(&events_first, &topics).await;
    assert_eq!(totals(&events_first).await, expected);

    // The transfers arrive after the usage they affect was ingested (a producer that was
    // down for hours): the next run writes corrections.
    let topics = unique_topics();
    produce_files(&topics, &[sample("usage")], &[before_transfers]).await;
    let late_dir = tempfile::tempdir().unwrap();
    let late = local_lake(&late_dir);
    let first = ingest_topics(&late, &topics).await;
    assert_eq!(first.corrections.records, 0);
    assert_ne!(
        totals(&late).await,
        expected,
        "usage went to the owners before the transfers"
    );
    produce_files(&topics, &[], &[from_transfers]).await;
    let second = ingest_topics(&late, &topics).await;
    assert!(second.corrections.records > 0, "{second}");
    assert_eq!(second.usage.lines, 0);
    assert_eq!(totals(&late).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_carry_topic_partition_offset_and_key_and_reach_the_dead_letter_topic() {
    let topics = unique_topics();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ndjson");
    // Unkeyed (no ICCID to key it by), and keyed by its ICCID but missing fields.
    let keyed = r#"{"id": 1, "sim": {"iccid": "8988303000010000117"}}"#;
    std::fs::write(&bad, format!("not json\n{keyed}\n")).unwrap();
    produce_files(&topics, &[bad], &[sample("events")]).await;
    let dead_letter_topic = unique("dead-letters");
    create_topic(&dead_letter_topic, 1).await;

    let lake = local_lake(&dir);
    let summary = ingest_topics_with(&lake, &topics, Some(dead_letter_topic.clone()), None).await;
    assert_eq!(summary.usage.dead_letters, 2);
    assert_eq!(summary.unsent_dead_letters, 0);
    let stored = rows(
        &lake,
        &format!(
            "SELECT source, reason, CAST(key AS VARCHAR) FROM dead_letters \
             WHERE source LIKE '{}/%' ORDER BY reason",
            topics.usage
        ),
    )
    .await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    for row in &stored {
        let parts: Vec<&str> = row[0].split('/').collect();
        assert_eq!(parts.len(), 3, "{}", row[0]);
        assert_eq!(parts[0], topics.usage);
        assert!(
            parts[1].parse::<i32>().is_ok() && parts[2].parse::<i64>().is_ok(),
            "{}",
            row[0]
        );
    }
    let keys: Vec<(&str, &str)> = stored
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        keys,
        [("missing_field", "8988303000010000117"), ("not_json", "")]
    );

    // The same letters on the dead-letter topic: original key and bytes, reason in headers.
    let sent = read_all(&brokers(), &dead_letter_topic, 2);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let header = |m: &common::kafka::ReadMessage, name: &str| {
        m.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let mut seen: Vec<_> = sent
        .iter()
        .map(|m| {
            let source = header(m, "simtally-source").unwrap_or_default();
            let stored_source = stored.iter().any(|r| r[0] == source);
            (
                m.key.clone(),
                m.payload.clone(),
                header(m, "simtally-reason"),
                stored_source,
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (None, b"not json".to_vec(), Some("not_json".into()), true),
            (
                Some(b"8988303000010000117".to_vec()),
                keyed.as_bytes().to_vec(),
                Some("missing_field".into()),
                true
            ),
        ]
    );
}

/// A generated data set (events with transfers inside records, duplicates, bad lines).
fn generated(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_simtally"))
        .args([
            "generate",
            "--seed",
            "7",
            "--sims",
            "300",
            "--records",
            "20000",
        ])
        .args(["--days", "3", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir.join("usage.ndjson"), dir.join("events.ndjson"))
}

/// The generated data set, produced to new topics; the directory holds the files.
async fn generated_on_new_topics() -> (Topics, tempfile::TempDir, PathBuf, PathBuf) {
    let topics = unique_topics();
    let data = tempfile::tempdir().unwrap();
    let (usage, events) = generated(data.path());
    produce_files(
        &topics,
        std::slice::from_ref(&usage),
        std::slice::from_ref(&events),
    )
    .await;
    (topics, data, usage, events)
}

/// `ingest --exit-at-end` in passes of at most `pass_records` usage records, as a process
/// (so that it can be killed), stderr piped.
fn draining(topics: &Topics, lake: &std::path::Path, pass_records: u32) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_simtally"));
    command
        .args([
            "ingest",
            "--exit-at-end",
            "--no-progress",
            "--brokers",
            &brokers(),
        ])
        .args(["--pass-max-records", &pass_records.to_string()])
        .args([
            "--usage-topic",
            &topics.usage,
            "--events-topic",
            &topics.events,
        ])
        .arg("--lake")
        .arg(lake)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command
}

/// A pass killed between its `quarantine` and `usage` commits leaves records whose
/// quarantined slices are stored and whose attributed slices are not. The run after it may
/// read less per pass (the budget is shared by the partitions in whatever order the broker
/// delivers): the records it does not reach in its first pass must still get their
/// attributed slices in a later one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_killed_between_its_commits_is_completed_by_smaller_passes() {
    let (topics, _data, usage, events) = generated_on_new_topics().await;
    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");

    let crashed = draining(&topics, &lake_path, 8000)
        .env("SIMTALLY_CRASH_AFTER_COMMIT", "quarantine")
        .output()
        .unwrap();
    assert!(
        !crashed.status.success(),
        "the first run was meant to crash"
    );
    let lake = local_lake(&dir);
    let stranded = count_in(
        &lake,
        "SELECT COUNT(DISTINCT record_id) FROM quarantine WHERE reason = 'no_owner'",
    )
    .await;
    assert!(stranded > 0, "the crashed pass stored quarantined slices");
    assert_eq!(
        count_in(&lake, "SELECT COUNT(*) FROM usage").await,
        0,
        "and no attributed ones"
    );

    let finished = draining(&topics, &lake_path, 2000).output().unwrap();
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = local_lake(&clean_dir);
    ingest_files(&clean, &[usage], &[events]).await;
    assert_eq!(totals(&lake).await, totals(&clean).await);
}

/// A deterministic spread of kill points (xorshift), 30 ms to 1.5 s into a run.
fn kill_after(attempt: u64) -> std::time::Duration {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (attempt + 1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::time::Duration::from_millis(30 + x % 1470)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_and_restarted_the_lake_equals_one_clean_run() {
    let (topics, _data, usage, events) = generated_on_new_topics().await;

    let dir = tempfile::tempdir().unwrap();
    let lake_path = dir.path().join("lake");
    // Several passes per run, so kills also land between passes.
    let ingest = || draining(&topics, &lake_path, 3000);
    // First a crash right after each commit of a run, in turn: a random kill rarely lands
    // between two commits.
    for table in ["sim_events", "dead_letters", "quarantine", "usage"] {
        let out = ingest()
            .env("SIMTALLY_CRASH_AFTER_COMMIT", table)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "the run after {table} was meant to crash"
        );
    }
    let mut killed = 0;
    let mut finished = false;
    for attempt in 0..40u64 {
        let mut child = ingest().spawn().unwrap();
        // From the sixth attempt on, every run is left to finish.
        let deadline = std::time::Instant::now() + kill_after(attempt);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if attempt < 5 && std::time::Instant::now() >= deadline {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        if let Some(status) = status {
            let output = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            finished = true;
            break;
        }
    }
    assert!(finished);
    assert!(
        killed > 0,
        "no run was killed: the data set is too small to stop one midway"
    );

    let lake = local_lake(&dir);
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = local_lake(&clean_dir);
    ingest_files(&clean, &[usage], &[events]).await;
    assert_eq!(totals(&lake).await, totals(&clean).await);
}

/// A following `ingest` (a member of `group`) with info logs on stderr, piped.
fn follower(topics: &Topics, group: &str, lake: &std::path::Path, extra: &[&str]) -> Follower {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_simtally"))
        .args([
            "ingest",
            "--brokers",
            &brokers(),
            "--group",
            group,
            "--pass-seconds",
            "1",
        ])
        .args([
            "--usage-topic",
            &topics.usage,
            "--events-topic",
            &topics.events,
        ])
        .args(["--log", "simtally=info"])
        .args(extra)
        .arg("--lake")
        .arg(lake)
        .env_remove("SIMTALLY_ALLOCATOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    Follower(Some(child))
}

/// The allocator a running follower chose, read from its environment as it is now (after
/// the process replaced itself, if it did).
fn allocator_of(follower: &Follower) -> Option<String> {
    let pid = follower.0.as_ref()?.id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|byte| *byte == 0)
        .find_map(|entry| entry.strip_prefix(b"SIMTALLY_ALLOCATOR="))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

/// A running `ingest` follower, killed if the test fails before it is stopped.
struct Follower(Option<std::process::Child>);

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads the follower's stderr on a thread; the receiver gets every line.
fn stderr_lines(follower: &mut Follower) -> std::sync::mpsc::Receiver<String> {
    let child = follower.0.as_mut().unwrap();
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (up to two minutes) for a line containing `needle`, and returns it.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut seen = std::collections::VecDeque::new();
    while std::time::Instant::now() < deadline {
        match lines.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => {
                seen.push_back(line);
                if seen.len() > 10 {
                    seen.pop_front();
                }
            }
            Err(_) => {}
        }
    }
    panic!("no '{needle}' within two minutes; the last lines: {seen:#?}");
}

/// Checks a member's "SIM events loaded" log line: every partition had a snapshot, which
/// held `from` events, and `after` events were stored after them.
fn assert_loaded_from_snapshots(loaded: &str, from: u64, after: u64) {
    assert!(
        loaded.contains(&format!("from_snapshots={from} "))
            && loaded.contains(&format!("after_snapshots={after} "))
            && loaded.contains("partitions_without_snapshot=0"),
        "{loaded}"
    );
}

/// An HTTP/1.1 GET over a plain TCP connection: (status line, body).
fn http_get(address: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// Distinct usage record ids in the lake, attributed or quarantined.
const RECORDS: &str = "SELECT COUNT(DISTINCT record_id) FROM \
                       (SELECT record_id FROM usage UNION ALL SELECT record_id FROM quarantine)";
const SIM_EVENTS: &str = "SELECT COUNT(*) FROM sim_events";

async fn records_in(lake: &Lake) -> u64 {
    count_in(lake, RECORDS).await
}

/// The single number `sql` counts (0 while the lake lacks a table it reads: a follower
/// creates its tables one after the other).
async fn count_in(lake: &Lake, sql: &str) -> u64 {
    let Ok(ctx) = simtally::query::open_session(
        lake,
        &simtally::query::Scope::default(),
        simtally::query::session_memory_bytes(),
    )
    .await
    else {
        return 0;
    };
    match simtally::query::run_sql(&ctx, sql).await {
        Ok(rows) => common::to_strings(&rows)[0][0].parse().unwrap(),
        Err(simtally::query::QueryError::Sql(e)) if e.to_string().contains("not found") => 0,
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// Waits (up to two minutes) until each query counts at least its number.
async fn wait_for_counts(lake: &Lake, expected: &[(&str, u64)]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    for (sql, count) in expected {
        while count_in(lake, sql).await < *count {
            assert!(
                std::time::Instant::now() < deadline,
                "the lake never reached {count} for {sql}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

fn stop(mut follower: Follower) {
    let mut child = follower.0.take().unwrap();
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait().unwrap();
    assert!(out.success(), "a stopped follower exits 0");
}

/// The first and the second half of an NDJSON file's lines, as two files beside it.
fn split_in_halves(file: &std::path::Path, name: &str) -> [PathBuf; 2] {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let dir = file.parent().unwrap();
    let halves = [
        dir.join(format!("{name}-first.ndjson")),
        dir.join(format!("{name}-second.ndjson")),
    ];
    std::fs::write(&halves[0], first.join("\n") + "\n").unwrap();
    std::fs::write(&halves[1], second.join("\n") + "\n").unwrap();
    halves
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_followers_in_one_group_one_stopped_midway_give_the_file_result() {
    let topics = unique_topics();
    let data = tempfile::tempdir().unwrap();
    let (usage, events) = generated(data.path());
    let halves = split_in_halves(&usage, "usage");
    // The events' later half arrives with the later usage: B's passes, which keep the SIM
    // events from one to the next, must take them in (and correct what they change).
    let event_halves = split_in_halves(&events, "events");

    let reference_dir = tempfile::tempdir().unwrap();
    let reference = local_lake(&reference_dir);
    ingest_files(
        &reference,
        std::slice::from_ref(&usage),
        std::slice::from_ref(&events),
    )
    .await;
    let all_records = records_in(&reference).await;
    let all_events = count_in(&reference, SIM_EVENTS).await;

    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let lake_path = dir.path().join("lake");
    let group = format!("group-{}", topics.usage);
    produce_files(&topics, &halves[..1], &event_halves[..1]).await;

    // A alone takes every partition and commits the first half.
    let mut a = follower(
        &topics,
        &group,
        &lake_path,
        &["--metrics-addr", "127.0.0.1:0"],
    );
    let a_log = stderr_lines(&mut a);
    let serving = wait_for_line(&a_log, "metrics at http://");
    let address = serving
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    wait_for_line(&a_log, "pass committed");
    assert_eq!(
        allocator_of(&a).as_deref(),
        Some("system"),
        "a Kafka ingest reruns itself on the system allocator"
    );
    let (status, body) = http_get(&address, "/metrics");
    assert!(status.contains("200"), "{status}");
    let records: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("simtally_records_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(records, records_in(&lake).await, "{body}");
    assert!(
        body.contains("simtally_consumer_lag_messages{topic="),
        "{body}"
    );
    assert_eq!(http_get(&address, "/healthz").1, "ok\n");
    // B joins: the partitions are shared out; then A stops and B takes them all. B commits
    // after every 2,000 messages or so, so the second half takes it several passes.
    let mut b = follower(&topics, &group, &lake_path, &["--pass-max-records", "2000"]);
    let b_log = stderr_lines(&mut b);
    wait_for_line(&b_log, "partitions assigned");
    stop(a);
    produce_files(&topics, &halves[1..], &event_halves[1..]).await;
    wait_for_counts(&lake, &[(RECORDS, all_records), (SIM_EVENTS, all_events)]).await;
    stop(b);
    // The log's reader ends with the process, so this sees every line.
    let b_lines: Vec<String> = b_log.iter().collect();
    let b_passes = b_lines
        .iter()
        .filter(|l| l.contains("pass committed"))
        .count();
    assert!(
        b_passes >= 3,
        "{b_passes} passes for half of 20,000 messages"
    );
    let b_loads = b_lines
        .iter()
        .filter(|l| l.contains("SIM events loaded from the lake"))
        .count();
    assert!(
        (1..b_passes).contains(&b_loads),
        "{b_loads} loads of the SIM events in {b_passes} passes: not kept between passes"
    );

    assert_eq!(records_in(&lake).await, all_records);
    // Each (record, slice) is written once, whichever pass wrote or corrected it: names the
    // record if two passes ever both wrote it.
    let twice =
        "SELECT record_id, slice, COUNT(*) FROM (SELECT record_id, slice FROM usage_ledger \
                 UNION ALL SELECT record_id, slice FROM quarantine_ledger) \
                 GROUP BY record_id, slice HAVING COUNT(*) > 1 ORDER BY record_id, slice";
    let ctx = simtally::query::open_session(
        &lake,
        &simtally::query::Scope::default(),
        simtally::query::session_memory_bytes(),
    )
    .await
    .unwrap();
    let written_twice = common::to_strings(&simtally::query::run_sql(&ctx, twice).await.unwrap());
    assert!(written_twice.is_empty(), "written twice: {written_twice:?}");
    assert_eq!(totals(&lake).await, totals(&reference).await);
}

const HELD_SIM: &str = "8988303000000000001";
const LATE_SIM: &str = "8988303000000000002";

/// A ten-minute data record of `iccid` starting `minutes` after midnight on 2026-11-02.
fn ten_minutes_of(id: u64, iccid: &str, minutes: u64) -> String {
    let at = |m: u64| format!("2026-11-02T{:02}:{:02}:00.000Z", m / 60, m % 60);
    format!(
        r#"{{"id": {id}, "traffic_type": {{"id": 5, "description": "Data"}}, "start_timestamp": "{}", "end_timestamp": "{}", "sim": {{"iccid": "{iccid}"}}, "volume": {{"rx": 1.000001, "tx": 0.5, "total": 1.500001}}, "cost": 0.0100000003, "currency": {{"code": "EUR"}}}}"#,
        at(minutes),
        at(minutes + 10)
    )
}

fn sim_event(id: &str, minutes: u64, body: &str) -> String {
    format!(
        r#"{{"event_id": "{id}", "timestamp": "2026-11-02T{:02}:{:02}:00.000Z", {body}}}"#,
        minutes / 60,
        minutes % 60
    )
}

/// Writes `lines` as an NDJSON file in `dir` and produces it to one-partition topics.
async fn produce_lines(
    topics: &Topics,
    dir: &std::path::Path,
    name: &str,
    usage: bool,
    lines: &[String],
) -> PathBuf {
    let path = dir.join(format!("{name}.ndjson"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let inputs = vec![Input::File(path.clone())];
    let (usage, events) = match usage {
        true => (inputs, Vec::new()),
        false => (Vec::new(), inputs),
    };
    produce(ProduceOptions {
        brokers: brokers(),
        topics: topics.clone(),
        usage,
        events,
        partitions: 1,
    })
    .await
    .expect("produce succeeds");
    path
}

/// SIMs whose usage a correction re-attributed.
const CORRECTED_SIMS: &str = "SELECT COUNT(DISTINCT iccid) FROM (\
     SELECT iccid FROM usage_ledger WHERE correction IS NOT NULL UNION ALL \
     SELECT iccid FROM quarantine_ledger WHERE correction IS NOT NULL)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_holds_usage_until_the_events_cover_it_or_the_bound_passes() {
    let topics = unique_topics();
    let data = tempfile::tempdir().unwrap();
    // Three hours of ten-minute records of two SIMs, in time order; only the first SIM's
    // registration has arrived, at midnight.
    let usage: Vec<String> = (0..18u64)
        .flat_map(|i| {
            [
                ten_minutes_of(100 + i, HELD_SIM, i * 10),
                ten_minutes_of(200 + i, LATE_SIM, i * 10),
            ]
        })
        .collect();
    let registration = [sim_event(
        "ev-1",
        0,
        &format!(r#""type": "sim_registered", "iccid": "{HELD_SIM}", "workspace_id": 101"#),
    )];
    let events_1 = produce_lines(&topics, data.path(), "events-1", false, &registration).await;

    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let mut f = follower(
        &topics,
        &format!("group-{}", topics.usage),
        &dir.path().join("lake"),
        &["--hold-minutes", "60", "--hold-idle-seconds", "86400"],
    );
    let log = stderr_lines(&mut f);
    // What a follower finds when it starts is a backlog: it holds nothing for it. Events
    // arriving while it follows show that their producer is active.
    wait_for_line(&log, "pass committed");
    let activation = [sim_event(
        "ev-1b",
        0,
        &format!(
            r#""type": "sim_status_changed", "iccid": "{HELD_SIM}", "workspace_id": 101, "status": "ACTIVATED""#
        ),
    )];
    let events_1b = produce_lines(&topics, data.path(), "events-1b", false, &activation).await;
    let usage_file = produce_lines(&topics, data.path(), "usage", true, &usage).await;
    // The events stop at midnight, so nothing waits longer than the bound: until the usage
    // read is an hour past it. Records ending before 02:00 are written (22 of 36), the
    // first one ending at 02:00 holds everything after it.
    wait_for_counts(&lake, &[(RECORDS, 22)]).await;
    wait_for_line(&log, "held=14");
    assert_eq!(records_in(&lake).await, 22);

    // The second SIM is registered at 00:05 and the first moves to another Workspace at
    // 02:30: the second's stored records are corrected; the first's records after 02:00 were
    // held, so they are attributed right the first time, and those ending before 02:30 are
    // written now.
    let second_events = [
        sim_event(
            "ev-2",
            5,
            &format!(r#""type": "sim_registered", "iccid": "{LATE_SIM}", "workspace_id": 102"#),
        ),
        sim_event(
            "ev-3",
            150,
            &format!(
                r#""type": "sim_transferred", "iccid": "{HELD_SIM}", "source_workspace_id": 101, "target_workspace_id": 103"#
            ),
        ),
    ];
    let events_2 = produce_lines(&topics, data.path(), "events-2", false, &second_events).await;
    wait_for_counts(&lake, &[(RECORDS, 28)]).await;
    wait_for_line(&log, "held=8");
    assert_eq!(records_in(&lake).await, 28);

    // An event past the last record's end releases the rest.
    let last_events = [sim_event(
        "ev-4",
        240,
        &format!(
            r#""type": "sim_status_changed", "iccid": "{HELD_SIM}", "workspace_id": 103, "status": "ACTIVATED""#
        ),
    )];
    let events_3 = produce_lines(&topics, data.path(), "events-3", false, &last_events).await;
    wait_for_counts(&lake, &[(RECORDS, 36)]).await;
    stop(f);

    assert_eq!(
        count_in(&lake, CORRECTED_SIMS).await,
        1,
        "only the SIM whose registration came late is corrected"
    );
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = local_lake(&reference_dir);
    let events = [events_1, events_1b, events_2, events_3];
    ingest_files(&reference, &[usage_file], &events).await;
    assert_eq!(totals(&lake).await, totals(&reference).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_loads_the_snapshot_and_the_events_stored_after_it() {
    let topics = unique_topics();
    let data = tempfile::tempdir().unwrap();
    let (usage, events) = generated(data.path());
    let usage_halves = split_in_halves(&usage, "usage");
    let event_halves = split_in_halves(&events, "events");
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = local_lake(&reference_dir);
    ingest_files(&reference, &usage_halves[..1], &event_halves[..1]).await;
    let (first_records, first_events) = (
        records_in(&reference).await,
        count_in(&reference, SIM_EVENTS).await,
    );

    // A follower ingests the first halves and, as it stops, snapshots its partitions.
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let lake_path = dir.path().join("lake");
    let group = format!("group-{}", topics.usage);
    produce_files(&topics, &usage_halves[..1], &event_halves[..1]).await;
    let a = follower(&topics, &group, &lake_path, &[]);
    wait_for_counts(
        &lake,
        &[(RECORDS, first_records), (SIM_EVENTS, first_events)],
    )
    .await;
    stop(a);
    let snapshot_rows = "SELECT COUNT(*) FROM sim_events_snapshot";
    assert_eq!(count_in(&lake, snapshot_rows).await, first_events);

    // The later events are stored by another run; then a new follower is assigned the
    // partitions: it loads the snapshots plus those events, and attributes the later usage
    // with all of them.
    produce_files(&topics, &[], &event_halves[1..]).await;
    let between = ingest_topics(&lake, &topics).await;
    let later_events = between.events.accepted;
    assert!(later_events > 0);
    produce_files(&topics, &usage_halves[1..], &[]).await;
    let mut b = follower(&topics, &group, &lake_path, &[]);
    let b_log = stderr_lines(&mut b);
    let loaded = wait_for_line(&b_log, "SIM events loaded for the assigned partitions");
    assert_loaded_from_snapshots(&loaded, first_events, later_events);
    let all = tempfile::tempdir().unwrap();
    let all_lake = local_lake(&all);
    ingest_files(&all_lake, &[usage], &[events]).await;
    wait_for_counts(&lake, &[(RECORDS, records_in(&all_lake).await)]).await;
    stop(b);
    assert_eq!(totals(&lake).await, totals(&all_lake).await);
    // B's stop replaced each partition's snapshot with one through all the events.
    assert_eq!(
        count_in(&lake, snapshot_rows).await,
        count_in(&all_lake, SIM_EVENTS).await
    );

    // A member whose passes add no events (only usage delivered again) leaves the
    // snapshots as they are when it stops.
    let snapshot_version = || async {
        let table = lake.open(simtally::lake::LakeTable::SimEventsSnapshot);
        table.await.unwrap().and_then(|t| t.version())
    };
    let before = snapshot_version().await;
    produce_files(&topics, &usage_halves[1..], &[]).await;
    let mut c = follower(&topics, &group, &lake_path, &[]);
    let c_log = stderr_lines(&mut c);
    wait_for_line(&c_log, "SIM events loaded for the assigned partitions");
    stop(c);
    assert_eq!(snapshot_version().await, before);
}

/// An events partition without events gets an empty snapshot (a recorded `through_seq`, no
/// rows), so the next member reads no stored event again for it; events that arrive on it
/// later are numbered after that snapshot and loaded from the lake after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_without_events_gets_an_empty_snapshot() {
    let topics = unique_topics();
    let data = tempfile::tempdir().unwrap();
    let registration = |id: String, iccid: &str| {
        sim_event(
            &id,
            0,
            &format!(r#""type": "sim_registered", "iccid": "{iccid}", "workspace_id": 101"#),
        )
    };
    // One SIM on four partitions: three of them have no event.
    let first_events = data.path().join("events-1.ndjson");
    std::fs::write(&first_events, registration("ev-0".into(), HELD_SIM) + "\n").unwrap();
    produce(ProduceOptions {
        brokers: brokers(),
        topics: topics.clone(),
        usage: Vec::new(),
        events: vec![Input::File(first_events.clone())],
        partitions: 4,
    })
    .await
    .expect("produce succeeds");
    let first_usage = [ten_minutes_of(1, HELD_SIM, 0)];
    let first_usage = produce_lines(&topics, data.path(), "usage-1", true, &first_usage).await;

    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let lake_path = dir.path().join("lake");
    let group = format!("group-{}", topics.usage);
    let a = follower(&topics, &group, &lake_path, &[]);
    wait_for_counts(&lake, &[(RECORDS, 1), (SIM_EVENTS, 1)]).await;
    stop(a);

    // Eight more SIMs, whose events land on partitions that had none.
    let iccids: Vec<String> = (10..18).map(|i| format!("898830300000000{i:04}")).collect();
    let more_events: Vec<String> = iccids
        .iter()
        .map(|iccid| registration(format!("ev-{iccid}"), iccid))
        .collect();
    let more_usage_lines: Vec<String> = (0u64..)
        .zip(&iccids)
        .map(|(n, iccid)| ten_minutes_of(100 + n, iccid, 0))
        .collect();
    let more_events = produce_lines(&topics, data.path(), "events-2", false, &more_events).await;
    let more_usage = produce_lines(&topics, data.path(), "usage-2", true, &more_usage_lines).await;
    let mut b = follower(&topics, &group, &lake_path, &[]);
    let b_log = stderr_lines(&mut b);
    let loaded = wait_for_line(&b_log, "SIM events loaded for the assigned partitions");
    assert_loaded_from_snapshots(&loaded, 1, 0);
    wait_for_counts(&lake, &[(RECORDS, 9), (SIM_EVENTS, 9)]).await;
    stop(b);
    let partitions_with_events =
        "SELECT COUNT(DISTINCT split_part(source, '/', 2)) FROM sim_events";
    assert!(count_in(&lake, partitions_with_events).await > 1);

    // The next member finds every event in the snapshots B wrote as it stopped (the usage,
    // delivered again, gives it a pass to run).
    produce_lines(&topics, data.path(), "usage-3", true, &more_usage_lines).await;
    let mut c = follower(&topics, &group, &lake_path, &[]);
    let c_log = stderr_lines(&mut c);
    let loaded = wait_for_line(&c_log, "SIM events loaded for the assigned partitions");
    assert_loaded_from_snapshots(&loaded, 9, 0);
    stop(c);
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = local_lake(&reference_dir);
    let usage = [first_usage, more_usage];
    ingest_files(&reference, &usage, &[first_events, more_events]).await;
    assert_eq!(totals(&lake).await, totals(&reference).await);
}

/// File ingests run while a follower consumes the topics, all sharing SIMs: the
/// registrations and a quarter of the sample's usage on the topics, then the transfers and
/// half the usage in files (one share per file ingest, all at once), then the last quarter
/// of the usage on the topics. The writer
/// fence serializes their commits, and the follower sees that another writer stored events
/// since its last pass and loads them (the transfers exist only in the file), so the lake
/// holds the fixture's expected totals, `lake check` passes and the books balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_ingests_beside_a_follower_give_the_fixture_result() {
    // 2, 3 and 4 writers: the follower and one to three file ingests at once.
    for file_writers in 1..=3 {
        file_ingests_beside_a_follower(file_writers).await;
    }
}

async fn file_ingests_beside_a_follower(file_writers: usize) {
    let topics = unique_topics();
    let data = tempfile::tempdir().unwrap();
    let usage = data.path().join("usage.ndjson");
    std::fs::copy(sample("usage"), &usage).unwrap();
    let halves = split_in_halves(&usage, "usage");
    let quarters = split_in_halves(&halves[0], "quarter");
    let (registrations, transfers) = split_sample_events(data.path());
    produce_files(&topics, &quarters[..1], &[registrations]).await;
    // The file half dealt into one share per file writer, each with every transfer.
    let text = std::fs::read_to_string(&halves[1]).unwrap();
    let mut shares = vec![String::new(); file_writers];
    for (i, line) in text.lines().enumerate() {
        shares[i % file_writers].push_str(line);
        shares[i % file_writers].push('\n');
    }

    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let lake_path = dir.path().join("lake");
    let group = format!("group-{}", topics.usage);
    let mut follower = follower(&topics, &group, &lake_path, &[]);
    let log = stderr_lines(&mut follower);
    wait_for_line(&log, "pass committed");
    let file_ingests: Vec<_> = shares
        .iter()
        .enumerate()
        .map(|(i, share)| {
            let path = data.path().join(format!("share-{i}.ndjson"));
            std::fs::write(&path, share).unwrap();
            std::process::Command::new(env!("CARGO_BIN_EXE_simtally"))
                .args(["ingest", "--no-progress", "--usage"])
                .arg(&path)
                .arg("--events")
                .arg(&transfers)
                .arg("--lake")
                .arg(&lake_path)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ingest in file_ingests {
        let out = ingest.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    produce_files(&topics, &quarters[1..], &[]).await;
    let expected = common::sample_1_expected();
    let records = expected["valid_records"].as_u64().unwrap();
    wait_for_counts(&lake, &[(RECORDS, records)]).await;
    stop(follower);
    common::assert_sample_1_and_books(&lake).await;
}
