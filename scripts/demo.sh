#!/usr/bin/env bash
# The README's first command: build simtally and run its demo, which generates a
# small data set, ingests it into ./simtally-demo/lake, prints the reports and writes draft
# invoices into ./simtally-demo/invoices.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/simtally/target}"
# The dev profile, whose dependencies are optimized (Cargo.toml): the same build the tests
# use, so the README's second command compiles only the tests on top of it. Benchmarks use
# --release.
cargo run --locked --quiet -- demo "$@"
