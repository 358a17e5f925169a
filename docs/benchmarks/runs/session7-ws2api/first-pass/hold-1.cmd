# 2026-12-06T17:47:51Z  git 5d5c815e9d1fabe61d5d7c9056a0de7f9ccab7ab (11 paths modified in the working tree)
# host other load before (cores busy over 3 s): 0.043
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.bkyRs12aNH/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:43231
taskset -c 0 /tmp/tmp.bkyRs12aNH/ringcast ws2api --backend http://127.0.0.1:43231/ws/ --port 19100 --address 127.0.0.1 --shards 1 --no-pin
timeout 300 /tmp/tmp.bkyRs12aNH/ringcast-bench hold --protocol raw --url ws://127.0.0.1:19100/c{i} -n 15000 -d 5 --conns-per-addr 5000 --server-pid 19850 --cpu 1 --json --no-progress
