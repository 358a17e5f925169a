# 2026-12-07T07:53:23Z a87dc05 load: 3.30 3.30 3.09
taskset -c 0 ringcast echo --port 38700 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --protocol raw --url ws://127.0.0.1:38700/c{i} -n 15000 -d 6 --conns-per-addr 5000 --server-pid 26147 --cpu 1 --json --no-progress
