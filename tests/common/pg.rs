//! psql, the real Postgres client, against a simtally Postgres endpoint.

use std::io::Write;
use std::process::{Command, Stdio};

/// psql at `address` (HOST:PORT) with the SQL on its standard input (so it may be longer
/// than one argument can be): `Ok(rows)`, unaligned and `|`-separated, or `Err(what it
/// printed)`, with the SQLSTATE.
pub fn psql_at(
    address: &str,
    user: &str,
    password: &str,
    sql: &str,
) -> Result<Vec<String>, String> {
    let (host, port) = address.rsplit_once(':').unwrap();
    let target = format!(
        "host={host} port={port} user={user} dbname=simtally sslmode=disable connect_timeout=10"
    );
    let mut child = Command::new("psql")
        .args([&target, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-v", "VERBOSITY=verbose", "-f", "-"])
        .env("PGPASSWORD", password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql runs (scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}
