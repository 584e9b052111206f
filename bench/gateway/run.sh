#!/usr/bin/env bash
# The gateway benchmark of `make bench` (issue 3, "Performance").
#
# wrk POSTs JSON to /payments with unique keys and with replayed keys
# against three targets on loopback, all in front of the same
# idem-demo-upstream:
#   direct  the upstream itself
#   nginx   nginx as a plain keep-alive reverse proxy (the cost of one hop)
#   idem    `idem serve --store memory:`, access log off
# and writes a Markdown table (throughput, p50, p99, ratio to nginx, p99
# added over direct) to stdout and to the --out file (scripts/bench merges it
# into docs/benchmarks.md).
#
# Fairness: the upstream, nginx and idem each get the same number of threads
# (--threads, default 1: one upstream io thread, one nginx worker, idem
# threads = 1), wrk runs 1 thread with 32 connections, nothing is pinned.
#
#   bench/gateway/run.sh [--quick] [--idem PATH] [--upstream-bin PATH]
#                        [--duration S] [--rounds N] [--connections N]
#                        [--threads N] [--out FILE]
#
# Default: 3 rounds of 10 s per cell (targets interleaved, the median round
# reported) after a 2 s warm-up; --quick: 1 round of 3 s after 1 s.
#
# Needs wrk, nginx and curl (scripts/bootstrap --bench installs them). Starts
# everything it measures on 127.0.0.1 only and stops it on exit.
set -euo pipefail

original_args="$*"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
idem="$root/build/bin/idem"
upstream_bin="$root/build/bin/idem-demo-upstream"
out="$(mktemp -d)/gateway.md"
duration=10
warmup=2
connections=32
threads=1
replay_keys=16
rounds=3
quick=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; duration=3; warmup=1; rounds=1 ;;
    --rounds) rounds="$2"; shift ;;
    --idem) idem="$2"; shift ;;
    --upstream-bin) upstream_bin="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --connections) connections="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

for tool in wrk nginx curl; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" ]]; then
    echo "run.sh: $tool is missing; install it with scripts/bootstrap --bench" >&2
    exit 1
  fi
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
for bin in "$idem" "$upstream_bin"; do
  [[ -x "$bin" ]] || { echo "run.sh: $bin is not built (cmake --build build)" >&2; exit 1; }
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/idem-bench-gateway.XXXXXX")
pids=()
failed=1

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $failed -eq 1 ]]; then
    echo "run.sh: failed; logs kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

log() { echo "[bench] $*" >&2; }

# wait_port_file FILE NAME PID: prints the port of line "NAME=HOST:PORT".
wait_port_file() {
  local file=$1 name=$2 pid=$3 line
  for _ in $(seq 1 200); do
    line=$(grep -s "^$name=" "$file" || true)
    if [[ -n "$line" ]]; then
      echo "${line##*:}"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "run.sh: no '$name=' line in $file" >&2
  return 1
}

# A loopback port nothing listens on (nginx needs a fixed port).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# wait_http URL: until it answers at all.
wait_http() {
  for _ in $(seq 1 200); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.05
  done
  echo "run.sh: $1 does not answer" >&2
  return 1
}

body='{"amount":1000,"currency":"eur"}'

# ---- the upstream
"$upstream_bin" --listen 127.0.0.1:0 --port-file "$tmp/upstream.port" \
  --threads "$threads" >"$tmp/upstream.log" 2>&1 &
pids+=($!)
upstream_port=$(wait_port_file "$tmp/upstream.port" listen "$!")
upstream_url="http://127.0.0.1:$upstream_port"
log "upstream on $upstream_url"

# ---- nginx
nginx_port=$(free_port)
mkdir -p "$tmp/nginx"
user_line=""
if [[ $(id -u) -eq 0 ]]; then user_line="user root;"; fi
temp_paths=""
for module in client_body proxy fastcgi uwsgi scgi; do
  directive="${module}_temp_path"
  if [[ $module != client_body && $module != proxy ]] &&
     "$nginx_bin" -V 2>&1 | grep -q -- "--without-http_${module}_module"; then
    continue
  fi
  temp_paths+="  $directive $tmp/nginx/$module;"$'\n'
done
cat >"$tmp/nginx/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes $threads;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
$temp_paths
  upstream demo_upstream {
    server 127.0.0.1:$upstream_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://demo_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" \
  >"$tmp/nginx/stdout.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$nginx_port/_count"
log "nginx on 127.0.0.1:$nginx_port"

# ---- idem serve
cat >"$tmp/idem.toml" <<EOF
[server]
threads = $threads
access_log = false
log_level = "warn"
EOF
"$idem" serve --config "$tmp/idem.toml" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --upstream "$upstream_url" --store memory: --port-file "$tmp/idem.port" \
  >"$tmp/idem.log" 2>&1 &
pids+=($!)
idem_port=$(wait_port_file "$tmp/idem.port" listen "$!")
wait_http "http://127.0.0.1:$idem_port/_count"
log "idem on 127.0.0.1:$idem_port"

declare -A url=(
  [direct]="http://127.0.0.1:$upstream_port"
  [nginx]="http://127.0.0.1:$nginx_port"
  [idem]="http://127.0.0.1:$idem_port"
)
targets=(direct nginx idem)
workloads=(unique replay)

upstream_count() { curl -s --max-time 5 "$upstream_url/_count"; }

# to_ms VALUE: wrk's "410.00us" / "1.23ms" / "1.01s" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n = n * 1000
    printf "%.3f", n }'
}

# run_wrk TARGET WORKLOAD SECONDS RUN_ID OUTFILE
run_wrk() {
  local target=$1 workload=$2 seconds=$3 run_id=$4 file=$5
  wrk -t1 -c"$connections" -d"${seconds}s" --latency --timeout 5s \
    -s "$here/$workload.lua" "${url[$target]}" -- "$run_id" "$replay_keys" >"$file" 2>&1
}

# One cell is measured `rounds` times, the targets interleaved, and the
# round with the median throughput is reported: on a shared machine this
# keeps one noisy interval from deciding a ratio.
declare -A rps p50 p99 non2xx executions
nonce="$$-$RANDOM"
for workload in "${workloads[@]}"; do
  for target in "${targets[@]}"; do
    run_id="$workload-$target-$nonce"
    if [[ $workload == replay ]]; then
      for i in $(seq 1 "$replay_keys"); do
        curl -s -o /dev/null --max-time 5 -X POST "${url[$target]}/payments" \
          -H 'Content-Type: application/json' \
          -H "Idempotency-Key: \"bench-replay-$run_id-$i\"" -d "$body"
      done
    fi
    log "$workload -> $target: warm-up ${warmup}s"
    # Replays reuse the pre-executed keys; unique keys never repeat.
    warmup_id="$run_id"
    [[ $workload == unique ]] && warmup_id="$run_id-w"
    run_wrk "$target" "$workload" "$warmup" "$warmup_id" "$tmp/warmup-$workload-$target.txt"
  done
done
for round in $(seq 1 "$rounds"); do
  for workload in "${workloads[@]}"; do
    for target in "${targets[@]}"; do
      run_id="$workload-$target-$nonce"
      measure_id="$run_id"
      [[ $workload == unique ]] && measure_id="$run_id-m$round"
      key="$workload/$target/$round"
      file="$tmp/wrk-$workload-$target-$round.txt"
      # A reset also frees the upstream's per-key counts between runs.
      curl -s -o /dev/null --max-time 5 -X POST "$upstream_url/_reset"
      run_wrk "$target" "$workload" "$duration" "$measure_id" "$file"
      after=$(upstream_count)
      rps[$key]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$file")
      p50[$key]=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$file")")
      p99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$file")")
      non2xx[$key]=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$file")
      non2xx[$key]=${non2xx[$key]:-0}
      executions[$key]=$after
      log "round $round/$rounds $workload -> $target: ${rps[$key]} req/s," \
          "p50 ${p50[$key]} ms, p99 ${p99[$key]} ms"
    done
  done
done
# The median round of each cell becomes the cell.
for workload in "${workloads[@]}"; do
  for target in "${targets[@]}"; do
    median=$(for round in $(seq 1 "$rounds"); do
               echo "${rps[$workload/$target/$round]} $round"
             done | sort -n | awk -v n="$rounds" 'NR == int((n + 1) / 2) { print $2 }')
    from="$workload/$target/$median" key="$workload/$target"
    rps[$key]=${rps[$from]} p50[$key]=${p50[$from]} p99[$key]=${p99[$from]}
    non2xx[$key]=${non2xx[$from]} executions[$key]=${executions[$from]}
  done
done

# ---- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }
verdict() {  # verdict VALUE OP LIMIT
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    ok = (op == ">=") ? (v >= l) : (v <= l)
    print ok ? "met" : "not met" }'
}

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
nginx_version=$("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///')
wrk_version=$( (wrk --version 2>&1 || true) | head -1 | awk '{ print $2 }')
command_line="bench/gateway/run.sh${original_args:+ $original_args}"

report=$(
  echo "## Gateway: idem serve against nginx and the bare upstream"
  echo
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($cpu), $mem, Linux $(uname -r);"
  echo "nginx $nginx_version, wrk $wrk_version. Command: \`$command_line\`."
  echo
  echo "Every target sits in front of the same \`idem-demo-upstream\` (POST /payments,"
  echo "a small JSON body). Upstream $threads io thread(s), nginx $threads worker(s),"
  echo "idem \`threads = $threads\` with \`--store memory:\` and the access log off;"
  echo "wrk 1 thread, $connections connections; each cell is the median of $rounds"
  echo "round(s) of ${duration} s (targets interleaved) after a ${warmup} s warm-up;"
  echo "nothing pinned, so all processes share the cores (load average before the"
  echo "run: $load_before). *unique*: every"
  echo "request has a new Idempotency-Key; *replay*: $replay_keys keys executed once before"
  echo "the run, then repeated (idem answers from its store; direct and nginx execute"
  echo "every request)."
  echo
  echo "| workload | target | req/s | p50 ms | p99 ms | × nginx | p99 added over direct, ms | upstream executions | non-2xx |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for workload in "${workloads[@]}"; do
    for target in "${targets[@]}"; do
      key="$workload/$target"
      echo "| $workload | $target | ${rps[$key]} | ${p50[$key]} | ${p99[$key]}" \
           "| $(ratio "${rps[$key]}" "${rps[$workload/nginx]}")" \
           "| $(minus "${p99[$key]}" "${p99[$workload/direct]}")" \
           "| ${executions[$key]} | ${non2xx[$key]} |"
    done
  done
  echo
  unique_ratio=$(ratio "${rps[unique/idem]}" "${rps[unique/nginx]}")
  replay_ratio=$(ratio "${rps[replay/idem]}" "${rps[replay/nginx]}")
  added=$(awk -v a="${p99[unique/idem]}" -v b="${p99[unique/direct]}" 'BEGIN { printf "%.3f", a - b }')
  nginx_added=$(awk -v a="${p99[unique/nginx]}" -v b="${p99[unique/direct]}" 'BEGIN { printf "%.3f", a - b }')
  echo "Goals (issue 3):"
  echo
  echo "- unique keys ≥ 0.9× nginx's throughput: ${unique_ratio}× — $(verdict "$unique_ratio" ">=" 0.9)"
  echo "- replays ≥ 1.5× nginx's throughput: ${replay_ratio}× — $(verdict "$replay_ratio" ">=" 1.5)"
  echo "- p99 added over the direct upstream ≤ 1 ms at $connections connections (unique keys):" \
       "${added} ms — $(verdict "$added" "<=" 1) (nginx adds ${nginx_added} ms)"
)

echo "$report"
mkdir -p "$(dirname "$out")"
printf '%s\n' "$report" >"$out"
log "written to $out"
failed=0
