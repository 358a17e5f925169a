# attempt 1: bench exit 0, host.other_busy_cores 0.2359247916338747 (idle check before: 0.014)
taskset -c 0 peer-tokio-ws --port 18900 --threads 1
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18900/connection/websocket --subscribers 10000 --channels 1000 --publishers 1 --rate 2000 --pace even --size 100 -d 10 --conns-per-addr 5000 --server-pid 5271 --cpu 1 --json --no-progress
# attempt 2: bench exit 0, host.other_busy_cores 0.8457906708189601 (idle check before: 0.012)
taskset -c 0 peer-tokio-ws --port 18903 --threads 1
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18903/connection/websocket --subscribers 10000 --channels 1000 --publishers 1 --rate 2000 --pace even --size 100 -d 10 --conns-per-addr 5000 --server-pid 5396 --cpu 1 --json --no-progress
# attempt 3: bench exit 0, host.other_busy_cores 1.1665893675662442 (idle check before: 0.012)
taskset -c 0 peer-tokio-ws --port 18906 --threads 1
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18906/connection/websocket --subscribers 10000 --channels 1000 --publishers 1 --rate 2000 --pace even --size 100 -d 10 --conns-per-addr 5000 --server-pid 8192 --cpu 1 --json --no-progress
# attempt 4: bench exit 0, host.other_busy_cores 0 (idle check before: 0.010)
taskset -c 0 peer-tokio-ws --port 18909 --threads 1
taskset -c 1 ringcast-bench fanout --url ws://127.0.0.1:18909/connection/websocket --subscribers 10000 --channels 1000 --publishers 1 --rate 2000 --pace even --size 100 -d 10 --conns-per-addr 5000 --server-pid 9495 --cpu 1 --json --no-progress
