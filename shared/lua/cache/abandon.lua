-- KEYS[1] a request's flight. ARGV: the job id it should name. Frees the flight of a leader
-- that is gone — only if it still names that leader: a new leader may have taken it since.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
