//! Where generated usage lines go: one file, or one file per UTC day of the records' start
//! (what a nightly feed delivers, and what `scripts/bench-scale.sh` ingests day by day);
//! plain, or zstd-compressed as feeds are often delivered (`ingest` reads either).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate};

use super::GenerateError;

pub(super) enum UsageOut {
    One {
        path: PathBuf,
        out: Sink,
    },
    /// `DIR/YYYY-MM-DD.ndjson`, opened as days appear.
    ByDay {
        dir: PathBuf,
        zstd: bool,
        days: BTreeMap<NaiveDate, Sink>,
    },
}

impl UsageOut {
    /// `out/usage.ndjson`, or the folder `out/usage/` with a file per day (`.ndjson.zst`
    /// with `zstd`).
    pub(super) fn create(out: &Path, by_day: bool, zstd: bool) -> Result<Self, GenerateError> {
        if by_day {
            let dir = out.join("usage");
            std::fs::create_dir_all(&dir).map_err(|source| write_error(&dir, source))?;
            return Ok(Self::ByDay {
                dir,
                zstd,
                days: BTreeMap::new(),
            });
        }
        let path = out.join(file_name("usage", zstd));
        Ok(Self::One {
            out: Sink::create(&path, zstd)?,
            path,
        })
    }

    /// What the generator reports as written: the file, or the folder of days.
    pub(super) fn path(&self) -> &Path {
        match self {
            Self::One { path, .. } => path,
            Self::ByDay { dir, .. } => dir,
        }
    }

    /// Writes `line` (without its newline) with the lines of the day that `at_ms` (UTC
    /// milliseconds) falls on.
    pub(super) fn write(&mut self, at_ms: i64, line: &str) -> Result<(), GenerateError> {
        match self {
            Self::One { path, out } => writeln!(out, "{line}").map_err(|e| write_error(path, e)),
            Self::ByDay { dir, zstd, days } => {
                let day = DateTime::from_timestamp_millis(at_ms)
                    .map(|t| t.date_naive())
                    .unwrap_or_default();
                let out = match days.entry(day) {
                    Entry::Occupied(open) => open.into_mut(),
                    Entry::Vacant(new) => {
                        let path = dir.join(file_name(&day.to_string(), *zstd));
                        new.insert(Sink::create(&path, *zstd)?)
                    }
                };
                writeln!(out, "{line}").map_err(|e| write_error(dir, e))
            }
        }
    }

    pub(super) fn finish(self) -> Result<(), GenerateError> {
        match self {
            Self::One { path, out } => out.finish().map_err(|source| write_error(&path, source)),
            Self::ByDay { dir, days, .. } => days
                .into_values()
                .try_for_each(|out| out.finish().map_err(|source| write_error(&dir, source))),
        }
    }
}

fn file_name(stem: &str, zstd: bool) -> String {
    match zstd {
        true => format!("{stem}.ndjson.zst"),
        false => format!("{stem}.ndjson"),
    }
}

/// One output file, buffered, and compressed (zstd level 1: the generator's one thread
/// spends little on it) when asked.
pub(super) enum Sink {
    Plain(BufWriter<File>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    fn create(path: &Path, zstd: bool) -> Result<Self, GenerateError> {
        let file = File::create(path).map_err(|e| write_error(path, e))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        Ok(match zstd {
            false => Self::Plain(out),
            true => Self::Zstd(
                zstd::stream::write::Encoder::new(out, 1).map_err(|e| write_error(path, e))?,
            ),
        })
    }

    /// Ends the compressed frame and flushes.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Self::Plain(mut out) => out.flush(),
            Self::Zstd(encoder) => encoder.finish()?.flush(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(out) => out.write(buf),
            Self::Zstd(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(out) => out.flush(),
            Self::Zstd(out) => out.flush(),
        }
    }
}

fn write_error(path: &Path, cause: std::io::Error) -> GenerateError {
    GenerateError::Write {
        path: path.display().to_string(),
        cause,
    }
}
