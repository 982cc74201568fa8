# Sourced by every benchmark script: builds the release binary ($bin), makes sure the
# Python venv has the pinned peers (DuckDB, the deltalake reader, confluent-kafka), and
# generates the data set of $records records into $data, cached under ~/.cache/simtally
# and keyed by the generator's source and every argument, when $records is set. A script may
# set gen_sims (default 20000), gen_workspaces (default: the five of the samples), gen_days
# (default 30), gen_by_day=1 (usage as a file per day in $data/usage/) and gen_zstd=1 (usage
# files zstd-compressed, .ndjson.zst). Sets cache, data, bin, python, measure.
cache="$HOME/.cache/simtally"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
gen_sims="${gen_sims:-20000}"
gen_days="${gen_days:-30}"
gen_by_day="${gen_by_day:-}"
gen_zstd="${gen_zstd:-}"
# The generator's version: a change to its source makes new data sets.
generator="g$(cat src/generate/*.rs | sha1sum | cut -c1-10)"
data="$cache/bench-data/$generator-${records:-}-${gen_days}d-${gen_sims}s${gen_workspaces:+-${gen_workspaces}w}${gen_by_day:+-by-day}${gen_zstd:+-zst}"

cargo build --release --locked --quiet --bin simtally
bin="$CARGO_TARGET_DIR/release/simtally"
python="$cache/venv/bin/python"

if [ ! -x "$cache/venv/bin/python" ]; then
  python3 -m venv "$cache/venv"
fi
# The peers, pinned: a new DuckDB is a new reference, to be measured on purpose.
"$python" -c 'import duckdb, deltalake, confluent_kafka' 2>/dev/null ||
  "$cache/venv/bin/pip" install --quiet "duckdb==2.0.1" "deltalake==1.2.*" "confluent-kafka==2.*"

# A script that measures an existing lake sets no $records and gets no data set.
if [ -n "${records:-}" ] && [ ! -f "$data/expected.json" ]; then
  "$bin" generate --seed 1 --sims "$gen_sims" ${gen_workspaces:+--workspaces "$gen_workspaces"} \
    --records "$records" --days "$gen_days" ${gen_by_day:+--usage-by-day} \
    ${gen_zstd:+--zstd} --out "$data.partial"
  mv "$data.partial" "$data"
fi

measure() { "$cache/venv/bin/python" scripts/measure.py "$@"; }
