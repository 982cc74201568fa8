//! From the parsed arguments to the resolved [`Config`]: defaults applied, combinations
//! checked, units converted.

use super::*;

fn lake_err(e: LakeError) -> String {
    e.to_string()
}

impl IngestArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        let files = !(self.usage.is_empty() && self.events.is_empty());
        if files && self.exit_at_end {
            return Err("give either --usage/--events files or --brokers with \
                        --exit-at-end, not both"
                .into());
        }
        let kafka = self.kafka(files);
        let following = kafka.as_ref().is_some_and(|k| k.follow.is_some());
        if self.metrics_addr.is_some() && !following {
            return Err("--metrics-addr is for a following Kafka ingest (--brokers \
                        without --exit-at-end)"
                .into());
        }
        if kafka.is_none() && !files {
            return Err(
                "nothing to ingest: give --usage FILE and/or --events FILE, or --brokers".into(),
            );
        }
        if self
            .usage
            .iter()
            .chain(&self.events)
            .filter(|f| *f == "-")
            .count()
            > 1
        {
            return Err("stdin (-) can be read only once".into());
        }
        Ok(Config::Ingest {
            lake: self.lake.location().map_err(lake_err)?,
            options: IngestOptions {
                usage: self.usage.iter().map(|s| Input::parse(s)).collect(),
                events: self.events.iter().map(|s| Input::parse(s)).collect(),
                progress: !self.no_progress,
                threads: self.threads,
                kafka,
                link_limits: self.link_limits.limits(),
                dedup_window_days: Some(self.dedup_window_days),
                limits: InputLimits {
                    plausible: self.plausible_from..self.plausible_until,
                    max_line_bytes: usize::try_from(self.max_line_bytes).unwrap_or(usize::MAX),
                },
            },
        })
    }

    /// The Kafka part of an ingest: brokers set for `produce` (in the environment or the
    /// configuration file) do not turn a file ingest into a Kafka one.
    fn kafka(&self, files: bool) -> Option<KafkaIngest> {
        match (&self.brokers, self.exit_at_end) {
            // Brokers set for `produce` (in the environment or the configuration
            // file) do not turn a file ingest into a Kafka one.
            (None, _) => None,
            (Some(_), _) if files => None,
            (Some(brokers), exit_at_end) => Some(KafkaIngest {
                brokers: brokers.clone(),
                topics: self.topics.topics(),
                group: self.group.clone(),
                follow: (!exit_at_end).then(|| std::time::Duration::from_secs(self.pass_seconds)),
                metrics_address: self.metrics_addr.clone(),
                dead_letter_topic: self.dead_letter_topic.clone(),
                pass_budget: Some(ReadBudget {
                    messages: self.pass_max_records,
                    bytes: self.pass_max_mib.saturating_mul(1 << 20),
                }),
                hold: HoldPolicy {
                    bound: std::time::Duration::from_secs(self.hold_minutes * 60),
                    idle: match self.hold_minutes {
                        0 => std::time::Duration::ZERO,
                        _ => std::time::Duration::from_secs(
                            self.hold_idle_seconds.unwrap_or(self.pass_seconds),
                        ),
                    },
                },
            }),
        }
    }
}

impl ServeArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        Ok(Config::Serve {
            lake: self.lake.location().map_err(lake_err)?,
            options: ServeOptions {
                address: self.addr,
                postgres_address: self.postgres_addr,
                auth: AuthOptions {
                    hs256_secret_file: self.jwt_secret_file,
                    rs256_public_key_file: self.jwt_public_key_file,
                    issuer: self.jwt_issuer,
                    audience: self.jwt_audience,
                    operator_secret_file: self.operator_secret_file,
                    oidc_issuers_file: self.oidc_issuers_file,
                },
                limits: QueryLimits {
                    max_rows: self.max_rows,
                    timeout: std::time::Duration::from_secs(self.query_timeout),
                    memory_bytes: self.memory.bytes_or(QueryLimits::default().memory_bytes),
                    statement: StatementLimits::default(),
                },
                query_threads: self.threads,
                events_topic: self.brokers.map(|brokers| EventsTopic {
                    brokers,
                    topic: self.events_topic,
                }),
                fairness: FairnessLimits {
                    per_caller: usize::try_from(self.queries_per_caller).unwrap_or(usize::MAX),
                    queued_per_caller: usize::try_from(self.queued_per_caller)
                        .unwrap_or(usize::MAX),
                },
                connections: ConnectionLimits {
                    max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
                    idle_timeout: std::time::Duration::from_secs(self.idle_timeout),
                },
                tls: self
                    .tls_cert_file
                    .zip(self.tls_key_file)
                    .map(|(certificate, key)| TlsFiles { certificate, key }),
                link_limits: self.link_limits.limits(),
                billing: self.prices.map(|prices| ServedBilling {
                    prices,
                    out: self.invoice_dir,
                }),
            },
        })
    }
}

impl ProduceArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        if self.usage.is_empty() && self.events.is_empty() {
            return Err("nothing to produce: give --usage FILE and/or --events FILE".into());
        }
        Ok(Config::Produce(ProduceOptions {
            brokers: self.brokers,
            topics: self.topics.topics(),
            usage: self.usage.iter().map(|s| Input::parse(s)).collect(),
            events: self.events.iter().map(|s| Input::parse(s)).collect(),
            partitions: self.partitions,
        }))
    }
}

impl ReplayArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        Ok(Config::Replay {
            lake: self.lake.location().map_err(lake_err)?,
            options: IngestOptions {
                usage: Vec::new(),
                events: Vec::new(),
                progress: false,
                threads: self.threads,
                kafka: None,
                link_limits: LinkLimits::default(),
                dedup_window_days: None,
                limits: InputLimits::default(),
            },
        })
    }
}

impl LakeCommand {
    pub(super) fn resolve(self) -> Result<Config, String> {
        let hours = |h: u64| std::time::Duration::from_secs(h.saturating_mul(3600));
        let (lake, task) = match self {
            LakeCommand::Compact(lake) => (lake, LakeTask::Compact),
            LakeCommand::Check(lake) => (lake, LakeTask::Check),
            LakeCommand::Maintain(a) => (
                a.lake,
                LakeTask::Maintain {
                    retain: hours(a.retain_hours),
                },
            ),
            LakeCommand::Migrate(lake) => (lake, LakeTask::Migrate),
            LakeCommand::Vacuum(a) => (
                a.lake,
                LakeTask::Vacuum {
                    retain: hours(a.retain_hours),
                    dry_run: a.dry_run,
                },
            ),
        };
        Ok(Config::Lake {
            lake: lake.location().map_err(lake_err)?,
            task,
        })
    }
}

impl QueryArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        Ok(Config::Query {
            lake: self.lake.location().map_err(lake_err)?,
            sql: self.sql,
            format: self.format,
            memory_bytes: self.memory.bytes_or(crate::query::session_memory_bytes()),
        })
    }
}

impl ReportArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        if self.list {
            return Ok(Config::ListReports);
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                return Err(format!("--from {from} is after --to {to}"));
            }
        }
        Ok(Config::Report {
            lake: self.lake.location().map_err(lake_err)?,
            name: self.name.unwrap_or_default(),
            scope: Scope {
                workspaces: self.workspaces,
                from: self.from,
                to: self.to,
            },
            format: self.format,
            memory_bytes: self.memory.bytes_or(crate::query::session_memory_bytes()),
        })
    }
}

impl GenerateArgs {
    pub(super) fn resolve(self) -> Config {
        Config::Generate(GenerateOptions {
            seed: self.seed,
            sims: self.sims,
            records: self.records,
            days: self.days,
            start: self.start,
            workspaces: self.workspaces,
            out: self.out,
            usage_by_day: self.usage_by_day,
            zstd: self.zstd,
        })
    }
}

impl InvoiceArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        let task = match self.period {
            Some(period) if !self.due => BillingTask::Invoice(InvoiceOptions {
                period,
                workspaces: self.workspaces.iter().map(|w| w.get()).collect(),
                prices: self.prices.path,
                out: self.out,
                issue: self.issue,
                pdf: self.pdf_with.clone(),
            }),
            _ => BillingTask::InvoiceDue(DueOptions {
                prices: self.prices.path,
                out: self.out,
                now: chrono::Utc::now(),
                grace: chrono::Duration::hours(i64::from(self.grace_hours)),
                pdf: self.pdf_with,
            }),
        };
        Ok(Config::Billing {
            lake: self.lake.location().map_err(lake_err)?,
            task,
        })
    }
}

impl ReconcileArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        Ok(Config::Billing {
            lake: self.lake.location().map_err(lake_err)?,
            task: BillingTask::Reconcile {
                period: self.period,
                prices: self.prices.path,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    fn hold_of(args: &[&str]) -> HoldPolicy {
        let argv = ["simtally", "ingest", "--brokers", "localhost:9092"];
        let cli = Cli::try_parse_from(argv.iter().chain(args)).unwrap_or_else(|e| panic!("{e}"));
        match cli.into_config() {
            Ok(Config::Ingest { options, .. }) => match options.kafka {
                Some(kafka) => kafka.hold,
                None => panic!("not a Kafka ingest"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_events_partition_holds_usage_for_one_pass_interval_unless_told() {
        assert_eq!(
            hold_of(&["--pass-seconds", "7"]).idle,
            Duration::from_secs(7)
        );
        let told = hold_of(&["--pass-seconds", "7", "--hold-idle-seconds", "30"]);
        assert_eq!(told.idle, Duration::from_secs(30));
        assert_eq!(told.bound, Duration::from_secs(3600));
        assert_eq!(hold_of(&["--hold-minutes", "0"]).idle, Duration::ZERO);
    }
}
