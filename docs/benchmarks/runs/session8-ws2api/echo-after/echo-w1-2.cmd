# 2026-12-06T20:43:28Z  git c48ad9e950cfc5b91a212f0347ef9497222a3b0d (11 paths modified in the working tree)
# host other load before (cores busy over 3 s): 2.000
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.eoA0Q6AzAM/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:45057
taskset -c 0 /tmp/tmp.eoA0Q6AzAM/ringcast ws2api --backend http://127.0.0.1:45057/ws/ --port 19103 --address 127.0.0.1 --shards 1 --no-pin
timeout 300 /tmp/tmp.eoA0Q6AzAM/ringcast-bench echo --url ws://127.0.0.1:19103/e{i} --text -c 100 -w 1 -s 100 -d 10 --server-pid 17575 --cpu 1 --json --no-progress
# attempt 1: other load before 2.000, foreign load during the bench 1.112 cores
