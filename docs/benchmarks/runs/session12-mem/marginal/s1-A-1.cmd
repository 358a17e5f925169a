# 2026-12-07T09:12:57Z beb1862 load: 0.41 0.64 1.18
taskset -c 0 ringcast serve --port 23700 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 23701 --publisher-port 23702 --api-key bench-key
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:23700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 --conns-per-addr 5000 --no-progress -n 7500 -d 60 --server-pid 20169 --json &   # kept open
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:23700/connection/websocket --transport websocket --channels 1 --subs-per-conn 1 --conns-per-addr 5000 --no-progress -n 7500 -d 6 --source-base 127.0.0.20 --server-pid 20169 --cpu 1 --json
