# 2026-12-07T07:15:01Z 03d9f1c load: 2.98 2.10 1.81
taskset -c 0 ringcast serve --port 34700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 34701 --publisher-port 34702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:34700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 5 --conns-per-addr 5000 --server-pid 25404 --cpu 1 --json --no-progress
