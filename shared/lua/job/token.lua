-- ARGV: owner, payload, now (ISO), ttl, sequence number of this chunk for this owner, how many
-- upstream deltas the chunk merges (for the usage of an attempt cut off by its worker's death), the
-- highest event id this owner was answered with so far (0 for none), the attempt's whole text
-- so far including this chunk (sent only along a resend; '' otherwise). A payload of '' stands
-- for deltas that streamed no text (a tool call's other fields): they are only counted.
-- Returns the event id (the last one, for a chunk sent again after a lost reply); -1 lost the
-- job; -2 cancelled; -3 the log is shorter than an id the owner was answered with (Redis lost
-- its last writes: a restart from an `everysec` AOF, or a failover) — send again with the
-- attempt's whole text.
if not owns(ARGV[1]) then return -1 end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return -2 end
local seq = tonumber(ARGV[5])
local acked = tonumber(ARGV[7] or '0')
local length = redis.call('LLEN', KEYS[2])
if ARGV[2] == '' then
  if seq > tonumber(redis.call('HGET', KEYS[1], 'token_seq') or '0') then
    redis.call('HSET', KEYS[1], 'token_seq', seq)
    redis.call('HINCRBY', KEYS[1], 'attempt_pieces', ARGV[6])
  end
  return length
end
if length < acked then
  -- Ids up to `acked` may be on a client's screen: never reuse them for other frames. Fill the
  -- gap with status frames, tell clients to drop the attempt's text, then send all of it again.
  if not ARGV[8] or ARGV[8] == '' then return -3 end
  for _ = length + 1, acked do
    append('status', '{"status":"running","reason":"log_repaired"}', ARGV[4])
  end
  append('reset', '{"reason":"log_repaired"}', ARGV[4])
  redis.call('HSET', KEYS[1], 'token_seq', seq, 'streamed', '1')
  redis.call('HINCRBY', KEYS[1], 'attempt_pieces', ARGV[6])
  return append('token', ARGV[8], ARGV[4])
end
if seq <= tonumber(redis.call('HGET', KEYS[1], 'token_seq') or '0') then
  return length
end
redis.call('HSET', KEYS[1], 'token_seq', seq)
redis.call('HINCRBY', KEYS[1], 'attempt_pieces', ARGV[6])
if redis.call('HGET', KEYS[1], 'streamed') ~= '1' then
  redis.call('HSET', KEYS[1], 'streamed', '1')
  redis.call('HSETNX', KEYS[1], 'first_token_at', ARGV[3])
end
return append('token', ARGV[2], ARGV[4])
