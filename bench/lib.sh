# Shared by the benchmark scripts (sourced, not run): starting and stopping
# the servers the benchmark measures, all on 127.0.0.1, ports chosen at run
# time. Every process started through `track` is stopped by `stop_all`,
# which the sourcing script runs from its EXIT trap (so on failure too).
# Needs: $tmp (a scratch directory) set by the sourcing script.

pids=()

log() { echo "[bench] $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

track() { pids+=("$1"); }

stop_all() {
  local pid
  # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients).
  [[ -n "${postgres_pid:-}" ]] && kill -INT "$postgres_pid" 2>/dev/null
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}

# wait_port_file FILE NAME PID: prints the port of the line "NAME=HOST:PORT".
wait_port_file() {
  local file=$1 name=$2 pid=$3 line
  for _ in $(seq 1 400); do
    line=$(grep -s "^$name=" "$file" || true)
    if [[ -n "$line" ]]; then
      echo "${line##*:}"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench: no '$name=' line in $file" >&2
  return 1
}

# A loopback port nothing listens on, for servers that cannot take port 0.
# Taken below the kernel's ephemeral range, which outgoing connections use
# (a port there may be bound without listening). The servers below still
# retry with another port when the bind fails.
free_port() {
  local port low
  low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  (( low > 12000 )) || low=32768
  for _ in $(seq 1 100); do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# wait_http URL: until it answers at all (at most 20 s).
wait_http() {
  for _ in $(seq 1 400); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.05
  done
  echo "bench: $1 does not answer" >&2
  return 1
}

# start_upstream THREADS: sets upstream_port.
start_upstream() {
  local threads=$1 file="$tmp/upstream-$1.port"
  rm -f "$file"
  "$upstream_bin" --listen 127.0.0.1:0 --port-file "$file" --threads "$threads" \
    >"$tmp/upstream-$threads.log" 2>&1 &
  track $!
  upstream_port=$(wait_port_file "$file" listen "$!")
}

# start_nginx NAME WORKERS UPSTREAM_PORT: a plain keep-alive reverse proxy;
# sets nginx_port.
start_nginx() {
  local name=$1 workers=$2 up=$3 dir="$tmp/$1" user_line="" temp_paths="" module
  local nginx_bin
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  nginx_port=$(free_port)
  mkdir -p "$dir"
  [[ $(id -u) -eq 0 ]] && user_line="user root;"
  for module in client_body proxy fastcgi uwsgi scgi; do
    if [[ $module != client_body && $module != proxy ]] &&
       "$nginx_bin" -V 2>&1 | grep -q -- "--without-http_${module}_module"; then
      continue
    fi
    temp_paths+="  ${module}_temp_path $dir/$module;"$'\n'
  done
  cat >"$dir/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_max_body_size 10m;
  client_body_buffer_size 1m;
$temp_paths
  upstream demo_upstream {
    server 127.0.0.1:$up;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://demo_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
  track $!
  wait_http "http://127.0.0.1:$nginx_port/_count"
}

# start_idem NAME THREADS STORE_URI UPSTREAM_PORT: `idem serve`, access log
# off; sets idem_port.
start_idem() {
  local name=$1 threads=$2 store=$3 up=$4
  rm -f "$tmp/$name.port"
  cat >"$tmp/$name.toml" <<EOF
[server]
threads = $threads
access_log = false
log_level = "warn"
drain_timeout = "1s"
max_request_body = "10MiB"
EOF
  "$idem" serve --config "$tmp/$name.toml" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --upstream "http://127.0.0.1:$up" --store "$store" --port-file "$tmp/$name.port" \
    >"$tmp/$name.log" 2>&1 &
  track $!
  idem_port=$(wait_port_file "$tmp/$name.port" listen "$!")
  wait_http "http://127.0.0.1:$idem_port/_count"
}

# start_peer NAME SCRIPT UPSTREAM_PORT REDIS_PORT: one Node.js process;
# sets peer_port.
start_peer() {
  local name=$1 script=$2 up=$3 redis=$4
  rm -f "$tmp/$name.port"
  UPSTREAM_URL="http://127.0.0.1:$up" REDIS_URL="redis://127.0.0.1:$redis" \
    PORT_FILE="$tmp/$name.port" NODE_ENV=production \
    node "$bench_dir/peers/$script" >"$tmp/$name.log" 2>&1 &
  track $!
  peer_port=$(wait_port_file "$tmp/$name.port" listen "$!")
  wait_http "http://127.0.0.1:$peer_port/_count"
}

# start_redis: no persistence (like a cache, which is how the peers use
# it); sets redis_port.
start_redis() {
  local attempt pid
  mkdir -p "$tmp/redis"
  for attempt in 1 2 3 4 5; do
    redis_port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
      --dir "$tmp/redis" --daemonize no --loglevel warning >"$tmp/redis/redis.log" 2>&1 &
    pid=$!
    track $pid
    for _ in $(seq 1 200); do
      redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && return 0
      kill -0 $pid 2>/dev/null || break
      sleep 0.05
    done
  done
  die "redis-server did not start (see $tmp/redis/redis.log)"
}

# start_postgres: a throw-away cluster with the server's default durability
# (fsync and synchronous_commit on). PostgreSQL refuses to run as root, so
# as root it runs as the `postgres` user of Debian's package. Sets
# postgres_port and postgres_uri.
start_postgres() {
  local bin_dir="" version dir as=()
  for version in $(ls /usr/lib/postgresql 2>/dev/null | sort -n); do
    [[ -x "/usr/lib/postgresql/$version/bin/postgres" ]] && bin_dir="/usr/lib/postgresql/$version/bin"
  done
  [[ -n "$bin_dir" ]] || die "no PostgreSQL server binaries (scripts/bootstrap installs postgresql)"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/idem-bench-pg.XXXXXX")
  pg_dir=$dir
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user"
    chown postgres: "$dir"
    as=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
  fi
  "${as[@]}" "$bin_dir/initdb" -D "$dir/data" -U idem --auth=trust --no-locale -E UTF8 \
    --no-sync >"$tmp/initdb.log" 2>&1 || die "initdb failed (see $tmp/initdb.log)"
  local attempt pid
  for attempt in 1 2 3 4 5; do
    postgres_port=$(free_port)
    "${as[@]}" "$bin_dir/postgres" -D "$dir/data" -p "$postgres_port" -k "$dir" \
      -c listen_addresses=127.0.0.1 -c max_connections=300 \
      >"$tmp/postgres.log" 2>&1 &
    pid=$!
    track $pid
    postgres_pid=$pid
    for _ in $(seq 1 400); do
      "$bin_dir/pg_isready" -q -h 127.0.0.1 -p "$postgres_port" && break 2
      kill -0 $pid 2>/dev/null || break
      sleep 0.05
    done
  done
  "$bin_dir/pg_isready" -q -h 127.0.0.1 -p "$postgres_port" ||
    die "postgres did not start (see $tmp/postgres.log)"
  postgres_uri="postgresql://idem@127.0.0.1:$postgres_port/postgres"
}

# remove_postgres_dir: after stop_all.
remove_postgres_dir() { [[ -n "${pg_dir:-}" ]] && rm -rf "$pg_dir"; pg_dir=""; }

machine_line() {
  local cpu mem
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  echo "$(nproc) cores ($cpu), $mem memory, Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
}
