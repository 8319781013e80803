-- KEYS[4] cached answer, KEYS[5] flight (both '' without the cache), KEYS[6] the queue's list,
-- KEYS[7] the tenant's queued set and KEYS[8] everyone's ('' for no cap), then the spend hashes
-- of the payer's budget windows (see `budgets`).
-- ARGV: ttl, status payload, job id, flight ttl, Celery message, tenant cap, total cap, the
-- job's worst-case cost, the spend hashes' ttl, then one budget limit per spend hash ('' for
-- none), then field/value pairs.
-- Records a new job and queues its message in one step (see `taskwire`), unless the job exists
-- (an idempotent repeat), the answer is cached, an identical request is in flight, a queue cap
-- is reached or the cost does not fit a budget; a recorded job has its worst case reserved in
-- every budget window. Returns {'exists', record} | {'hit', answer} | {'follow', leader's job
-- id} | {'full', 'tenant' or 'total'} | {'budget', index of the window} | {'created'}.
-- Unlike the others it spans keys of several hash tags: Sidecar's store is one Redis (not a
-- Cluster), as Celery's Redis broker requires anyway.
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists', redis.call('HGETALL', KEYS[1])} end
if KEYS[4] ~= '' then
  local answer = redis.call('GET', KEYS[4])
  if answer then return {'hit', answer} end
  local leader = redis.call('GET', KEYS[5])
  if leader then return {'follow', leader} end
end
if KEYS[7] ~= '' then
  if redis.call('ZCARD', KEYS[7]) >= tonumber(ARGV[6]) then return {'full', 'tenant'} end
  if redis.call('ZCARD', KEYS[8]) >= tonumber(ARGV[7]) then return {'full', 'total'} end
end
local refused = reserve_budget(9, tonumber(ARGV[8]), 10, ARGV[9])
if refused > 0 then return {'budget', refused} end
if KEYS[7] ~= '' then
  local now = now_seconds()
  for i = 7, 8 do
    redis.call('ZADD', KEYS[i], now, ARGV[3])
    redis.call('EXPIRE', KEYS[i], ARGV[1])
  end
end
if KEYS[4] ~= '' then redis.call('SET', KEYS[5], ARGV[3], 'EX', ARGV[4]) end
redis.call('HSET', KEYS[1], unpack(ARGV, #KEYS + 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
append('status', ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[6], ARGV[5])
return {'created'}
