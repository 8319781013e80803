-- ARGV: ttl, status payload, then field/value pairs. Returns {1 if created else 0, the record's
-- fields and values} — the record so an idempotent repeat needs no second round trip.
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('HGETALL', KEYS[1])} end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
append('status', ARGV[2], ARGV[1])
return {1, {}}
