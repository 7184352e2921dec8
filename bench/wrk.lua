-- wrk script for bench/run.sh. Configured through the environment:
--   BENCH_METHOD  GET (default), POST or PUT
--   BENCH_BODY    file whose bytes are the request body (read once; wrk then sends the same
--                 pre-formatted request on every connection, with no Lua work per request)
--   BENCH_CTYPE   Content-Type of the body
--   BENCH_HEADER  one more request header, "Name: value" (If-None-Match for the 304 scenarios)
-- At the end it prints one machine-readable line for run.sh:
--   BENCH <req/s> <p50 ms> <p99 ms> <requests> <non-2xx> <socket errors> <response bytes> <p90 ms> <max ms>
-- (p90 and max last: bench/two-nodes.sh reads the fields before them)

wrk.method = os.getenv("BENCH_METHOD") or "GET"

local body_file = os.getenv("BENCH_BODY") or ""
if body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
end

local ctype = os.getenv("BENCH_CTYPE") or ""
if ctype ~= "" then
  wrk.headers["Content-Type"] = ctype
end

local header = os.getenv("BENCH_HEADER") or ""
local name, value = header:match("^([^:]+):%s*(.*)$")
if name then
  wrk.headers[name] = value
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format("BENCH %.2f %.3f %.3f %d %d %d %d %.3f %.3f\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.bytes,
    latency:percentile(90) / 1000, latency.max / 1000))
end
