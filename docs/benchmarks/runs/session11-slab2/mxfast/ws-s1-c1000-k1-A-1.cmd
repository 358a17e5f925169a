# 2026-12-07T07:13:31Z 03d9f1c load: 2.75 1.70 1.65
taskset -c 0 ringcast serve --port 32700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 32701 --publisher-port 32702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:32700/connection/websocket --transport websocket --channels 1000 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 21411 --cpu 1 --json --no-progress
