#!lua
-- Record a session under its user, prune ended entries, sign out the oldest beyond the cap:
-- one script rather than MULTI, which would let other callers' commands on the shared
-- pipelined connection fall inside the transaction. Flagged (it writes): a replica refuses it.
-- KEYS[1] the user's index (sorted set of store keys, scored by end of life).
-- ARGV: store key, end of life (ms), prune entries that ended before (ms), index expiry (ms),
--       cap.
-- Returns the store keys evicted beyond the cap (their sessions are the caller's to delete).
local idx = KEYS[1]
redis.call('ZREMRANGEBYSCORE', idx, '-inf', ARGV[3])
redis.call('ZADD', idx, ARGV[2], ARGV[1])
-- NX then GT: GT alone never sets an expiry on a key without one.
redis.call('PEXPIREAT', idx, ARGV[4], 'NX')
redis.call('PEXPIREAT', idx, ARGV[4], 'GT')
local excess = redis.call('ZCARD', idx) - tonumber(ARGV[5])
if excess <= 0 then return {} end
local popped = redis.call('ZPOPMIN', idx, excess)
local evicted = {}
for i = 1, #popped, 2 do evicted[#evicted + 1] = popped[i] end
return evicted
