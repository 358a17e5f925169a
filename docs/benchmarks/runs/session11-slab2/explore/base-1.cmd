# 2026-12-07T07:05:47Z 3fa4af8 load: 1.31 1.45 1.68
taskset -c 0 ringcast serve --port 31700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 31701 --publisher-port 31702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:31700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 4 --conns-per-addr 5000 --server-pid 14321 --cpu 1 --json --no-progress
