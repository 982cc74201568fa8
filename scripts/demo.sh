#!/usr/bin/env bash
# The README's first command: build simtally (release) and run its demo, which generates a
# small data set, ingests it into ./simtally-demo/lake, prints the reports and writes draft
# invoices into ./simtally-demo/invoices.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/simtally/target}"
cargo run --release --locked --quiet -- demo "$@"
