# 2026-12-07T09:07:04Z beb1862 load: 0.39 1.26 1.57
taskset -c 0 ringcast serve --port 21700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 21701 --publisher-port 21702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:21700/connection/websocket --transport websocket --channels 1000 --subs-per-conn 1 -n 64 -d 1 --no-progress   # warm-up; then the server's fds polled back
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:21700/connection/websocket --transport websocket --channels 1000 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 17586 --cpu 1 --json --no-progress
