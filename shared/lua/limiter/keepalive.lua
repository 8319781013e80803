-- KEYS[1]: a model's in-flight set. ARGV: the lease, then the call ids one live process holds.
-- Each is presumed dead one lease from now; XX, so a call settled meanwhile stays gone.
-- Returns how many it moved (those still in flight).
local until_ = now_seconds() + tonumber(ARGV[1])
local held = 0
for i = 2, #ARGV do
  held = held + redis.call('ZADD', KEYS[1], 'XX', 'CH', until_, ARGV[i])
end
return held
