# attempt 1: bench exit 0, host.other_busy_cores 0.1698486257544565 (idle check before: 0.010)
taskset -c 0 peer-tokio-ws --port 18900 --threads 1
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace burst --size 100 -d 10 --server-pid 14968 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.0710590503221165 (idle check before: 0.005)
taskset -c 0 peer-tokio-ws --port 18903 --threads 1
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18903/connection/websocket --subscribers 1000 --channels 100 --publishers 1 --rate 5000 --pace burst --size 100 -d 10 --server-pid 15847 --cpu 1 --json --no-progress
