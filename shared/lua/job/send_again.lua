-- KEYS[4] the deferred set ('' when the job is not taken from it), KEYS[5] the job's queue
-- list. ARGV: job id, Celery message. Sends a still-queued job to its queue again: one taken
-- from the deferred set when its capacity is due (only the worker whose ZREM wins sends it), or
-- one a stopping worker held unclaimed. Returns 1 if sent.
if KEYS[4] ~= '' and redis.call('ZREM', KEYS[4], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('LPUSH', KEYS[5], ARGV[2])
return 1
