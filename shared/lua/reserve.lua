-- KEYS: spend hashes. ARGV: amount, ttl, then one limit per key ('' for none). Reserves a
-- batch's total worst case at once (a single job's is reserved by SUBMIT). Returns 0, or the
-- 1-based index of the first window it does not fit.
return reserve_budget(1, tonumber(ARGV[1]), 3, ARGV[2])
