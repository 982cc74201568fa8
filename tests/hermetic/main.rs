//! The hermetic tier: everything that needs no service, only the built binary, files and
//! loopback sockets of its own. Plain `cargo test` runs it (with the unit tests);
//! `scripts/test.sh` runs it with the services tier (tests/services/).
//!
//! One binary for all of them: each test binary links DataFusion, Delta and the Kafka
//! client again.

#[path = "../common/mod.rs"]
mod common;

mod billing;
mod billing_allowance_property;
mod billing_allowances;
mod billing_due;
mod billing_property;
mod centralized_property;
mod cli;
mod corrections;
mod crashes;
mod dedup_window;
mod directory;
mod fixture_sample1;
mod golden;
mod lake_maintenance;
mod replay;
mod schemas;
mod serve_access;
mod serve_invoices;
mod serve_transfers;
mod writers;
