"""The adapters' ledger in Redis, shared by every bot process of a deployment."""

from __future__ import annotations

from bots.ledger.store import DELIVERY_TTL_S, failed_open, stored_key
from core.infra.errors import StoreUnavailable
from core.infra.redis_client import DEFAULT_TIMEOUT_S, RedisConnection


class RedisLedger:
    """Keys: {prefix}:ledger:{digest of key}, each expiring after its ttl."""

    def __init__(
        self, url: str, prefix: str, ttl_s: int, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.redis = RedisConnection(url, prefix, timeout_s)
        self.ttl_s = ttl_s

    def claim(self, key: str, ttl_s: int = DELIVERY_TTL_S) -> bool:
        try:
            with self.redis.guard():
                key = self.redis.key("ledger", stored_key(key))
                return bool(self.redis.client.set(key, "1", nx=True, ex=ttl_s))
        except StoreUnavailable as error:
            return failed_open("claim", error, True)

    def put(self, key: str, value: str) -> None:
        try:
            with self.redis.guard():
                key = self.redis.key("ledger", stored_key(key))
                self.redis.client.set(key, value, ex=self.ttl_s)
        except StoreUnavailable as error:
            failed_open("put", error, None)

    def get(self, key: str) -> str | None:
        try:
            with self.redis.guard():
                value = self.redis.client.get(self.redis.key("ledger", stored_key(key)))
        except StoreUnavailable as error:
            return failed_open("get", error, None)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
