# Sourced by scripts/demo.sh, scripts/test.sh and .ci/run: every target the tests build, named
# (`--all-targets` leaves out tests/services, which has `test = false` so that plain
# `cargo test` needs no service). One list, so the demo builds exactly what the tests run.
targets=(--lib --bins --test hermetic --test services --benches --examples)
