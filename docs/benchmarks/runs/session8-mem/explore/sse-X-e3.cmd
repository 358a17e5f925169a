# 2026-12-06T20:47:45Z c48ad9e load: 3.89 3.68 3.74
RINGCAST_EXP=3 taskset -c 0 ringcast serve --port 19500 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19501 --publisher-port 19502 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:19500/connection/websocket --transport sse -n 15000 -d 10 --conns-per-addr 5000 --server-pid 21277 --cpu 1 --json --no-progress
