//! simtally: SIM usage -> the Workspace that owned the SIM at that instant -> a Delta Lake
//! that DataFusion reports on.
//!
//! The modules follow the data: [`source`] -> [`decode`] -> [`attribute`] -> [`tables`]
//! (rows of each lake table) -> [`lake`] -> [`query`], driven by [`pipeline`]; [`config`]
//! and [`cli`] say what to run, [`domain`] holds the parsed values every layer shares.
//! docs/architecture.md draws the picture.

// No function over 80 lines (clippy.toml) outside tests; `.ci/run` denies warnings.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]
// `ok_or(format!(..))` formats its message on every call, error or not.
#![warn(clippy::or_fun_call)]

pub mod domain;

pub mod attribute;
pub mod decode;
pub mod directory;
pub mod kafka;
pub mod lake;
pub mod openmetrics;
pub mod query;
pub mod serve;
pub mod source;
pub mod tables;
pub mod transfer;

pub mod billing;
pub mod generate;
pub mod pipeline;

pub mod allocator;
mod app;
pub mod cli;
pub mod config;
pub mod config_file;

#[cfg(test)]
mod layering;

pub use app::{run, RunError};
/// The lake's commit points and the crash switch (`lake::crash`), where the tests look.
pub use lake::crash;
