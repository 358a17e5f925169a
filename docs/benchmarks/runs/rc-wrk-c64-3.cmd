# attempt 1: bench exit 0, host.other_busy_cores 0.012783426029503905 (idle check before: 0.010)
taskset -c 0 ringcast serve --port 18900 --address 127.0.0.1 --shards 1 --no-pin --insecure --api-port 18901 --publisher-port 18902 --api-key bench-key
taskset -c 1 wrk -t1 -c64 -d10s -s bench/wrk/publish.lua http://127.0.0.1:18901/api/publish
