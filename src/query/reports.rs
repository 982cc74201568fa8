/// A named report: a query kept in `sql/`, embedded so the binary needs no files.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    pub name: &'static str,
    pub sql: &'static str,
}

impl Report {
    pub fn find(name: &str) -> Option<&'static Report> {
        REPORTS.iter().find(|r| r.name == name)
    }

    /// The `-- description:` line of the query file.
    pub fn description(&self) -> &'static str {
        self.header("description").unwrap_or("")
    }

    /// How many Workspaces the report needs (`-- min_workspaces: N`), 1 by default.
    pub fn min_workspaces(&self) -> usize {
        self.header("min_workspaces")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    }

    fn header(&self, key: &str) -> Option<&'static str> {
        self.sql
            .lines()
            .take_while(|l| l.starts_with("--"))
            .filter_map(|l| l.trim_start_matches("--").trim().split_once(':'))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim())
    }
}

pub static REPORTS: &[Report] = &[
    Report {
        name: "workspace-usage",
        sql: include_str!("../../sql/workspace-usage.sql"),
    },
    Report {
        name: "centralized",
        sql: include_str!("../../sql/centralized.sql"),
    },
    Report {
        name: "top-sims",
        sql: include_str!("../../sql/top-sims.sql"),
    },
    Report {
        name: "networks",
        sql: include_str!("../../sql/networks.sql"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_has_a_description() {
        for report in REPORTS {
            assert!(!report.description().is_empty(), "{}", report.name);
        }
        assert_eq!(Report::find("centralized").unwrap().min_workspaces(), 2);
        assert_eq!(Report::find("workspace-usage").unwrap().min_workspaces(), 1);
    }
}
