# 2026-12-07T07:14:06Z 03d9f1c load: 3.20 1.93 1.74
taskset -c 0 ringcast serve --port 33700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 33701 --publisher-port 33702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:33700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 4 --conns-per-addr 5000 --connect-concurrency 16 --server-pid 23573 --cpu 1 --json --no-progress
