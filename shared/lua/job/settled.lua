-- ARGV: ttl, token payload ('' for none), done payload, then field/value pairs. A job that is
-- finished as it is recorded: a cache hit gets a job of its own, answered from the cache, so no
-- caller ever learns the id of the job that produced the answer. Returns 1, or 0 if it exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then append('token', ARGV[2], ARGV[1]) end
append('done', ARGV[3], ARGV[1])
return 1
