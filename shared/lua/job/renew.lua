-- KEYS[4] the lease index. ARGV: owner, lease seconds, job id. Returns 1 renewed, 2 renewed but
-- cancel asked, 0 lost the job (running under another owner), 3 not running (still queued: not
-- claimed yet, or sent back; or ended). Renewing also puts the job back in the index if its
-- entry went missing, and renews a queued job's hold (see HOLD).
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' and redis.call('HGET', KEYS[1], 'held_by') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'held_until', tostring(now_seconds() + tonumber(ARGV[2])))
end
if status ~= 'running' then return 3 end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local lease_until = now_seconds() + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'lease_until', tostring(lease_until))
index_lease(KEYS[4], ARGV[3], lease_until)
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 2 end
return 1
