"""The ledger and the inbox the settings name: Redis if the conversation state is there, else a
SQLite file."""

from __future__ import annotations

from bots.ledger.inbox import Inbox
from bots.ledger.store import Ledger
from core.infra.settings import Settings


def open_ledger(settings: Settings) -> Ledger:
    if settings.state_backend == "redis":
        from bots.ledger.redis import RedisLedger

        return RedisLedger(settings.redis_url, settings.redis_prefix, settings.adapter_ledger_ttl_s)
    from bots.ledger.sqlite import SqliteLedger

    # A file of its own next to the state, so the state store's schema stays its own business.
    return SqliteLedger(
        settings.sqlite_path.with_name("adapters.sqlite3"), settings.adapter_ledger_ttl_s
    )



def inbox_beside(ledger: Ledger) -> Inbox:
    """The inbox in the ledger's own store: the same Redis and prefix, or the same file."""
    from bots.ledger.redis import RedisLedger
    from bots.ledger.sqlite import SqliteLedger

    if isinstance(ledger, RedisLedger):
        from bots.ledger.inbox_redis import RedisInbox

        connection = ledger.redis
        return RedisInbox(connection.url, connection.prefix, connection.timeout_s)
    if isinstance(ledger, SqliteLedger):
        from bots.ledger.inbox_sqlite import SqliteInbox

        return SqliteInbox(ledger.path)
    raise TypeError(f"no inbox beside a {type(ledger).__name__}; pass one")
