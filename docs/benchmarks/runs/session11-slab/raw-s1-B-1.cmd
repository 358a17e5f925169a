# 2026-12-07T06:42:56Z b35915b load: 1.11 1.38 2.34
taskset -c 0 ringcast echo --port 23700 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --protocol raw --url ws://127.0.0.1:23700/c{i} -n 15000 -d 6 --conns-per-addr 5000 --server-pid 26513 --cpu 1 --json --no-progress
