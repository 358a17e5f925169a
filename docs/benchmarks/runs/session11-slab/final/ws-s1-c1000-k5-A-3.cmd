# 2026-12-07T06:57:47Z faf8662 load: 1.36 1.62 1.87
taskset -c 0 ringcast serve --port 27700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 27701 --publisher-port 27702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:27700/connection/websocket --transport websocket --channels 1000 --subs-per-conn 5 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 7788 --cpu 1 --json --no-progress
