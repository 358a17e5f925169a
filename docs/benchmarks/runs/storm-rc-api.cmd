# attempt 1: bench exit 0, host.other_busy_cores 0.2599451628212979 (idle check before: 1.774)
taskset -c 0 ringcast serve --port 18960 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18961 --publisher-port 18962 --api-key bench-key --config storm.toml
taskset -c 1 ringcast-bench storm --url ws://127.0.0.1:18960/connection/websocket -n 10000 --channels 10 -d 10 --warmup 3 --conns-per-addr 5000 --rate 100 --api-url http://127.0.0.1:18961/api --api-key bench-key --report /tmp/rc-reports/storm-rc-api --server-pid 4330 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.22055058799636484 (idle check before: 0.030)
taskset -c 0 ringcast serve --port 18963 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18964 --publisher-port 18965 --api-key bench-key --config storm.toml
taskset -c 1 ringcast-bench storm --url ws://127.0.0.1:18963/connection/websocket -n 10000 --channels 10 -d 10 --warmup 3 --conns-per-addr 5000 --rate 100 --api-url http://127.0.0.1:18964/api --api-key bench-key --report /tmp/rc-reports/storm-rc-api --server-pid 4486 --cpu 1 --json --no-progress
# attempt 3: bench exit 0, host.other_busy_cores 0 (idle check before: 0.008)
taskset -c 0 ringcast serve --port 18966 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18967 --publisher-port 18968 --api-key bench-key --config storm.toml
taskset -c 1 ringcast-bench storm --url ws://127.0.0.1:18966/connection/websocket -n 10000 --channels 10 -d 10 --warmup 3 --conns-per-addr 5000 --rate 100 --api-url http://127.0.0.1:18967/api --api-key bench-key --report /tmp/rc-reports/storm-rc-api --server-pid 4618 --cpu 1 --json --no-progress
