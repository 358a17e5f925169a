# 2026-12-06T19:26:17Z  git 44fc9ea8c0372960f69e10ce955b2f833d3bbccc (1 paths modified in the working tree)
# host other load before (cores busy over 3 s): 0.003
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.x8HGfHLuC0/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:42443
taskset -c 0 /tmp/tmp.x8HGfHLuC0/ringcast ws2api --backend http://127.0.0.1:42443/ws/ --port 19121 --address 127.0.0.1 --shards 1 --no-pin
timeout 300 /tmp/tmp.x8HGfHLuC0/ringcast-bench hold --protocol raw --url ws://127.0.0.1:19121/c{i} -n 5000 -d 5 --conns-per-addr 5000 --server-pid 24493 --cpu 1 --json --no-progress
# attempt 1: other load before 0.003, foreign load during the bench 0.016 cores
