"""The per-sender rate limit in Redis: one limit for a sender across every bot process.

The whole bucket update (read, decide, write, expire) is one Lua script, so concurrent
processes never both spend the last allowance, and a refused message costs one round trip.
Time is Redis's own (`TIME`), so hosts with skewed clocks share one timeline.

Key: {prefix}:ratelimit:{digest of the sender}, a hash {tat: microseconds, noticed: 0/1} that
expires when the sender's allowance is whole again (which is also when a limited stretch ends),
so idle senders take no memory. The sender's id is kept only as a digest: the key holds nothing
a person's "delete my data" would have to find.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from core.infra.errors import StoreUnavailable
from core.infra.logs import event
from core.infra.ratelimit import ADMITTED, Admission, RateRule
from core.infra.redis_client import DEFAULT_TIMEOUT_S, RedisConnection

log = logging.getLogger(__name__)

# KEYS[1] the bucket; ARGV: cost (us), limit = burst * interval (us), now (us, or -1: Redis time).
_ADMIT = """
local now = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local stored = redis.call('HMGET', KEYS[1], 'tat', 'noticed')
local tat = tonumber(stored[1])
local noticed = stored[2] == '1'
if tat == nil or tat <= now then
  tat = now
  noticed = false
end
local new_tat = tat + tonumber(ARGV[1])
if new_tat - now <= tonumber(ARGV[2]) then
  local mark = noticed and '1' or '0'
  redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', new_tat), 'noticed', mark)
  redis.call('PEXPIRE', KEYS[1], math.ceil((new_tat - now) / 1000) + 1)
  return {1, 0}
end
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat), 'noticed', '1')
redis.call('PEXPIRE', KEYS[1], math.ceil((tat - now) / 1000) + 1)
if noticed then return {0, 0} end
return {0, 1}
"""


class RedisRateLimiter:
    def __init__(
        self,
        url: str,
        rule: RateRule,
        prefix: str = "concierge",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`clock` (seconds) replaces Redis's time, for tests that step through time."""
        self.redis = RedisConnection(url, prefix, timeout_s)
        self.rule = rule
        self.clock = clock
        self._limit_us = round(rule.burst * rule.interval_s * 1_000_000)
        self._cost_us = {
            button: round(rule.cost(button) * rule.interval_s * 1_000_000)
            for button in (False, True)
        }
        self._admit = self.redis.client.register_script(_ADMIT)

    def admit(self, sender: str, button: bool = False) -> Admission:
        now_us = -1 if self.clock is None else round(self.clock() * 1_000_000)
        try:
            with self.redis.guard():
                allowed, notify = self._admit(
                    keys=[self.redis.key("ratelimit", sender_digest(sender))],
                    args=[self._cost_us[button], self._limit_us, now_us],
                )
        except StoreUnavailable as exc:
            # Fail open: a limiter outage must not silence every customer. The turn then meets
            # the same Redis in the state store and says so honestly.
            event(log, "ratelimit.unavailable", logging.WARNING, error=str(exc))
            return ADMITTED
        return ADMITTED if allowed else Admission(allowed=False, notify=bool(notify))


def sender_digest(sender: str) -> str:
    """The bucket's name for a sender: stable across processes, not the id itself."""
    return hashlib.sha256(f"ratelimit|{sender}".encode()).hexdigest()[:32]
