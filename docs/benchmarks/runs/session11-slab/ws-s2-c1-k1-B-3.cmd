# 2026-12-07T06:40:43Z b35915b load: 1.31 1.33 2.46
taskset -c 0,1 ringcast serve --port 23700 --address 127.0.0.1 --shards 2 --no-pin --insecure --api-port 23701 --publisher-port 23702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:23700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 25286 --cpu 1 --json --no-progress
