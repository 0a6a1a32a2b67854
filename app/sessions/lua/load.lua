-- Load a session and slide its idle expiry, in one round trip.
-- KEYS[1] session hash; ARGV[1] idle timeout (ms).
-- Returns the hash as a flat list, or false when absent or past its absolute end of life.
local key = KEYS[1]
local fields = redis.call('HGETALL', key)
if #fields == 0 then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline
for i = 1, #fields, 2 do
  if fields[i] == '#a' then deadline = tonumber(fields[i + 1]); break end
end
if deadline == nil then
  -- Corrupt (no end of life): leave it to idle out, the client treats it as missing.
  return fields
end
if now >= deadline then
  redis.call('DEL', key)
  return false
end
redis.call('PEXPIRE', key, math.min(tonumber(ARGV[1]), deadline - now))
return fields
