//! From the parsed arguments to the resolved [`Config`]: defaults applied, combinations
//! checked, units converted.

use super::*;

fn lake_err(e: LakeError) -> String {
    e.to_string()
}

impl IngestArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        let a = &self;
        let files = !(a.usage.is_empty() && a.events.is_empty());
        if files && a.exit_at_end {
            return Err("give either --usage/--events files or --brokers with \
                        --exit-at-end, not both"
                .into());
        }
        let kafka = self.kafka(files);
        let following = kafka.as_ref().is_some_and(|k| k.follow.is_some());
        if a.metrics_addr.is_some() && !following {
            return Err("--metrics-addr is for a following Kafka ingest (--brokers \
                        without --exit-at-end)"
                .into());
        }
        if kafka.is_none() && !files {
            return Err(
                "nothing to ingest: give --usage FILE and/or --events FILE, or --brokers".into(),
            );
        }
        if a.usage
            .iter()
            .chain(&a.events)
            .filter(|f| *f == "-")
            .count()
            > 1
        {
            return Err("stdin (-) can be read only once".into());
        }
        Ok(Config::Ingest {
            lake: a.lake.location().map_err(lake_err)?,
            options: IngestOptions {
                usage: a.usage.iter().map(|s| Input::parse(s)).collect(),
                events: a.events.iter().map(|s| Input::parse(s)).collect(),
                progress: !a.no_progress,
                threads: a.threads,
                kafka,
                link_limits: a.link_limits.limits(),
                dedup_window_days: Some(a.dedup_window_days),
                limits: InputLimits {
                    plausible: a.plausible_from..a.plausible_until,
                    max_line_bytes: usize::try_from(a.max_line_bytes).unwrap_or(usize::MAX),
                },
            },
        })
    }

    /// The Kafka part of an ingest: brokers set for `produce` (in the environment or the
    /// configuration file) do not turn a file ingest into a Kafka one.
    fn kafka(&self, files: bool) -> Option<KafkaIngest> {
        let a = self;
        match (&a.brokers, a.exit_at_end) {
            // Brokers set for `produce` (in the environment or the configuration
            // file) do not turn a file ingest into a Kafka one.
            (None, _) => None,
            (Some(_), _) if files => None,
            (Some(brokers), exit_at_end) => Some(KafkaIngest {
                brokers: brokers.clone(),
                topics: a.topics.topics(),
                group: a.group.clone(),
                follow: (!exit_at_end).then(|| std::time::Duration::from_secs(a.pass_seconds)),
                metrics_address: a.metrics_addr.clone(),
                dead_letter_topic: a.dead_letter_topic.clone(),
                pass_budget: Some(ReadBudget {
                    messages: a.pass_max_records,
                    bytes: a.pass_max_mib.saturating_mul(1 << 20),
                }),
                hold: HoldPolicy {
                    bound: std::time::Duration::from_secs(a.hold_minutes * 60),
                    idle: match a.hold_minutes {
                        0 => std::time::Duration::ZERO,
                        _ => std::time::Duration::from_secs(
                            a.hold_idle_seconds.unwrap_or(a.pass_seconds),
                        ),
                    },
                },
            }),
        }
    }
}

impl ServeArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        let a = self;
        Ok(Config::Serve {
            lake: a.lake.location().map_err(lake_err)?,
            options: ServeOptions {
                address: a.addr,
                postgres_address: a.postgres_addr,
                auth: AuthOptions {
                    hs256_secret_file: a.jwt_secret_file,
                    rs256_public_key_file: a.jwt_public_key_file,
                    issuer: a.jwt_issuer,
                    audience: a.jwt_audience,
                    operator_secret_file: a.operator_secret_file,
                    oidc_issuers_file: a.oidc_issuers_file,
                },
                limits: QueryLimits {
                    max_rows: a.max_rows,
                    timeout: std::time::Duration::from_secs(a.query_timeout),
                    memory_bytes: usize::try_from(a.query_memory_mb.saturating_mul(1 << 20))
                        .unwrap_or(usize::MAX),
                    statement: StatementLimits::default(),
                },
                query_threads: a.threads,
                events_topic: a.brokers.map(|brokers| EventsTopic {
                    brokers,
                    topic: a.events_topic,
                }),
                fairness: FairnessLimits {
                    per_caller: usize::try_from(a.queries_per_caller).unwrap_or(usize::MAX),
                    queued_per_caller: usize::try_from(a.queued_per_caller).unwrap_or(usize::MAX),
                },
                connections: ConnectionLimits {
                    max_connections: usize::try_from(a.max_connections).unwrap_or(usize::MAX),
                    idle_timeout: std::time::Duration::from_secs(a.idle_timeout),
                },
                tls: a
                    .tls_cert_file
                    .zip(a.tls_key_file)
                    .map(|(certificate, key)| TlsFiles { certificate, key }),
                link_limits: a.link_limits.limits(),
                billing: a.prices.map(|prices| ServedBilling {
                    prices,
                    out: a.invoice_dir,
                }),
            },
        })
    }
}

impl ProduceArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        let a = self;
        if a.usage.is_empty() && a.events.is_empty() {
            return Err("nothing to produce: give --usage FILE and/or --events FILE".into());
        }
        Ok(Config::Produce(ProduceOptions {
            brokers: a.brokers,
            topics: a.topics.topics(),
            usage: a.usage.iter().map(|s| Input::parse(s)).collect(),
            events: a.events.iter().map(|s| Input::parse(s)).collect(),
            partitions: a.partitions,
        }))
    }
}

impl ReplayArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        let a = self;
        Ok(Config::Replay {
            lake: a.lake.location().map_err(lake_err)?,
            options: IngestOptions {
                usage: Vec::new(),
                events: Vec::new(),
                progress: false,
                threads: a.threads,
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
        Ok(match self {
            LakeCommand::Compact(lake) => Config::Compact {
                lake: lake.location().map_err(lake_err)?,
            },
            LakeCommand::Check(lake) => Config::Check {
                lake: lake.location().map_err(lake_err)?,
            },
            LakeCommand::Maintain(a) => Config::Maintain {
                lake: a.lake.location().map_err(lake_err)?,
                retain: hours(a.retain_hours),
            },
            LakeCommand::Migrate(lake) => Config::Migrate {
                lake: lake.location().map_err(lake_err)?,
            },
            LakeCommand::Vacuum(a) => Config::Vacuum {
                lake: a.lake.location().map_err(lake_err)?,
                retain: hours(a.retain_hours),
                dry_run: a.dry_run,
            },
        })
    }
}

impl QueryArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        Ok(Config::Query {
            lake: self.lake.location().map_err(lake_err)?,
            sql: self.sql,
            format: self.format,
        })
    }
}

impl ReportArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        let a = self;
        if a.list {
            return Ok(Config::ListReports);
        }
        if let (Some(from), Some(to)) = (a.from, a.to) {
            if from > to {
                return Err(format!("--from {from} is after --to {to}"));
            }
        }
        Ok(Config::Report {
            lake: a.lake.location().map_err(lake_err)?,
            name: a.name.unwrap_or_default(),
            scope: Scope {
                workspaces: a.workspaces,
                from: a.from,
                to: a.to,
            },
            format: a.format,
        })
    }
}

impl GenerateArgs {
    pub(super) fn resolve(self) -> Config {
        let a = self;
        Config::Generate(GenerateOptions {
            seed: a.seed,
            sims: a.sims,
            records: a.records,
            days: a.days,
            start: a.start,
            workspaces: a.workspaces,
            out: a.out,
            usage_by_day: a.usage_by_day,
            zstd: a.zstd,
        })
    }
}

impl InvoiceArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        let a = self;
        Ok(match a.period {
            Some(period) if !a.due => Config::Invoice {
                lake: a.lake.location().map_err(lake_err)?,
                options: InvoiceOptions {
                    period,
                    workspaces: a.workspaces.iter().map(|w| w.get()).collect(),
                    prices: a.prices.path,
                    out: a.out,
                    issue: a.issue,
                    pdf: a.pdf_with.clone(),
                },
            },
            _ => Config::InvoiceDue {
                lake: a.lake.location().map_err(lake_err)?,
                options: DueOptions {
                    prices: a.prices.path,
                    out: a.out,
                    now: chrono::Utc::now(),
                    grace: chrono::Duration::hours(i64::from(a.grace_hours)),
                    pdf: a.pdf_with,
                },
            },
        })
    }
}

impl ReconcileArgs {
    pub(super) fn resolve(self) -> Result<Config, String> {
        Ok(Config::Reconcile {
            lake: self.lake.location().map_err(lake_err)?,
            period: self.period,
            prices: self.prices.path,
        })
    }
}
