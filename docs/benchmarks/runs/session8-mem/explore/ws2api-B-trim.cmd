# 2026-12-06T20:53:24Z c48ad9e load: 3.75 3.42 3.58
taskset -c 1 peer-http-backend --port 0 --threads 1   # -> 127.0.0.1:39761
taskset -c 0 ringcast ws2api --backend http://127.0.0.1:39761/ws/ --port 19500 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --protocol raw --url ws://127.0.0.1:19500/c{i} -n 15000 -d 10 --conns-per-addr 5000 --server-pid 30081 --cpu 1 --json --no-progress
