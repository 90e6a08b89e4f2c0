-- GCRA (generic cell rate algorithm) for one key, run atomically by the store.
--
-- KEYS[1]  the counter of one user and kind
-- ARGV[1]  emission interval in microseconds: one request comes back every interval
-- ARGV[2]  limit: the burst, i.e. how many requests may be spent at once
-- ARGV[3]  cost: how many requests this one counts as (all are allowed, or none is counted)
--
-- The key holds the theoretical arrival time (TAT, microseconds of the store's clock): the
-- instant at which the whole quota is available again. It expires at that instant, so an idle
-- user costs the store nothing. The store's own clock (TIME) is used so that every instance of
-- the service agrees on "now".
--
-- Returns {allowed (1|0), remaining, retry_after_us}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3]) or 1
local capacity = interval * limit

local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local ahead = tat + interval * cost - now
if ahead > capacity then
  return {0, 0, ahead - capacity}
end
-- %.0f: an exact integer (a Lua number is a double; tostring would round to 14 digits).
redis.call('SET', KEYS[1], string.format('%.0f', now + ahead), 'PX', math.ceil(ahead / 1000))
return {1, math.floor((capacity - ahead) / interval), 0}
