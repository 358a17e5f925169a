# 2026-12-06T19:00:10Z  git d0aa29c0a322a21afa729656941fe99645882174 (2 paths modified in the working tree)
# host other load before (cores busy over 3 s): 1.012
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.CCDH3pu2qq/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:44917
taskset -c 0 /tmp/tmp.CCDH3pu2qq/ringcast ws2api --backend http://127.0.0.1:44917/ws/ --port 19100 --address 127.0.0.1 --shards 1 --no-pin
timeout 300 /tmp/tmp.CCDH3pu2qq/ringcast-bench hold --protocol raw --url ws://127.0.0.1:19100/c{i} -n 15000 -d 5 --conns-per-addr 5000 --server-pid 7847 --cpu 1 --json --no-progress
