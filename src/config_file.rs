//! The configuration file: the layer between the defaults and the environment. Precedence,
//! lowest first: defaults, the file, `SIMTALLY_*` variables, flags. The file's values become
//! defaults for the matching variables, so clap applies the rest of the order.
//!
//! ```toml
//! # simtally.toml; every key is optional
//! lake = "s3://bucket/lake"        # SIMTALLY_LAKE
//! log = "info"                     # SIMTALLY_LOG
//! threads = 2                      # SIMTALLY_THREADS
//! brokers = "localhost:9092"       # SIMTALLY_BROKERS
//! usage_topic = "sim-usage"        # SIMTALLY_USAGE_TOPIC
//! events_topic = "sim-events"      # SIMTALLY_EVENTS_TOPIC
//! group = "simtally"               # SIMTALLY_GROUP
//! prices = "prices.toml"           # SIMTALLY_PRICES
//! pass_seconds = 5                 # SIMTALLY_PASS_SECONDS
//! pass_max_records = 250000        # SIMTALLY_PASS_MAX_RECORDS
//! pass_max_mib = 128               # SIMTALLY_PASS_MAX_MIB
//! hold_minutes = 60                # SIMTALLY_HOLD_MINUTES
//! hold_idle_seconds = 5            # SIMTALLY_HOLD_IDLE_SECONDS (default: pass_seconds)
//! metrics_addr = "0.0.0.0:9464"    # SIMTALLY_METRICS_ADDR
//! dead_letter_topic = "sim-dead-letters" # SIMTALLY_DEAD_LETTER_TOPIC
//! dedup_window_days = 7            # SIMTALLY_DEDUP_WINDOW_DAYS
//! plausible_from = "2000-01-01"    # SIMTALLY_PLAUSIBLE_FROM
//! plausible_until = "2100-01-01"   # SIMTALLY_PLAUSIBLE_UNTIL
//! max_line_bytes = 4194304         # SIMTALLY_MAX_LINE_BYTES
//! link_limits = ["7=5"]            # SIMTALLY_LINK_LIMITS
//! serve_addr = "0.0.0.0:8080"      # SIMTALLY_SERVE_ADDR
//! postgres_addr = "0.0.0.0:5433"   # SIMTALLY_POSTGRES_ADDR
//! jwt_secret_file = "/run/secrets/jwt"        # SIMTALLY_JWT_SECRET_FILE
//! jwt_public_key_file = "/etc/simtally/idp.pem" # SIMTALLY_JWT_PUBLIC_KEY_FILE
//! jwt_issuer = "https://sso.example.com"      # SIMTALLY_JWT_ISSUER
//! jwt_audience = "simtally"                   # SIMTALLY_JWT_AUDIENCE
//! operator_secret_file = "/run/secrets/ops"   # SIMTALLY_OPERATOR_SECRET_FILE
//! oidc_issuers_file = "/etc/simtally/issuers.toml" # SIMTALLY_OIDC_ISSUERS_FILE
//! max_rows = 100000                # SIMTALLY_MAX_ROWS
//! query_timeout = 30               # SIMTALLY_QUERY_TIMEOUT
//! queries_per_caller = 2           # SIMTALLY_QUERIES_PER_CALLER
//! queued_per_caller = 8            # SIMTALLY_QUEUED_PER_CALLER
//! max_connections = 512            # SIMTALLY_MAX_CONNECTIONS
//! idle_timeout = 60                # SIMTALLY_IDLE_TIMEOUT
//! tls_cert_file = "/etc/simtally/tls.crt"     # SIMTALLY_TLS_CERT_FILE
//! tls_key_file = "/etc/simtally/tls.key"      # SIMTALLY_TLS_KEY_FILE
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file's keys; an unknown key is an error, so a typo never goes unnoticed.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub lake: Option<String>,
    pub log: Option<String>,
    pub threads: Option<u32>,
    pub brokers: Option<String>,
    pub usage_topic: Option<String>,
    pub events_topic: Option<String>,
    pub group: Option<String>,
    pub prices: Option<String>,
    pub pass_seconds: Option<u64>,
    pub pass_max_records: Option<u64>,
    pub pass_max_mib: Option<u64>,
    pub hold_minutes: Option<u64>,
    pub hold_idle_seconds: Option<u64>,
    pub metrics_addr: Option<String>,
    pub dead_letter_topic: Option<String>,
    pub dedup_window_days: Option<u32>,
    pub plausible_from: Option<String>,
    pub plausible_until: Option<String>,
    pub max_line_bytes: Option<u64>,
    pub link_limits: Option<Vec<String>>,
    pub serve_addr: Option<String>,
    pub postgres_addr: Option<String>,
    pub jwt_secret_file: Option<String>,
    pub jwt_public_key_file: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub operator_secret_file: Option<String>,
    pub oidc_issuers_file: Option<String>,
    pub max_rows: Option<u64>,
    pub query_timeout: Option<u64>,
    pub queries_per_caller: Option<u64>,
    pub queued_per_caller: Option<u64>,
    pub max_connections: Option<u64>,
    pub idle_timeout: Option<u64>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
}

impl FileConfig {
    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        toml::from_str(text)
            .map_err(|e| format!("configuration file {}: {}", path.display(), e.message()))
    }

    /// (variable, value) for every key the file sets.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut add = |name, value: Option<String>| {
            if let Some(value) = value {
                out.push((name, value));
            }
        };
        add("SIMTALLY_LAKE", self.lake.clone());
        add("SIMTALLY_LOG", self.log.clone());
        add("SIMTALLY_THREADS", self.threads.map(|t| t.to_string()));
        add("SIMTALLY_BROKERS", self.brokers.clone());
        add("SIMTALLY_USAGE_TOPIC", self.usage_topic.clone());
        add("SIMTALLY_EVENTS_TOPIC", self.events_topic.clone());
        add("SIMTALLY_GROUP", self.group.clone());
        add("SIMTALLY_PRICES", self.prices.clone());
        add(
            "SIMTALLY_PASS_SECONDS",
            self.pass_seconds.map(|s| s.to_string()),
        );
        add(
            "SIMTALLY_PASS_MAX_RECORDS",
            self.pass_max_records.map(|n| n.to_string()),
        );
        add(
            "SIMTALLY_PASS_MAX_MIB",
            self.pass_max_mib.map(|n| n.to_string()),
        );
        add(
            "SIMTALLY_HOLD_MINUTES",
            self.hold_minutes.map(|n| n.to_string()),
        );
        add(
            "SIMTALLY_HOLD_IDLE_SECONDS",
            self.hold_idle_seconds.map(|n| n.to_string()),
        );
        add("SIMTALLY_METRICS_ADDR", self.metrics_addr.clone());
        add("SIMTALLY_DEAD_LETTER_TOPIC", self.dead_letter_topic.clone());
        add(
            "SIMTALLY_DEDUP_WINDOW_DAYS",
            self.dedup_window_days.map(|d| d.to_string()),
        );
        add("SIMTALLY_PLAUSIBLE_FROM", self.plausible_from.clone());
        add("SIMTALLY_PLAUSIBLE_UNTIL", self.plausible_until.clone());
        add(
            "SIMTALLY_MAX_LINE_BYTES",
            self.max_line_bytes.map(|n| n.to_string()),
        );
        add(
            "SIMTALLY_LINK_LIMITS",
            self.link_limits.as_ref().map(|l| l.join(",")),
        );
        add("SIMTALLY_SERVE_ADDR", self.serve_addr.clone());
        add("SIMTALLY_POSTGRES_ADDR", self.postgres_addr.clone());
        add("SIMTALLY_JWT_SECRET_FILE", self.jwt_secret_file.clone());
        add(
            "SIMTALLY_JWT_PUBLIC_KEY_FILE",
            self.jwt_public_key_file.clone(),
        );
        add("SIMTALLY_JWT_ISSUER", self.jwt_issuer.clone());
        add("SIMTALLY_JWT_AUDIENCE", self.jwt_audience.clone());
        add(
            "SIMTALLY_OPERATOR_SECRET_FILE",
            self.operator_secret_file.clone(),
        );
        add("SIMTALLY_OIDC_ISSUERS_FILE", self.oidc_issuers_file.clone());
        add("SIMTALLY_MAX_ROWS", self.max_rows.map(|n| n.to_string()));
        add(
            "SIMTALLY_QUERY_TIMEOUT",
            self.query_timeout.map(|n| n.to_string()),
        );
        add("SIMTALLY_TLS_CERT_FILE", self.tls_cert_file.clone());
        add("SIMTALLY_TLS_KEY_FILE", self.tls_key_file.clone());
        for (variable, value) in [
            ("SIMTALLY_QUERIES_PER_CALLER", self.queries_per_caller),
            ("SIMTALLY_QUEUED_PER_CALLER", self.queued_per_caller),
            ("SIMTALLY_MAX_CONNECTIONS", self.max_connections),
            ("SIMTALLY_IDLE_TIMEOUT", self.idle_timeout),
        ] {
            add(variable, value.map(|n| n.to_string()));
        }
        out
    }
}

/// The file named by `--config FILE` (or `--config=FILE`) among `args`, else by
/// `SIMTALLY_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("SIMTALLY_CONFIG").map(PathBuf::from)
}

/// Reads the configuration file, if one is named, and sets its values as `SIMTALLY_*`
/// variables where the environment does not already set them. Call it before parsing the
/// flags and before any thread starts.
pub fn apply_config_file(args: &[OsString]) -> Result<(), String> {
    let Some(path) = config_path(args) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?;
    for (name, value) in FileConfig::parse(&path, &text)?.variables() {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_and_refuses_unknown_ones() {
        let path = Path::new("simtally.toml");
        let config = FileConfig::parse(path, "lake = \"/data/lake\"\nthreads = 3\n").unwrap();
        assert_eq!(
            config.variables(),
            vec![
                ("SIMTALLY_LAKE", "/data/lake".to_owned()),
                ("SIMTALLY_THREADS", "3".to_owned())
            ]
        );
        let err = FileConfig::parse(path, "lakes = \"x\"").unwrap_err();
        assert!(
            err.contains("simtally.toml") && err.contains("lakes"),
            "{err}"
        );
        assert!(FileConfig::parse(path, "threads = -1").is_err());
    }

    #[test]
    fn the_flag_wins_over_the_variable() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_path(&args(&["simtally", "--config", "a.toml", "ingest"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            config_path(&args(&["simtally", "ingest", "--config=b.toml"])),
            Some(PathBuf::from("b.toml"))
        );
    }
}
