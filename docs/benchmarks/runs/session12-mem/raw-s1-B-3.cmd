# 2026-12-07T09:09:39Z beb1862 load: 0.20 0.82 1.35
taskset -c 0 ringcast echo --port 21700 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --protocol raw --url ws://127.0.0.1:21700/c{i} -n 64 -d 1 --no-progress   # warm-up; then the server's fds polled back
taskset -c 1 ringcast-bench hold --protocol raw --url ws://127.0.0.1:21700/c{i} -n 15000 -d 6 --conns-per-addr 5000 --server-pid 18719 --cpu 1 --json --no-progress
