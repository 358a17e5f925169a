# 2026-12-07T07:56:26Z 68f7878 load: 1.29 2.46 2.81
taskset -c 0,1 ringcast serve --port 39700 --address 127.0.0.1 --shards 2 --no-pin --insecure --api-port 39701 --publisher-port 39702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:39700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 29913 --cpu 1 --json --no-progress
