# 2026-12-07T09:12:09Z beb1862 load: 0.48 0.69 1.22
taskset -c 0 ringcast echo --port 21700 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --protocol raw --url ws://127.0.0.1:21700/c{i} -n 15000 -d 6 --conns-per-addr 5000 --server-pid 19958 --cpu 1 --json --no-progress
