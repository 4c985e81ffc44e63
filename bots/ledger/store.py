"""Small records the chat adapters keep between events and across restarts.

- delivery keys already handled, so a platform's retried delivery is answered once;
- long button payloads behind short ids, for platforms with tight limits (Telegram: 64 bytes);
- threads the bot takes part in (Slack), so follow-ups there need no mention.

Redis when conversation state lives there (several bot processes), else a SQLite file.
Calls are quick blocking I/O: async adapters run them with `asyncio.to_thread`. When the
backend fails, the ledger fails open (logged): a customer is answered rather than dropped, and
the core still drops repeated message ids it has seen.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import redis

from core.infra.logs import event
from core.infra.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

DELIVERY_TTL_S = 24 * 3600  # platforms stop retrying long before this
SHORT_PREFIX = "~"  # marks a short id that stands for a stored payload


class Ledger(Protocol):
    def claim(self, key: str, ttl_s: int = DELIVERY_TTL_S) -> bool:
        """True the first time `key` is claimed within `ttl_s`; False for every repeat."""
        ...

    def put(self, key: str, value: str) -> None: ...

    def get(self, key: str) -> str | None: ...


class RedisLedger:
    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int) -> None:
        self.client = client
        self.prefix = f"{prefix}:ledger:"
        self.ttl_s = ttl_s

    def claim(self, key: str, ttl_s: int = DELIVERY_TTL_S) -> bool:
        try:
            return bool(self.client.set(self.prefix + key, "1", nx=True, ex=ttl_s))
        except redis.RedisError as error:
            return _failed_open("claim", error, True)

    def put(self, key: str, value: str) -> None:
        try:
            self.client.set(self.prefix + key, value, ex=self.ttl_s)
        except redis.RedisError as error:
            _failed_open("put", error, None)

    def get(self, key: str) -> str | None:
        try:
            value = self.client.get(self.prefix + key)
        except redis.RedisError as error:
            return _failed_open("get", error, None)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)


class SqliteLedger:
    def __init__(self, path: Path, ttl_s: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a process crash; a power cut may forget the last records,
        # which costs at most a repeated answer. It saves an fsync per delivery.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS adapter_ledger"
            " (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL NOT NULL)"
        )

    def claim(self, key: str, ttl_s: int = DELIVERY_TTL_S) -> bool:
        now = time.time()
        try:
            with self._lock:
                # New key, or an expired one taken over: one row changed. A live key: none.
                cursor = self._db.execute(
                    "INSERT INTO adapter_ledger VALUES (?, '1', ?) ON CONFLICT(key) DO UPDATE"
                    " SET value = '1', expires = excluded.expires WHERE adapter_ledger.expires < ?",
                    (key, now + ttl_s, now),
                )
                return cursor.rowcount == 1
        except sqlite3.Error as error:
            return _failed_open("claim", error, True)

    def put(self, key: str, value: str) -> None:
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO adapter_ledger VALUES (?, ?, ?)",
                    (key, value, time.time() + self.ttl_s),
                )
        except sqlite3.Error as error:
            _failed_open("put", error, None)

    def get(self, key: str) -> str | None:
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT value FROM adapter_ledger WHERE key = ? AND expires >= ?",
                    (key, time.time()),
                ).fetchone()
        except sqlite3.Error as error:
            return _failed_open("get", error, None)
        return None if row is None else str(row[0])


def _failed_open(operation: str, error: Exception, fallback: T) -> T:
    event(log, "ledger.unavailable", level=logging.ERROR, operation=operation, error=str(error))
    return fallback


def open_ledger(settings: Settings) -> Ledger:
    """The ledger next to the conversation state: Redis if the state is there, else SQLite."""
    if settings.state_backend == "redis":
        client = redis.Redis.from_url(settings.redis_url)
        return RedisLedger(client, settings.redis_prefix, settings.adapter_ledger_ttl_s)
    # A file of its own next to the state, so the state store's schema stays its own business.
    path = settings.sqlite_path.with_name("adapters.sqlite3")
    return SqliteLedger(path, settings.adapter_ledger_ttl_s)


def fits(payload: str, limit_bytes: int) -> bool:
    """Whether a button can carry `payload` itself."""
    return len(payload.encode()) <= limit_bytes and not payload.startswith(SHORT_PREFIX)


def short_payloads(ledger: Ledger, payloads: Sequence[str], limit_bytes: int) -> list[str]:
    """`short_payload` for each; only long ones touch the ledger."""
    return [short_payload(ledger, payload, limit_bytes) for payload in payloads]


def short_payload(ledger: Ledger, payload: str, limit_bytes: int) -> str:
    """`payload` itself when it fits in `limit_bytes`, else a short id stored in the ledger."""
    if fits(payload, limit_bytes):
        return payload
    digest = hashlib.sha256(payload.encode()).hexdigest()[:20]  # same payload, same id
    ledger.put(f"payload:{digest}", payload)
    return SHORT_PREFIX + digest


def full_payload(ledger: Ledger, data: str) -> str:
    """The payload a button carried; an unknown short id comes back as is (the core says so)."""
    if not data.startswith(SHORT_PREFIX):
        return data
    return ledger.get(f"payload:{data[len(SHORT_PREFIX) :]}") or data
