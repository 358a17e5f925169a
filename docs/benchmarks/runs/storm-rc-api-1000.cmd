# attempt 1: bench exit 0, host.other_busy_cores 0.019468589473389013 (idle check before: 0.008)
taskset -c 0 ringcast serve --port 18940 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18941 --publisher-port 18942 --api-key bench-key --config storm.toml
taskset -c 1 ringcast-bench storm --url ws://127.0.0.1:18940/connection/websocket -n 10000 --channels 10 -d 10 --warmup 3 --conns-per-addr 5000 --rate 1000 --api-url http://127.0.0.1:18941/api --api-key bench-key --report /tmp/rc-reports/storm-rc-api-1000 --server-pid 2219 --cpu 1 --json --no-progress
