-- KEYS[4] the lease index, KEYS[5] the job's queue list. ARGV: owner, status payload, ttl, job
-- id, Celery message. A worker shutting down hands its job back: queued again with no owner and
-- its message on the queue, in one step; the next attempt tells clients to drop the partial
-- text. Returns 1 or 0.
if not owns(ARGV[1]) then return 0 end
back_to_queue(ARGV[2], ARGV[3], KEYS[4], ARGV[4], KEYS[5], ARGV[5])
return 1
