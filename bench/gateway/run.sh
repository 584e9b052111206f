#!/usr/bin/env bash
# The HTTP part of `make bench`: every system on loopback in front of the
# same idem-demo-upstream, loaded by wrk (bench/gateway/load.lua), for a
# bounded time per cell. Writes one line per measured round to
# OUT_DIR/http-rounds.tsv and the run's settings to OUT_DIR/http-meta.sh;
# bench/report.sh turns them into docs/benchmarks.md.
#
#   bench/gateway/run.sh --build BUILD_DIR --out-dir DIR [--quick]
#                        [--only "SYSTEM..."] [--workloads "WORKLOAD..."]
#
# --only: start and measure just these systems (names as below), in the
# systems group only; --workloads: just these workloads there. Both are for
# working on one system; `make bench` runs everything.
#
# Systems: direct (the upstream alone), nginx (plain keep-alive reverse
# proxy), idem serve with the memory, RocksDB, Redis and PostgreSQL stores,
# and three Node.js peers (bench/peers/) that forward to the same upstream:
# the seeds' Express + ioredis middleware, @node-idempotency/core (Redis) on
# Node's http server, express-idempotency (Redis data adapter).
#
# Groups (every cell: rounds × duration, systems interleaved per round):
#   systems      every system × {unique, replay, mix, nokey}, 32 connections, 100 B
#   connections  nginx, idem-memory, best peer × {unique, replay} × {1, 256} connections
#   body         nginx, idem-memory, best peer × {unique, replay} × {10 KiB, 512 KiB}
#   threads      idem-memory with 1, 2, 4 io threads × {unique, replay}, nginx
#                with 1, 2, 4 workers × unique, against an upstream with one
#                thread per core
# --quick: one round per cell (2 s in the systems group, 1 s in the sweeps)
# and only unique keys in the sweeps.
#
# Fairness: one io thread for the upstream, one nginx worker, idem
# `threads = 1`, one Node.js process per peer, one Redis; wrk 1 thread.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_dir=$(cd "$here/.." && pwd)
build=""
out_dir=""
quick=0
only=""
workloads="unique replay mix nokey"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$(cd "$2" && pwd); shift ;;
    --out-dir) out_dir="$2"; shift ;;
    --quick) quick=1 ;;
    --only) only="$2"; shift ;;
    --workloads) workloads="$2"; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -n "$build" && -n "$out_dir" ]] || { echo "usage: run.sh --build DIR --out-dir DIR [--quick]" >&2; exit 2; }
idem="$build/bin/idem"
upstream_bin="$build/bin/idem-demo-upstream"
for bin in "$idem" "$upstream_bin"; do [[ -x "$bin" ]] || { echo "run.sh: $bin is not built" >&2; exit 1; }; done
for tool in wrk curl node redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (scripts/bootstrap --bench)" >&2; exit 1; }
done
[[ -d "$bench_dir/peers/node_modules" ]] || { echo "run.sh: run npm ci in bench/peers first" >&2; exit 1; }

if [[ $quick -eq 1 ]]; then
  rounds=1 duration=2 sweep_duration=1 warmup=0 sweep_workloads="unique" threads_list="1 2"
else
  rounds=3 duration=3 sweep_duration=3 warmup=1 sweep_workloads="unique replay" threads_list="1 2 4"
fi
replay_keys=16
connections=32

tmp=$(mktemp -d "${TMPDIR:-/tmp}/idem-bench-http.XXXXXX")
# shellcheck source=../lib.sh
source "$bench_dir/lib.sh"
failed=1
cleanup() {
  stop_all
  remove_postgres_dir
  if [[ $failed -eq 1 ]]; then echo "run.sh: failed; logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

mkdir -p "$out_dir"
rounds_file="$out_dir/http-rounds.tsv"
echo -e "group\tsystem\tworkload\tconnections\tbody\tthreads\tround\trps\tp50_us\tp99_us\tp999_us\tstatus_errors\tsocket_errors\texecutions\trequests" >"$rounds_file"

# Request bodies: a JSON payment padded by a "note" field to the exact size.
for size in 100 10240 524288; do
  prefix='{"amount":1000,"currency":"eur","note":"'
  pad=$((size - ${#prefix} - 2))
  { printf '%s' "$prefix"; head -c "$pad" /dev/zero | tr '\0' 'x'; printf '"}'; } >"$tmp/body-$size.json"
done

declare -A url up_of threads_of
all_systems=(direct nginx idem-memory idem-rocksdb idem-redis idem-postgres
             seeds-express node-idempotency express-idempotency)
systems=()
for s in "${all_systems[@]}"; do
  if [[ -z "$only" || " $only " == *" $s "* ]]; then systems+=("$s"); fi
done
[[ ${#systems[@]} -gt 0 ]] || die "--only names no known system (known: ${all_systems[*]})"
wanted() { [[ " ${systems[*]} " == *" $1 "* ]]; }
peers=()
for peer in seeds-express node-idempotency express-idempotency; do
  if wanted "$peer"; then peers+=("$peer"); fi
done
declare -A peer_script=([seeds-express]=seeds_express.js [node-idempotency]=node_idempotency.js
                        [express-idempotency]=express_idempotency.js)

start_upstream 1
main_upstream=$upstream_port
url[direct]="http://127.0.0.1:$main_upstream"
if wanted nginx; then
  start_nginx nginx 1 "$main_upstream"
  url[nginx]="http://127.0.0.1:$nginx_port"
fi
# Redis backs idem-redis and every peer, and is flushed before each workload.
start_redis
if wanted idem-postgres; then start_postgres; fi
declare -A store_of=([idem-memory]=memory: [idem-rocksdb]="rocksdb:$tmp/rocksdb"
                     [idem-redis]="redis://127.0.0.1:$redis_port")
for s in idem-memory idem-rocksdb idem-redis idem-postgres; do
  wanted "$s" || continue
  store=${store_of[$s]:-$postgres_uri}
  start_idem "$s" 1 "$store" "$main_upstream"
  url[$s]="http://127.0.0.1:$idem_port"
done
for peer in "${peers[@]}"; do
  start_peer "$peer" "${peer_script[$peer]}" "$main_upstream" "$redis_port"
  url[$peer]="http://127.0.0.1:$peer_port"
done
for s in "${systems[@]}"; do up_of[$s]=$main_upstream; threads_of[$s]=1; done
log "all systems up: ${systems[*]}"

preload() {  # preload SYSTEM RUN_ID BODY_FILE: executes the replay keys once
  local i
  for i in $(seq 1 "$replay_keys"); do
    curl -s -o /dev/null --max-time 10 -X POST "${url[$1]}/payments" \
      -H 'Content-Type: application/json' -H "Idempotency-Key: \"bench-replay-$2-$i\"" \
      --data-binary "@$3"
  done
}

# wrk_once SYSTEM WORKLOAD CONNS BODY_FILE SECONDS RUN_ID: prints the RESULT line.
wrk_once() {
  wrk -t1 -c"$3" -d"${5}s" --timeout 5s -s "$here/load.lua" "${url[$1]}" -- \
    "$2" "$6" "$4" "$replay_keys" 2>&1 | awk '/^RESULT / { $1 = ""; print substr($0, 2) }'
}

nonce="$$-$RANDOM"
# run_group GROUP CONNS BODY SECONDS "WORKLOADS" SYSTEM...
run_group() {
  local group=$1 conns=$2 body=$3 seconds=$4 workloads=$5
  shift 5
  local systems_here=("$@") workload system round run_id result
  local body_file="$tmp/body-$body.json"
  for workload in $workloads; do
    # Every workload starts from an empty Redis (the peers' and idem's keys).
    redis-cli -h 127.0.0.1 -p "$redis_port" flushall >/dev/null
    for system in "${systems_here[@]}"; do
      run_id="$group-$workload-$conns-$body-$system-$nonce"
      if [[ $workload == replay ]]; then preload "$system" "$run_id" "$body_file"; fi
      if [[ $warmup -gt 0 ]]; then
        wrk_once "$system" "$workload" "$conns" "$body_file" "$warmup" "$run_id-w" >/dev/null
      fi
    done
    for round in $(seq 1 "$rounds"); do
      for system in "${systems_here[@]}"; do
        run_id="$group-$workload-$conns-$body-$system-$nonce"
        # Unique keys never repeat across rounds; replays reuse the preloaded keys.
        if [[ $workload != replay ]]; then run_id="$run_id-r$round"; fi
        curl -s -o /dev/null --max-time 5 -X POST "http://127.0.0.1:${up_of[$system]}/_reset"
        result=$(wrk_once "$system" "$workload" "$conns" "$body_file" "$seconds" "$run_id")
        [[ -n "$result" ]] || die "wrk gave no result for $system $workload"
        local executions
        executions=$(curl -s --max-time 5 "http://127.0.0.1:${up_of[$system]}/_count")
        read -r requests micros p50 p99 p999 status_errors socket_errors <<<"$result"
        local rps
        rps=$(awk -v r="$requests" -v d="$micros" 'BEGIN { printf "%.0f", r * 1e6 / d }')
        echo -e "$group\t$system\t$workload\t$conns\t$body\t${threads_of[$system]}\t$round\t$rps\t$p50\t$p99\t$p999\t$status_errors\t$socket_errors\t$executions\t$requests" >>"$rounds_file"
        log "$group r$round $workload c$conns b$body $system: $rps req/s p50 ${p50}us p99 ${p99}us p99.9 ${p999}us non-2xx $status_errors"
      done
    done
  done
}

run_group systems "$connections" 100 "$duration" "$workloads" "${systems[@]}"

if [[ -n "$only" ]]; then
  log "--only: the sweeps are skipped"
  best_peer=""
else
  # The best Node peer on unique keys (median of its rounds) joins the sweeps.
  best_peer="" best_rps=0
  for peer in "${peers[@]}"; do
    rps=$(awk -F'\t' -v p="$peer" '$1 == "systems" && $3 == "unique" && $2 == p { print $8 }' "$rounds_file" |
          sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] + 0 }')
    if [[ $rps -gt $best_rps ]]; then best_peer=$peer best_rps=$rps; fi
  done
  [[ -n "$best_peer" ]] || best_peer=node-idempotency
  log "best peer on unique keys: $best_peer"
  for conns in 1 256; do
    run_group connections "$conns" 100 "$sweep_duration" "$sweep_workloads" nginx idem-memory "$best_peer"
  done
  for body in 10240 524288; do
    run_group body "$connections" "$body" "$sweep_duration" "$sweep_workloads" nginx idem-memory "$best_peer"
  done

  # io threads: a separate upstream with one thread per core, so that it is
  # not the first thing to saturate.
  start_upstream "$(nproc)"
  wide_upstream=$upstream_port
  thread_systems=()
  for n in $threads_list; do
    start_idem "idem-memory-t$n" "$n" memory: "$wide_upstream"
    url[idem-memory-t$n]="http://127.0.0.1:$idem_port"
    start_nginx "nginx-w$n" "$n" "$wide_upstream"
    url[nginx-w$n]="http://127.0.0.1:$nginx_port"
    up_of[idem-memory-t$n]=$wide_upstream up_of[nginx-w$n]=$wide_upstream
    threads_of[idem-memory-t$n]=$n threads_of[nginx-w$n]=$n
    thread_systems+=("idem-memory-t$n" "nginx-w$n")
  done
  run_group threads "$connections" 100 "$sweep_duration" "$sweep_workloads" "${thread_systems[@]}"
fi

{
  echo "http_rounds=$rounds"
  echo "http_duration=$duration"
  echo "http_sweep_duration=$sweep_duration"
  echo "http_warmup=$warmup"
  echo "http_connections=$connections"
  echo "http_replay_keys=$replay_keys"
  echo "http_best_peer=$best_peer"
  echo "http_threads_list=\"$threads_list\""
  echo "nginx_version=\"$( (nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1) | sed 's/.*nginx\///')\""
  echo "wrk_version=\"$( (wrk --version 2>&1 || true) | head -1 | awk '{ print $2 }')\""
  echo "node_version=\"$(node --version)\""
  echo "redis_version=\"$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')\""
  echo "postgres_version=\"$(ls /usr/lib/postgresql | sort -n | tail -1)\""
} >"$out_dir/http-meta.sh"
failed=0
log "wrote $rounds_file"
