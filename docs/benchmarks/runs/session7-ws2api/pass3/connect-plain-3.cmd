# 2026-12-06T19:26:56Z  git 44fc9ea8c0372960f69e10ce955b2f833d3bbccc (1 paths modified in the working tree)
# host other load before (cores busy over 3 s): 0.007
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.x8HGfHLuC0/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:42649
taskset -c 0 /tmp/tmp.x8HGfHLuC0/ringcast serve --port 19124 --api-port 19125 --publisher-port 19126 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-key bench-key
timeout 300 /tmp/tmp.x8HGfHLuC0/ringcast-bench hold --url ws://127.0.0.1:19124/connection/websocket --channels 0 -n 15000 -d 2 --conns-per-addr 5000 --server-pid 24719 --cpu 1 --json --no-progress
# attempt 1: other load before 0.007, foreign load during the bench 0.031 cores
