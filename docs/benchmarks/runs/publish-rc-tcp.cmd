# attempt 1: bench exit 0, host.other_busy_cores 0 (idle check before: 0.004)
taskset -c 0 ringcast serve --port 18940 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18941 --publisher-port 18942 --api-key bench-key
taskset -c 1 ringcast-bench publish --url ws://127.0.0.1:18940/connection/websocket --size 100 -d 10 --via tcp -w 1024 --publisher-addr 127.0.0.1:18942 --api-key bench-key --report /tmp/rc-reports/publish-rc-tcp --server-pid 2264 --cpu 1 --json --no-progress
