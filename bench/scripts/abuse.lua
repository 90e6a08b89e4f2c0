-- wrk script of `cargo xtask bench abuse`: one user's bulk writes, the same body again and again.
--
--   wrk -t T -c C -d D -s abuse.lua http://127.0.0.1:PORT -- bulk TOKENS_FILE THREADS BODY_FILE
--
-- TOKENS_FILE holds the abuser's token (its first line counts); BODY_FILE the bulk body
-- the bench sized from the service's limits. Each thread reads both once and sends the same
-- pre-built request: the load generator must not be what limits the abuse.
-- 429 (the service refusing the user's excess concurrent writes) is an expected answer and is
-- counted apart from errors. done() prints the `BENCH key=value ...` line of load.lua with
-- `refused=N` and `statuses=STATUS:COUNT,...` (every answer ≥ 400) added; its http_errors
-- excludes the 429s.

local threads = {}

function setup(thread)
   threads[#threads + 1] = thread
end

local request_text
refused = 0
failed = 0
statuses = {}

function init(args)
   local token = io.lines(args[2])()
   assert(token and #token > 0, "no token in " .. args[2])
   local file = assert(io.open(args[4], "rb"))
   local body = file:read("*a")
   file:close()
   request_text = "PUT /api/v1/users/me/settings HTTP/1.1\r\nHost: " .. wrk.headers["Host"]
      .. "\r\nAuthorization: Bearer " .. token
      .. "\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

function request()
   return request_text
end

function response(status, headers, body)
   if status == 429 then
      refused = refused + 1
   elseif status >= 400 then
      failed = failed + 1
   end
   if status >= 400 then
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local total_refused, total_failed, by_status = 0, 0, {}
   for _, thread in ipairs(threads) do
      total_refused = total_refused + thread:get("refused")
      total_failed = total_failed + thread:get("failed")
      for status, count in pairs(thread:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + count
      end
   end
   local listed = {}
   for status, count in pairs(by_status) do
      listed[#listed + 1] = status .. ":" .. count
   end
   table.sort(listed)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d bytes=%d http_errors=%d refused=%d connect_errors=%d "
         .. "read_errors=%d write_errors=%d timeouts=%d p50_us=%d p90_us=%d p99_us=%d "
         .. "p999_us=%d max_us=%d mean_us=%.1f statuses=%s\n",
      summary.requests, summary.duration, summary.bytes, total_failed, total_refused,
      e.connect, e.read, e.write, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
      table.concat(listed, ",")))
end
