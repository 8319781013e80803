-- KEYS[4] the lease index, KEYS[5] optionally the in-flight set of the admission queued before
-- this claim on the same pipeline.
-- ARGV: owner, lease seconds, max deliveries, started_at, status payload, ttl, begin ('1' to
-- begin the first attempt), job id, then optionally the call id that must be in KEYS[5].
-- Returns {outcome, attempt number, the record after the claim}; outcome is claimed | finished |
-- busy | missing | cancel | exhausted | unadmitted (the admission failed: nothing changed). For
-- cancel and exhausted the caller owns the job and must finish it. Claiming also begins the first
-- attempt (see BEGIN_ATTEMPT), saving the worker a round trip before its call to Claude; the
-- record spares it another.
local function answer(outcome, attempt)
  return {outcome, attempt, redis.call('HGETALL', KEYS[1])}
end
if ARGV[9] and not redis.call('ZSCORE', KEYS[5], ARGV[9]) then return {'unadmitted', 0, {}} end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0, {}} end
if status ~= 'queued' and status ~= 'running' then return answer('finished', 0) end
local now = now_seconds()
if status == 'running' and tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') > now then
  return answer('busy', 0)
end
local lease_until = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'running', 'owner', ARGV[1],
  'lease_until', tostring(lease_until), 'token_seq', '0')
redis.call('HDEL', KEYS[1], 'held_by', 'held_until')
index_lease(KEYS[4], ARGV[8], lease_until)
carry_usage()
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return answer('cancel', 0) end
if redis.call('HINCRBY', KEYS[1], 'deliveries', 1) > tonumber(ARGV[3]) then
  return answer('exhausted', 0)
end
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[4])
append('status', ARGV[5], ARGV[6])
if ARGV[7] ~= '1' then return answer('claimed', 0) end
return answer('claimed', begin_attempt(ARGV[6]))
