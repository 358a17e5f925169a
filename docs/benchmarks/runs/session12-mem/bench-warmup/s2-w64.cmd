# 2026-12-07T09:50:31Z 359b5eb load: 2.45 1.87 1.49
taskset -c 0,1 ringcast serve --port 21700 --address 127.0.0.1 --shards 2 --no-pin --insecure --api-port 21701 --publisher-port 21702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:21700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --warmup 64 --server-pid 26826 --cpu 1 --json --no-progress
