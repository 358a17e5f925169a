# 2026-12-06T20:37:04Z  git c48ad9e950cfc5b91a212f0347ef9497222a3b0d (11 paths modified)
taskset -c 1 /tmp/ws2api-base-bin/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:41621
taskset -c 0 /tmp/ws2api-base-bin/ringcast ws2api --backend http://127.0.0.1:41621/ws/ --port 19300 --address 127.0.0.1 --shards 1 --no-pin
/tmp/ws2api-base-bin/ringcast-bench hold --protocol raw --url ws://127.0.0.1:19300/c{i} -n 15000 -d 120 --conns-per-addr 5000 --server-pid 27473 --cpu 1 --json --no-progress   # SIGKILLed once all 15000 are connected and admitted
# RSS (and pending) sampled until 10 s after the close (NAME.rss)
