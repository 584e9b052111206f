#!/usr/bin/env bash
# The store-size part of `make bench`: bench/store_fill.cc fills the
# memory, RocksDB and Redis stores to growing numbers of completed keys and
# reports, at each checkpoint, the memory or disk they take and the replay
# and new-key throughput at that size. One TSV per store in OUT_DIR.
#
#   bench/scaling.sh --build BUILD_DIR --out-dir DIR [--quick]
#
# Full: every store to 10M keys (about 9 GiB for the memory store and 11
# GiB for Redis: each stops at 3M when less than 14 GiB of memory is
# available); at a 2-core machine's fill rates (40-50k keys/s) RocksDB and
# Redis take about four minutes each. --quick: 100k keys each.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_dir=$here
build="" out_dir="" quick=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$(cd "$2" && pwd); shift ;;
    --out-dir) out_dir="$2"; shift ;;
    --quick) quick=1 ;;
    *) echo "scaling.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -n "$build" && -n "$out_dir" ]] || { echo "usage: scaling.sh --build DIR --out-dir DIR [--quick]" >&2; exit 2; }
fill="$build/bin/idem_store_fill"
[[ -x "$fill" ]] || { echo "scaling.sh: $fill is not built" >&2; exit 1; }
mkdir -p "$out_dir"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/idem-bench-scaling.XXXXXX")
# shellcheck source=lib.sh
source "$bench_dir/lib.sh"
failed=1
cleanup() {
  stop_all
  if [[ $failed -eq 1 ]]; then echo "scaling.sh: failed; logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

available_gib=$(awk '/^MemAvailable/ { printf "%d", $2 / 1048576 }' /proc/meminfo)
if [[ $quick -eq 1 ]]; then
  memory_points=10000,100000 rocksdb_points=10000,100000 redis_points=10000,100000 measure_ms=200
else
  memory_points=100000,1000000,3000000,10000000
  rocksdb_points=$memory_points redis_points=$memory_points measure_ms=1000
  if [[ $available_gib -lt 14 ]]; then
    memory_points=100000,1000000,3000000 redis_points=100000,1000000,3000000
  fi
fi

log "memory store to ${memory_points##*,} keys"
"$fill" --store memory: --checkpoints "$memory_points" --measure-ms "$measure_ms" >"$out_dir/fill-memory.tsv"
log "rocksdb store to ${rocksdb_points##*,} keys"
"$fill" --store "rocksdb:$tmp/rocksdb" --checkpoints "$rocksdb_points" --measure-ms "$measure_ms" \
  >"$out_dir/fill-rocksdb.tsv"
rm -rf "$tmp/rocksdb"
start_redis
log "redis store to ${redis_points##*,} keys"
"$fill" --store "redis://127.0.0.1:$redis_port" --checkpoints "$redis_points" \
  --measure-ms "$measure_ms" --redis-info "127.0.0.1:$redis_port" >"$out_dir/fill-redis.tsv"
echo "scaling_memory_points=$memory_points scaling_rocksdb_points=$rocksdb_points scaling_redis_points=$redis_points scaling_measure_ms=$measure_ms scaling_available_gib=$available_gib" \
  >"$out_dir/scaling-meta.sh"
failed=0
