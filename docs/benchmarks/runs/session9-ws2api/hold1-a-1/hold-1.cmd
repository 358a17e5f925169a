# 2026-12-06T23:47:57Z  git f054e0f3da6bd54520e617b65e042f5001cf553c (4 paths modified in the working tree)
# host other load before (cores busy over 3 s): 2.000
# layout: server cpu 0, backend cpu 1 (1 thread(s)), load cpu 1
taskset -c 1 /tmp/tmp.Jo1r3GSocJ/peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:41943
taskset -c 0 /tmp/tmp.Jo1r3GSocJ/ringcast ws2api --backend http://127.0.0.1:41943/ws/ --port 19100 --address 127.0.0.1 --shards 1 --no-pin
timeout 300 /tmp/tmp.Jo1r3GSocJ/ringcast-bench hold --protocol raw --url ws://127.0.0.1:19100/c{i} -n 15000 -d 5 --conns-per-addr 5000 --settle 1 --server-pid 23365 --cpu 1 --json --no-progress
# attempt 1: other load before 2.000, foreign load during the bench 1.762 cores
