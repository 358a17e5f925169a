#!/usr/bin/env bash
# Session 10: memory per idle connection, epoll vs the io_uring data path.
# One binary, the flag flipped, alternating (epoll uring epoll uring ...),
# ROUNDS rounds. Each run: `ringcast echo` on cpu 0, `ringcast-bench hold`
# of 15,000 raw WebSocket connections on cpu 1 (user RSS per connection:
# the bench's, RSS 1 s after setup minus before, / 15,000). Kernel memory:
# /proc/slabinfo (every cache's num_objs x objsize, and the caches of
# interest) read before the server starts and once all connections are
# held; the difference / 15,000. Slab memory is host-wide: it includes the
# bench's own sockets (the same on both paths) and other processes' churn.
#
#   BIN=target/release OUT=docs/benchmarks/runs/session10-uring/memory \
#     docs/benchmarks/runs/session10-uring/memory.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
: "${BIN:=target/release}" "${ROUNDS:=3}" "${PORT:=19800}" "${N:=15000}"
OUT=${OUT:-docs/benchmarks/runs/session10-uring/memory}
mkdir -p "$OUT"
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
up() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
slab() {  # total slab bytes, then per cache of interest
  awk 'NR>2 { b=$3*$4; t+=b; if ($1 ~ /^(io_kiocb|eventpoll_epi|eventpoll_pwq|TCP|tcp_bind_bucket|request_sock_TCP|sock_inode_cache|dentry|filp|kmalloc-(64|96|128|192|256|512|1k))$/) printf "%s %d\n", $1, b } END { printf "total %d\n", t }' /proc/slabinfo
}
for r in $(seq "$ROUNDS"); do
  for path in epoll uring; do
    name=$path-$r
    slab >"$OUT/$name.slab-before"
    taskset -c 0 "$BIN/ringcast" echo --port "$PORT" --address 127.0.0.1 --shards 1 --no-pin --data-path "$path" \
      >"$OUT/$name.server.log" 2>&1 &
    SPID=$!
    up "$PORT"
    taskset -c 1 "$BIN/ringcast-bench" hold --url "ws://127.0.0.1:$PORT/" --protocol raw -n "$N" -d 8 \
      --conns-per-addr 5000 --server-pid "$SPID" --cpu 1 --json --no-progress >"$OUT/$name.json" 2>"$OUT/$name.table" &
    BPID=$!
    for _ in $(seq 600); do
      [ "$(ls /proc/$SPID/fd 2>/dev/null | wc -l)" -ge "$N" ] && break
      sleep 0.1
    done
    sleep 2
    slab >"$OUT/$name.slab-held"
    grep -E '^(VmRSS|RssAnon)' /proc/$SPID/status >"$OUT/$name.status-held"
    wait "$BPID" || true
    kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=
    before=$(awk '$1=="total"{print $2}' "$OUT/$name.slab-before")
    held=$(awk '$1=="total"{print $2}' "$OUT/$name.slab-held")
    echo "$name: user $(jq '.server.rss_per_conn_bytes // .rss_per_conn // empty' "$OUT/$name.json") B/conn; slab $(( (held - before) / N )) B/conn" | tee -a "$OUT/summary.txt" >&2
    PORT=$((PORT + 10))
  done
done
