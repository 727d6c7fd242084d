"""The server-side Lua of the shared state: each decision is one script, run on the store's clock.

Every script reads the time with ``TIME`` (one clock for every process, whatever their hosts
say) and changes nothing unless it has decided. Every call touches the keys of one owner only
(an instance ``i:NAME`` or a tier ``t:GROUP.TIER``), so each runs in one Redis Cluster hash slot.
A lease that needs two owners sends one ``ADMIT`` per owner in one round trip (a pipeline), and
when one admits and another refuses, ``RELEASE`` with ``undo`` takes back what the first took
(its concurrency lease, rpm entry and tpm estimate): together or not at all, never over a limit
(an undone permit only ever made a limit look fuller for a moment). Times are integer
milliseconds on the server's clock.

Key layout, per owner, all in one hash slot thanks to the ``{...}`` tag: ``cc`` (zset: lease id
-> expiry), ``rpm`` (zset: lease id -> admission time, a sliding log), ``tpm`` (zset: lease id ->
admission time) with ``tpmv`` (hash: lease id -> tokens, ``_sum`` -> their total), ``park``
(``until|reason``, expiring with the park), ``dis`` (a disable reason), ``probe`` (the holder of
the probe lease of a half-open trial), ``check`` (the holder of the health-check lease).

``VERSION`` is part of every key, so a rolling deploy that changes what a key means moves to new
keys instead of running two meanings over the same ones.
"""

from __future__ import annotations

__all__ = [
    "ADMIT",
    "CHECK",
    "DISABLE",
    "ENABLE",
    "END_PROBE",
    "NAMES",
    "PARK",
    "PROBE",
    "RELEASE",
    "RENEW",
    "VERSION",
]

VERSION = "v1"

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: cc, rpm, tpm, tpmv, park, dis. ARGV: lease id, ttl ms, window ms, concurrency, rpm, tpm,
# estimate, check health ('1').
# Returns {code, at, now, detail}: code 1 admitted; 0 full until ``at`` (for ``concurrency``: the
# earliest lease expiry, or sooner on a release); 2 disabled (detail: why); 3 parked until ``at``
# (detail: why).
ADMIT = (
    f"-- llm-actors admit {VERSION}"
    + _NOW
    + """
local id, ttl, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local conc, rpm, tpm, est = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
-- Run twice (a batch sent again after a broken connection): the lease holds its permits already.
if (conc > 0 and redis.call('ZSCORE', KEYS[1], id)) or (rpm > 0 and redis.call('ZSCORE', KEYS[2], id))
    or (tpm > 0 and redis.call('HEXISTS', KEYS[4], id) == 1) then
  return {1, 0, now, ''}
end
if ARGV[8] == '1' then
  local dis = redis.call('GET', KEYS[6])
  if dis then return {2, 0, now, dis} end
  local park = redis.call('GET', KEYS[5])
  if park then
    local sep = string.find(park, '|', 1, true)
    local untl = tonumber(string.sub(park, 1, sep - 1))
    if untl > now then return {3, untl, now, string.sub(park, sep + 1)} end
  end
end
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= conc then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, tonumber(first[2]), now, 'concurrency'}
  end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= rpm then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, tonumber(first[2]) + window, now, 'rpm'}
  end
end
if tpm > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - window)
  if #old > 0 then
    local gone = 0
    for _, m in ipairs(old) do
      gone = gone + (tonumber(redis.call('HGET', KEYS[4], m)) or 0)
      redis.call('HDEL', KEYS[4], m)
    end
    redis.call('HINCRBY', KEYS[4], '_sum', -gone)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
  end
  local used = tonumber(redis.call('HGET', KEYS[4], '_sum')) or 0
  -- An estimate larger than the whole limit is admitted into an empty window, never refused forever.
  if used > 0 and (used >= tpm or used + est > tpm) then
    local need, at = used + math.min(est, tpm) - tpm, now
    local entries = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
    for i = 1, #entries, 2 do
      need = need - (tonumber(redis.call('HGET', KEYS[4], entries[i])) or 0)
      at = tonumber(entries[i+1]) + window
      if need <= 0 then break end
    end
    return {0, at, now, 'tpm'}
  end
end
if conc > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, id)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
if rpm > 0 then
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('PEXPIRE', KEYS[2], window)
end
if tpm > 0 and est > 0 then
  redis.call('ZADD', KEYS[3], now, id)
  redis.call('HSET', KEYS[4], id, est)
  redis.call('HINCRBY', KEYS[4], '_sum', est)
  redis.call('PEXPIRE', KEYS[3], window + ttl)
  redis.call('PEXPIRE', KEYS[4], window + ttl)
end
return {1, 0, now, ''}
"""
)

# KEYS: cc, rpm, tpm, tpmv. ARGV: lease id, channel, window ms, concurrency, real tokens (-1: not
# counted), owner label, undo ('1': the lease was admitted here but refused by another owner, so
# its rpm entry and tpm estimate go too). Publishes a ``free`` nudge when the owner was full, so
# waiting processes try again now rather than at their timeout.
RELEASE = (
    f"-- llm-actors release {VERSION}"
    + _NOW
    + """
local id, channel, window = ARGV[1], ARGV[2], tonumber(ARGV[3])
local conc, tokens, label = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if conc > 0 then
  local full = redis.call('ZCARD', KEYS[1]) >= conc
  if redis.call('ZREM', KEYS[1], id) == 1 and full then
    redis.call('PUBLISH', channel, cjson.encode({k = 'free', o = label}))
  end
end
if ARGV[7] == '1' then
  redis.call('ZREM', KEYS[2], id)
  local est = redis.call('HGET', KEYS[4], id)
  if est then
    redis.call('HDEL', KEYS[4], id)
    redis.call('HINCRBY', KEYS[4], '_sum', -tonumber(est))
    redis.call('ZREM', KEYS[3], id)
  end
elseif tokens >= 0 then
  local est = redis.call('HGET', KEYS[4], id)
  if est then
    redis.call('HSET', KEYS[4], id, tokens)
    redis.call('HINCRBY', KEYS[4], '_sum', tokens - tonumber(est))
  elseif tokens > 0 then
    redis.call('ZADD', KEYS[3], now, id)
    redis.call('HSET', KEYS[4], id, tokens)
    redis.call('HINCRBY', KEYS[4], '_sum', tokens)
    redis.call('PEXPIRE', KEYS[3], window)
    redis.call('PEXPIRE', KEYS[4], window)
  end
end
return 1
"""
)

# KEYS: one owner's cc. ARGV: ttl ms, then the lease ids this process holds there. Only leases
# still held are renewed: one that expired or was released stays gone.
RENEW = (
    f"-- llm-actors renew {VERSION}"
    + _NOW
    + """
local ttl, renewed = tonumber(ARGV[1]), 0
for i = 2, #ARGV do
  -- Counted by presence: ZADD's CH would miss a renewal in the millisecond of the admission.
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    renewed = renewed + 1
  end
end
redis.call('PEXPIRE', KEYS[1], ttl)
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

# KEYS: check. ARGV: holder, ms. The health-check lease of an instance: taken when free or
# already the holder's, for ``ms`` more. The holder keeps the duty while it keeps probing on its
# own timer; when it stops (it died, or thinks the instance healthy), another takes over once the
# lease lapses. Returns 1 when the caller holds it now, 0 when another process does.
CHECK = (
    f"-- llm-actors check {VERSION}\n"
    + """local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
)

# KEYS: probe. ARGV: holder, ms. Takes the probe lease of a half-open instance if no process holds
# it (a script, not a bare SET NX, so that sync and async callers share the batch path).
PROBE = (
    f"-- llm-actors probe {VERSION}\n"
    + """if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
)

#: Every script, by name.
NAMES = ("ADMIT", "RELEASE", "RENEW", "PARK", "DISABLE", "ENABLE", "END_PROBE", "CHECK", "PROBE")
