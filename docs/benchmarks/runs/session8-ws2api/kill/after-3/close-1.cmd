# 2026-12-06T20:58:51Z  git 8e0adfaec7b7d60a67ef26c4baa32bb85097f4aa (1 paths modified)
taskset -c 1 /tmp/ws2api-final-bin/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:34063
taskset -c 0 /tmp/ws2api-final-bin/ringcast ws2api --backend http://127.0.0.1:34063/ws/ --port 19300 --address 127.0.0.1 --shards 1 --no-pin
/tmp/ws2api-final-bin/ringcast-bench hold --protocol raw --url ws://127.0.0.1:19300/c{i} -n 15000 -d 120 --conns-per-addr 5000 --server-pid 13114 --cpu 1 --json --no-progress   # SIGKILLed once all 15000 are connected and admitted
# RSS (and pending) sampled until 10 s after the close (NAME.rss)
