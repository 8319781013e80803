-- What every script of a job shares. KEYS[1] the job's record, KEYS[2] its event log,
-- KEYS[3] its channel; the record is the authority, and a worker may write only while it holds
-- the record's `owner` token.

-- One SSE frame, appended to the log and announced on the channel; its id is its 1-based
-- position in the log (`shared.events.frame` builds the same bytes in Python).
local function append(name, payload, ttl)
  local n = redis.call('LLEN', KEYS[2]) + 1
  local frame = 'id: ' .. n .. '\nevent: ' .. name .. '\ndata: ' .. payload .. '\n\n'
  redis.call('RPUSH', KEYS[2], frame)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('PUBLISH', KEYS[3], frame)
  return n
end

-- Counts a new upstream call; if the last one streamed text, tells clients to drop it.
local function begin_attempt(ttl)
  local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('HSET', KEYS[1], 'attempt_pieces', '0')
  if redis.call('HGET', KEYS[1], 'streamed') == '1' then
    redis.call('HSET', KEYS[1], 'streamed', '0')
    append('reset', '{"attempt":' .. attempt .. '}', ttl)
  end
  return attempt
end

-- Moves the job's reserved worst case to its real cost in every budget window it reserved in
-- (KEYS[first..]); once per job, whichever script ends it.
local function settle_budget(first)
  if #KEYS < first or redis.call('HSETNX', KEYS[1], 'budget_settled', '1') == 0 then return end
  local reserved = tonumber(redis.call('HGET', KEYS[1], 'budget_reserved') or '0')
  local cost = tonumber(redis.call('HGET', KEYS[1], 'cost_usd') or '0')
  for i = first, #KEYS do
    redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', -reserved)
    redis.call('HINCRBYFLOAT', KEYS[i], 'spent', cost)
  end
end

local function owns(owner)
  return redis.call('HGET', KEYS[1], 'owner') == owner
    and redis.call('HGET', KEYS[1], 'status') == 'running'
end

-- The lease index (a sorted set of running job ids by when their lease ends) follows the
-- record: written by the same scripts that take, renew, hand back or end a lease, so no worker
-- can drop another's entry, and a renewal puts back an entry that went missing.
local function index_lease(leases, job_id, lease_until)
  if leases ~= '' then redis.call('ZADD', leases, lease_until, job_id) end
end

local function unindex_lease(leases, job_id)
  if leases ~= '' then redis.call('ZREM', leases, job_id) end
end

-- A running job goes back to its queue: queued with no owner, its lease unindexed, its Celery
-- message pushed, all in the caller's one step (so a crash cannot leave it queued with no
-- message). The next attempt tells clients to drop the partial text.
local function back_to_queue(payload, ttl, leases, job_id, queue, message)
  redis.call('HSET', KEYS[1], 'status', 'queued')
  redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
  append('status', payload, ttl)
  unindex_lease(leases, job_id)
  redis.call('LPUSH', queue, message)
end

-- The job's single-flight key names it as the leader of identical requests: free it when the
-- job ends (only if it is still this job's — a lapsed flight may have a new leader).
local function end_flight(flight, job_id)
  if flight ~= '' and redis.call('GET', flight) == job_id then redis.call('DEL', flight) end
end
