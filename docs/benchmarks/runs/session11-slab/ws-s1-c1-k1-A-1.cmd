# 2026-12-07T06:38:50Z b35915b load: 0.67 1.27 2.59
taskset -c 0 ringcast serve --port 23700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 23701 --publisher-port 23702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:23700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 24000 --cpu 1 --json --no-progress
