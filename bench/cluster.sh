#!/usr/bin/env bash
# One node vs several: starts a throwaway cluster on this machine (a redis-server, NODES
# `spacebar serve` processes on one database) and runs `spacebar-bench fanout` against it with
# the sessions first all on node 1, then spread over every node (the poster stays on node 1).
# Everything it started is stopped, by PID, when it ends.
#
#   bench/cluster.sh [fanout options...]   e.g. bench/cluster.sh --members 300 --rate 50 --duration 15
#   bench/cluster.sh resume [resume options...]   drains node 2 mid-run: its sessions RESUME on
#                                                 node 3 (needs NODES >= 3)
#   bench/cluster.sh resume --kill [options...]   kills node 2 (SIGKILL) mid-run instead: its
#                                                 sessions IDENTIFY again on node 3
#
# Environment: SPACEBAR_BIN (default target/release/spacebar), BENCH_BIN (default
# target/release/spacebar-bench; both under $CARGO_TARGET_DIR if set), NODES (default 3),
# KEEP=1 keeps the temporary directory (logs, database) for a look afterwards.
set -euo pipefail

target_dir=${CARGO_TARGET_DIR:-$(dirname "$0")/../target}
spacebar=${SPACEBAR_BIN:-$target_dir/release/spacebar}
bench=${BENCH_BIN:-$target_dir/release/spacebar-bench}
nodes=${NODES:-3}
for bin in "$spacebar" "$bench"; do
    [[ -x $bin ]] || { echo "$bin not found: cargo build --release -p spacebar -p spacebar-bench" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }

# Short: the database's Unix socket lives under it (107 characters at most).
tmp=$(mktemp -d /tmp/sbclu.XXXXXX)
# Running as root, the embedded PostgreSQL runs as `postgres`, which must reach its directory.
chmod 755 "$tmp"
pids=()
cleanup() {
    # Nodes first (node 1 stops its embedded PostgreSQL on the way out), Redis last.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "${pids[i]}" 2>/dev/null || true
    done
    if [[ ${KEEP:-} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback TCP port nobody listens on.
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 20000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

wait_ready() { # url pid log
    for _ in $(seq 600); do
        curl -sf "$1/readyz" >/dev/null && return
        kill -0 "$2" 2>/dev/null || { echo "node died; its log:" >&2; tail -20 "$3" >&2; exit 1; }
        sleep 0.2
    done
    echo "$1 not ready after 120 s; its log:" >&2
    tail -20 "$3" >&2
    exit 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
urls=()
node_pids=()
udp_base=$((30000 + RANDOM % 10000))
for ((n = 1; n <= nodes; n++)); do
    port=$(free_port)
    dir=$tmp/n$n
    mkdir -p "$dir"
    # Node 1 starts the embedded database in its data directory; the others use its socket.
    db=()
    if ((n > 1)); then db=("SPACEBAR__DATABASE__URL=postgresql:///spacebar?host=$tmp/n1/postgres&user=postgres"); fi
    udp=$((udp_base + n * 200))
    (
        ulimit -n "$(ulimit -Hn)"
        exec env SPACEBAR__HTTP__LISTEN="127.0.0.1:$port" \
            SPACEBAR__STORAGE__DATA_DIR="$dir" \
            "${db[@]}" \
            SPACEBAR__CLUSTER__REDIS_URL="redis://127.0.0.1:$redis_port" \
            SPACEBAR__SECURITY__JWT_SECRET="$secret" \
            SPACEBAR__SECURITY__BCRYPT_COST=4 \
            SPACEBAR__RATE_LIMITS__ENABLED=false \
            SPACEBAR__VOICE__UDP_PORT_MIN="$udp" \
            SPACEBAR__VOICE__UDP_PORT_MAX="$((udp + 99))" \
            SPACEBAR__VOICE__BOT_UDP_PORT="$((udp + 100))" \
            RUST_LOG="${RUST_LOG:-warn}" \
            "$spacebar" serve
    ) >"$dir/log" 2>&1 &
    pids+=($!)
    node_pids+=($!)
    urls+=("http://127.0.0.1:$port")
    # The others need node 1's database (created and migrated) before they start.
    wait_ready "http://127.0.0.1:$port" "$!" "$dir/log"
    echo "node $n: http://127.0.0.1:$port (pid $!)"
done

join() { local IFS=,; echo "$*"; }
if [[ ${1:-} == resume ]]; then
    # Drain node 2 mid-run (node 1 holds the database): its sessions RESUME on node 3. With
    # --kill, SIGKILL it instead: they are refused (op 9) there and IDENTIFY again.
    shift
    fault=--drain-pid
    if [[ ${1:-} == --kill ]]; then fault=--kill-pid; shift; fi
    "$bench" resume --url "${urls[0]}" \
        --nodes "$(join "${urls[1]}" "${urls[@]:2}" "${urls[0]}")" \
        "$fault" "${node_pids[1]}" "$@"
    exit
fi
"$bench" fanout --url "${urls[0]}" --nodes "$(join "${urls[@]}")" \
    --server-pid "$(join "${node_pids[@]}")" "$@"
