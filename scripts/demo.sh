#!/usr/bin/env bash
# The README's first command: build simtally and run its demo, which generates a small data
# set, ingests it into ./simtally-demo/lake, prints the reports and writes draft invoices
# into ./simtally-demo/invoices.
#
# It builds what scripts/test.sh runs, in the same profile and with the same features (the
# tests' dev-dependencies change features of shared crates, so a plain `cargo build` would
# compile DataFusion and delta-rs a second time for the tests): the README's second command
# then compiles nothing. The demo's data set is small; benchmarks use --release.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/simtally/target}"
echo "building simtally and its tests (the first build compiles DataFusion and delta-rs)" >&2
source scripts/targets.sh
cargo test --locked --quiet --no-run "${targets[@]}"
"$CARGO_TARGET_DIR/debug/simtally" demo "$@"
