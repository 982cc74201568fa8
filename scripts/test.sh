#!/usr/bin/env bash
# The README's test command: everything the tests need, then the tests.
# Works on a fresh machine with only the Rust toolchain; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Builds are big (DataFusion, Delta): keep them out of the clone so a fresh checkout
# reuses the last build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/simtally/target}"

if [ ! -d ../shared/fixtures/sample-1 ]; then
  echo "note: ../shared/fixtures/sample-1 is missing; the reference-fixture test will fail." >&2
  echo "      Check out simtally beside the shared/ folder (as CI does)." >&2
fi

cargo test --locked --all-targets
