-- wrk script: the server API's publish over keep-alive connections.
--
--   API_KEY=KEY CHANNEL=wrk-0 SIZE=100 PIPELINE=1 \
--     wrk -t1 -c16 -d10s -s bench/wrk/publish.lua http://127.0.0.1:9000/api/publish
--
-- Every request is `POST /api/publish` with `X-API-Key` and the body
-- {"channel":CHANNEL,"data":{"x":"xxx…"}} (data about SIZE bytes).
-- PIPELINE=n sends n requests back to back per round trip (HTTP/1.1
-- pipelining). At the end one line `WRKJSON {...}` sums up the run for
-- scripts/bench-run.sh (requests, non-2xx responses, socket errors,
-- latency percentiles in µs — per round trip when pipelining).

local key = os.getenv("API_KEY") or "bench-key"
local channel = os.getenv("CHANNEL") or "wrk-0"
local size = tonumber(os.getenv("SIZE") or "100")
local depth = tonumber(os.getenv("PIPELINE") or "1")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = key
local pad = math.max(size - 8, 0)
wrk.body = '{"channel":"' .. channel .. '","data":{"x":"' .. string.rep("x", pad) .. '"}}'

local batch
function init(args)
  local one = wrk.format()
  batch = string.rep(one, depth)
end

function request()
  return batch
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"non_2xx":%d,' ..
    '"socket_errors":%d,"timeouts":%d,"pipeline":%d,' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, e.status,
    e.connect + e.read + e.write, e.timeout, depth,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
