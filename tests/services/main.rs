//! The services tier: tests against what runs beside simtally in production or on a
//! user's desk, each real: a Kafka-protocol broker, an S3 API, psql, Python's Postgres
//! clients, EN 16931 validators, schemathesis, Chromium, an OpenID Connect provider.
//! `scripts/test.sh` installs and starts them, sets `SIMTALLY_TEST_*`, and runs
//! `cargo test --test services` beside the hermetic tier; plain `cargo test` leaves this
//! binary out (`test = false` in Cargo.toml).

#[path = "../common/mod.rs"]
mod common;

mod api_schema;
mod dashboard;
mod einvoice;
mod kafka_ingest;
mod kafka_produce;
mod oidc;
mod s3;
mod serve_clients;
mod serve_hostile;
mod serve_postgres;
mod serve_transfers_kafka;
