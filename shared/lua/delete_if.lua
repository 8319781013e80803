-- KEYS[1] a key. ARGV: the value it must still hold. Deletes the key only if it still holds
-- that value: a single-flight key still naming the gone leader, a lock still ours — never one
-- that lapsed and was taken since. Returns 1 if deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
