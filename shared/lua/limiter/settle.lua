-- ARGV: reserved input, used input, reserved output, used output, call id. Gives back what a
-- call did not use (or takes what it used beyond its reservation) and frees its in-flight slot.
level['itpm'] = level['itpm'] + tonumber(ARGV[1]) - tonumber(ARGV[2])
level['otpm'] = level['otpm'] + tonumber(ARGV[3]) - tonumber(ARGV[4])
for _, n in ipairs(names) do
  local limit = num(n, 0)
  if limit > 0 then level[n] = math.min(limit, level[n]) end
end
save()
redis.call('ZREM', KEYS[2], ARGV[5])
return 1
