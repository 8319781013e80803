-- ARGV: for rpm, itpm, otpm in turn: limit, remaining ('' when the header was absent).
-- The upstream's own figures win over configured guesses; an upstream that sends none (a proxy)
-- ends the probing, and the configured limits (or none) apply.
if ARGV[1] == '' and ARGV[3] == '' and ARGV[5] == '' then
  if s['source'] == 'settings' then redis.call('HSET', KEYS[1], 'source', 'no-headers') end
  return 0
end
for i, n in ipairs(names) do
  local limit, remaining = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if limit and limit > 0 then
    if tonumber(s[n] or '0') == 0 then level[n] = limit end
    redis.call('HSET', KEYS[1], n, tostring(limit), 'source', 'headers', 'configured', '1')
    s[n] = tostring(limit)
    level[n] = math.min(level[n], limit)
    if remaining then level[n] = math.min(level[n], remaining) end
  end
end
save()
return 1
