//! When each SIM was ACTIVATED in which Workspace: the basis of SIM fees and allowances.
//!
//! A SIM's status belongs to its current owner. A registration starts it ISSUED; a transfer
//! ends the source's status at the transfer instant and starts the SIM SUSPENDED in the
//! target (the platform suspends moved SIMs until the target activates them). A status
//! event counts only when its Workspace owns the SIM at that instant.

use std::collections::BTreeMap;

use crate::attribute::SequencedEvent;
use crate::domain::{EventKind, SimStatus};

/// One accepted row of `sim_events`; times in microseconds since the epoch (the lake's unit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEvent {
    pub event_id: String,
    pub iccid: String,
    pub at: i64,
    pub seq: i64,
    pub change: Change,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Registered { workspace: i64 },
    Transferred { source: i64, target: i64 },
    Status { workspace: i64, activated: bool },
}

impl SimEvent {
    /// The events billing looks at: ownership and status (not devices).
    pub fn from_stored(stored: &SequencedEvent) -> Option<Self> {
        let event = &stored.event;
        let change = match event.kind {
            EventKind::Registered { workspace } => Change::Registered {
                workspace: workspace.get(),
            },
            EventKind::Transferred { source, target } => Change::Transferred {
                source: source.get(),
                target: target.get(),
            },
            EventKind::StatusChanged { workspace, status } => Change::Status {
                workspace: workspace.get(),
                activated: status == SimStatus::Activated,
            },
            EventKind::Attached { .. } | EventKind::Detached { .. } => return None,
        };
        Some(SimEvent {
            event_id: event.event_id.clone(),
            iccid: event.iccid.to_string(),
            at: event.at.micros(),
            seq: stored.seq,
            change,
        })
    }
}

/// A stretch of time [from, to) in which the SIM was ACTIVATED in `workspace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveSpell {
    pub iccid: String,
    pub workspace: i64,
    pub from: i64,
    /// `None` while it lasts.
    pub to: Option<i64>,
    pub activation_event: String,
}

impl ActiveSpell {
    fn overlaps(&self, start: i64, end: i64) -> bool {
        self.from < end && self.to.is_none_or(|to| to > start)
    }
}

/// A status event that did not count: its Workspace did not own the SIM then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredStatus {
    pub event_id: String,
    pub iccid: String,
    pub workspace: i64,
    pub owner: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Activity {
    /// Per SIM, its spells in time order.
    spells: BTreeMap<String, Vec<ActiveSpell>>,
    /// Per Workspace, the SIMs with a spell in it, in ICCID order (so a Workspace's
    /// chargeable SIMs are found without looking at every SIM).
    by_workspace: BTreeMap<i64, Vec<String>>,
    /// Per Workspace, the first instant it owned a SIM (registered or transferred to it).
    first_owned: BTreeMap<i64, i64>,
    pub ignored: Vec<IgnoredStatus>,
}

/// A SIM chargeable in a Workspace for a period, with the spell that makes it so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeableSim {
    pub iccid: String,
    /// When the first spell overlapping the period began (possibly in an earlier period).
    pub activated_at: i64,
    pub activation_event: String,
}

impl Activity {
    /// Replays every SIM's events in (time, sequence) order.
    pub fn from_events(mut events: Vec<SimEvent>) -> Self {
        events.sort_by(|a, b| (&a.iccid, a.at, a.seq).cmp(&(&b.iccid, b.at, b.seq)));
        let mut activity = Activity::default();
        for event in &events {
            let owner = match event.change {
                Change::Registered { workspace } => workspace,
                Change::Transferred { target, .. } => target,
                Change::Status { .. } => continue,
            };
            let first = activity.first_owned.entry(owner).or_insert(event.at);
            *first = (*first).min(event.at);
        }
        let mut rest = events.as_slice();
        while let Some(first) = rest.first() {
            let count = rest.iter().take_while(|e| e.iccid == first.iccid).count();
            let (sim, tail) = rest.split_at(count);
            let spells = replay_sim(sim, &mut activity.ignored);
            if !spells.is_empty() {
                activity.spells.insert(first.iccid.clone(), spells);
            }
            rest = tail;
        }
        for (iccid, spells) in &activity.spells {
            let mut workspaces: Vec<i64> = spells.iter().map(|s| s.workspace).collect();
            workspaces.sort_unstable();
            workspaces.dedup();
            for workspace in workspaces {
                let sims = activity.by_workspace.entry(workspace).or_default();
                sims.push(iccid.clone());
            }
        }
        activity
    }

    /// The SIMs ACTIVATED in `workspace` at any instant of [start, end), by ICCID.
    pub fn chargeable(&self, workspace: i64, start: i64, end: i64) -> Vec<ChargeableSim> {
        let sims = self
            .by_workspace
            .get(&workspace)
            .map_or(&[][..], Vec::as_slice);
        sims.iter()
            .filter_map(|iccid| self.spells.get(iccid))
            .filter_map(|spells| {
                spells
                    .iter()
                    .find(|s| s.workspace == workspace && s.overlaps(start, end))
            })
            .map(|spell| ChargeableSim {
                iccid: spell.iccid.clone(),
                activated_at: spell.from,
                activation_event: spell.activation_event.clone(),
            })
            .collect()
    }

    /// Every Workspace that ever owned a SIM, with the first instant it did.
    pub fn first_owned(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.first_owned
            .iter()
            .map(|(workspace, at)| (*workspace, *at))
    }
}

fn replay_sim(events: &[SimEvent], ignored: &mut Vec<IgnoredStatus>) -> Vec<ActiveSpell> {
    let mut spells: Vec<ActiveSpell> = Vec::new();
    let mut owner: Option<i64> = None;
    let mut open: Option<ActiveSpell> = None;
    for event in events {
        match event.change {
            Change::Registered { workspace } => {
                close(&mut open, event.at, &mut spells);
                owner = Some(workspace);
            }
            Change::Transferred { target, .. } => {
                close(&mut open, event.at, &mut spells);
                owner = Some(target);
            }
            Change::Status {
                workspace,
                activated,
            } => {
                if owner != Some(workspace) {
                    ignored.push(IgnoredStatus {
                        event_id: event.event_id.clone(),
                        iccid: event.iccid.clone(),
                        workspace,
                        owner,
                    });
                } else if !activated {
                    close(&mut open, event.at, &mut spells);
                } else if open.is_none() {
                    open = Some(ActiveSpell {
                        iccid: event.iccid.clone(),
                        workspace,
                        from: event.at,
                        to: None,
                        activation_event: event.event_id.clone(),
                    });
                }
            }
        }
    }
    spells.extend(open);
    spells
}

/// Ends the open spell at `at`; an activation undone at the same instant leaves nothing.
fn close(open: &mut Option<ActiveSpell>, at: i64, spells: &mut Vec<ActiveSpell>) {
    if let Some(mut spell) = open.take() {
        if spell.from < at {
            spell.to = Some(at);
            spells.push(spell);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::period::Period;
    use chrono_tz::Tz;

    const SIM: &str = "8988303000010000117";

    struct Events(Vec<SimEvent>);

    impl Events {
        fn new() -> Self {
            Events(Vec::new())
        }
        fn push(mut self, at: &str, change: Change) -> Self {
            let at = chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .timestamp_micros();
            let n = self.0.len() as i64;
            self.0.push(SimEvent {
                event_id: format!("ev-{n}"),
                iccid: SIM.into(),
                at,
                seq: n,
                change,
            });
            self
        }
        fn register(self, at: &str, workspace: i64) -> Self {
            self.push(at, Change::Registered { workspace })
        }
        fn transfer(self, at: &str, source: i64, target: i64) -> Self {
            self.push(at, Change::Transferred { source, target })
        }
        fn status(self, at: &str, workspace: i64, activated: bool) -> Self {
            self.push(
                at,
                Change::Status {
                    workspace,
                    activated,
                },
            )
        }
        fn activity(self) -> Activity {
            Activity::from_events(self.0)
        }
    }

    /// Whether the SIM is chargeable in `workspace` for `period` (UTC months).
    fn charged(activity: &Activity, workspace: i64, period: &str) -> bool {
        let (start, end) = period.parse::<Period>().unwrap().bounds(Tz::UTC);
        !activity
            .chargeable(workspace, start.timestamp_micros(), end.timestamp_micros())
            .is_empty()
    }

    #[test]
    fn moved_while_activated_and_never_activated_in_the_target() {
        let a = Events::new()
            .register("2026-11-02T00:00:00Z", 101)
            .status("2026-11-02T00:00:00Z", 101, true)
            .transfer("2026-11-15T12:00:00Z", 101, 102)
            .status("2026-11-15T12:00:00Z", 102, false)
            .activity();
        assert!(charged(&a, 101, "2026-11"));
        assert!(!charged(&a, 102, "2026-11"));
        assert!(
            !charged(&a, 101, "2026-12"),
            "the source is not charged after the move"
        );
        assert!(!charged(&a, 102, "2026-12"));
    }

    #[test]
    fn activated_in_both_is_charged_in_both() {
        let a = Events::new()
            .register("2026-11-02T00:00:00Z", 101)
            .status("2026-11-02T00:00:00Z", 101, true)
            .transfer("2026-11-15T12:00:00Z", 101, 102)
            .status("2026-11-20T08:00:00Z", 102, true)
            .activity();
        assert!(charged(&a, 101, "2026-11"));
        assert!(charged(&a, 102, "2026-11"));
        assert!(charged(&a, 102, "2026-12"));
        assert!(!charged(&a, 101, "2026-12"));
    }

    #[test]
    fn a_suspension_stops_the_fee_from_the_next_month() {
        let a = Events::new()
            .register("2026-10-01T00:00:00Z", 101)
            .status("2026-10-05T00:00:00Z", 101, true)
            .status("2026-11-10T00:00:00Z", 101, false)
            .activity();
        assert!(charged(&a, 101, "2026-10"));
        assert!(charged(&a, 101, "2026-11"), "active for part of November");
        assert!(!charged(&a, 101, "2026-12"));
        assert!(!charged(&a, 101, "2026-09"));
    }

    #[test]
    fn a_transfer_at_midnight_of_the_month_boundary_bills_each_side_one_month() {
        let a = Events::new()
            .register("2026-11-01T00:00:00Z", 101)
            .status("2026-11-01T00:00:00Z", 101, true)
            .transfer("2026-12-01T00:00:00Z", 101, 102)
            .status("2026-12-01T00:00:00Z", 102, true)
            .activity();
        assert!(charged(&a, 101, "2026-11"));
        assert!(
            !charged(&a, 101, "2026-12"),
            "not a single instant of December in 101"
        );
        assert!(!charged(&a, 102, "2026-11"));
        assert!(charged(&a, 102, "2026-12"));
    }

    #[test]
    fn a_chain_of_transfers_charges_only_where_activated() {
        let a = Events::new()
            .register("2026-11-01T00:00:00Z", 101)
            .status("2026-11-01T00:00:00Z", 101, true)
            .transfer("2026-11-10T00:00:00Z", 101, 102)
            .transfer("2026-11-20T00:00:00Z", 102, 103)
            .status("2026-11-21T00:00:00Z", 103, true)
            .activity();
        assert!(charged(&a, 101, "2026-11"));
        assert!(!charged(&a, 102, "2026-11"), "B never activated it");
        assert!(charged(&a, 103, "2026-11"));
    }

    #[test]
    fn status_events_of_a_workspace_that_does_not_own_the_sim_do_not_count() {
        let a = Events::new()
            .register("2026-11-01T00:00:00Z", 101)
            .status("2026-11-03T00:00:00Z", 102, true)
            .activity();
        assert!(!charged(&a, 102, "2026-11"));
        assert!(!charged(&a, 101, "2026-11"));
        assert_eq!(a.ignored.len(), 1);
        assert_eq!(a.ignored[0].owner, Some(101));
    }

    #[test]
    fn a_workspace_zone_moves_the_month_boundary() {
        // Activated 23:30 UTC on 31 October = 00:30 on 1 November in Berlin.
        let a = Events::new()
            .register("2026-10-31T23:30:00Z", 101)
            .status("2026-10-31T23:30:00Z", 101, true)
            .status("2026-10-31T23:45:00Z", 101, false)
            .activity();
        let in_zone = |period: &str, zone| {
            let (start, end) = period.parse::<Period>().unwrap().bounds(zone);
            !a.chargeable(101, start.timestamp_micros(), end.timestamp_micros())
                .is_empty()
        };
        assert!(in_zone("2026-10", Tz::UTC));
        assert!(!in_zone("2026-11", Tz::UTC));
        assert!(!in_zone("2026-10", Tz::Europe__Berlin));
        assert!(in_zone("2026-11", Tz::Europe__Berlin));
    }

    #[test]
    fn the_activation_of_a_spell_is_reported() {
        let a = Events::new()
            .register("2026-10-01T00:00:00Z", 101)
            .status("2026-10-05T00:00:00Z", 101, true)
            .status("2026-10-06T00:00:00Z", 101, true)
            .activity();
        let (start, end) = "2026-11".parse::<Period>().unwrap().bounds(Tz::UTC);
        let sims = a.chargeable(101, start.timestamp_micros(), end.timestamp_micros());
        assert_eq!(sims.len(), 1);
        assert_eq!(
            sims[0].activation_event, "ev-1",
            "a repeated ACTIVATED does not restart it"
        );
    }
}
