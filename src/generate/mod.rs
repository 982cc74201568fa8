//! generate: a deterministic synthetic data set in the wire formats, with the totals a
//! correct ingest must produce. Same seed, same bytes.

mod expected;
mod rng;
mod usage_out;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::attribute::{attribute, OwnershipBook, SequencedEvent};
use crate::domain::{
    Currency, EventKind, Iccid, LifecycleEvent, Money, RecordId, SimStatus, TrafficType,
    UsageRecord, UtcMillis, Volume, Volumes, WorkspaceId,
};
pub use expected::Expected;
use rng::Rng;
use usage_out::UsageOut;

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub seed: u64,
    pub sims: u64,
    pub records: u64,
    pub days: u32,
    pub start: NaiveDate,
    /// How many Workspaces own the SIMs (`None`: the five of the samples, 101-103, 201, 202;
    /// `Some(n)`: 1001 to 1000 + n).
    pub workspaces: Option<u32>,
    pub out: PathBuf,
    /// Usage in `out/usage/YYYY-MM-DD.ndjson`, a file per day of the records' start, instead
    /// of one `out/usage.ndjson`.
    pub usage_by_day: bool,
    /// Usage files zstd-compressed (`.ndjson.zst`).
    pub zstd: bool,
}

/// Errors of `simtally generate`: `Options` is the user's to fix, `Write` the file system's.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write {path}: {cause}")]
    Write { path: String, cause: std::io::Error },
    #[error("{0}")]
    Options(String),
}

const WORKSPACES: [i64; 5] = [101, 102, 103, 201, 202];
const DAY_MS: i64 = 86_400_000;
const OPERATORS: [(&str, &str, &str, &str); 5] = [
    ("Vodafone", "02", "262", "Germany"),
    ("Telekom", "01", "262", "Germany"),
    ("O2", "03", "262", "Germany"),
    ("Orange", "01", "208", "France"),
    ("KPN", "08", "204", "Netherlands"),
];

/// What was written, with the totals expected from ingesting it.
pub struct Generated {
    /// The usage file, or the folder of a file per day.
    pub usage: PathBuf,
    pub events: PathBuf,
    pub expected: Expected,
}

pub fn generate(options: &GenerateOptions) -> Result<Generated, GenerateError> {
    if options.sims == 0 || options.days == 0 || options.workspaces == Some(0) {
        return Err(GenerateError::Options(
            "--sims, --days and --workspaces must be at least 1".into(),
        ));
    }
    if options.workspaces == Some(1) {
        return Err(GenerateError::Options(
            "--workspaces must be at least 2, so that SIMs can move between them".into(),
        ));
    }
    let workspaces: Vec<i64> = match options.workspaces {
        None => WORKSPACES.to_vec(),
        Some(n) => (1..=i64::from(n)).map(|i| 1000 + i).collect(),
    };
    std::fs::create_dir_all(&options.out).map_err(|cause| GenerateError::Write {
        path: options.out.display().to_string(),
        cause,
    })?;
    let period_start = options
        .start
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or_default();
    let period_ms = i64::from(options.days) * DAY_MS;
    let mut rng = Rng::new(options.seed);

    let sims: Vec<Iccid> = (0..options.sims)
        .filter_map(|i| Iccid::parse(&format!("898830300{:010}", i)).ok())
        .collect();
    let (events, rejected_lines) = lifecycle(&mut rng, &sims, &workspaces, period_start, period_ms);
    let events_path = options.out.join("events.ndjson");
    write_lines(
        &events_path,
        events.iter().map(event_json).chain(rejected_lines),
    )?;

    let (book, _) = OwnershipBook::build(&events);
    let mut usage = UsageOut::create(&options.out, options.usage_by_day, options.zstd)?;
    let expected = write_usage(options, &mut rng, &sims, &book, period_start, &mut usage)?;
    let usage_path = usage.path().to_path_buf();
    usage.finish()?;
    expected
        .write(&options.out.join("expected.json"))
        .map_err(|cause| GenerateError::Write {
            path: options.out.join("expected.json").display().to_string(),
            cause,
        })?;
    Ok(Generated {
        usage: usage_path,
        events: events_path,
        expected,
    })
}

/// The usage records, with re-deliveries, damaged and blank lines mixed in as real feeds
/// have them; returns the totals a correct ingest must produce.
fn write_usage(
    options: &GenerateOptions,
    rng: &mut Rng,
    sims: &[Iccid],
    book: &OwnershipBook,
    period_start: i64,
    out: &mut UsageOut,
) -> Result<Expected, GenerateError> {
    let period_ms = i64::from(options.days) * DAY_MS;
    let mut expected = Expected::default();
    let mut line = String::with_capacity(512);
    let mut recent: Vec<(i64, String)> = Vec::new();
    for n in 0..options.records {
        let record = usage_record(rng, n, sims, period_start, period_ms);
        let at = record.start.millis();
        line.clear();
        usage_json(&record, &mut line);
        out.write(at, &line)?;
        expected.add_record(&record, &attribute(&record, book));
        if rng.below(1000) < 3 {
            recent.push((at, line.clone()));
        }
        if rng.below(2000) == 0 {
            if let Some((at, dup)) = recent.pop() {
                out.write(at, &dup)?;
                expected.add_duplicate();
            }
        }
        if rng.below(5000) == 0 {
            out.write(at, &damaged_line(rng, &line))?;
            expected.add_dead_letter();
        }
        if rng.below(20000) == 0 {
            out.write(at, "")?;
            expected.add_blank();
        }
    }
    for (at, dup) in recent {
        out.write(at, &dup)?;
        expected.add_duplicate();
    }
    Ok(expected)
}

/// Registrations (most before the period, some inside it), transfers (chains, some in the
/// middle of sessions), status changes, and a few events that must be refused.
fn lifecycle(
    rng: &mut Rng,
    sims: &[Iccid],
    workspaces: &[i64],
    start: i64,
    period: i64,
) -> (Vec<SequencedEvent>, Vec<String>) {
    let mut events = Events::default();
    let mut rejected = Vec::new();
    for &iccid in sims {
        let roll = rng.below(100);
        if roll < 4 {
            continue; // never registered: its usage is `unknown_sim`
        }
        let owner = pick(rng, workspaces);
        let registered = if roll < 10 {
            start + rng.below(period as u64) as i64
        } else {
            start - 30 * DAY_MS
        };
        let life = SimLife {
            iccid,
            owner,
            workspaces,
            registered,
            start,
            period,
        };
        let owner = life.write(rng, &mut events);
        if rng.below(200) == 0 {
            // A transfer from a Workspace that does not own the SIM: refused.
            let wrong = workspaces
                .iter()
                .map(|&w| ws(w))
                .find(|&w| w != owner)
                .unwrap_or(owner);
            rejected.push(format!(
                r#"{{"event_id": "ev-bad-{}", "type": "sim_transferred", "timestamp": "{}", "iccid": "{}", "source_workspace_id": {}, "target_workspace_id": {}}}"#,
                iccid, UtcMillis::from_millis(start + period - 1), iccid, wrong, owner
            ));
        }
    }
    let mut events = events.list;
    events.sort_by_key(|e| (e.event.at, e.seq));
    for (seq, e) in events.iter_mut().enumerate() {
        e.seq = seq as i64;
    }
    (events, rejected)
}

/// Generated events, numbered as they are made.
#[derive(Default)]
struct Events {
    list: Vec<SequencedEvent>,
    next_id: u64,
}

impl Events {
    fn push(&mut self, at: i64, iccid: Iccid, kind: EventKind) {
        self.next_id += 1;
        self.list.push(SequencedEvent {
            seq: self.list.len() as i64,
            event: LifecycleEvent {
                event_id: format!("ev-{:08}", self.next_id),
                at: UtcMillis::from_millis(at),
                iccid,
                kind,
                actor: None,
            },
        });
    }
}

/// One registered SIM's life: activated where it is registered, then moved once or twice
/// (suspended on arrival) for some SIMs.
struct SimLife<'a> {
    iccid: Iccid,
    /// Where it is registered.
    owner: WorkspaceId,
    workspaces: &'a [i64],
    registered: i64,
    start: i64,
    period: i64,
}

impl SimLife<'_> {
    /// Writes the SIM's events; returns its last owner.
    fn write(&self, rng: &mut Rng, events: &mut Events) -> WorkspaceId {
        let (iccid, start, period) = (self.iccid, self.start, self.period);
        let mut owner = self.owner;
        let activated = |workspace| EventKind::StatusChanged {
            workspace,
            status: SimStatus::Activated,
        };
        events.push(
            self.registered,
            iccid,
            EventKind::Registered { workspace: owner },
        );
        events.push(self.registered, iccid, activated(owner));
        let transfers = match rng.below(100) {
            0..=11 => 1,
            12..=15 => 2,
            _ => 0,
        };
        let mut at = self.registered.max(start);
        for _ in 0..transfers {
            at += 1 + rng.below(((start + period - at).max(2) / 2) as u64) as i64;
            let target = loop {
                let t = pick(rng, self.workspaces);
                if t != owner {
                    break t;
                }
            };
            let moved = EventKind::Transferred {
                source: owner,
                target,
            };
            events.push(at, iccid, moved);
            let suspended = EventKind::StatusChanged {
                workspace: target,
                status: SimStatus::Suspended,
            };
            events.push(at, iccid, suspended);
            owner = target;
        }
        owner
    }
}

fn pick(rng: &mut Rng, workspaces: &[i64]) -> WorkspaceId {
    ws(workspaces[rng.below(workspaces.len() as u64) as usize])
}

fn ws(id: i64) -> WorkspaceId {
    WorkspaceId::new(id).unwrap_or_else(|| unreachable!("generator Workspace ids are positive"))
}

fn usage_record(rng: &mut Rng, n: u64, sims: &[Iccid], start: i64, period: i64) -> UsageRecord {
    let iccid = sims[rng.below(sims.len() as u64) as usize];
    let begin = start + rng.below(period as u64) as i64;
    let sms = rng.below(5) == 0;
    let (traffic_type, end, rx, tx, cost) = if sms {
        (TrafficType::Sms, begin, 0, 1_000_000, 90_000_000)
    } else {
        let duration = 1000 + rng.below(2 * 3_600_000) as i64;
        let rx = rng.below(50_000_000) as i128;
        let tx = rng.below(5_000_000) as i128;
        // 0.0025 EUR per MB, to the 10th decimal: units of 1e-6 MB * 25 = units of 1e-10 EUR.
        (TrafficType::Data, begin + duration, rx, tx, (rx + tx) * 25)
    };
    let (name, mnc, mcc, country) = OPERATORS[rng.below(OPERATORS.len() as u64) as usize];
    UsageRecord {
        id: RecordId(7_000_000_000 + n as i64),
        traffic_type,
        start: UtcMillis::from_millis(begin),
        end: UtcMillis::from_millis(end),
        iccid,
        imsi: Some(format!("29505090{:07}", rng.below(10_000_000)).into()),
        operator: Some(crate::domain::Operator {
            name: Some(name.into()),
            mnc: Some(mnc.into()),
            mcc: Some(mcc.into()),
            country_name: Some(country.into()),
        }),
        volume: Volumes::new(Volume::from_units(rx), Volume::from_units(tx))
            .unwrap_or_else(|| unreachable!()),
        cost: Money::from_units(cost),
        currency: Currency::parse("EUR").unwrap_or_else(|| unreachable!()),
    }
}

fn damaged_line(rng: &mut Rng, good: &str) -> String {
    match rng.below(4) {
        0 => good[..good.len() / 2].to_owned(),
        1 => good.replacen("\"total\": ", "\"total\": 9", 1),
        2 => good.replacen("\"rx\": ", "\"rx\": -1", 1),
        _ => good.replacen("\"sim\": {\"iccid\": \"", "\"sim\": {\"iccid\": \"x", 1),
    }
}

fn usage_json(r: &UsageRecord, out: &mut String) {
    use std::fmt::Write;
    let op = r.operator.clone().unwrap_or_default();
    let desc = match r.traffic_type {
        TrafficType::Data => "Data",
        TrafficType::Sms => "SMS",
    };
    let _ = write!(
        out,
        r#"{{"id": {}, "traffic_type": {{"id": {}, "description": "{}"}}, "start_timestamp": "{}", "end_timestamp": "{}", "sim": {{"iccid": "{}"}}, "imsi": "{}", "operator": {{"name": "{}", "mnc": "{}", "country": {{"mcc": "{}", "name": "{}"}}}}, "volume": {{"rx": {}, "tx": {}, "total": {}}}, "cost": {}, "currency": {{"code": "{}"}}}}"#,
        r.id,
        r.traffic_type.wire_id(),
        desc,
        r.start,
        r.end,
        r.iccid,
        r.imsi.as_deref().unwrap_or_default(),
        op.name.unwrap_or_default(),
        op.mnc.unwrap_or_default(),
        op.mcc.unwrap_or_default(),
        op.country_name.unwrap_or_default(),
        fixed(r.volume.rx()),
        fixed(r.volume.tx()),
        fixed(r.volume.total()),
        fixed(r.cost),
        r.currency.as_str(),
    );
}

/// All decimal places, as the Data Streamer writes them.
fn fixed<const S: u32>(v: crate::domain::Fixed<S>) -> String {
    let mut d = v.to_decimal();
    d.rescale(S);
    d.to_string()
}

fn event_json(e: &SequencedEvent) -> String {
    let ev = &e.event;
    let head = format!(
        r#"{{"event_id": "{}", "type": "{}", "timestamp": "{}", "iccid": "{}""#,
        ev.event_id,
        ev.kind.type_name(),
        ev.at,
        ev.iccid
    );
    match &ev.kind {
        EventKind::Registered { workspace } => format!(r#"{head}, "workspace_id": {workspace}}}"#),
        EventKind::Transferred { source, target } => {
            format!(r#"{head}, "source_workspace_id": {source}, "target_workspace_id": {target}}}"#)
        }
        EventKind::StatusChanged { workspace, status } => {
            format!(
                r#"{head}, "workspace_id": {workspace}, "status": "{}"}}"#,
                status.as_str()
            )
        }
        EventKind::Attached { device } | EventKind::Detached { device } => {
            format!(r#"{head}, "device_id": "{device}"}}"#)
        }
    }
}

fn create(path: &Path) -> Result<File, GenerateError> {
    File::create(path).map_err(|cause| GenerateError::Write {
        path: path.display().to_string(),
        cause,
    })
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> Result<(), GenerateError> {
    let mut out = BufWriter::new(create(path)?);
    let err = |cause| GenerateError::Write {
        path: path.display().to_string(),
        cause,
    };
    for line in lines {
        writeln!(out, "{line}").map_err(err)?;
    }
    out.flush().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(paths: &[PathBuf]) -> Vec<String> {
        let mut lines: Vec<String> = paths
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        lines.sort();
        lines
    }

    /// A file per day holds the same lines as the one file, each record on its start's day.
    #[test]
    fn usage_by_day_holds_the_same_lines_each_on_its_day() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let options = |out: &str, usage_by_day, zstd| GenerateOptions {
            seed: 3,
            sims: 50,
            records: 20_000,
            days: 4,
            start: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default(),
            workspaces: None,
            out: dir.path().join(out),
            usage_by_day,
            zstd,
        };
        let one = generate(&options("one", false, false)).unwrap_or_else(|e| panic!("{e}"));
        let days = generate(&options("days", true, false)).unwrap_or_else(|e| panic!("{e}"));
        let packed = generate(&options("packed", true, true)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one.expected.input_lines, days.expected.input_lines);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&days.usage)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|entry| entry.map(|e| e.path()).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        files.sort();
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(
            names,
            ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
        );
        assert_eq!(lines_of(&files), lines_of(&[one.usage]));
        // Compressed, the same bytes per day.
        for (file, day) in files.iter().zip(&names) {
            let zst = packed.usage.join(format!("{day}.ndjson.zst"));
            let bytes = std::fs::read(&zst).unwrap_or_else(|e| panic!("{}: {e}", zst.display()));
            let text = zstd::decode_all(bytes.as_slice()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(text, std::fs::read(file).unwrap_or_default(), "{day}");
        }
        for (file, day) in files.iter().zip(&names) {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let records = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
            for record in records {
                let start = record["start_timestamp"].as_str().unwrap_or_default();
                assert!(start.starts_with(day.as_str()), "{start} in {day}");
            }
        }
    }
}
