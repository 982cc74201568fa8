#!/usr/bin/env bash
# A Kafka-protocol broker for development and tests: tansu (Apache Kafka compatible, from
# crates.io) on loopback. Installed once under ~/.cache/simtally/tools.
#
#   scripts/broker.sh start [PORT]   start it (default: a free port), print HOST:PORT
#   scripts/broker.sh stop           stop the one this script started
#   scripts/broker.sh address        print HOST:PORT of the running one
#
# Storage: in memory (the default; what the tests use), or with SIMTALLY_BROKER_STORAGE=sqlite
# in a SQLite file under ~/.cache/simtally/broker (tansu built with its libsql engine), whose
# fetches stay fast as a topic grows: the long benchmarks (scripts/bench-live.sh) use it.
#
# The tests read the address from SIMTALLY_TEST_BROKERS, so they run against Apache Kafka
# or Redpanda just as well: set that variable and skip this script.
set -euo pipefail

cache="$HOME/.cache/simtally"
tools="$cache/tools"
state="$cache/broker"
storage="${SIMTALLY_BROKER_STORAGE:-memory}"
TANSU_VERSION=0.6.0
case "$storage" in
  memory) features=dynostore engine="memory://tansu/" ;;
  # tansu opens a sqlite:// path relative to its working directory, $state.
  sqlite) features=dynostore,libsql tools="$cache/tools-sqlite" engine="sqlite://tansu.db" ;;
  *) echo "SIMTALLY_BROKER_STORAGE is memory or sqlite, not '$storage'" >&2; exit 2 ;;
esac
tansu="$tools/bin/tansu"

install_tansu() {
  if [ -x "$tansu" ] && "$tansu" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return
  fi
  echo "installing tansu $TANSU_VERSION with $features (once; a few minutes)..." >&2
  cargo install tansu --version "$TANSU_VERSION" --features "$features" --locked \
    --root "$tools" --quiet
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
  local port=$1
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

start() {
  install_tansu
  mkdir -p "$state"
  if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
    if [ "$(cat "$state/storage" 2>/dev/null || echo memory)" != "$storage" ]; then
      echo "error: a broker with $(cat "$state/storage" 2>/dev/null || echo memory) storage is running; scripts/broker.sh stop first" >&2
      exit 1
    fi
    cat "$state/address"
    return
  fi
  local port="${1:-$(free_port)}"
  # A new broker starts empty, like the in-memory one.
  rm -f "$state"/tansu.db*
  (cd "$state" && exec "$tansu" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "$engine") >"$state/broker.log" 2>&1 &
  echo $! >"$state/pid"
  echo "127.0.0.1:$port" >"$state/address"
  echo "$storage" >"$state/storage"
  if ! wait_for_port "$port"; then
    echo "error: tansu did not start listening on $port; see $state/broker.log" >&2
    exit 1
  fi
  cat "$state/address"
}

stop() {
  if [ -f "$state/pid" ]; then
    kill "$(cat "$state/pid")" 2>/dev/null || true
    rm -f "$state/pid" "$state/address"
  fi
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop ;;
  address) cat "$state/address" ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
