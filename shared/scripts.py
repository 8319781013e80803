"""Lua scripts that change a job's state atomically, each in one round trip.

Every script but SUBMIT touches only one job's keys (record, event log, channel), which share
the job's hash tag. The job record is the authority: a worker may act on a job only while it
holds the record's `owner` token, so a worker presumed dead cannot write after another took over.
Times come from Redis's own clock, so leases do not depend on the hosts' clocks agreeing.
"""

from __future__ import annotations

# KEYS[1] job record, KEYS[2] event log, KEYS[3] channel.
_PRELUDE = """
local function now_seconds()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function append(name, payload, ttl)
  local n = redis.call('LLEN', KEYS[2]) + 1
  local frame = 'id: ' .. n .. '\\nevent: ' .. name .. '\\ndata: ' .. payload .. '\\n\\n'
  redis.call('RPUSH', KEYS[2], frame)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('PUBLISH', KEYS[3], frame)
  return n
end
local function begin_attempt(ttl)
  local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('HSET', KEYS[1], 'attempt_chars', '0')
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
"""

# ARGV: ttl, status payload, then field/value pairs. Returns {1 if created else 0, the record's
# fields and values} — the record so an idempotent repeat needs no second round trip.
CREATE = _PRELUDE + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('HGETALL', KEYS[1])} end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
append('status', ARGV[2], ARGV[1])
return {1, {}}
"""

# KEYS[4] cached answer, KEYS[5] flight (both '' without the cache), KEYS[6] the queue's list,
# KEYS[7] the tenant's queued set and KEYS[8] everyone's ('' for no cap), then the spend hashes
# of the payer's budget windows (see `budgets`).
# ARGV: ttl, status payload, job id, flight ttl, Celery message, tenant cap, total cap, the
# job's worst-case cost, the spend hashes' ttl, then one budget limit per spend hash ('' for
# none), then field/value pairs.
# Records a new job and queues its message in one step (see `taskwire`), unless the job exists
# (an idempotent repeat), the answer is cached, an identical request is in flight, a queue cap
# is reached or the cost does not fit a budget; a recorded job has its worst case reserved in
# every budget window. Returns {'exists', record} | {'hit', answer} | {'follow', leader's job
# id} | {'full', 'tenant' or 'total'} | {'budget', index of the window} | {'created'}.
# Unlike the others it spans keys of several hash tags: Sidecar's store is one Redis (not a
# Cluster), as Celery's Redis broker requires anyway.
SUBMIT = _PRELUDE + """
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
local cost = tonumber(ARGV[8])
for i = 9, #KEYS do
  local limit = ARGV[i + 1]
  if limit ~= '' then
    local used = tonumber(redis.call('HGET', KEYS[i], 'spent') or '0')
      + tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0')
    if used + cost > tonumber(limit) + 1e-12 then return {'budget', i - 8} end
  end
end
for i = 9, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', cost)
  redis.call('EXPIRE', KEYS[i], ARGV[9])
end
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
"""

# ARGV: ttl, token payload ('' for none), done payload, then field/value pairs. A job that is
# finished as it is recorded: a cache hit gets a job of its own, answered from the cache, so no
# caller ever learns the id of the job that produced the answer. Returns 1, or 0 if it exists.
SETTLED = _PRELUDE + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then append('token', ARGV[2], ARGV[1]) end
append('done', ARGV[3], ARGV[1])
return 1
"""

# What a delivery whose worker died had used (`USAGE`, plus the cut-off attempt's streamed text
# at about four characters a token) moves to `carried_usage` when the next delivery claims the
# job, and the finished job's usage includes it: every attempt is billed, even a killed one.
_CARRY = """
local function carry_usage()
  local open = redis.call('HGET', KEYS[1], 'delivery_usage')
  if not open then return end
  local usage = cjson.decode(open)
  local chars = tonumber(redis.call('HGET', KEYS[1], 'attempt_chars') or '0')
  usage['output_tokens'] = (usage['output_tokens'] or 0) + math.ceil(chars / 4)
  local carried = cjson.decode(redis.call('HGET', KEYS[1], 'carried_usage') or '{}')
  for name, count in pairs(usage) do carried[name] = (carried[name] or 0) + count end
  redis.call('HSET', KEYS[1], 'carried_usage', cjson.encode(carried), 'attempt_chars', '0')
  redis.call('HDEL', KEYS[1], 'delivery_usage')
end
"""

# ARGV: owner, lease seconds, max deliveries, started_at, status payload, ttl, begin ('1' to
# begin the first attempt), then optionally a call id that must be in KEYS[4] (the in-flight set
# an admission earlier in the same pipeline put it in).
# Returns {outcome, attempt number, the record after the claim}; outcome is claimed | finished |
# busy | missing | cancel | exhausted | unadmitted (the admission failed: nothing changed). For
# cancel and exhausted the caller owns the job and must finish it. Claiming also begins the first
# attempt (see BEGIN_ATTEMPT), saving the worker a round trip before its call to Claude; the
# record spares it another.
CLAIM = _PRELUDE + _CARRY + """
local function answer(outcome, attempt)
  return {outcome, attempt, redis.call('HGETALL', KEYS[1])}
end
if ARGV[8] and not redis.call('ZSCORE', KEYS[4], ARGV[8]) then return {'unadmitted', 0, {}} end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', 0, {}} end
if status ~= 'queued' and status ~= 'running' then return answer('finished', 0) end
local now = now_seconds()
if status == 'running' and tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') > now then
  return answer('busy', 0)
end
redis.call('HSET', KEYS[1], 'status', 'running', 'owner', ARGV[1],
  'lease_until', tostring(now + tonumber(ARGV[2])), 'token_seq', '0')
carry_usage()
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return answer('cancel', 0) end
if redis.call('HINCRBY', KEYS[1], 'deliveries', 1) > tonumber(ARGV[3]) then
  return answer('exhausted', 0)
end
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[4])
append('status', ARGV[5], ARGV[6])
if ARGV[7] ~= '1' then return answer('claimed', 0) end
return answer('claimed', begin_attempt(ARGV[6]))
"""

# ARGV: owner, ttl. Counts a new upstream call; if the last one streamed text, tells clients to
# drop it. Returns the attempt number, or -1 when the caller lost the job.
BEGIN_ATTEMPT = _PRELUDE + """
if not owns(ARGV[1]) then return -1 end
return begin_attempt(ARGV[2])
"""

# ARGV: owner, usage so far of this delivery (JSON), '1' when it includes the last attempt's
# output (then that attempt's streamed characters no longer stand for it). Kept so that it
# survives the worker.
USAGE = _PRELUDE + """
if not owns(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'delivery_usage', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'attempt_chars', '0') end
return 1
"""

# ARGV: owner, payload, now (ISO), ttl, sequence number of this chunk for this owner, the
# chunk's length in characters (for the usage of an attempt cut off by its worker's death).
# Returns the event id (the last one, for a chunk sent again after a lost reply); -1 lost the
# job; -2 cancelled.
TOKEN = _PRELUDE + """
if not owns(ARGV[1]) then return -1 end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return -2 end
local seq = tonumber(ARGV[5])
if seq <= tonumber(redis.call('HGET', KEYS[1], 'token_seq') or '0') then
  return redis.call('LLEN', KEYS[2])
end
redis.call('HSET', KEYS[1], 'token_seq', seq)
redis.call('HINCRBY', KEYS[1], 'attempt_chars', ARGV[6])
if redis.call('HGET', KEYS[1], 'streamed') ~= '1' then
  redis.call('HSET', KEYS[1], 'streamed', '1')
  redis.call('HSETNX', KEYS[1], 'first_token_at', ARGV[3])
end
return append('token', ARGV[2], ARGV[4])
"""

# ARGV: owner, lease seconds. Returns 1 renewed, 2 renewed but cancel asked, 0 lost the job.
RENEW = _PRELUDE + """
if not owns(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'lease_until', tostring(now_seconds() + tonumber(ARGV[2])))
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 2 end
return 1
"""

# KEYS[4…] the job's spend hashes (its `budget_keys`). ARGV: owner, done payload, ttl, then
# field/value pairs to store. Returns 1, or 0 if not owner.
FINISH = _PRELUDE + """
if not owns(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
settle_budget(4)
redis.call('HDEL', KEYS[1], 'owner', 'lease_until', 'delivery_usage')
redis.call('EXPIRE', KEYS[1], ARGV[3])
append('done', ARGV[2], ARGV[3])
return 1
"""

# KEYS[4…] the job's spend hashes. ARGV: done payload, finished_at, ttl. A queued job is
# cancelled here and now (its budget reservation released); a running one is flagged for its
# worker. Returns the status the job had.
CANCEL = _PRELUDE + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[2], 'cancel', '1')
  settle_budget(4)
  append('done', ARGV[1], ARGV[3])
elseif status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
end
return status
"""

# ARGV: status payload, ttl. Hands back a running job whose lease expired. Returns 1 if the
# caller must enqueue it again, 0 if nothing is to be done.
REQUEUE = _PRELUDE + """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') > now_seconds() then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued')
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
append('status', ARGV[1], ARGV[2])
return 1
"""

# ARGV: owner, status payload, ttl. A worker shutting down hands its job back: queued again,
# with no owner; the next attempt tells clients to drop the partial text. Returns 1 or 0.
RELEASE = _PRELUDE + """
if not owns(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued')
redis.call('HDEL', KEYS[1], 'owner', 'lease_until')
append('status', ARGV[2], ARGV[3])
return 1
"""
