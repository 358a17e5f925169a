# 2026-12-07T06:58:41Z faf8662 load: 0.81 1.43 1.79
taskset -c 0 ringcast echo --port 27700 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --protocol raw --url ws://127.0.0.1:27700/c{i} -n 15000 -d 6 --conns-per-addr 5000 --server-pid 8619 --cpu 1 --json --no-progress
