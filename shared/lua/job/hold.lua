-- ARGV: owner, lease seconds. A delivery about to wait for capacity holds the still-queued job:
-- `held_by`/`held_until` (renewed with its lease, see RENEW) tell the unacked sweep that a live
-- worker has its message. Returns the record (empty when the job is missing).
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('HSET', KEYS[1], 'held_by', ARGV[1],
    'held_until', tostring(now_seconds() + tonumber(ARGV[2])))
end
return redis.call('HGETALL', KEYS[1])
