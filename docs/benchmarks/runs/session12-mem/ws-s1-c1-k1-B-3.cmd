# 2026-12-07T09:05:14Z beb1862 load: 0.91 1.68 1.73
taskset -c 0 ringcast serve --port 21700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 21701 --publisher-port 21702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:21700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 64 -d 1 --no-progress   # warm-up; then the server's fds polled back
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:21700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 16756 --cpu 1 --json --no-progress
