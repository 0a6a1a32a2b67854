#!lua
-- Load a session and slide its idle expiry, in one round trip.
-- The shebang makes it a script that may write, which a replica refuses (READONLY) before
-- running it: an (empty, syncing) replica reached under the master's name during a failover
-- must not answer "no such session" (a bench cluster logged three users out that way).
-- KEYS[1] session hash; ARGV[1] idle timeout (ms).
-- Returns {created, end of life, field, value, ...} with the data fields only (metadata such
-- as the commit tokens stays in Redis: less to send and parse per request), or false when
-- absent or past its absolute end of life. A hash without its end of life is corrupt: it is
-- returned with '' there (the client treats it as missing) and left to idle out.
local key = KEYS[1]
local fields = redis.call('HGETALL', key)
if #fields == 0 then return false end
local reply = {'', ''}
for i = 1, #fields, 2 do
  local name = fields[i]
  if name == '#c' then reply[1] = fields[i + 1]
  elseif name == '#a' then reply[2] = fields[i + 1]
  elseif string.byte(name, 1) ~= 35 then  -- '#': other metadata
    reply[#reply + 1] = name
    reply[#reply + 1] = fields[i + 1]
  end
end
local deadline = tonumber(reply[2])
if deadline == nil then return reply end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= deadline then
  redis.call('DEL', key)
  return false
end
redis.call('PEXPIRE', key, math.min(tonumber(ARGV[1]), deadline - now))
return reply
