"""Simulator layer, pure: the Lua scripts a lookup runs in Redis, with the contract of each one's arguments.

Reading a key with its TTL in one round trip; claiming an empty (or corrupt) key with a
lease; storing a value only while the key still holds the lease; and reading what each
answers (`Claim`, `stored_or_lost`). Each script touches one key, so each runs unchanged on
a Redis Cluster. The seeding scripts, which touch a batch's keys, are in seeding.py's
neighbourhood here too. Nothing here sends them: the shells do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simulator.entries import (
    COMPARED_BYTES,
    LEASE_PREFIX,
    LEASED,
    MAX_LEASE_BYTES,
    MAX_LEASE_MS,
    MISS,
    WRONG_TYPE,
    CachedEntry,
    read_cached,
)
from simulator.policy import CachePolicy
from simulator.records import Problem
from simulator.results import LEASE_LOST, StoreProblem

# KEYS[1]: the user's key. ARGV[1]: our lease, ARGV[2]: its life in ms, ARGV[3]: what we
# found there unusable: "string" (ARGV[4] is that value's length and ARGV[5] its first
# COMPARED_BYTES bytes), "type" (another Redis type) or "" (nothing), ARGV[6]: the lease
# prefix, ARGV[7]: MAX_LEASE_MS, ARGV[8]: MAX_LEASE_BYTES.
# Returns {1} when the lease is ours; {3} while another lookup's lease holds the key (no
# value: a lease says nothing more); {2} for another Redis type; else {0, what the key holds}.
# A corrupt value is replaced when its length and first bytes are those we saw: replacing any
# value with our lease is safe (the fill reads the database after it), so the compare needs
# no more, and a large corrupt value is never sent back to Redis.
CLAIM_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' or (kind ~= 'string' and ARGV[3] == 'type') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
if kind ~= 'string' then return {2} end
local value = redis.call('GET', KEYS[1])
local replace = ARGV[3] == 'string' and #value == tonumber(ARGV[4]) and string.sub(value, 1, #ARGV[5]) == ARGV[5]
if not replace and string.sub(value, 1, #ARGV[6]) == ARGV[6] then
  local left = redis.call('PTTL', KEYS[1])
  replace = #value > tonumber(ARGV[8]) or left < 0 or left > tonumber(ARGV[7])
  if not replace then return {3} end
end
if replace then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
return {0, value}
"""

# KEYS[1]: the user's key. Its value and PTTL in one command, for a hit that must also see
# the expiry (a key's first hit in the process, which checks it has one; early refresh). A
# GET+PTTL pipeline would be one round trip too, but redis-py builds and reads a pipeline in
# Python: measured on redis.asyncio, a GET 157 us, this script 151 us, the pipeline 217 us.
READ_WITH_TTL_SCRIPT = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}"

# KEYS[1]: the user's key. ARGV[1]: the value it must still hold (our lease, or the record
# an early refresh replaces), ARGV[2]: the new value, ARGV[3]: its TTL in seconds.
# Returns 1 if stored, 0 if the key changed meanwhile (an update removed our lease).
# (pcall: a key of another type answers GET with an error, which equals no lease.)
STORE_SCRIPT = """
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


# Seeding a single server claims and stores a whole batch in one script call each, so a
# million records cost two commands a batch instead of two a record (measured: a 1,000,000
# seed took 42 s with a SET NX and an EVALSHA per record, and 26 s this way). A cluster cannot
# run one script over keys in many slots, so there (and in `sequential` mode) it goes key by key.
CLAIM_MANY_SCRIPT = """
local claimed = {}
for i, key in ipairs(KEYS) do
  claimed[i] = redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
end
return claimed
"""
# KEYS: the claimed keys. ARGV[1]: the batch's lease; then a value and a TTL per key.
STORE_MANY_SCRIPT = """
local stored = 0
for i, key in ipairs(KEYS) do
  if redis.pcall('GET', key) == ARGV[1] then
    redis.call('SET', key, ARGV[2 * i], 'EX', ARGV[2 * i + 1])
    stored = stored + 1
  end
end
return stored
"""
# Giving leases back: a key a seed claimed but has nothing to store for (its row is missing or not
# a valid user, or the batch's range read failed) is deleted while it still holds the seed's lease,
# so no lookup waits for a lease nobody will fill. KEYS[1]: the key; ARGV[1]: the lease. Returns 1 if released.
RELEASE_SCRIPT = """
if redis.pcall('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# The same for a batch's keys in one call (a single server). KEYS: the keys; ARGV[1]: the batch's lease.
RELEASE_MANY_SCRIPT = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.pcall('GET', key) == ARGV[1] then released = released + redis.call('DEL', key) end
end
return released
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """What the claim script answered: the lease is ours, what the key holds instead, or why Redis could not say."""

    lease: str | None  # ours to fill with
    found: CachedEntry = MISS
    problem: StoreProblem | None = None  # Redis down, resting or full: answer without the cache

    @classmethod
    def of(cls, reply: Sequence[object], user_id: int, lease: str) -> Claim:
        """Read the script's reply: [1], [0, value], [2] (another Redis type) or [3] (another's lease)."""
        if reply[0] == 1:
            return cls(lease)
        if reply[0] == 2:
            return cls(None, WRONG_TYPE)
        if reply[0] == 3:
            return cls(None, LEASED)
        raw = reply[1]
        return cls(None, read_cached(raw if isinstance(raw, bytes | str) else None, user_id))


def claim_arguments(lease: str, policy: CachePolicy, seen: CachedEntry) -> list[object]:
    """ARGV of the claim script: our lease, its life, and what we saw that may be replaced."""
    replaceable = seen.problem is not None and seen.problem is not Problem.WRONG_TYPE
    return [
        lease,
        policy.lease_ms,
        "" if seen.problem is None else "string" if replaceable else "type",
        len(seen.raw) if replaceable else 0,
        seen.raw[:COMPARED_BYTES] if replaceable else b"",
        LEASE_PREFIX,
        MAX_LEASE_MS,
        MAX_LEASE_BYTES,
    ]


def stored_or_lost(reply: object) -> StoreProblem | None:
    """Read the store script's reply: None if stored, LEASE_LOST if the key had changed."""
    return None if reply == 1 else LEASE_LOST
