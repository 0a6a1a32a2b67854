#!lua
-- Commit changed session fields atomically with per-field optimistic versions.
-- KEYS[1] session hash.
-- ARGV: token, mode ('n' create | 'u' update), idle_ms, lifetime_ms, max_bytes, nsets,
--       then nsets triples (field, expected_version, json), then pairs (field, expected_version).
-- Stored field value: '<version>:<json>'. Metadata fields start with '#':
--   #v last version, #c created (ms), #a absolute end of life (ms), #b data bytes,
--   #k the last RECENT commits as '<token>:<version>' words, newest first.
-- Returns {1, version} | {0, field, current-or-'', ...} conflicts | {-1} gone | {-2, bytes}.
local key = KEYS[1]
local token, mode = ARGV[1], ARGV[2]
local idle, lifetime, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local nsets = tonumber(ARGV[6])
local exists = redis.call('EXISTS', key) == 1
-- Not just the last token: two tabs commit A then B, A's acknowledgement is lost and A is
-- retried; with only B's token kept, A would conflict with itself and be applied twice.
local RECENT = 16
local recent = exists and redis.call('HGET', key, '#k') or ''

local words = ' ' .. recent
local at = string.find(words, ' ' .. token .. ':', 1, true)
if at then
  local applied = string.match(words, '^%d+', at + #token + 2)
  -- A retry of a commit that was applied: rewrite #k so WAIT has a write to wait for.
  redis.call('HSET', key, '#k', recent)
  return {1, tonumber(applied)}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline
if mode == 'n' then
  if exists then return {-1} end
  deadline = now + lifetime
else
  if not exists then return {-1} end
  deadline = tonumber(redis.call('HGET', key, '#a'))
  if deadline == nil or now >= deadline then
    redis.call('DEL', key)
    return {-1}
  end
end

local function version_of(stored)
  if not stored then return 0 end
  return tonumber(string.match(stored, '^(%d+):')) or -1
end

local conflicts = {}
local bytes = tonumber(redis.call('HGET', key, '#b')) or 0
local function check(name, expected)
  local current = redis.call('HGET', key, name)
  if version_of(current) ~= tonumber(expected) then
    conflicts[#conflicts + 1] = name
    conflicts[#conflicts + 1] = current or ''
  end
  bytes = bytes - (current and #current or 0)
end
local dels_at = 7 + 3 * nsets
for i = 7, dels_at - 1, 3 do check(ARGV[i], ARGV[i + 1]) end
for i = dels_at, #ARGV, 2 do check(ARGV[i], ARGV[i + 1]) end
if #conflicts > 0 then return {0, unpack(conflicts)} end

local version = (tonumber(redis.call('HGET', key, '#v')) or 0) + 1
local prefix = version .. ':'
local writes = {}
for i = 7, dels_at - 1, 3 do
  local stored = prefix .. ARGV[i + 2]
  bytes = bytes + #stored
  writes[#writes + 1] = ARGV[i]
  writes[#writes + 1] = stored
end
if bytes > max_bytes then return {-2, bytes} end

if #writes > 0 then redis.call('HSET', key, unpack(writes)) end
for i = dels_at, #ARGV, 2 do redis.call('HDEL', key, ARGV[i]) end
if mode == 'n' then redis.call('HSET', key, '#c', now, '#a', deadline) end
local kept = {token .. ':' .. version}
for word in string.gmatch(recent, '%S+') do
  if #kept == RECENT then break end
  kept[#kept + 1] = word
end
redis.call('HSET', key, '#v', version, '#b', bytes, '#k', table.concat(kept, ' '))
redis.call('PEXPIRE', key, math.min(idle, deadline - now))
return {1, version}
