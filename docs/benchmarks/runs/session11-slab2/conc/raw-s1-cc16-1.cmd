# 2026-12-07T07:19:17Z 3fa4af8 load: 1.37 1.94 1.82
taskset -c 0 ringcast echo --port 36700 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --protocol raw --url ws://127.0.0.1:36700/c{i} -n 15000 -d 6 --conns-per-addr 5000 --connect-concurrency 16 --server-pid 31096 --cpu 1 --json --no-progress
