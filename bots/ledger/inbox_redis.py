"""The adapters' inbox in Redis, shared by every bot process of a deployment.

Keys: {prefix}:inbox:{ref}, a hash (platform, body, attempts) expiring after a day, and
{prefix}:inbox-due:{platform}, a sorted set of the unsettled refs by the time their lease ends.
Each operation is one Lua script, so a message is taken over by one process only.
"""

from __future__ import annotations

import time
from typing import Any, cast

from bots.ledger.inbox import INBOX_TTL_S, Pending
from core.infra.redis_client import DEFAULT_TIMEOUT_S, RedisConnection, text

ACCEPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'platform', ARGV[1], 'body', ARGV[2], 'attempts', 0)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

TAKE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local taken = {}
for _, ref in ipairs(due) do
  local key = ARGV[4] .. ref
  local body = redis.call('HGET', key, 'body')
  if body then
    redis.call('ZADD', KEYS[1], ARGV[2], ref)
    local attempts = redis.call('HINCRBY', key, 'attempts', 1)
    table.insert(taken, ref)
    table.insert(taken, body)
    table.insert(taken, attempts)
  else
    redis.call('ZREM', KEYS[1], ref)
  end
end
return taken
"""

SETTLE = """
local platform = redis.call('HGET', KEYS[1], 'platform')
redis.call('HDEL', KEYS[1], 'body')
if platform then redis.call('ZREM', ARGV[1] .. platform, ARGV[2]) end
return 1
"""

LEASE = """
local platform = redis.call('HGET', KEYS[1], 'platform')
if platform and redis.call('HEXISTS', KEYS[1], 'body') == 1 then
  redis.call('ZADD', ARGV[1] .. platform, 'XX', ARGV[2], ARGV[3])
end
return 1
"""


class RedisInbox:
    def __init__(self, url: str, prefix: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.redis = RedisConnection(url, prefix, timeout_s)
        client = self.redis.client
        self._accept = client.register_script(ACCEPT)
        self._take = client.register_script(TAKE)
        self._settle = client.register_script(SETTLE)
        self._lease = client.register_script(LEASE)

    def _entry(self, ref: str) -> str:
        return self.redis.key("inbox", ref)

    def _due(self, platform: str = "") -> str:
        return self.redis.key("inbox-due", platform)

    def accept(self, pending: Pending, lease_s: float) -> bool:
        platform = pending.incoming.platform
        with self.redis.guard():
            added = self._accept(
                keys=[self._entry(pending.ref), self._due(platform)],
                args=[platform, pending.body(), time.time() + lease_s, pending.ref, INBOX_TTL_S],
            )
        return bool(added)

    def renew(self, ref: str, lease_s: float) -> None:
        self._set_lease(ref, time.time() + lease_s)

    def release(self, ref: str) -> None:
        self._set_lease(ref, 0.0)

    def _set_lease(self, ref: str, lease: float) -> None:
        with self.redis.guard():
            self._lease(keys=[self._entry(ref)], args=[self._due(), lease, ref])

    def settle(self, ref: str) -> None:
        with self.redis.guard():
            self._settle(keys=[self._entry(ref)], args=[self._due(), ref])

    def take_stale(self, platform: str, lease_s: float, limit: int = 20) -> list[Pending]:
        now = time.time()
        with self.redis.guard():
            flat = cast(
                "list[Any]",
                self._take(
                    keys=[self._due(platform)],
                    args=[now, now + lease_s, limit, self._entry("")],
                ),
            )
        return [
            Pending.from_body(text(flat[i]), text(flat[i + 1]), int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]
