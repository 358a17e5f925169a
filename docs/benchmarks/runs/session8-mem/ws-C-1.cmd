# 2026-12-06T21:09:40Z c48ad9e load: 7.11 7.46 6.24
taskset -c 0 ringcast serve --port 19500 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 19501 --publisher-port 19502 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:19500/connection/websocket --transport websocket -n 15000 -d 10 --conns-per-addr 5000 --server-pid 10657 --cpu 1 --json --no-progress
