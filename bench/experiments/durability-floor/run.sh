#!/usr/bin/env bash
# The durability floor: how fast can *any* store be that answers a new key
# only once its result is fsynced, on this machine? Not part of `make
# bench`; docs/stores.md ("RocksDB performance") explains why it exists.
#
#   bench/experiments/durability-floor/run.sh [ROUNDS] [SECONDS]
#
# Builds `idem` from a scratch copy of HEAD with sync-floor.patch applied
# (a `sync-floor:FILE` store: the memory store, plus one thread that
# appends every result's bytes to FILE and fdatasyncs it, grouping whatever
# queued meanwhile, before Complete answers; leases are not written at all),
# then loads `memory:`, `sync-floor:` and `rocksdb:` in turn, ROUNDS times
# (default 5) for SECONDS each (default 4), with the systems group's unique
# workload of `make bench` (wrk, 32 connections, 100-byte bodies, idem
# `threads = 1`, one upstream thread), all on 127.0.0.1. Prints each
# round's requests/s and the CPU time of the whole machine per request,
# then the medians and the ratios to `memory:`. Takes about 5 minutes,
# most of it the build (make -j2).
set -euo pipefail
rounds=${1:-5}
seconds=${2:-4}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
bench_dir="$root/bench"
for tool in wrk curl git cmake; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (scripts/bootstrap --bench)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/idem-floor.XXXXXX")
src="$tmp/src"
# shellcheck source=../../lib.sh
source "$bench_dir/lib.sh"
cleanup() {
  stop_all
  git -C "$root" worktree remove --force "$src" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

log "building a patched copy of HEAD in $src (make -j2)"
git -C "$root" worktree add --detach "$src" HEAD >/dev/null
git -C "$src" apply "$here/sync-floor.patch"
cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$tmp/build" -j2 --target idem idem-demo-upstream >/dev/null
idem="$tmp/build/bin/idem"
upstream_bin="$tmp/build/bin/idem-demo-upstream"

start_upstream 1
upstream=$upstream_port
head -c 100 /dev/zero | tr '\0' 'a' | sed 's/^/{"note":"/; s/$/"}/' >"$tmp/body.json"

# busy_ticks: CPU time of the whole machine so far, in clock ticks.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

declare -A rps_of cpu_of
stores=("memory:" "sync-floor:$tmp/floor.log" "rocksdb:$tmp/rocksdb")
names=(memory sync-floor rocksdb)
hz=$(getconf CLK_TCK)
for round in $(seq 1 "$rounds"); do
  for i in "${!stores[@]}"; do
    name=${names[$i]}
    start_idem "$name-$round" 1 "${stores[$i]}" "$upstream"
    idem_pid=${pids[-1]}
    before=$(busy_ticks)
    result=$(wrk -t1 -c32 -d"${seconds}s" --timeout 5s -s "$bench_dir/gateway/load.lua" \
      "http://127.0.0.1:$idem_port" -- unique "floor-$round-$name-$$" "$tmp/body.json" 16 |
      awk '/^RESULT / { print $2, $3 }')
    after=$(busy_ticks)
    kill -TERM "$idem_pid"
    wait "$idem_pid" 2>/dev/null || true
    unset 'pids[-1]'
    read -r requests micros <<<"$result"
    [[ -n "${requests:-}" && $requests -gt 0 ]] || die "wrk gave no result for $name"
    rps=$((requests * 1000000 / micros))
    cpu=$(( (after - before) * 1000000 / hz / requests ))
    log "round $round $name: $rps req/s, $cpu us of CPU per request"
    rps_of[$name]+="$rps "
    cpu_of[$name]+="$cpu "
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
base=$(echo "${rps_of[memory]}" | median)
printf '%-12s %12s %10s %14s\n' store "req/s" "x memory" "CPU us/req"
for name in "${names[@]}"; do
  rps=$(echo "${rps_of[$name]}" | median)
  cpu=$(echo "${cpu_of[$name]}" | median)
  printf '%-12s %12s %10s %14s\n' "$name" "$rps" "$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.2f", a / b }')" "$cpu"
done
