# 2026-12-07T07:52:03Z a87dc05 load: 3.41 3.31 3.07
taskset -c 0 ringcast serve --port 37700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 37701 --publisher-port 37702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:37700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 23765 --cpu 1 --json --no-progress
