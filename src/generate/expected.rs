use std::collections::BTreeMap;
use std::path::Path;

use crate::attribute::{Destination, Slice};
use crate::domain::{Money, UsageRecord, Volume};

#[derive(Default, Clone, Debug)]
struct Sums {
    records: u64,
    slices: u64,
    volume_total: Volume,
    cost: Money,
}

/// The totals of a generated data set, in the format of the shared fixture's expected.json.
#[derive(Default, Clone, Debug)]
pub struct Expected {
    workspaces: BTreeMap<i64, Sums>,
    days: BTreeMap<(i64, String), Sums>,
    quarantine: BTreeMap<&'static str, Sums>,
    pub dead_letters: u64,
    pub duplicates: u64,
    pub input_lines: u64,
    pub valid_records: u64,
    pub total_volume: Volume,
}

impl Expected {
    pub fn add_record(&mut self, record: &UsageRecord, slices: &[Slice]) {
        self.input_lines += 1;
        self.valid_records += 1;
        self.total_volume += record.volume.total();
        let mut counted: Vec<i64> = Vec::new();
        for slice in slices {
            let sums = match slice.destination {
                Destination::Workspace(ws) => {
                    let day = slice.start.to_datetime().date_naive().to_string();
                    let d = self.days.entry((ws.get(), day)).or_default();
                    d.volume_total += slice.total();
                    d.cost += slice.cost;
                    let w = self.workspaces.entry(ws.get()).or_default();
                    if !counted.contains(&ws.get()) {
                        counted.push(ws.get());
                        w.records += 1;
                    }
                    w
                }
                Destination::Quarantine(reason) => {
                    self.quarantine.entry(reason.as_str()).or_default()
                }
            };
            sums.slices += 1;
            sums.volume_total += slice.total();
            sums.cost += slice.cost;
        }
    }

    pub fn add_duplicate(&mut self) {
        self.input_lines += 1;
        self.duplicates += 1;
    }

    pub fn add_dead_letter(&mut self) {
        self.input_lines += 1;
        self.dead_letters += 1;
    }

    pub fn add_blank(&mut self) {
        self.input_lines += 1;
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let workspaces: serde_json::Map<String, serde_json::Value> = self
            .workspaces
            .iter()
            .map(|(ws, s)| {
                (
                    ws.to_string(),
                    serde_json::json!({
                        "records": s.records,
                        "volume_total": s.volume_total.to_string(),
                        "cost": s.cost.to_string(),
                    }),
                )
            })
            .collect();
        let days: serde_json::Map<String, serde_json::Value> = self
            .days
            .iter()
            .map(|((ws, day), s)| {
                (
                    format!("{ws}|{day}"),
                    serde_json::json!({
                        "volume_total": s.volume_total.to_string(),
                        "cost": s.cost.to_string(),
                    }),
                )
            })
            .collect();
        let quarantine: serde_json::Map<String, serde_json::Value> = self
            .quarantine
            .iter()
            .map(|(reason, s)| {
                (
                    reason.to_string(),
                    serde_json::json!({
                        "slices": s.slices,
                        "volume_total": s.volume_total.to_string(),
                        "cost": s.cost.to_string(),
                    }),
                )
            })
            .collect();
        let doc = serde_json::json!({
            "workspaces": workspaces,
            "days": days,
            "quarantine": quarantine,
            "dead_letters_min": self.dead_letters,
            "duplicates": self.duplicates,
            "input_lines": self.input_lines,
            "valid_records": self.valid_records,
            "total_volume": self.total_volume.to_string(),
        });
        let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}
