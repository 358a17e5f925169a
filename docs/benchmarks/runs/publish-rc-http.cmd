# attempt 1: bench exit 0, host.other_busy_cores 0 (idle check before: 0.004)
taskset -c 0 ringcast serve --port 18960 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18961 --publisher-port 18962 --api-key bench-key
taskset -c 1 ringcast-bench publish --url ws://127.0.0.1:18960/connection/websocket --size 100 -d 10 --via http -w 64 --api-url http://127.0.0.1:18961/api --api-key bench-key --report /tmp/rc-reports/publish-rc-http --server-pid 4661 --cpu 1 --json --no-progress
