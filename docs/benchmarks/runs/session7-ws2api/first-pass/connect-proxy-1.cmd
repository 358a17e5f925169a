# 2026-12-06T17:52:09Z  git 5d5c815e9d1fabe61d5d7c9056a0de7f9ccab7ab (11 paths modified in the working tree)
# host other load before (cores busy over 3 s): 0.224
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.bkyRs12aNH/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:34171
taskset -c 0 /tmp/tmp.bkyRs12aNH/ringcast serve --port 19107 --api-port 19108 --publisher-port 19109 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-key bench-key --config /work/main/docs/benchmarks/runs/session7-ws2api/connect-proxy-1.toml
timeout 300 /tmp/tmp.bkyRs12aNH/ringcast-bench hold --url ws://127.0.0.1:19107/connection/websocket --channels 0 -n 15000 -d 2 --conns-per-addr 5000 --server-pid 24642 --cpu 1 --json --no-progress
