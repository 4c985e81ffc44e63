"""The one way Concierge reaches Redis: timeouts on every socket, one key scheme, and failures
turned into `StoreUnavailable` with the password taken out of the URL.

Every Redis-backed store (conversation state, tickets, deliveries, the adapters' ledger) and the
queue-depth metric hold a `RedisConnection`; nothing else builds a Redis client.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import redis

from core.infra.errors import StoreUnavailable

DEFAULT_TIMEOUT_S = 2.0  # a Redis that does not answer in this long counts as down


def redacted(url: str) -> str:
    """A URL fit for messages and logs: its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def redis_client(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> redis.Redis:
    """A client whose connects and commands give up after `timeout_s`."""
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


def text(value: bytes | str) -> str:
    """A reply value as text (the client answers bytes: it does not decode responses)."""
    return value.decode() if isinstance(value, bytes) else value


def texts(reply: object) -> list[str]:
    """The members of a set or sorted-set range reply, as text. The client's typing also allows
    an awaitable (asyncio clients) and pairs (RESP3); this synchronous client gives neither."""
    return [text(value) for value in cast("Iterable[bytes | str]", reply)]


class RedisConnection:
    """A client, the deployment's key prefix, and the guard every command runs under."""

    def __init__(
        self, url: str, prefix: str = "concierge", timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.client = redis_client(url, timeout_s)

    def key(self, kind: str, name: str) -> str:
        """`{prefix}:{kind}:{name}`: several deployments (and test runs) share one Redis."""
        return f"{self.prefix}:{kind}:{name}"

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run Redis commands; a failure becomes StoreUnavailable naming the server, not the
        password."""
        try:
            yield
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis at {redacted(self.url)} is unavailable: {exc}") from exc
