-- The limiter's prelude. KEYS[1]: one model's hash of limits and levels. Every bucket refills
-- by the time elapsed on Redis's clock, so every worker on every host sees one state; a limit
-- of 0 means "not known yet": that bucket admits freely until the answers' headers teach it.
local now = now_seconds()
local h = redis.call('HGETALL', KEYS[1])
local s = {}
for i = 1, #h, 2 do s[h[i]] = h[i + 1] end
local function num(name, default) return tonumber(s[name] or default) end
local names = {'rpm', 'itpm', 'otpm'}
local level = {}
local last = num('ts', now)
for _, n in ipairs(names) do
  local limit = num(n, 0)
  local current = num(n .. '_level', limit)
  if limit > 0 then current = math.min(limit, current + (now - last) * limit / 60) end
  level[n] = current
end
local function save()
  for _, n in ipairs(names) do redis.call('HSET', KEYS[1], n .. '_level', tostring(level[n])) end
  redis.call('HSET', KEYS[1], 'ts', tostring(now))
end
