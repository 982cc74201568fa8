//! Where generated usage lines go: one file, or one file per UTC day of the records' start
//! (what a nightly feed delivers, and what `scripts/bench-scale.sh` ingests day by day).

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
        out: BufWriter<File>,
    },
    /// `DIR/YYYY-MM-DD.ndjson`, opened as days appear.
    ByDay {
        dir: PathBuf,
        days: BTreeMap<NaiveDate, BufWriter<File>>,
    },
}

impl UsageOut {
    /// `out/usage.ndjson`, or the folder `out/usage/` with a file per day.
    pub(super) fn create(out: &Path, by_day: bool) -> Result<Self, GenerateError> {
        if by_day {
            let dir = out.join("usage");
            std::fs::create_dir_all(&dir).map_err(|source| write_error(&dir, source))?;
            return Ok(Self::ByDay {
                dir,
                days: BTreeMap::new(),
            });
        }
        let path = out.join("usage.ndjson");
        let file = File::create(&path).map_err(|source| write_error(&path, source))?;
        Ok(Self::One {
            out: BufWriter::with_capacity(1 << 20, file),
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
            Self::ByDay { dir, days } => {
                let day = DateTime::from_timestamp_millis(at_ms)
                    .map(|t| t.date_naive())
                    .unwrap_or_default();
                let out = match days.entry(day) {
                    Entry::Occupied(open) => open.into_mut(),
                    Entry::Vacant(new) => {
                        let path = dir.join(format!("{day}.ndjson"));
                        let file = File::create(&path).map_err(|e| write_error(&path, e))?;
                        new.insert(BufWriter::with_capacity(1 << 20, file))
                    }
                };
                writeln!(out, "{line}").map_err(|e| write_error(dir, e))
            }
        }
    }

    pub(super) fn finish(self) -> Result<(), GenerateError> {
        match self {
            Self::One { path, mut out } => out.flush().map_err(|source| write_error(&path, source)),
            Self::ByDay { dir, days } => days
                .into_values()
                .try_for_each(|mut out| out.flush().map_err(|source| write_error(&dir, source))),
        }
    }
}

fn write_error(path: &Path, source: std::io::Error) -> GenerateError {
    GenerateError::Write {
        path: path.display().to_string(),
        source,
    }
}
