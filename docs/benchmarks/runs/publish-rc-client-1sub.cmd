# attempt 1: bench exit 0, host.other_busy_cores 0 (idle check before: 0.008)
taskset -c 0 ringcast serve --port 18960 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18961 --publisher-port 18962 --api-key bench-key
taskset -c 1 ringcast-bench publish --url ws://127.0.0.1:18960/connection/websocket --size 100 -d 10 --via client -w 256 --subscribers 1 --report /tmp/rc-reports/publish-rc-client-1sub --server-pid 4703 --cpu 1 --json --no-progress
