-- Redis's own clock, in seconds with microseconds: the one clock of every lease, deadline,
-- heartbeat and bucket, so hosts whose clocks disagree still agree on every decision.
local function now_seconds()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
