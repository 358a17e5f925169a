# attempt 1: bench exit 0, host.other_busy_cores 0.022073847005222552 (idle check before: 0.005)
taskset -c 0 ringcast echo --port 18900 --address 127.0.0.1 --shards 1 --no-pin
taskset -c 1 ringcast-bench hold --url ws://127.0.0.1:18900/ --protocol raw -n 15000 -d 10 --conns-per-addr 5000 --server-pid 12513 --cpu 1 --json --no-progress
