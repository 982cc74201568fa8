# Sourced by the benchmark scripts: builds the release binary ($bin), makes sure the Python
# venv has DuckDB, and generates the data set of $records records into $data (cached under
# ~/.cache/simtally). Expects $records; sets cache, data, bin.
cache="$HOME/.cache/simtally"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
data="$cache/bench-data/$records"

cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/simtally"

if [ ! -x "$cache/venv/bin/python" ]; then
  python3 -m venv "$cache/venv"
fi
"$cache/venv/bin/python" -c 'import duckdb' 2>/dev/null || "$cache/venv/bin/pip" install --quiet duckdb

if [ ! -f "$data/expected.json" ]; then
  "$bin" generate --seed 1 --sims 20000 --records "$records" --days 30 --out "$data"
fi

measure() { "$cache/venv/bin/python" scripts/measure.py "$@"; }
