# 2026-12-07T07:18:09Z 3fa4af8 load: 2.85 2.27 1.91
taskset -c 0,1 ringcast serve --port 35700 --address 127.0.0.1 --shards 2 --no-pin --insecure --api-port 35701 --publisher-port 35702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:35700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --connect-concurrency 64 --server-pid 30346 --cpu 1 --json --no-progress
