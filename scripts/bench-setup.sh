# Sourced by the benchmark scripts: builds the release binary ($bin), makes sure the Python
# venv has DuckDB, and generates the data set of $records records into $data (cached under
# ~/.cache/simtally). Expects $records (and optionally gen_sims, gen_workspaces); sets cache,
# data, bin.
cache="$HOME/.cache/simtally"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
# A script may ask for more SIMs or for generated Workspaces: gen_sims, gen_workspaces.
gen_sims="${gen_sims:-20000}"
data="$cache/bench-data/$records${gen_workspaces:+-${gen_workspaces}w-${gen_sims}s}"

cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/simtally"

if [ ! -x "$cache/venv/bin/python" ]; then
  python3 -m venv "$cache/venv"
fi
"$cache/venv/bin/python" -c 'import duckdb' 2>/dev/null || "$cache/venv/bin/pip" install --quiet duckdb

if [ ! -f "$data/expected.json" ]; then
  "$bin" generate --seed 1 --sims "$gen_sims" ${gen_workspaces:+--workspaces "$gen_workspaces"} \
    --records "$records" --days 30 --out "$data"
fi

measure() { "$cache/venv/bin/python" scripts/measure.py "$@"; }
