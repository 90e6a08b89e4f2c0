-- wrk script of `cargo xtask bench`: one scenario per run, tokens rotated across users.
--
--   wrk -t T -c C -d D -s load.lua http://127.0.0.1:PORT -- MODE [TOKENS_FILE] [THREADS]
--
-- MODE: live (GET /health/live), prefs (GET preferences), prefs-warm (GET preferences,
-- walking the tokens in order: each thread its share, to fill the cache), effective and
-- effective-warm (the same for the effective view of device `tv`), get (GET one of
-- the 19 plain settings), list (GET every setting), put (PUT a plain JSON setting whose value
-- changes every time), put-secret (PUT an encrypted setting).
-- TOKENS_FILE holds one token per line. Requests are pre-built per token where the path is
-- fixed, and otherwise concatenated from pre-built pieces: wrk.format() per request would cost
-- the load generator CPU that the service needs (wrk shares the machine with it).
-- done() prints one machine-readable `BENCH key=value ...` line for the bench.

local thread_number = 0

function setup(thread)
   thread:set("thread_id", thread_number)
   thread_number = thread_number + 1
end

local mode, host, counter, step, position
-- Per token: the whole request (fixed paths), or the headers after the request line.
local whole, tail, count

local function read_tokens(file)
   local lines = {}
   for line in io.lines(file) do
      if #line > 0 then
         lines[#lines + 1] = "Authorization: Bearer " .. line .. "\r\n"
      end
   end
   assert(#lines > 0, "no tokens in " .. file)
   return lines
end

function init(args)
   mode = args[1]
   local id = thread_id or 0
   host = "Host: " .. wrk.headers["Host"] .. "\r\n"
   if args[2] then
      local auth = read_tokens(args[2])
      count = #auth
      whole, tail = {}, {}
      local paths = {
         list = "/api/v1/users/me/settings",
         effective = "/api/v1/users/me/effective?device=tv",
         ["effective-warm"] = "/api/v1/users/me/effective?device=tv",
      }
      local path = paths[mode] or "/api/v1/users/me/preferences"
      local fixed = paths[mode] ~= nil or mode == "prefs" or mode == "prefs-warm"
      for i, header in ipairs(auth) do
         if fixed then
            whole[i] = "GET " .. path .. " HTTP/1.1\r\n" .. host .. header .. "\r\n"
         else
            tail[i] = " HTTP/1.1\r\n" .. host .. header
         end
      end
   end
   step = tonumber(args[3] or "1")
   position = id
   math.randomseed(os.time() * 1000 + id)
   -- Distinct values across threads, so every write changes the row.
   counter = id * 100000000 + math.random(1, 10000000)
end

local function pick()
   if mode == "prefs-warm" or mode == "effective-warm" then
      position = position + step
      return (position % count) + 1
   end
   return math.random(count)
end

local function setting_key()
   return string.format("ui.bench.s%02d", math.random(19))
end

local function put(path, body)
   return "PUT " .. path .. tail[pick()]
      .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

local live = nil

function request()
   counter = counter + 1
   if mode == "live" then
      live = live or ("GET /health/live HTTP/1.1\r\n" .. host .. "\r\n")
      return live
   elseif whole and whole[1] then
      return whole[pick()]
   elseif mode == "get" then
      return "GET /api/v1/users/me/settings/" .. setting_key() .. tail[pick()] .. "\r\n"
   elseif mode == "put" then
      return put("/api/v1/users/me/settings/" .. setting_key(),
         string.format('{"value":{"enabled":true,"level":%d,"label":"written by wrk"},'
            .. '"category":"ui","data_type":"json"}', counter))
   elseif mode == "put-secret" then
      return put("/api/v1/users/me/settings/integrations.bench.secret",
         string.format('{"value":{"api_key":"bench-%d"},"category":"integrations",'
            .. '"data_type":"encrypted"}', counter))
   end
   error("unknown mode " .. tostring(mode))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d bytes=%d http_errors=%d connect_errors=%d "
         .. "read_errors=%d write_errors=%d timeouts=%d p50_us=%d p90_us=%d p99_us=%d "
         .. "p999_us=%d max_us=%d mean_us=%.1f\n",
      summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read,
      e.write, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
