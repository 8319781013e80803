-- KEYS[4] the job's flight ('' for none), KEYS[5…] its spend hashes. ARGV: done payload,
-- finished_at, ttl, job id. A queued job is cancelled here and now (its budget reservation
-- released, its flight freed so identical requests lead again); a running one is flagged for
-- its worker. Returns the status the job had.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[2], 'cancel', '1')
  settle_budget(5)
  end_flight(KEYS[4], ARGV[4])
  append('done', ARGV[1], ARGV[3])
elseif status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
end
return status
