# 2026-12-07T07:14:33Z 03d9f1c load: 3.18 2.05 1.78
taskset -c 0 ringcast serve --port 33700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 33701 --publisher-port 33702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:33700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 4 --conns-per-addr 5000 --connect-concurrency 256 --server-pid 24716 --cpu 1 --json --no-progress
