#!/usr/bin/env bash
# The Google Benchmark part of `make bench`: every idem_*_bench program
# (engine, fingerprint and codec, each store; the Redis and PostgreSQL ones
# start their own throw-away servers on 127.0.0.1), one JSON file per program
# in OUT_DIR.
#
#   bench/micro.sh --build BUILD_DIR --out-dir DIR [--quick]
#
# --quick: --benchmark_min_time=0.05 and no runs with 16 or 32 threads.
set -euo pipefail
build="" out_dir="" quick=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$(cd "$2" && pwd); shift ;;
    --out-dir) out_dir="$2"; shift ;;
    --quick) quick=1 ;;
    *) echo "micro.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -n "$build" && -n "$out_dir" ]] || { echo "usage: micro.sh --build DIR --out-dir DIR [--quick]" >&2; exit 2; }
mkdir -p "$out_dir"
min_time=0.5 filter='.'
if [[ $quick -eq 1 ]]; then
  min_time=0.05 filter='-threads:(16|32)$'
fi
for program in engine codec rocksdb redis postgres; do
  bin="$build/bin/idem_${program}_bench"
  [[ -x "$bin" ]] || { echo "micro.sh: $bin is not built" >&2; exit 1; }
  echo "[bench] $(basename "$bin")" >&2
  # A failing program is reported as such in the report, not hidden.
  if ! (cd "$out_dir" && timeout 600 "$bin" --benchmark_min_time="$min_time" \
          --benchmark_filter="$filter" --benchmark_out="$out_dir/micro-$program.json" \
          --benchmark_out_format=json >"$out_dir/micro-$program.log" 2>&1); then
    echo "failed: see the log of $(basename "$bin")" >"$out_dir/micro-$program.failed"
    tail -5 "$out_dir/micro-$program.log" >&2
  fi
done
