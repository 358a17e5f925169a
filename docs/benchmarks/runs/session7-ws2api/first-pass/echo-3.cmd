# 2026-12-06T17:59:28Z  git 5d5c815e9d1fabe61d5d7c9056a0de7f9ccab7ab (11 paths modified in the working tree)
# host other load before (cores busy over 3 s): 1.872
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.bkyRs12aNH/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:45531
taskset -c 0 /tmp/tmp.bkyRs12aNH/ringcast ws2api --backend http://127.0.0.1:45531/ws/ --port 19122 --address 127.0.0.1 --shards 1 --no-pin
timeout 300 /tmp/tmp.bkyRs12aNH/ringcast-bench echo --url ws://127.0.0.1:19122/e{i} --text -c 100 -w 16 -s 100 -d 10 --server-pid 7982 --cpu 1 --json --no-progress
