# 2026-12-07T07:56:16Z 68f7878 load: 1.34 2.51 2.83
RINGCAST_CONFIG=/work/wt-pool/docs/benchmarks/runs/session11-pool/hw128.toml taskset -c 0,1 ringcast serve --port 39700 --address 127.0.0.1 --shards 2 --no-pin --insecure --api-port 39701 --publisher-port 39702 --api-key bench-key --http-stream --sse
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:39700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 -n 15000 -d 6 --conns-per-addr 5000 --server-pid 29821 --cpu 1 --json --no-progress
