# 2026-12-06T23:56:00Z  git f054e0f3da6bd54520e617b65e042f5001cf553c (14 paths modified in the working tree)
# host other load before (cores busy over 3 s): 2.000
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.2FTLuH2jOx/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:35295
taskset -c 0 /tmp/tmp.2FTLuH2jOx/ringcast ws2api --backend http://127.0.0.1:35295/ws/ --port 19101 --address 127.0.0.1 --shards 1 --no-pin
timeout 300 /tmp/tmp.2FTLuH2jOx/ringcast-bench echo --url ws://127.0.0.1:19101/e{i} --text -c 100 -w 1 -s 100 -d 10 --server-pid 3874 --cpu 1 --json --no-progress
# attempt 1: other load before 2.000, foreign load during the bench 1.374 cores
