# attempt 1: bench exit 0, host.other_busy_cores 0 (idle check before: 0.004)
taskset -c 0 peer-tokio-ws --port 18960 --threads 1
taskset -c 1 ringcast-bench publish --url ws://127.0.0.1:18960/connection/websocket --size 100 -d 10 --via client -w 256 --subscribers 1 --report /tmp/rc-reports/publish-peer-client-1sub --server-pid 4872 --cpu 1 --json --no-progress
