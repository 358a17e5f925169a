# scripts/lib/bench.sh -- helpers the benchmark scripts share; sourced, not
# run: `. "$(dirname "$0")/lib/bench.sh"` (from a run folder, the path to
# scripts/lib). Nothing here starts a process that outlives its call.

# port_busy P: something listens on 127.0.0.1:P.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port N: the first port from $PORT on with N free ports in a row.
free_port() {
  local p=$PORT i ok
  while :; do
    ok=1
    for ((i = 0; i < $1; i++)); do port_busy $((p + i)) && { ok=0; break; }; done
    [ $ok = 1 ] && { echo $p; return; }
    p=$((p + $1))
  done
}

# host_busy: "busy total" jiffies of the whole host (/proc/stat's cpu line;
# idle and iowait are not busy).
host_busy() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t; exit}' /proc/stat; }

# wait_quiet: until the host's load stays under MAX_OTHER cores (0.1) for
# 3 s, at most QUIET_WAIT seconds (600); prints the last figure, in cores.
wait_quiet() {
  local waited=0 b0 t0 b1 t1 busy
  while :; do
    read -r b0 t0 < <(host_busy); sleep 3; read -r b1 t1 < <(host_busy)
    busy=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v c="$(nproc)" 'BEGIN{printf "%.3f", t ? b / t * c : 0}')
    if awk -v x="$busy" -v m="${MAX_OTHER:-0.1}" 'BEGIN{exit !(x <= m)}' || [ "$waited" -ge "${QUIET_WAIT:-600}" ]; then
      echo "$busy"; return
    fi
    waited=$((waited + 3))
  done
}
