"""The server-side Lua of the shared state: each decision is one script, run on the store's clock.

Every script reads the time with ``TIME`` (one clock for every process, whatever their hosts
say) and changes nothing unless it has decided. ``admit`` checks the limits of every owner a
lease touches (the instance and its tier) before debiting any, so they are taken together or
not at all. Times are integer milliseconds on the server's clock.

Key layout, per owner (an instance ``i:NAME`` or a tier ``t:GROUP.TIER``), all in one hash slot
thanks to the ``{...}`` tag: ``cc`` (zset: lease id -> expiry), ``rpm`` (zset: lease id ->
admission time, a sliding log), ``tpm`` (zset: lease id -> admission time) with ``tpmv`` (hash:
lease id -> tokens, ``_sum`` -> their total), ``park`` (``until|reason``, expiring with the
park), ``dis`` (a disable reason), ``probe`` (the holder of the probe lease).

``VERSION`` is part of every key, so a rolling deploy that changes what a script means moves to
new keys instead of running two meanings over the same ones.
"""

from __future__ import annotations

__all__ = ["ADMIT", "DISABLE", "ENABLE", "END_PROBE", "PARK", "RELEASE", "RENEW", "VERSION"]

VERSION = "v1"

#: Keys per owner passed to ``ADMIT``: cc, rpm, tpm, tpmv, park, dis.
ADMIT_KEYS = 6
#: Arguments per owner passed to ``ADMIT``: concurrency, rpm, tpm, estimate, check health.
ADMIT_ARGS = 5

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV: lease id, ttl ms, window ms, then per owner ADMIT_ARGS values.
# Returns {code, at, now, owner index, detail}: code 1 admitted; 0 full until ``at`` (for
# ``concurrency``: the earliest lease expiry, or sooner on a release); 2 disabled (detail: why);
# 3 parked until ``at`` (detail: why).
ADMIT = (
    f"-- llm-actors admit {VERSION}"
    + _NOW
    + """
local id, ttl, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local owners = #KEYS / 6
for o = 0, owners - 1 do
  local k, a = o * 6, 3 + o * 5
  local conc, rpm, tpm, est = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3]), tonumber(ARGV[a+4])
  if ARGV[a+5] == '1' then
    local dis = redis.call('GET', KEYS[k+6])
    if dis then return {2, 0, now, o, dis} end
    local park = redis.call('GET', KEYS[k+5])
    if park then
      local sep = string.find(park, '|', 1, true)
      local untl = tonumber(string.sub(park, 1, sep - 1))
      if untl > now then return {3, untl, now, o, string.sub(park, sep + 1)} end
    end
  end
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k+1], '-inf', now)
    if redis.call('ZCARD', KEYS[k+1]) >= conc then
      local first = redis.call('ZRANGE', KEYS[k+1], 0, 0, 'WITHSCORES')
      return {0, tonumber(first[2]), now, o, 'concurrency'}
    end
  end
  if rpm > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k+2], '-inf', now - window)
    if redis.call('ZCARD', KEYS[k+2]) >= rpm then
      local first = redis.call('ZRANGE', KEYS[k+2], 0, 0, 'WITHSCORES')
      return {0, tonumber(first[2]) + window, now, o, 'rpm'}
    end
  end
  if tpm > 0 then
    local old = redis.call('ZRANGEBYSCORE', KEYS[k+3], '-inf', now - window)
    if #old > 0 then
      local gone = 0
      for _, m in ipairs(old) do
        gone = gone + (tonumber(redis.call('HGET', KEYS[k+4], m)) or 0)
        redis.call('HDEL', KEYS[k+4], m)
      end
      redis.call('HINCRBY', KEYS[k+4], '_sum', -gone)
      redis.call('ZREMRANGEBYSCORE', KEYS[k+3], '-inf', now - window)
    end
    local used = tonumber(redis.call('HGET', KEYS[k+4], '_sum')) or 0
    -- An estimate larger than the whole limit is admitted into an empty window, never refused forever.
    if used > 0 and (used >= tpm or used + est > tpm) then
      local need, at = used + math.min(est, tpm) - tpm, now
      local entries = redis.call('ZRANGE', KEYS[k+3], 0, -1, 'WITHSCORES')
      for i = 1, #entries, 2 do
        need = need - (tonumber(redis.call('HGET', KEYS[k+4], entries[i])) or 0)
        at = tonumber(entries[i+1]) + window
        if need <= 0 then break end
      end
      return {0, at, now, o, 'tpm'}
    end
  end
end
for o = 0, owners - 1 do
  local k, a = o * 6, 3 + o * 5
  local conc, rpm, tpm, est = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3]), tonumber(ARGV[a+4])
  if conc > 0 then
    redis.call('ZADD', KEYS[k+1], now + ttl, id)
    redis.call('PEXPIRE', KEYS[k+1], ttl)
  end
  if rpm > 0 then
    redis.call('ZADD', KEYS[k+2], now, id)
    redis.call('PEXPIRE', KEYS[k+2], window)
  end
  if tpm > 0 and est > 0 then
    redis.call('ZADD', KEYS[k+3], now, id)
    redis.call('HSET', KEYS[k+4], id, est)
    redis.call('HINCRBY', KEYS[k+4], '_sum', est)
    redis.call('PEXPIRE', KEYS[k+3], window + ttl)
    redis.call('PEXPIRE', KEYS[k+4], window + ttl)
  end
end
return {1, 0, now, -1, ''}
"""
)

# KEYS per owner: cc, tpm, tpmv. ARGV: lease id, channel, window ms, then per owner: concurrency,
# real tokens (-1: not counted), owner label. Publishes a ``free`` nudge for an owner that was
# full, so waiting processes try again now rather than at their timeout.
RELEASE = (
    f"-- llm-actors release {VERSION}"
    + _NOW
    + """
local id, channel, window = ARGV[1], ARGV[2], tonumber(ARGV[3])
for o = 0, #KEYS / 3 - 1 do
  local k, a = o * 3, 3 + o * 3
  local conc, tokens, label = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), ARGV[a+3]
  if conc > 0 then
    local full = redis.call('ZCARD', KEYS[k+1]) >= conc
    if redis.call('ZREM', KEYS[k+1], id) == 1 and full then
      redis.call('PUBLISH', channel, cjson.encode({k = 'free', o = label}))
    end
  end
  if tokens >= 0 then
    local est = redis.call('HGET', KEYS[k+3], id)
    if est then
      redis.call('HSET', KEYS[k+3], id, tokens)
      redis.call('HINCRBY', KEYS[k+3], '_sum', tokens - tonumber(est))
    elseif tokens > 0 then
      redis.call('ZADD', KEYS[k+2], now, id)
      redis.call('HSET', KEYS[k+3], id, tokens)
      redis.call('HINCRBY', KEYS[k+3], '_sum', tokens)
      redis.call('PEXPIRE', KEYS[k+2], window)
      redis.call('PEXPIRE', KEYS[k+3], window)
    end
  end
end
return 1
"""
)

# KEYS: cc keys. ARGV: ttl ms, then one lease id per key. Only leases still held are renewed:
# one that expired or was released stays gone.
RENEW = (
    f"-- llm-actors renew {VERSION}"
    + _NOW
    + """
local ttl, renewed = tonumber(ARGV[1]), 0
for i = 1, #KEYS do
  renewed = renewed + redis.call('ZADD', KEYS[i], 'XX', 'CH', now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return renewed
"""
)

# KEYS: park. ARGV: seconds in ms, reason, channel, instance. The later of two deadlines wins.
# Returns the milliseconds left of the park in force.
PARK = (
    f"-- llm-actors park {VERSION}"
    + _NOW
    + """
local ms = tonumber(ARGV[1])
local untl = now + ms
local cur = redis.call('GET', KEYS[1])
if cur then
  local old = tonumber(string.sub(cur, 1, string.find(cur, '|', 1, true) - 1))
  if old >= untl then return old - now end
end
if ms <= 0 then return 0 end
redis.call('SET', KEYS[1], untl .. '|' .. ARGV[2], 'PX', ms)
redis.call('PUBLISH', ARGV[3], cjson.encode({k = 'park', i = ARGV[4], s = ms / 1000, why = ARGV[2]}))
return ms
"""
)

# KEYS: dis. ARGV: reason, channel, instance.
DISABLE = (
    f"-- llm-actors disable {VERSION}\n"
    + """redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({k = 'disable', i = ARGV[3], why = ARGV[1]}))
return 1
"""
)

# KEYS: dis, park. ARGV: channel, instance. A passing probe or a reload lifts both.
ENABLE = (
    f"-- llm-actors enable {VERSION}\n"
    + """local n = redis.call('DEL', KEYS[1], KEYS[2])
if n > 0 then redis.call('PUBLISH', ARGV[1], cjson.encode({k = 'enable', i = ARGV[2]})) end
return n
"""
)

# KEYS: probe. ARGV: holder. Ends a probe lease only if it is still ours.
END_PROBE = (
    f"-- llm-actors end-probe {VERSION}\n"
    + """if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
)
