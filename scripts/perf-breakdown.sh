#!/usr/bin/env bash
# scripts/perf-breakdown.sh -- where the server's CPU goes, by kind of work,
# for echo, TCP-publisher ingest and fan-out (issue 16's "the io_uring data
# path, settled": the share of syscall entry/exit, epoll, recv and sendmsg
# against the TCP stack).
#
#   scripts/perf-breakdown.sh [--out DIR] [--only echo,ingest,fanout,quiet]
#   scripts/perf-breakdown.sh --reclassify DIR   (NAME.kinds again from NAME.symbols)
#
# Each scenario: a fresh server pinned to SERVER_CPU (0), ringcast-bench on
# LOAD_CPU (1), `perf record -g` on the server's pid for the middle PERF_D
# seconds of the run. Scenarios:
#   echo    ringcast echo; 100 connections x 16 in flight x 100 B
#   ingest  ringcast serve; TCP publisher, window 1024, 100 B publications,
#           one subscriber
#   fanout  ringcast serve; 5,000 subscribers of one channel, 200
#           publications/s of 100 B (1 M deliveries/s: big batches)
#   quiet   ringcast serve; 1,000 channels x 10 subscribers, 10,000
#           publications/s (every delivery its own send: the latency case)
# Per scenario in OUT: NAME.perf.data, NAME.symbols (self time by symbol),
# NAME.kinds (self time by kind of work, the table), NAME.json (the bench).
# Kinds are read from kernel symbol names (see `kind()` below): they are a
# classification for reading, not exact accounting.
#
# Environment: BIN (directory with ringcast and ringcast-bench; default
# target/release), SERVER_CPU, LOAD_CPU, PORT (19500), DUR (10), PERF_D (5),
# FREQ (1999), SERVER_FLAGS (more server arguments, e.g. `--data-path uring`).
# Needs perf; run as root (or perf_event_paranoid <= 1).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
: "${BIN:=target/release}" "${SERVER_CPU:=0}" "${LOAD_CPU:=1}" "${PORT:=19500}"
: "${DUR:=10}" "${PERF_D:=5}" "${FREQ:=1999}" "${SERVER_FLAGS:=}"
OUT=target/perf-breakdown ONLY=echo,ingest,fanout,quiet RECLASSIFY=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --reclassify) RECLASSIFY=$2; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in perf jq taskset timeout; do
  command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RC=$BIN/ringcast BENCH=$BIN/ringcast-bench
KEY=perf-breakdown-key
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# start NAME ARGS...: the server, its pid from its ready line.
start() {
  local name=$1; shift
  PORT=$((PORT + 3))
  # shellcheck disable=SC2086
  taskset -c "$SERVER_CPU" "$RC" "$@" --port $PORT --address 127.0.0.1 --shards 1 --no-pin $SERVER_FLAGS \
    >"$OUT/$name.server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    grep -q '"ready"' "$OUT/$name.server.log" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not come up" >&2; cat "$OUT/$name.server.log" >&2; exit 1
}
stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

# run NAME PATH BENCH-ARGS...: the bench, and perf on the server meanwhile.
run() {
  local name=$1 path=$2; shift 2
  taskset -c "$LOAD_CPU" timeout $((DUR + 120)) "$BENCH" "$@" --url "ws://127.0.0.1:$PORT$path" \
    -d "$DUR" --server-pid "$SERVER_PID" --cpu "$LOAD_CPU" --json --no-progress >"$OUT/$name.json" &
  local bench=$!
  # The run starts after its set-up; look at its middle.
  sleep $(((DUR - PERF_D) / 2 + 2))
  perf record -q -F "$FREQ" -g -p "$SERVER_PID" -o "$OUT/$name.perf.data" -- sleep "$PERF_D" \
    >/dev/null 2>&1 || echo "perf record failed" >&2
  wait $bench || echo "($name: bench exit $?)" >&2
  perf report -i "$OUT/$name.perf.data" --no-children --sort sym --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | awk '{ p = $1; sub(/%/, "", p); $1 = ""; print p "\t" substr($0, 2) }' \
      >"$OUT/$name.symbols"
  kinds <"$OUT/$name.symbols" >"$OUT/$name.kinds"
  echo "== $name" >&2
  cat "$OUT/$name.kinds" >&2
}

# kinds: self-time share per kind of work, from "percent<TAB>[k] symbol" lines.
kinds() {
  awk -F'\t' '
    function kind(s) {
      if (s !~ /^\[k\]/) return "user space (ringcast, libc)"
      sub(/^\[k\] /, "", s)
      if (s ~ /^(entry_SYSCALL|syscall_exit|do_syscall|fdget|syscall_return|exit_to_user|__x64_sys_|x64_sys_call|__fdget|fput|__fget|restore_fpregs|switch_fpu|rseq|syscall_enter|__rseq|arch_exit_to_user|__do_sys_)/) return "syscall entry/exit"
      if (s ~ /^(ep_|do_epoll|__ep_|epoll_)/) return "epoll"
      if (s ~ /^(io_|__io_|tctx_|task_work)/) return "io_uring"
      if (s ~ /^(tcp_recvmsg|tcp_cleanup_rbuf|sock_recvmsg|__sys_recv|skb_copy_datagram|__skb_datagram_iter|_copy_to_iter|copy_user|rep_movs|sock_rfree|__sk_mem_reduce|tcp_rcv_space|inet_recvmsg|simple_copy_to_iter|__skb_recv|skb_consume_udp|tcp_recv)/) return "recv (socket to user)"
      if (s ~ /^(tcp_sendmsg|sock_sendmsg|____sys_sendmsg|___sys_sendmsg|__sys_sendmsg|_copy_from_iter|copy_from_user|tcp_skb_entail|sk_stream_alloc|tcp_stream_alloc|__sock_sendmsg|inet_sendmsg|sendmsg_copy|import_iovec|__import_iovec|iovec_from_user|tcp_push|tcp_send_mss|tcp_rate_check|skb_do_copy|skb_copy_to_page|tcp_wmem|sk_page_frag)/) return "sendmsg (user to socket)"
      if (s ~ /^(__schedule|schedule|try_to_wake_up|ttwu|sock_def_readable|__wake_up|pick_next|enqueue_|dequeue_|update_curr|select_task_rq|sched_|finish_task_switch|psi_|set_next_entity|__switch_to|native_sched|prepare_task_switch|wake_up_|raw_spin|_raw_spin|autoremove_wake|default_wake|pollwake|ep_autoremove|native_queued_spin|queued_spin)/) return "wake-ups, scheduling, locks"
      if (s ~ /^(tcp_|__tcp_|bbr_|bictcp|cubictcp|ip_|__ip_|ipv4_|inet_|sk_|__sk_|skb_|__skb|kfree_skb|__kfree_skb|consume_skb|napi_|__napi|net_|__netif|netif_|__dev_|dev_|loopback|nf_|raw_local|validate_xmit|eth_|sch_direct|__qdisc|pfifo|fib_|__inet|release_sock|lock_sock|__release_sock|bpf_|__cgroup_bpf|tcp4_|do_softirq|__do_softirq|handle_softirqs|__local_bh|irq_exit|alloc_skb|__alloc_skb|build_skb|mem_cgroup_(charge|uncharge)_skmem|__build_skb|csum_|dst_|neigh_|__neigh|qdisc|__copy_skb|rps_|process_backlog|__netdev)/) return "TCP/IP stack (loopback both ways)"
      if (s ~ /^(kmem_|__kmem|kmalloc|__kmalloc|kfree|__slab|slab_|___slab|__alloc_pages|alloc_pages|get_page_from|free_|__free|page_|__page|rmqueue|mod_memcg|__mod_memcg|memcg_|obj_cgroup|refill_obj|drain_obj|__memcg|mem_cgroup|__put_page|put_page|folio|__folio)/) return "kernel memory"
      return "other kernel"
    }
    { share[kind($2)] += $1; total += $1 }
    END {
      for (k in share) printf "%6.1f%%  %s\n", share[k], k | "sort -rn"
      close("sort -rn")
      printf "%6.1f%%  (total sampled)\n", total
    }'
}

has() { case ",$ONLY," in *,"$1",*) return 0 ;; esac; return 1; }

if [ -n "$RECLASSIFY" ]; then
  for f in "$RECLASSIFY"/*.symbols; do
    kinds <"$f" >"${f%.symbols}.kinds"
    echo "== $(basename "${f%.symbols}")"; cat "${f%.symbols}.kinds"
  done
  exit 0
fi

if has echo; then
  start echo echo
  run echo / echo -c 100 -w 16 -s 100
  stop
fi
SERVE=(serve --api-port 0 --publisher-port 0 --api-key "$KEY" --insecure)
if has ingest; then
  start ingest "${SERVE[@]}"
  pub=$(jq -r '.ready.publisher // empty' <(grep '"ready"' "$OUT/ingest.server.log"))
  run ingest /connection/websocket publish --via tcp -w 1024 --size 100 \
    --publisher-addr "$pub" --api-key "$KEY"
  stop
fi
if has fanout; then
  start fanout "${SERVE[@]}"
  run fanout /connection/websocket fanout --subscribers 5000 --channels 1 --publishers 1 \
    --rate 200 --size 100
  stop
fi
if has quiet; then
  start quiet "${SERVE[@]}"
  run quiet /connection/websocket fanout --subscribers 10000 --channels 1000 --publishers 1 \
    --rate 10000 --pace even --size 100
  stop
fi
{
  echo "git $(git rev-parse HEAD 2>/dev/null) ($(git status --short 2>/dev/null | wc -l) paths modified)"
  (cd "$BIN" && sha256sum ringcast ringcast-bench)
  echo "$(uname -sr); $(nproc) cores; perf $(perf version 2>/dev/null)"
} >"$OUT/build.txt"
