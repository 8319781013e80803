-- KEYS[4] the lease index, KEYS[5] the job's flight and KEYS[6] its cached answer ('' when it
-- has none), KEYS[7…] its spend hashes (its `budget_keys`). ARGV: owner, done payload, ttl, job
-- id, the answer to cache ('' for none), the cache's ttl, then field/value pairs to store.
-- Ends the job: outcome stored, budget settled, lease and flight freed, the answer cached for
-- identical requests — all at once, so an identical request either follows this job or finds
-- its answer, never neither. Returns 1, or 0 if not owner.
if not owns(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
settle_budget(7)
redis.call('HDEL', KEYS[1], 'owner', 'lease_until', 'delivery_usage')
redis.call('EXPIRE', KEYS[1], ARGV[3])
unindex_lease(KEYS[4], ARGV[4])
if ARGV[5] ~= '' and KEYS[6] ~= '' and tonumber(ARGV[6]) > 0 then
  redis.call('SET', KEYS[6], ARGV[5], 'EX', ARGV[6])
end
end_flight(KEYS[5], ARGV[4])
append('done', ARGV[2], ARGV[3])
return 1
