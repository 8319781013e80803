-- ARGV: owner, ttl. Counts a new upstream call; if the last one streamed text, tells clients to
-- drop it. Returns the attempt number, or -1 when the caller lost the job.
if not owns(ARGV[1]) then return -1 end
return begin_attempt(ARGV[2])
