-- KEYS[4] kombu's unacked hash, KEYS[5] its index, KEYS[6] the deferred set, KEYS[7] the job's
-- queue list. ARGV: delivery tag, the entry as it was read, a fresh Celery message for the job.
-- A message a worker took but never acknowledged waits for Celery's visibility timeout (hours)
-- before it is delivered again. When its job is still queued and no live worker holds it (no
-- hold renewed, not deferred) — its worker died between taking the message and claiming the
-- job — it is sent again now, and the unacked entry removed (as kombu's own restore would do).
-- Returns 1 if sent again.
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' then
  local held = tonumber(redis.call('HGET', KEYS[1], 'held_until') or '0')
  if held > now_seconds() then return 0 end
  if redis.call('ZSCORE', KEYS[6], redis.call('HGET', KEYS[1], 'id')) then return 0 end
  redis.call('HDEL', KEYS[1], 'held_by', 'held_until')
  redis.call('RPUSH', KEYS[7], ARGV[3])
elseif status then
  return 0  -- running (its lease covers it) or ended (its worker will acknowledge it)
end
-- queued and unheld: sent again; missing: nothing to run. Either way the entry goes.
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return status and 1 or 0
