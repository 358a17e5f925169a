# 2026-12-06T20:34:39Z  git c48ad9e950cfc5b91a212f0347ef9497222a3b0d (11 paths modified)
taskset -c 1 /tmp/ws2api-after-bin/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:44443
taskset -c 0 /tmp/ws2api-after-bin/ringcast ws2api --backend http://127.0.0.1:44443/ws/ --port 19300 --address 127.0.0.1 --shards 1 --no-pin
timeout 120 /tmp/ws2api-after-bin/ringcast-bench hold --protocol raw --url ws://127.0.0.1:19300/c{i} -n 15000 -d 2 --conns-per-addr 5000 --server-pid 20449 --cpu 1 --json --no-progress
# then RSS every 50 ms for 10 s (NAME.rss)
