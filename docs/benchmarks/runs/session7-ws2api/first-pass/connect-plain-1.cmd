# 2026-12-06T17:51:00Z  git 5d5c815e9d1fabe61d5d7c9056a0de7f9ccab7ab (11 paths modified in the working tree)
# host other load before (cores busy over 3 s): 1.013
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.bkyRs12aNH/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:34751
taskset -c 0 /tmp/tmp.bkyRs12aNH/ringcast serve --port 19104 --api-port 19105 --publisher-port 19106 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-key bench-key
timeout 300 /tmp/tmp.bkyRs12aNH/ringcast-bench hold --url ws://127.0.0.1:19104/connection/websocket --channels 0 -n 15000 -d 2 --conns-per-addr 5000 --server-pid 21521 --cpu 1 --json --no-progress
