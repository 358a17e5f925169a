# 2026-12-07T00:17:44Z 5e57b6c load: 4.19 7.07 8.04
taskset -c 0 ringcast serve --port 21500 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 21501 --publisher-port 21502 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:21500/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 30878 --cpu 1 --json --no-progress
