# 2026-12-06T21:17:01Z c48ad9e load: 4.36 5.47 5.75
taskset -c 0 ringcast serve --port 19500 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19501 --publisher-port 19502 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:19500/connection/websocket --transport http_stream -n 15000 -d 10 --conns-per-addr 5000 --server-pid 21258 --cpu 1 --json --no-progress
