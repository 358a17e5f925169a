#!/usr/bin/env bash
# summary.sh [DIR] -- one line per run of hold.sh in DIR: RSS per connection
# (the bench's: RSS 1 s after setup minus before, / N), connects/s, the
# heap from malloc_stats 3 s after setup (all arenas: system and in use),
# RSS 5 s after the clients closed, and after a gdb malloc_trim(0) then.
cd "${1:-$(dirname "$0")}"
printf '| run | N | RSS/conn (B) | connects/s | heap system / in use (MiB) | free in heap / conn (B) | RSS 5 s after close (MiB) | then after gdb malloc_trim(0) (MiB) |\n|---|---|---|---|---|---|---|---|\n'
for j in $(ls *.json | sort -V); do
  n=${j%.json}
  [ -f "$n.mem" ] || continue
  read -r rss est ps < <(jq -r '"\(.server.rss_per_conn_bytes|floor) \(.connections.established) \(.connections.per_s|floor)"' "$j")
  # the Total (incl. mmap) block of the first malloc_stats print
  read -r sys use < <(awk '/^Total/{t=1; next} t&&/system bytes/{s=$4} t&&/in use bytes/{print s, $5; exit}' "$n.server.log")
  close=$(awk '/after the close/{print $(NF-1)}' "$n.mem"); trim=$(awk '/then gdb malloc_trim/{print $(NF-1)}' "$n.mem")
  awk -v n="$n" -v N="$est" -v r="$rss" -v ps="$ps" -v s="$sys" -v u="$use" -v c="$close" -v t="$trim" 'BEGIN{
    printf "| %s | %d | %d | %d | %.1f / %.1f | %d | %.1f | %.1f |\n", n, N, r, ps, s/1048576, u/1048576, (s-u)/N, c/1024, t/1024 }'
done
