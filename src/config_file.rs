//! The configuration file: the layer between the defaults and the environment. Precedence,
//! lowest first: defaults, the file, `SIMTALLY_*` variables, flags.
//!
//! Every setting is defined once, as a clap argument with an `env = "SIMTALLY_NAME"`
//! (src/cli/mod.rs): that gives its flag, its variable, its help, and here its file key
//! `name` (the variable without the prefix, in lower case). The file's values become
//! defaults for the matching variables, so clap applies the rest of the order and checks
//! the values. docs/configuration.md lists every key; a test keeps it equal to the arguments.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;

const PREFIX: &str = "SIMTALLY_";
/// Not a key of the file: the variable that names the file.
const CONFIG_VARIABLE: &str = "SIMTALLY_CONFIG";

/// One setting: its file key, its variable, its flag, the commands that take it, its default
/// and its help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub variable: String,
    pub flag: String,
    pub commands: Vec<String>,
    pub default: String,
    pub help: String,
}

/// Every setting of every command, by file key.
pub fn settings() -> BTreeMap<String, Setting> {
    let mut settings = BTreeMap::new();
    collect(&Cli::command(), "", &mut settings);
    settings
}

fn collect(command: &clap::Command, path: &str, settings: &mut BTreeMap<String, Setting>) {
    for arg in command.get_arguments() {
        let Some(variable) = arg.get_env().and_then(|v| v.to_str()) else {
            continue;
        };
        let Some(name) = variable.strip_prefix(PREFIX) else {
            continue;
        };
        if variable == CONFIG_VARIABLE {
            continue;
        }
        let key = name.to_ascii_lowercase();
        let setting = settings.entry(key.clone()).or_insert_with(|| Setting {
            key,
            variable: variable.to_owned(),
            flag: arg.get_long().map(|l| format!("--{l}")).unwrap_or_default(),
            commands: Vec::new(),
            default: String::new(),
            help: String::new(),
        });
        // The first command that says something about it.
        if setting.help.is_empty() {
            setting.help = arg.get_help().map(one_line).unwrap_or_default();
        }
        if setting.default.is_empty() {
            let defaults: Vec<_> = arg
                .get_default_values()
                .iter()
                .map(|d| d.to_string_lossy())
                .collect();
            setting.default = defaults.join(",");
        }
        let here = match (path, arg.is_global_set()) {
            (_, true) | ("", _) => "(all)".to_owned(),
            (path, false) => path.to_owned(),
        };
        if !setting.commands.contains(&here) {
            setting.commands.push(here);
        }
    }
    for sub in command.get_subcommands() {
        let path = match path {
            "" => sub.get_name().to_owned(),
            path => format!("{path} {}", sub.get_name()),
        };
        collect(sub, &path, settings);
    }
}

fn one_line(help: &clap::builder::StyledStr) -> String {
    help.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// (variable, value) for every key of a configuration file's text; an unknown key or a value
/// that is not a string, number, boolean or list of them is an error naming the file.
pub fn parse(path: &Path, text: &str) -> Result<Vec<(String, String)>, String> {
    let at = |message: String| format!("configuration file {}: {message}", path.display());
    let table: toml::Table = toml::from_str(text).map_err(|e| at(e.message().to_owned()))?;
    let settings = settings();
    let mut out = Vec::new();
    for (key, value) in table {
        let Some(setting) = settings.get(&key) else {
            return Err(at(format!(
                "unknown key `{key}` (the keys are listed in docs/configuration.md)"
            )));
        };
        let value =
            plain(&value).ok_or_else(|| at(format!("`{key}` must be a string, number or list")))?;
        out.push((setting.variable.clone(), value));
    }
    Ok(out)
}

/// A value as its variable would spell it: lists are comma-separated.
fn plain(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => {
            let items: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    toml::Value::Array(_) | toml::Value::Table(_) => None,
                    item => plain(item),
                })
                .collect();
            Some(items?.join(","))
        }
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Table(_) => None,
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
    std::env::var_os(CONFIG_VARIABLE).map(PathBuf::from)
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
    for (name, value) in parse(&path, &text)? {
        if std::env::var_os(&name).is_none() {
            std::env::set_var(name, value);
        }
    }
    Ok(())
}

/// The table of docs/configuration.md: one row per key.
pub fn reference_table() -> String {
    let mut table = String::from(
        "| key | variable | flag | commands | default | what it sets |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for setting in settings().values() {
        table.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} | {} | {} |\n",
            setting.key,
            setting.variable,
            setting.flag,
            setting.commands.join(", "),
            match setting.default.as_str() {
                "" => String::new(),
                default => format!("`{}`", default.replace('|', "\\|")),
            },
            setting.help.replace('|', "\\|"),
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_as_variables_and_refuses_unknown_ones() {
        let path = Path::new("simtally.toml");
        let text = "lake = \"/data/lake\"\nthreads = 3\nlink_limits = [\"7=5\", \"8=2\"]\n";
        assert_eq!(
            parse(path, text).unwrap(),
            vec![
                ("SIMTALLY_LAKE".to_owned(), "/data/lake".to_owned()),
                ("SIMTALLY_LINK_LIMITS".to_owned(), "7=5,8=2".to_owned()),
                ("SIMTALLY_THREADS".to_owned(), "3".to_owned()),
            ]
        );
        let err = parse(path, "lakes = \"x\"").unwrap_err();
        assert!(
            err.contains("simtally.toml") && err.contains("lakes"),
            "{err}"
        );
        assert!(parse(path, "config = \"other.toml\"").is_err());
        assert!(parse(path, "[serve]\nmax_rows = 3").is_err());
    }

    #[test]
    fn every_variable_of_every_command_is_a_key() {
        let keys = settings();
        for key in [
            "lake",
            "serve_addr",
            "query_memory_mb",
            "pdf_renderer",
            "tls_key_file",
        ] {
            assert!(keys.contains_key(key), "{key} missing");
        }
        assert!(!keys.contains_key("config"));
        assert_eq!(keys["lake"].variable, "SIMTALLY_LAKE");
        assert_eq!(keys["lake"].flag, "--lake");
    }

    /// docs/configuration.md lists exactly the settings the arguments define. To accept a
    /// change: `SIMTALLY_BLESS=1 cargo test --lib config_file`, then review the diff.
    #[test]
    fn the_documentation_lists_every_key() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
        let text = std::fs::read_to_string(&doc).unwrap();
        let (begin, end) = ("<!-- keys begin -->\n", "<!-- keys end -->");
        let start = text.find(begin).expect("the keys' begin marker") + begin.len();
        let stop = text.find(end).expect("the keys' end marker");
        let expected = reference_table();
        if std::env::var_os("SIMTALLY_BLESS").is_some() {
            let updated = format!("{}{expected}{}", &text[..start], &text[stop..]);
            std::fs::write(&doc, updated).unwrap();
            return;
        }
        assert_eq!(
            text[start..stop],
            expected,
            "docs/configuration.md is out of date: SIMTALLY_BLESS=1 cargo test --lib config_file"
        );
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
