#!/usr/bin/env bash
# Fuzzes the decoders (usage records, events, directory events) and the line reader with
# libFuzzer through cargo-fuzz, each for SECONDS (default 60). Not part of CI: run it after
# changing a decoder, and record what it finds in docs/writers.md (Fuzzing).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Works on the stable toolchain (RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags); the
# first build compiles every dependency with coverage instrumentation and takes a while.
# Corpora start from the reference fixture's lines and the schemas' examples and grow in
# ~/.cache/simtally/fuzz/corpus; crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(usage event directory lines)

cache="$HOME/.cache/simtally"
tools="$cache/tools"
export PATH="$tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null; then
  echo "installing cargo-fuzz (once)..." >&2
  cargo install cargo-fuzz --version 0.13.2 --locked --root "$tools" --quiet
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$cache/fuzz-target"
# The same dependency versions as the project (cargo adds libFuzzer to the copy).
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

seed() {
  local target=$1 dir=$2
  mkdir -p "$dir"
  [ -n "$(ls -A "$dir")" ] && return
  local n=0
  case "$target" in
    usage) source_file=../shared/fixtures/sample-1/usage.ndjson ;;
    event | directory | lines) source_file=../shared/fixtures/sample-1/events.ndjson ;;
  esac
  if [ -f "$source_file" ]; then
    head -n 200 "$source_file" | while IFS= read -r line; do
      n=$((n + 1))
      printf '%s' "$line" >"$dir/fixture-$n"
    done
  fi
  python3 - "$dir" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for schema in pathlib.Path("schemas").glob("*.schema.json"):
    for i, example in enumerate(json.loads(schema.read_text()).get("examples", [])):
        (out / f"{schema.stem}-{i}").write_text(json.dumps(example))
PY
}

for target in "${targets[@]}"; do
  corpus="$cache/fuzz/corpus/$target"
  seed "$target" "$corpus"
  echo "== $target for ${seconds}s" >&2
  cargo fuzz run --fuzz-dir fuzz --sanitizer none "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 2>&1 |
    grep -E '^(Done [0-9]+ runs|#[0-9]+ +DONE|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written|thread .* panicked)' || true
  if ls fuzz/artifacts/"$target"/crash-* >/dev/null 2>&1; then
    echo "crashes in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
