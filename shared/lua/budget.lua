-- Budget windows (see `shared.budgets`): spend hashes of `spent` and `reserved` dollars.

-- Reserves `amount` in every spend hash KEYS[first..], whose limits are ARGV[limits..] in the
-- same order ('' for none), all or none. Returns 0, or the 1-based index of the first window
-- the amount does not fit.
local function reserve_budget(first, amount, limits, ttl)
  for i = first, #KEYS do
    local limit = ARGV[limits + i - first]
    if limit ~= '' then
      local used = tonumber(redis.call('HGET', KEYS[i], 'spent') or '0')
        + tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0')
      if used + amount > tonumber(limit) + 1e-12 then return i - first + 1 end
    end
  end
  for i = first, #KEYS do
    redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', amount)
    redis.call('EXPIRE', KEYS[i], ttl)
  end
  return 0
end
