-- What a delivery whose worker died had used (`USAGE`, plus the cut-off attempt's output: one
-- token for each delta of the upstream's stream it counted) moves to `carried_usage` when the
-- next delivery claims the job, and the finished job's usage includes it: every attempt is
-- billed, even a killed one.
local function carry_usage()
  local open = redis.call('HGET', KEYS[1], 'delivery_usage')
  local pieces = tonumber(redis.call('HGET', KEYS[1], 'attempt_pieces') or '0')
  if not open and pieces == 0 then return end
  local usage = cjson.decode(open or '{}')
  usage['output_tokens'] = (usage['output_tokens'] or 0) + pieces
  local carried = cjson.decode(redis.call('HGET', KEYS[1], 'carried_usage') or '{}')
  for name, count in pairs(usage) do carried[name] = (carried[name] or 0) + count end
  redis.call('HSET', KEYS[1], 'carried_usage', cjson.encode(carried), 'attempt_pieces', '0')
  redis.call('HDEL', KEYS[1], 'delivery_usage')
end
