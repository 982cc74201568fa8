//! Over random usage, SIM moves and choices of Workspaces: the centralized report over N
//! Workspaces is, day by day, exactly the N per-Workspace reports and their sum.

use crate::common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use rust_decimal::Decimal;
use simtally::domain::WorkspaceId;
use simtally::query::{
    run_limited, scoped_session, LakeSnapshots, QueryLimits, Report, Scope, Viewer,
};

use common::wire::{registered, transferred, usage};

const WORKSPACES: [i64; 5] = [101, 102, 103, 104, 105];

fn at(seconds: u64) -> String {
    common::wire::seconds_after_start(seconds)
}

fn iccid(sim: usize) -> String {
    format!("89883030000200{sim:05}")
}

/// One SIM per entry: registered to WORKSPACES[first], then moved to each of `moves` in
/// turn, a day apart.
fn events(sims: &[(usize, Vec<usize>)]) -> Vec<String> {
    let mut lines = Vec::new();
    for (n, (first, moves)) in sims.iter().enumerate() {
        let mut owner = WORKSPACES[*first];
        lines.push(registered(&format!("r{n}"), &at(0), &iccid(n), owner));
        for (m, pick) in moves.iter().enumerate() {
            let target = WORKSPACES[*pick];
            if target == owner {
                continue;
            }
            let when = at((m as u64 + 1) * 86_400 + 3_600);
            lines.push(transferred(
                &format!("t{n}-{m}"),
                &when,
                &iccid(n),
                owner,
                target,
            ));
            owner = target;
        }
    }
    lines
}

/// (day, workspace) -> the report's numbers, as exact text.
type Rows = BTreeMap<(String, String), Vec<Decimal>>;

async fn report(
    lake: &simtally::lake::Lake,
    name: &str,
    workspaces: &[i64],
    runtime: &std::sync::Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Rows {
    let scope = Scope {
        workspaces: workspaces
            .iter()
            .map(|w| WorkspaceId::new(*w).unwrap())
            .collect(),
        ..Scope::default()
    };
    let snapshots = LakeSnapshots::new(lake.clone(), runtime.clone());
    let ctx = scoped_session(&snapshots, &Viewer::Operator, &scope).unwrap();
    let sql = Report::find(name).unwrap().sql;
    let result = run_limited(&ctx, sql, &QueryLimits::default())
        .await
        .unwrap();
    let rows = common::to_strings(&result.batches);
    let names: Vec<String> = result
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let column = |name: &str| names.iter().position(|n| n == name).unwrap();
    let (day, workspace) = (
        column("usage_date"),
        column(if name == "centralized" {
            "workspace"
        } else {
            "workspace_id"
        }),
    );
    let numbers: Vec<usize> = ["records", "data_mb", "sms", "cost"]
        .iter()
        .map(|n| column(n))
        .collect();
    rows.iter()
        .map(|row| {
            let values = numbers
                .iter()
                .map(|i| row[*i].parse::<Decimal>().unwrap())
                .collect();
            ((row[day].clone(), row[workspace].clone()), values)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn centralized_is_the_sum_of_the_per_workspace_reports(
        sims in prop::collection::vec((0usize..5, prop::collection::vec(0usize..5, 0..3)), 1..6),
        records in prop::collection::vec((0usize..6, 0u64..5 * 86_400, 60u64..4 * 3_600, 0i64..10_000_000_000), 1..40),
        chosen in prop::sample::subsequence(WORKSPACES.to_vec(), 2..=5),
    ) {
        let events = events(&sims);
        let lines: Vec<String> = records
            .iter()
            .enumerate()
            .map(|(n, (sim, start, length, units))| {
                let cost = Decimal::new(*units, 10).to_string();
                usage(n as u64 + 1, &iccid(sim % sims.len()), &at(*start), &at(start + length), &cost)
            })
            .collect();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let lake = common::lake_of_lines(&dir, &lines, &events).await;
            let runtime = QueryLimits::default().runtime().unwrap();

            let centralized = report(&lake, "centralized", &chosen, &runtime).await;
            let mut expected = Rows::new();
            for workspace in &chosen {
                for ((day, ws), values) in report(&lake, "workspace-usage", &[*workspace], &runtime).await {
                    let combined = expected
                        .entry((day.clone(), "combined".to_owned()))
                        .or_insert_with(|| vec![Decimal::ZERO; values.len()]);
                    for (sum, value) in combined.iter_mut().zip(&values) {
                        *sum += value;
                    }
                    expected.insert((day, ws), values);
                }
            }
            prop_assert_eq!(centralized, expected);
            Ok(())
        })?;
    }
}
