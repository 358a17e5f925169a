# 2026-12-06T19:25:21Z  git 44fc9ea8c0372960f69e10ce955b2f833d3bbccc (1 paths modified in the working tree)
# host other load before (cores busy over 3 s): 0.010
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.x8HGfHLuC0/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:41175
taskset -c 0 /tmp/tmp.x8HGfHLuC0/ringcast ws2api --backend http://127.0.0.1:41175/ws/ --port 19112 --address 127.0.0.1 --shards 1 --no-pin
timeout 300 /tmp/tmp.x8HGfHLuC0/ringcast-bench echo --url ws://127.0.0.1:19112/e{i} --text -c 100 -w 16 -s 100 -d 10 --server-pid 24117 --cpu 1 --json --no-progress
# attempt 1: other load before 0.010, foreign load during the bench 0.010 cores
