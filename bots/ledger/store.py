"""Small records the chat adapters keep between events and across restarts.

- delivery keys already handled, so a platform's retried delivery is answered once;
- long button payloads behind short ids, for platforms with tight limits (`payloads`);
- threads the bot takes part in (Slack), so follow-ups there need no mention;
- whom a message with buttons in a group chat was for (its owner's conversation), so a button
  answers only that member.

Backends: Redis when conversation state lives there (several bot processes), else a SQLite file
(`factory`). Calls are quick blocking I/O: async adapters run them with `asyncio.to_thread`.
When the backend fails, the ledger fails open (logged): a customer is answered rather than
dropped, and the core still drops repeated message ids it has seen.

Keys are stored as digests (`stored_key`): a delivery key names a chat and a message, and the
ledger need not say whom the bot talked to (a deleted customer leaves no readable trace here).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Protocol, TypeVar

from core.infra.logs import event

log = logging.getLogger(__name__)
T = TypeVar("T")

DELIVERY_TTL_S = 24 * 3600  # platforms stop retrying long before this


class Ledger(Protocol):
    def claim(self, key: str, ttl_s: int = DELIVERY_TTL_S) -> bool:
        """True the first time `key` is claimed within `ttl_s`; False for every repeat."""
        ...

    def put(self, key: str, value: str) -> None: ...

    def get(self, key: str) -> str | None: ...


def stored_key(key: str) -> str:
    """The digest a ledger key is stored under."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def failed_open(operation: str, error: Exception, fallback: T) -> T:
    """Log a ledger failure and carry on with `fallback` (answer rather than drop)."""
    event(log, "ledger.unavailable", level=logging.ERROR, operation=operation, error=str(error))
    return fallback
