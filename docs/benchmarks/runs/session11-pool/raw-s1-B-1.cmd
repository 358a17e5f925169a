# 2026-12-07T07:53:32Z a87dc05 load: 3.32 3.31 3.10
taskset -c 0 ringcast echo --port 38700 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --protocol raw --url ws://127.0.0.1:38700/c{i} -n 15000 -d 6 --conns-per-addr 5000 --server-pid 26357 --cpu 1 --json --no-progress
