-- ARGV: owner, usage so far of this delivery (JSON), '1' when it includes the last attempt's
-- output (then that attempt's streamed characters no longer stand for it). Kept so that it
-- survives the worker.
if not owns(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'delivery_usage', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'attempt_pieces', '0') end
return 1
