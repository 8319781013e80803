"""Lua for the shared rate limiter: continuously refilling buckets per model (requests, input
tokens, output tokens per minute), a cap on requests in flight, and a cool-down after a 429.

One hash per model holds limits and levels; every script refills by the time elapsed on Redis's
clock, so every worker on every host sees one state. A limit of 0 means "not known yet": that
bucket admits freely until the answers' rate-limit headers teach the real limit.
"""

from __future__ import annotations

_REFILL = """
local now = (function() local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000 end)()
local h = redis.call('HGETALL', KEYS[1])
local s = {}
for i = 1, #h, 2 do s[h[i]] = h[i + 1] end
local function num(name, default) return tonumber(s[name] or default) end
local names = {'rpm', 'itpm', 'otpm'}
local level = {}
local last = num('ts', now)
for _, n in ipairs(names) do
  local limit = num(n, 0)
  local current = num(n .. '_level', limit)
  if limit > 0 then current = math.min(limit, current + (now - last) * limit / 60) end
  level[n] = current
end
local function save()
  for _, n in ipairs(names) do redis.call('HSET', KEYS[1], n .. '_level', tostring(level[n])) end
  redis.call('HSET', KEYS[1], 'ts', tostring(now))
end
"""

# KEYS[2]: the model's in-flight set (member = call id, score = when to presume it dead);
# KEYS[3]: its set of calls waiting for capacity.
# ARGV: input tokens, output tokens (max_tokens), reserve share (kept back from this priority),
# then configured rpm, itpm, otpm, max in flight (used only while the hash holds none), then
# the call id, how long it may hold its slot, 1 to probe while limits are unknown, and
# optionally how many requests the call counts as (a client's batch; 1 when absent).
# Returns {1, 0, ''} admitted, or {0, seconds to wait, reason}.
ADMIT = _REFILL + """
local sig = ARGV[4] .. '/' .. ARGV[5] .. '/' .. ARGV[6] .. '/' .. ARGV[7]
if not s['configured'] or (s['source'] == 'settings' and s['config_sig'] ~= sig) then
  redis.call('HSET', KEYS[1], 'configured', '1', 'rpm', ARGV[4], 'itpm', ARGV[5],
    'otpm', ARGV[6], 'max_inflight', ARGV[7], 'source', 'settings', 'config_sig', sig)
  s['rpm'], s['itpm'], s['otpm'], s['max_inflight'] = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  for _, n in ipairs(names) do level[n] = math.min(level[n], tonumber(s[n])) end
  for _, n in ipairs(names) do if level[n] == 0 then level[n] = tonumber(s[n]) end end
end
local cool = num('cooldown_until', 0)
if cool > now then save(); return {0, tostring(cool - now), 'cooldown'} end
local need = {rpm = tonumber(ARGV[11] or '1'), itpm = tonumber(ARGV[1]),
  otpm = tonumber(ARGV[2])}
local share = tonumber(ARGV[3])
-- Batch work queues behind the batch work already waiting: its wait counts their demand too,
-- so a long queue is waited out in Redis (deferred), not by polling. Interactive work draws on
-- the reserve and does not queue behind batch.
local ahead = 0
if share > 0 then
  ahead = redis.call('ZCARD', KEYS[3])
  if redis.call('ZSCORE', KEYS[3], ARGV[8]) then ahead = ahead - 1 end
end
local wait, reason = 0, ''
for _, n in ipairs(names) do
  local limit = num(n, 0)
  if limit > 0 then
    local want = math.min(need[n], limit * (1 - share)) + limit * share
    if level[n] < want then
      local w = (want - level[n] + ahead * need[n]) * 60 / limit
      if w > wait then wait, reason = w, n end
    end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local inflight = redis.call('ZCARD', KEYS[2])
local cap = num('max_inflight', 0)
-- Limits unknown yet: one probe call at a time until an answer's headers teach them.
if s['source'] == 'settings' and num('rpm', 0) + num('itpm', 0) + num('otpm', 0) == 0
  and tonumber(ARGV[10]) == 1 then cap = 1 end
if wait == 0 and cap > 0 and inflight >= cap then wait, reason = 0.05, 'inflight' end
if wait > 0 then
  save()
  redis.call('HINCRBY', KEYS[1], 'waits', 1)
  return {0, tostring(wait), reason}
end
for _, n in ipairs(names) do level[n] = level[n] - need[n] end
save()
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[9]), ARGV[8])
redis.call('HINCRBY', KEYS[1], 'admitted', 1)
return {1, '0', ''}
"""

# ARGV: reserved input, used input, reserved output, used output, call id. Gives back what a
# call did not use (or takes what it used beyond its reservation) and frees its in-flight slot.
SETTLE = _REFILL + """
level['itpm'] = level['itpm'] + tonumber(ARGV[1]) - tonumber(ARGV[2])
level['otpm'] = level['otpm'] + tonumber(ARGV[3]) - tonumber(ARGV[4])
for _, n in ipairs(names) do
  local limit = num(n, 0)
  if limit > 0 then level[n] = math.min(limit, level[n]) end
end
save()
redis.call('ZREM', KEYS[2], ARGV[5])
return 1
"""

# ARGV: for rpm, itpm, otpm in turn: limit, remaining ('' when the header was absent).
# The upstream's own figures win over configured guesses; an upstream that sends none (a proxy)
# ends the probing, and the configured limits (or none) apply.
LEARN = _REFILL + """
if ARGV[1] == '' and ARGV[3] == '' and ARGV[5] == '' then
  if s['source'] == 'settings' then redis.call('HSET', KEYS[1], 'source', 'no-headers') end
  return 0
end
for i, n in ipairs(names) do
  local limit, remaining = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if limit and limit > 0 then
    if tonumber(s[n] or '0') == 0 then level[n] = limit end
    redis.call('HSET', KEYS[1], n, tostring(limit), 'source', 'headers', 'configured', '1')
    s[n] = tostring(limit)
    level[n] = math.min(level[n], limit)
    if remaining then level[n] = math.min(level[n], remaining) end
  end
end
save()
return 1
"""

# ARGV: seconds. Every worker waits until the cool-down set by a 429's retry-after is over.
COOLDOWN = _REFILL + """
local until_ = now + tonumber(ARGV[1])
if until_ > num('cooldown_until', 0) then
  redis.call('HSET', KEYS[1], 'cooldown_until', tostring(until_))
end
redis.call('HINCRBY', KEYS[1], 'upstream_429', 1)
save()
return 1
"""
