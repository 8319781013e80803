-- KEYS[4] the lease index, KEYS[5] the job's queue list. ARGV: status payload, ttl, job id,
-- Celery message. The reaper's step for one job whose lease looked due: a running job whose
-- lease really lapsed goes back to the queue — its record and its message in one step, so a
-- crash between the two cannot leave it queued with no message. An entry that is stale (the job
-- ended, or another worker took it over and renewed) is dropped or put right, never left to
-- hide a live lease. Returns 1 if requeued, else 0.
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' then
  unindex_lease(KEYS[4], ARGV[3])
  return 0
end
local lease_until = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
if lease_until > now_seconds() then
  index_lease(KEYS[4], ARGV[3], lease_until)
  return 0
end
back_to_queue(ARGV[1], ARGV[2], KEYS[4], ARGV[3], KEYS[5], ARGV[4])
return 1
