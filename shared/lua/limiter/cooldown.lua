-- ARGV: seconds. Every worker waits until the cool-down set by a 429's retry-after is over.
local until_ = now + tonumber(ARGV[1])
if until_ > num('cooldown_until', 0) then
  redis.call('HSET', KEYS[1], 'cooldown_until', tostring(until_))
end
redis.call('HINCRBY', KEYS[1], 'upstream_429', 1)
save()
return 1
