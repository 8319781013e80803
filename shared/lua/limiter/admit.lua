-- KEYS[2]: the model's in-flight set (member = call id, score = when to presume it dead: its
-- holder pushes that on while it lives, see keepalive.lua); KEYS[3]: the calls waiting for
-- capacity (score = when to presume the waiter dead, see wait.lua).
-- ARGV: input tokens, output tokens (max_tokens), reserve share (kept back from this priority),
-- then configured rpm, itpm, otpm, max in flight (used only while the hash holds none), then
-- the call id, how long it may hold its slot unrefreshed, 1 to probe while limits are unknown,
-- and optionally how many requests the call counts as (a client's batch; 1 when absent).
-- Returns {1, 0, ''} admitted, or {0, seconds to wait, reason}.
local sig = ARGV[4] .. '/' .. ARGV[5] .. '/' .. ARGV[6] .. '/' .. ARGV[7]
if not s['configured'] or (s['source'] == 'settings' and s['config_sig'] ~= sig) then
  redis.call('HSET', KEYS[1], 'configured', '1', 'rpm', ARGV[4], 'itpm', ARGV[5],
    'otpm', ARGV[6], 'max_inflight', ARGV[7], 'source', 'settings', 'config_sig', sig)
  s['rpm'], s['itpm'], s['otpm'], s['max_inflight'] = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  s['source'] = 'settings'  -- so the very first call on a fresh hash probes too
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
-- the reserve and does not queue behind batch. A dead waiter stops counting once it lapses.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
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
